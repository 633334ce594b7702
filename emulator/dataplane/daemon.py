"""The engine daemon: one process per lab serving every ENI queue of that lab.

    python -m emulator.dataplane.daemon <lab>

Started detached (own session) by `up`. It reads the lab's model from the state directory,
writes its pid, binds every queue in the fabric namespace, then signals readiness with the
`ready` file. Every second it expires idle conntrack entries, closes a due flow-log interval and
rewrites `health.json`; between packet batches it answers the control socket (live changes).
SIGTERM/SIGINT stop it; with no engine the hooks drop everything (fail closed).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

from emulator.control.api import LabApi
from emulator.control.nacl_ops import NaclOps
from emulator.control.server import ControlServer
from emulator.dataplane.kernel_conntrack import KernelConntrack
from emulator.dataplane.nfqueue import QueueServer, public_sources
from emulator.engine.firewall import EniFirewall, build_firewalls
from emulator.engine.naclstate import NaclState
from emulator.engine.offload import Offloads
from emulator.lab import state
from emulator.plan import build_plan

HEALTH_PERIOD = 1.0
log = logging.getLogger("sgemu.engine")


def write_health(lab: str, started: float, firewalls: dict[str, EniFirewall], server: QueueServer) -> None:
    health = {
        "pid": os.getpid(), "started": started, "updated": time.time(), "engine_errors": server.errors,
        "gso": server.gso, "offloaded_flows": server.offloaded,
        "enis": {name: {"counters": dict(fw.counters), "flows": len(fw.table)}
                 for name, fw in firewalls.items()},
    }
    path = state.paths(lab).health
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(health))
    os.replace(tmp, path)


def serve(lab: str) -> None:
    paths = state.paths(lab)
    paths.engine_pid.write_text(f"{os.getpid()}\n")
    started = time.time()
    topology = state.load_topology(lab)
    sg_state, firewalls = build_firewalls(topology)
    now = time.monotonic()
    live = LabApi(lab, topology, sg_state, firewalls, now, time.time() - now, paths.flowlogs,
                   lambda current: state.save_topology(lab, current))
    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    plan = build_plan(topology)
    nacls = NaclState(topology)
    offloads = Offloads(topology, firewalls, nacls.gates) if topology.options.offload else None
    kernel = KernelConntrack(plan.fabric.name) if offloads is not None else None

    def sync_offloads(now: float) -> None:
        if offloads is not None and kernel is not None:
            # Offloaded traffic refreshes its entries; what expired or was recalled is released.
            for flow in offloads.sync(kernel.current(offloads.offered()), now, live.flowlog.record_bulk):
                kernel.release(flow)

    def recall_offloads() -> None:
        """A NACL changed: every offloaded flow meets the engine again before the change is acknowledged."""
        if offloads is not None and offloads.recall():
            sync_offloads(time.monotonic())

    NaclOps(live, nacls, sg_state, topology, recall_offloads).install()
    server = QueueServer(plan, firewalls, public_sources(topology), observe=live.observe, offloads=offloads,
                         nacls=nacls)
    control = ControlServer(paths.control, lambda op, args: live.handle(op, args, time.monotonic()),
                            server.register, server.unregister)
    try:
        write_health(lab, started, firewalls, server)
        paths.ready.write_text(f"{os.getpid()}\n")
        while not stopping:
            server.serve(HEALTH_PERIOD)
            now = time.monotonic()
            # Before expiry, so what expires anyway is released before another packet is served.
            sync_offloads(now)
            for firewall in firewalls.values():
                firewall.expire(now)
            live.tick(now)
            write_health(lab, started, firewalls, server)
    finally:
        control.close()
        server.close()
        if kernel is not None:
            kernel.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m emulator.dataplane.daemon LAB", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    serve(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
