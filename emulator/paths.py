"""Every path sgemu reads or writes on the host, in one place (pure path arithmetic, no I/O).

A lab's state directory /run/sgemu/<lab>/ (root only, 0700) holds what `lab/state.py` describes;
/etc/netns/<namespace>/ holds the files `ip netns exec` binds into a lab namespace (hosts, ssh).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

RUN_DIR = Path(os.environ.get("SGEMU_RUN_DIR", "/run/sgemu"))
NETNS_ETC = Path("/etc/netns")


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def topology(self) -> Path:
        return self.root / "topology.pickle"

    @property
    def engine_pid(self) -> Path:
        return self.root / "engine.pid"

    @property
    def ready(self) -> Path:
        return self.root / "ready"

    @property
    def health(self) -> Path:
        return self.root / "health.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def control(self) -> Path:
        return self.root / "control.sock"

    @property
    def flowlogs(self) -> Path:
        return self.root / "flowlogs.log"

    @property
    def topology_at_up(self) -> Path:
        """The model as `up` built it: a restarted engine replays the journal on top of it."""
        return self.root / "topology.up.pickle"

    @property
    def journal(self) -> Path:
        return self.root / "journal.jsonl"

    @property
    def journal_commit(self) -> Path:
        return self.root / "journal.commit"

    @property
    def journal_base(self) -> Path:
        """The replay base a compacted journal continues from (the model with its changes applied)."""
        return self.root / "journal.base"

    @property
    def tables(self) -> Path:
        """The engine's connection tables, snapshotted every second for a restarted engine."""
        return self.root / "conntrack.snapshot"

    @property
    def supervisor(self) -> Path:
        """The supervisor's account: restarts, the last reason, whether it gave up."""
        return self.root / "supervisor.json"

    @property
    def engine_fatal(self) -> Path:
        """Why the engine refused to start (a restart would not help), for status."""
        return self.root / "engine.fatal"

    @property
    def ssh(self) -> Path:
        return self.root / "ssh"

    @property
    def ca(self) -> Path:
        """The lab's certificate authority and the certificates it issued (instance.pem/.key)."""
        return self.root / "ca"

    @property
    def ftp(self) -> Path:
        """What each ftp service shares, read-only: ftp/<instance>/."""
        return self.root / "ftp"


def paths(lab: str) -> LabPaths:
    return LabPaths(RUN_DIR / lab)
