"""The engine daemon: one process per lab serving every ENI queue of that lab.

    python -m emulator.dataplane.daemon <lab>

Started detached (own session) by `up`. It reads the lab's model from the state directory,
writes its pid, binds every queue in the fabric namespace, then signals readiness with the
`ready` file. Every second it expires idle conntrack entries, closes a due flow-log interval and
rewrites `health.json`; between packet batches it answers the control socket (live changes).
SIGTERM/SIGINT stop it; with no engine the hooks drop everything (fail closed).

It survives itself (emulator/lab/supervisor.py restarts it): it starts from the model `up` built,
replays the journal of live changes (every mutating operation is journaled and fsynced before
its answer) and restores the connection tables snapshotted every second, all before it binds
a queue. A journal it cannot trust makes it exit ENGINE_FATAL with the reason in engine.fatal:
the supervisor leaves the lab closed.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

from emulator.control.server import ControlServer
from emulator.dataplane import tables
from emulator.dataplane.journal import JournalError, compact_if_due, journaled
from emulator.dataplane.kernel_conntrack import KernelConntrack
from emulator.dataplane.kernel_offload import KernelOffload
from emulator.dataplane.nfqueue import QueueServer, public_sources
from emulator.dataplane.recovery import assemble, journal_of, recover, starting_point
from emulator.engine.firewall import EniFirewall
from emulator.engine.gateway import GatewayPort, gateway_ports
from emulator.lab import netns, state
from emulator.lab.supervisor import ENGINE_FATAL
from emulator.model import Topology
from emulator.plan import build_plan
from emulator.plan.routing import route_changes

HEALTH_PERIOD = 1.0
log = logging.getLogger("sgemu.engine")


def write_health(lab: str, started: float, firewalls: dict[str, EniFirewall], server: QueueServer,
                 recovered: dict[str, int], recalled: int, gateways: dict[str, GatewayPort]) -> None:
    health = {
        "pid": os.getpid(), "started": started, "updated": time.time(), "engine_errors": server.errors,
        **recovered,
        "gso": server.gso, "offloaded_flows": server.offloaded, "recalled_flows": recalled,
        "enis": {**{name: {"counters": dict(fw.counters), "flows": len(fw.table)} for name, fw in firewalls.items()},
                 **{name: {"counters": dict(port.counters), "flows": 0} for name, port in gateways.items()}},
    }
    path = state.paths(lab).health
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(health))
    os.replace(tmp, path)


def process_age() -> float:
    """Seconds since this process started (/proc/self/stat field 22, clock ticks since boot)."""
    with open("/proc/self/stat") as stat:
        ticks = int(stat.read().rpartition(")")[2].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")


def apply_routes(fabric: str, before: Topology, after: Topology) -> None:
    """A live route change: the fabric's table routes of BEFORE become AFTER's. Routes replace in
    place; a route to remove may be gone already (a replay after a restart), which is fine."""
    changes = route_changes(build_plan(before).fabric.routes, build_plan(after).fabric.routes)
    netns.batch(fabric, [c for c in changes if c.startswith("route replace")])
    netns.batch(fabric, [c for c in changes if c.startswith("route del")], tolerate=True)


def serve(lab: str) -> None:
    paths = state.paths(lab)
    paths.engine_pid.write_text(f"{os.getpid()}\n")
    started = time.time()
    journal = journal_of(paths)
    persisting = False          # replay changes the model many times: persisted once, after it

    def persist(current: Topology) -> None:
        if persisting:
            state.save_topology(lab, current)

    stopping = False

    def stop(signum, frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        topology, changes = starting_point(journal, lambda: state.load_topology_at_up(lab))
        plan = build_plan(topology)
        lab_state = assemble(lab, topology, paths, persist,
                             lambda before, after: apply_routes(plan.fabric.name, before, after))
        recovered = recover(lab_state, journal, changes, paths, lambda model: state.save_topology(lab, model))
    except JournalError as exc:
        paths.engine_fatal.write_text(f"{exc}; the lab stays closed: `sgemu down --lab {lab}`\n")
        log.critical("%s", exc)
        raise SystemExit(ENGINE_FATAL) from None
    live, firewalls, nacls, offloads = lab_state.live, lab_state.firewalls, lab_state.nacls, lab_state.offloads
    persisting = True
    # Only now the fabric's netlink: an engine that refuses its journal touches nothing.
    kernel = KernelOffload(offloads, KernelConntrack(plan.fabric.name), live.flowlog.record_bulk) \
        if offloads is not None else None
    gateways = gateway_ports(topology, nacls)
    live.gateways = gateways
    server = QueueServer(plan, firewalls, public_sources(topology), observe=live.observe, offloads=offloads,
                         nacls=nacls, gateways=gateways)
    if kernel is not None:
        # Flows a dead engine had offloaded come back through the queues, where their restored
        # entries (or the rules) decide; this engine offers them again once they qualify.
        kernel.release_all()
        # From now on every change pulls back the offloaded flows it could alter before its answer.
        live.set_recall(kernel.recall)
    snapshots = tables.Snapshots(paths.tables, HEALTH_PERIOD)
    control = ControlServer(paths.control, journaled(live, journal, time.monotonic), server.register,
                            server.unregister)
    try:
        write_health(lab, started, firewalls, server, recovered, live.recalled, gateways)
        paths.ready.write_text(f"{os.getpid()}\n")
        log.info("enforcing: %d queues bound %.3f s after the process started", len(plan.enis), process_age())
        while not stopping:
            server.serve(HEALTH_PERIOD)
            now = time.monotonic()
            # Before expiry, so what expires anyway is released before another packet is served.
            if kernel is not None:
                kernel.sync(now)
            for firewall in firewalls.values():
                firewall.expire(now)
            live.tick(now)
            snapshots.tick(firewalls, now, time.monotonic)
            compact_if_due(journal, live.topology)
            write_health(lab, started, firewalls, server, recovered, live.recalled, gateways)
    finally:
        control.close()
        server.close()
        journal.close()
        if kernel is not None:
            kernel.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[1:] not in ([], ["--standby"]):
        print("usage: python -m emulator.dataplane.daemon LAB [--standby]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # A standby (kept by the supervisor) has imported everything; it serves once told to.
    if args[1:] and not sys.stdin.buffer.readline():
        return 0            # the supervisor is gone, or dropped it
    serve(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
