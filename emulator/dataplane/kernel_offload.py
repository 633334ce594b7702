"""The two halves of offload joined: the engine's Offloads and the fabric's kernel conntrack.

`sync` runs once a second: kernel counters refresh the engine's entries (and the flow log),
flows whose entries expired are handed back with their counters zeroed (a later entry of the
same kernel connection then counts in step with it again), and flows whose entries would
expire before the next sync are handed back as they are, so expiry is the engine's, on time.
`recall` runs before a change is acknowledged (LabApi calls it): the flows whose verdict the
change could alter are synced one last time, then handed back, so their next packets meet the
engine under the new rules.
"""
from __future__ import annotations

from collections.abc import Callable

from emulator.control.api import RECALL_ALL, RECALL_UNTRACKED
from emulator.dataplane.kernel_conntrack import KernelConntrack
from emulator.engine.offload import KernelFlow, OffloadedFlow, Offloads, Traffic, every, untracked

# Seconds ahead of the next sync (the daemon syncs once a second; twice that, for a busy loop):
# a flow whose entry would expire by then comes back to the engine first.
SYNC_AHEAD = 2.0

SCOPES: dict[str, Callable[[OffloadedFlow], bool]] = {RECALL_UNTRACKED: untracked, RECALL_ALL: every}


class KernelOffload:
    def __init__(self, offloads: Offloads, kernel: KernelConntrack, traffic: Traffic | None = None):
        self.offloads = offloads
        self._kernel = kernel
        self._traffic = traffic

    def sync(self, now: float) -> None:
        """Before expiry: offloaded traffic refreshes its entries; what expired, or would before
        the next sync, is released before another packet is served."""
        self._sync(self._kernel.current(self.offloads.offered()), now)

    def _sync(self, current: list[KernelFlow], now: float) -> None:
        released = self.offloads.sync(current, now, self._traffic, SYNC_AHEAD)
        gone = self.offloads.gone
        self._kernel.release([k for k in released if k in gone], zero=True)
        self._kernel.release([k for k in released if k not in gone])

    def recall(self, scope: str, now: float) -> int:
        """Pull back every offloaded flow in `scope` (RECALL_UNTRACKED or RECALL_ALL); returns
        how many. Their engine entries live on, with the kernel's last counts."""
        which = SCOPES[scope]
        if not any(which(flow) for flow in self.offloads.flows.values()):
            return 0            # nothing the change could alter is in the kernel: no round trip
        current = self._kernel.current(self.offloads.offered())
        self._sync(current, now)
        recalled = self.offloads.recall(current, which)
        self._kernel.release(recalled)
        return len(recalled)

    def release_all(self) -> None:
        """Hand back every connection still marked (offloaded by an engine that died)."""
        self._kernel.release(self._kernel.offloaded())

    def close(self) -> None:
        self._kernel.close()
