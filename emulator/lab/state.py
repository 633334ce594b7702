"""What a lab created, recorded under /run/sgemu/<lab>/ BEFORE each object is created,
so `down` can clean up after a crash mid-`up`, a kill -9, or without the topology file.

Files in the state directory (root only, 0700):
  state.json       this record
  topology.pickle  the lab's current model, for `status` without the file; the engine rewrites it
                   after each live change (the topology file never changes)
  topology.up.pickle  the model as `up` built it: the engine starts from it and replays the journal
  journal.jsonl, journal.commit  every acknowledged live change (emulator/dataplane/journal.py)
  journal.base     once the journal was compacted: the model with the changes it folded in, which a
                   restarted engine starts from instead of topology.up.pickle
  conntrack.snapshot  the engine's connection tables, for a restarted engine (dataplane/tables.py)
  supervisor.json  the supervisor's account: restarts, the last reason (emulator/lab/supervisor.py)
  engine.fatal     why the engine refused to start (a damaged journal): the lab stays closed
  engine.pid       written by the daemon itself as its first act
  ready            written by the daemon once every queue is bound
  health.json      rewritten by the daemon every second (pid, start time, counters)
  control.sock     the engine's control socket (live changes, tables, flow logs), root only
  flowlogs.log     flow-log records (default format), appended as each interval closes
  logs/            daemon, service and DNS (dns-vpc.log, dns-internet.log) logs
  ca/              the lab's certificate authority (ca.pem, ca.key) and the https certificates it issued
  ftp/<instance>/  what that instance's ftp service shares, read-only
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from emulator import paths as host
from emulator.errors import LabError
from emulator.model import Topology
from emulator.paths import LabPaths, paths


@dataclass
class LabState:
    lab: str
    marker: str
    namespaces: list[str] = field(default_factory=list)
    netns_dirs: list[str] = field(default_factory=list)     # /etc/netns/<ns> we created
    pids: dict[str, int] = field(default_factory=dict)      # role ("engine", "services:web") -> pid
    frontend: str | None = None                              # iptables front end used for the hooks
    source: str = ""                                         # the topology file, for display

    @property
    def paths(self) -> LabPaths:
        return paths(self.lab)

    def save(self) -> None:
        tmp = self.paths.state.with_suffix(".tmp")
        with private(tmp, "w") as f:
            f.write(json.dumps(asdict(self), indent=1))
        os.replace(tmp, self.paths.state)

    def add_namespace(self, name: str) -> None:
        self.add_namespaces([name])

    def add_namespaces(self, names: list[str]) -> None:
        """Several at once, one write (a lab of 1000 instances: not 1000 rewrites of a growing file)."""
        self.namespaces += names
        self.save()

    def add_netns_dir(self, path: Path) -> None:
        self.add_netns_dirs([path])

    def add_netns_dirs(self, found: list[Path]) -> None:
        self.netns_dirs += [str(p) for p in found]
        self.save()

    def add_pid(self, role: str, pid: int) -> None:
        self.add_pids({role: pid})

    def add_pids(self, pids: dict[str, int]) -> None:
        self.pids.update(pids)
        self.save()


def private(path: Path, mode: str) -> IO:
    """Open for writing ("w"/"wb") or appending ("ab"), created 0600 whatever the umask:
    state files and logs are root's alone."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    return open(os.open(path, flags, 0o600), mode)


def create(lab: str, marker: str, source: str, topology: Topology) -> LabState:
    """A fresh state directory (0700, files 0600); a LabError when it exists or cannot be made."""
    root = paths(lab).root
    try:
        host.RUN_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.mkdir(mode=0o700)
    except FileExistsError:
        raise LabError(f"lab {lab!r} is already running (its state {root} exists); "
                       f"run `sgemu down --lab {lab}` first") from None
    except OSError as exc:
        raise LabError(f"cannot create the state directory {root}: {exc.strerror}; sgemu needs a "
                       f"writable {host.RUN_DIR} (or set SGEMU_RUN_DIR to a directory root can write)") from None
    try:
        root.chmod(0o700)                    # mkdir's mode is cut by the umask, never widened
        (root / "logs").mkdir(mode=0o700)
        for where in (paths(lab).topology, paths(lab).topology_at_up):
            with private(where, "wb") as f:
                pickle.dump(topology, f)
        state = LabState(lab, marker, source=source)
        state.save()
    except OSError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise LabError(f"cannot write the lab's state in {root}: {exc.strerror}") from None
    return state


def load(lab: str) -> LabState | None:
    try:
        return LabState(**json.loads(paths(lab).state.read_text()))
    except FileNotFoundError:
        return None


def load_topology(lab: str) -> Topology:
    with open(paths(lab).topology, "rb") as f:
        return pickle.load(f)


def load_topology_at_up(lab: str) -> Topology:
    """The model as `up` built it (what the journal of live changes applies to)."""
    at_up = paths(lab).topology_at_up
    with open(at_up if at_up.exists() else paths(lab).topology, "rb") as f:
        return pickle.load(f)


def save_topology(lab: str, topology: Topology) -> None:
    """Replace the recorded model (the engine does after each live change), atomically."""
    path = paths(lab).topology
    tmp = path.with_suffix(".tmp")
    with private(tmp, "wb") as f:
        pickle.dump(topology, f)
    os.replace(tmp, path)


def recorded_labs() -> list[str]:
    if not host.RUN_DIR.is_dir():
        return []
    return sorted(p.name for p in host.RUN_DIR.iterdir() if (p / "state.json").is_file())


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def read_health(lab: str) -> dict | None:
    try:
        return json.loads(paths(lab).health.read_text())
    except (FileNotFoundError, ValueError):
        return None
