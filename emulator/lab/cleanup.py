"""Tear a lab down from its recorded state alone (no topology file, engine maybe dead).

Removes only what the state records AND our naming confirms: namespaces named
`sgemu-<lab>-*` whose interfaces all carry the lab's ifalias marker, /etc/netns/<such ns>,
processes inside those namespaces, and the supervisor and engine daemon of that lab. Idempotent.
Without a state directory (deleted while the lab ran), the record is rebuilt from names and markers.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from emulator.paths import NETNS_ETC
from emulator.plan import PREFIX
from emulator.plan import marker as plan_marker

from . import netns, processes
from .state import LabState
from .supervisor import ENGINE_MODULE, SUPERVISOR_MODULE


def is_engine(pid: int, lab: str) -> bool:
    """The pid is this lab's engine (and not a recycled pid of something else)."""
    argv = processes.cmdline(pid)
    return ENGINE_MODULE in argv and lab in argv


def is_supervisor(pid: int, lab: str) -> bool:
    argv = processes.cmdline(pid)
    return SUPERVISOR_MODULE in argv and lab in argv


def engine_pids(lab: str) -> list[int]:
    """Every running engine of this lab, found by its command line (even one not yet recorded)."""
    return processes.running([ENGINE_MODULE, lab])


def supervisor_pids(lab: str) -> list[int]:
    """Every supervisor of this lab, found by its command line (also one of a crashed lab)."""
    return processes.running([SUPERVISOR_MODULE, lab])


def recovered(lab: str) -> LabState:
    """A record rebuilt from names and markers alone, for a lab whose state directory is gone:
    its namespaces (only those whose interfaces all carry the lab's marker) and their /etc/netns."""
    marker = plan_marker(lab)
    found = [ns for ns in sorted(netns.namespaces()) if ours(ns, lab, marker)]
    return LabState(lab, marker, namespaces=found, netns_dirs=[str(NETNS_ETC / ns) for ns in found])


def ours(ns: str, lab: str, marker: str) -> bool:
    """Named like our lab, and every interface but lo carries the lab's marker."""
    if not ns.startswith(f"{PREFIX}{lab}-"):
        return False
    return all(link.get("ifalias") == marker for link in netns.links(ns) if link.get("ifname") != "lo")


def teardown(record: LabState) -> list[str]:
    """Remove everything the record names and our naming confirms; return what was skipped."""
    skipped: list[str] = []
    present = netns.namespaces()
    mine = [ns for ns in record.namespaces if ns in present and ours(ns, record.lab, record.marker)]
    skipped += [f"namespace {ns} (not marked {record.marker!r})" for ns in record.namespaces
                if ns in present and ns not in mine]
    # The supervisor first, or it would restart the engine being stopped.
    processes.stop(supervisor_pids(record.lab))
    engines = engine_pids(record.lab)
    # Processes left in our namespaces would keep them (and their veths) alive after deletion.
    processes.stop(engines + [p for found in netns.pids_in(mine).values() for p in found])
    for ns in mine:
        netns.delete_namespace(ns)
    for path in map(Path, record.netns_dirs):
        if path.parent == NETNS_ETC and path.name.startswith(f"{PREFIX}{record.lab}-"):
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(record.paths.root, ignore_errors=True)
    return skipped
