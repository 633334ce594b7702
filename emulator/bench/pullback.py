"""The cost of pulling offloaded flows back before a change is acknowledged, with FLOWS of them
in a real kernel conntrack table (a lab's fabric namespace; root).

The engine holds FLOWS offloaded UDP flows between two instances (fed OFFER_AFTER packets each,
then offered); the kernel holds one marked connection per flow (created over ctnetlink, no
traffic). Timed: KernelOffload.recall for every flow (what a NACL change costs: a dump, a sync,
a batch of mark updates), then for none (what a revoke costs when only tracked flows are in the
kernel). Afterwards no connection may carry the offload mark.
"""
from __future__ import annotations

import time

from emulator.control.api import RECALL_ALL, RECALL_UNTRACKED
from emulator.dataplane.kernel_conntrack import KernelConntrack
from emulator.dataplane.kernel_offload import KernelOffload
from emulator.engine.firewall import ACCEPT, build_firewalls
from emulator.engine.offload import OFFER_AFTER, KernelFlow, Offloads, reverse
from emulator.engine.packet import Packet
from emulator.model import PROTO_UDP, Direction, Topology
from emulator.plan import OFFLOAD_MARK

FLOWS = 10_000
KERNEL_TIMEOUT = 120        # seconds: long enough for the probe, gone soon after


def offloaded(topology: Topology, flows: int) -> Offloads:
    """An engine with `flows` offloaded (tracked) UDP flows from a to b."""
    _, firewalls = build_firewalls(topology)
    a, b = firewalls["a"], firewalls["b"]
    src, dst = int(topology.instance("a").private_ip), int(topology.instance("b").private_ip)
    offloads = Offloads(topology, firewalls)
    for n in range(flows):
        packet = Packet(4, src, dst, PROTO_UDP, 10_000 + n, 5000, length=92)
        for _ in range(OFFER_AFTER):
            if a.decide(packet, Direction.EGRESS, 0.0).action != ACCEPT or \
                    b.decide(packet, Direction.INGRESS, 0.0).action != ACCEPT:
                raise RuntimeError("the pull-back probe's flow was dropped: the probe is wrong")
        if not offloads.offer(a, packet, 0.0):
            raise RuntimeError("the pull-back probe's flow was not offloaded: the probe is wrong")
    return offloads


def measure(topology: Topology, fabric: str, flows: int = FLOWS) -> dict[str, float]:
    """Milliseconds to recall every flow, and to find none in scope; `topology` has a and b
    whose SG admits UDP between them (tracked)."""
    offloads = offloaded(topology, flows)
    kernel = KernelConntrack(fabric)
    try:
        kernel.insert([KernelFlow(w, reverse(w), mark=OFFLOAD_MARK) for w in offloads.offered()], KERNEL_TIMEOUT)
        if len(kernel.offloaded()) < flows:
            raise RuntimeError("the kernel did not take the probe's connections")
        pulling = KernelOffload(offloads, kernel)
        start = time.perf_counter()
        none = pulling.recall(RECALL_UNTRACKED, 1.0)       # all tracked: nothing in scope
        scan_ms = (time.perf_counter() - start) * 1000
        start = time.perf_counter()
        recalled = pulling.recall(RECALL_ALL, 1.0)
        all_ms = (time.perf_counter() - start) * 1000
        left = len(kernel.offloaded())
    finally:
        kernel.close()
    if none != 0 or recalled != flows or left != 0:
        raise RuntimeError(f"pull-back probe: recalled {none} then {recalled} of {flows}, {left} still marked")
    return {"flows": flows, "recall_all_ms": all_ms, "recall_none_in_scope_ms": scan_ms,
            "us_per_flow": all_ms * 1000 / flows}


