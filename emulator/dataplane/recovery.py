"""How an engine builds its lab, first or again: the model it starts from (the journal's replay
base, else the model at `up`), the live operations on it, the journal's changes replayed and the
connection tables restored. Files and engine state only, no kernel: the daemon adds the queues and
netlink around it, and unit tests run it as it is to prove a restart rebuilds the same lab.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from emulator.control.api import LabApi
from emulator.control.nacl_ops import NaclOps
from emulator.control.route_ops import Apply, RouteOps
from emulator.dataplane import tables
from emulator.dataplane.journal import Change, Journal
from emulator.engine.firewall import EniFirewall, SecurityGroupState, build_firewalls
from emulator.engine.naclstate import NaclState
from emulator.engine.offload import Offloads
from emulator.model import Topology
from emulator.paths import LabPaths

log = logging.getLogger("sgemu.engine")


@dataclass
class LiveLab:
    """One engine's lab state: what its operations change and its packet path reads."""
    topology: Topology              # the model it started from (before any replay)
    live: LabApi
    sgs: SecurityGroupState
    firewalls: dict[str, EniFirewall]
    nacls: NaclState
    offloads: Offloads | None


def journal_of(paths: LabPaths) -> Journal:
    return Journal(paths.journal, paths.journal_commit, paths.journal_base)


def starting_point(journal: Journal, at_up: Callable[[], Topology]) -> tuple[Topology, list[Change]]:
    """The model to build from and the changes to replay on it (JournalError when the files
    cannot be trusted)."""
    base, changes = journal.load()
    return (base if base is not None else at_up()), changes


def assemble(lab: str, topology: Topology, paths: LabPaths, persist: Callable[[Topology], None],
             apply_routes: Apply) -> LiveLab:
    """The lab's engine state from `topology`, every live operation installed (the journal may
    hold any of them)."""
    sgs, firewalls = build_firewalls(topology)
    now = time.monotonic()
    live = LabApi(lab, topology, sgs, firewalls, now, time.time() - now, paths.flowlogs, persist)
    nacls = NaclState(topology)
    offloads = Offloads(topology, firewalls, nacls.gates) if topology.options.offload else None
    NaclOps(live, nacls, sgs, topology).install()
    RouteOps(live, topology, apply_routes).install()
    return LiveLab(topology, live, sgs, firewalls, nacls, offloads)


def recover(lab: LiveLab, journal: Journal, changes: list[Change], paths: LabPaths,
            save: Callable[[Topology], None]) -> dict[str, int]:
    """Replay the changes (JournalError when one no longer applies), persist the model once, then
    restore the connection tables."""
    journal.replay(changes, lab.live, time.monotonic())
    if changes:
        save(lab.live.topology())
    flows = tables.load(paths.tables, lab.firewalls, time.monotonic())
    if changes or flows or journal.base:
        log.info("recovered: base with changes 1-%d, %d live changes replayed, %d flows restored",
                 journal.base, len(changes), flows)
    return {"replayed_changes": len(changes), "restored_flows": flows, "journal_base": journal.base}
