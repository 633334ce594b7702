"""The two halves of offload joined: the engine's Offloads and the fabric's kernel conntrack.

`sync` runs once a second: kernel counters refresh the engine's entries (and the flow log),
and flows whose entries expired are handed back with their counters zeroed, so a later entry
of the same kernel connection counts in step with it again. `recall` runs before a change is
acknowledged (LabApi calls it): the flows whose verdict the change could alter are synced one
last time, then handed back, so their next packets meet the engine under the new rules.
"""
from __future__ import annotations

from collections.abc import Callable

from emulator.control.api import RECALL_ALL, RECALL_UNTRACKED
from emulator.dataplane.kernel_conntrack import KernelConntrack
from emulator.engine.offload import OffloadedFlow, Offloads, Traffic, every, untracked

SCOPES: dict[str, Callable[[OffloadedFlow], bool]] = {RECALL_UNTRACKED: untracked, RECALL_ALL: every}


class KernelOffload:
    def __init__(self, offloads: Offloads, kernel: KernelConntrack, traffic: Traffic | None = None):
        self.offloads = offloads
        self._kernel = kernel
        self._traffic = traffic

    def sync(self, now: float) -> None:
        """Before expiry: offloaded traffic refreshes its entries; what expires anyway is
        released before another packet is served."""
        current = self._kernel.current(self.offloads.offered())
        self._kernel.release(self.offloads.sync(current, now, self._traffic), zero=True)

    def recall(self, scope: str, now: float) -> int:
        """Pull back every offloaded flow in `scope` (RECALL_UNTRACKED or RECALL_ALL); returns
        how many. Their engine entries live on, with the kernel's last counts."""
        which = SCOPES[scope]
        if not any(which(flow) for flow in self.offloads.flows.values()):
            return 0            # nothing the change could alter is in the kernel: no round trip
        current = self._kernel.current(self.offloads.offered())
        self._kernel.release(self.offloads.sync(current, now, self._traffic), zero=True)
        recalled = self.offloads.recall(current, which)
        self._kernel.release(recalled)
        return len(recalled)

    def release_all(self) -> None:
        """Hand back every connection still marked (offloaded by an engine that died)."""
        self._kernel.release(self._kernel.offloaded())

    def close(self) -> None:
        self._kernel.close()
