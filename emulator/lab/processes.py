"""Our processes on the host: found by command line, stopped with SIGTERM then SIGKILL, reaped.

One home for process control: the engine (lab/cleanup.py), the services inside instances
(lab/services.py) and anything else a lab starts go through here, so a pid that was reused by a
process that is not ours never gets a signal, and our own exited children never stay zombies.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

POLL = 0.05


def cmdline(pid: int) -> list[str]:
    """The process's argv ([] when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def running(markers: Iterable[str]) -> list[int]:
    """Every process whose argv contains all of `markers` (each as a whole argument)."""
    wanted = list(markers)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = cmdline(int(entry.name))
            if argv and all(m in argv for m in wanted):
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """True while `pid` runs; reaps it if it is our own exited child (or it would stay a zombie)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def signal_process(pid: int, sig: signal.Signals) -> None:
    """`sig` to the process, or to its whole group when it leads one (our services and engines
    start as session leaders, so helpers they forked go too)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(pids: Iterable[int], grace: float = 2.0) -> None:
    """SIGTERM, SIGKILL to what is still alive after `grace` seconds, then wait (as long again)
    until they are gone. Callers pass only pids they checked are theirs."""
    targets = [pid for pid in pids if alive(pid)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets:
            signal_process(pid, sig)
        deadline = time.monotonic() + grace
        while (targets := [pid for pid in targets if alive(pid)]) and time.monotonic() < deadline:
            time.sleep(POLL)
        if not targets:
            return
