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
    def ssh(self) -> Path:
        return self.root / "ssh"


def paths(lab: str) -> LabPaths:
    return LabPaths(RUN_DIR / lab)
