"""The lab's supervisor: keeps the engine daemon running until `sgemu down`.

    python -m emulator.lab.supervisor <lab> [--no-standby]

Started detached by `up`; it starts the engine as its child and, when the engine dies, starts it
again at once, then after a growing pause (BACKOFF, all well under 2 s) while it keeps dying.
A standby engine (imports done, waiting on its stdin) is kept ready once the engine enforces, so a
restart skips the interpreter's start-up (`options.standby: false`, passed as --no-standby, saves
that process: a restart then starts an engine cold). After MAX_IN_A_ROW restarts in a row (the engine never
stayed up STABLE seconds) it gives up: the lab stays closed and `status` says why. An engine that
refuses to start (exit code ENGINE_FATAL, e.g. a damaged journal) is not restarted at all.
While no engine runs the hooks drop every packet (no --queue-bypass): the lab is closed, never
open. SIGTERM (sent by `down`, which stops the supervisor before anything else) stops the engine
and then the supervisor. Its account is `supervisor.json` in the state directory.
"""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from emulator.paths import LabPaths, paths

ENGINE_MODULE = "emulator.dataplane.daemon"
SUPERVISOR_MODULE = "emulator.lab.supervisor"
NO_STANDBY = "--no-standby"
ENGINE_FATAL = 3                 # the engine's exit code for "do not restart me"
BACKOFF = (0.0, 0.1, 0.3, 0.6, 1.0)   # pause before the n-th restart in a row
MAX_IN_A_ROW = len(BACKOFF)
STABLE = 2.0                     # seconds up after which a death no longer counts as "in a row"
STOP_GRACE = 5.0


@dataclass
class Account:
    """What `status` and `doctor` show: the supervisor's state, restarts and the last reason."""

    pid: int
    state: str = "starting"       # starting | watching | restarting | gave up | stopped
    engine_pid: int | None = None
    restarts: int = 0
    in_a_row: int = 0
    last_reason: str | None = None
    last_restart: float | None = None      # wall-clock time
    gave_up: str | None = None             # why the lab stays closed
    history: list[dict[str, object]] = field(default_factory=list)   # the last few deaths

    def save(self, where: LabPaths) -> None:
        tmp = where.supervisor.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with open(fd, "w") as out:
            out.write(json.dumps(asdict(self)))
        os.replace(tmp, where.supervisor)


def read_account(where: LabPaths) -> dict | None:
    try:
        return json.loads(where.supervisor.read_text())
    except (FileNotFoundError, ValueError):
        return None


def death_reason(returncode: int, where: LabPaths) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    if returncode == ENGINE_FATAL:
        try:
            return where.engine_fatal.read_text().strip()
        except FileNotFoundError:
            return "the engine refused to start"
    return f"exited with status {returncode}"


class Supervisor:
    def __init__(self, lab: str, keep_standby: bool = True):
        self.lab = lab
        self.keep_standby = keep_standby
        self.where = paths(lab)
        self.account = Account(os.getpid())
        self.engine: subprocess.Popen | None = None
        self.standby: subprocess.Popen | None = None
        self.stopping = False

    def _spawn(self, standby: bool) -> subprocess.Popen:
        log = os.open(self.where.logs / "engine.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            argv = [sys.executable, "-m", ENGINE_MODULE, self.lab, *(["--standby"] if standby else [])]
            return subprocess.Popen(argv, stdin=subprocess.PIPE if standby else subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT)
        finally:
            os.close(log)

    def _start(self) -> None:
        """The standby takes over if it is there, else a fresh engine starts."""
        engine, self.standby = self.standby, None
        if engine is not None and engine.poll() is None and engine.stdin is not None:
            try:
                engine.stdin.write(b"go\n")
                engine.stdin.close()
            except OSError:             # it died meanwhile
                engine = None
        else:
            engine = None
        self.engine = engine or self._spawn(standby=False)
        self.account.engine_pid = self.engine.pid

    def _watch(self) -> int:
        """Wait for the engine to exit (its return code); once it enforces, start a standby."""
        assert self.engine is not None
        pidfd = os.pidfd_open(self.engine.pid)
        try:
            while (returncode := self.engine.poll()) is None:
                wanted = self.keep_standby and self.standby is None and not self.stopping
                if wanted and self._was_ready():
                    self.standby = self._spawn(standby=True)
                    wanted = False
                select.select([pidfd], [], [], 0.05 if wanted else None)
            return returncode
        finally:
            os.close(pidfd)

    def _drop_standby(self) -> None:
        if self.standby is not None:
            self.standby.kill()
            self.standby.wait()
            self.standby = None

    def _was_ready(self) -> bool:
        """The engine just gone had bound its queues (`up` had seen the lab enforced)."""
        try:
            return self.engine is not None and int(self.where.ready.read_text()) == self.engine.pid
        except (FileNotFoundError, ValueError):
            return False

    def stop(self, signum: int, frame: object) -> None:
        self.stopping = True
        for process in (self.engine, self.standby):
            if process is not None and process.poll() is None:
                process.terminate()

    def run(self) -> int:
        self._start()
        self.account.state = "watching"
        self.account.save(self.where)
        while True:
            assert self.engine is not None
            started = time.monotonic()
            returncode = self._watch()
            if self.stopping:
                break
            reason = death_reason(returncode, self.where)
            print(f"supervisor: engine pid {self.engine.pid} {reason}", flush=True)
            account = self.account
            account.in_a_row = 1 if time.monotonic() - started > STABLE else account.in_a_row + 1
            account.last_reason = reason
            account.history = [*account.history[-9:], {"time": time.time(), "reason": reason}]
            never_ready = account.restarts == 0 and not self._was_ready()
            if returncode == ENGINE_FATAL or never_ready or account.in_a_row > MAX_IN_A_ROW:
                account.gave_up = reason if returncode == ENGINE_FATAL else \
                    f"the engine exited during start-up ({reason})" if never_ready else \
                    f"the engine died {MAX_IN_A_ROW + 1} times in a row (last: {reason})"
                self._drop_standby()
                account.state = "gave up"
                account.engine_pid = None
                account.save(self.where)
                print(f"supervisor: giving up: {account.gave_up}; the lab stays closed", flush=True)
                return 1
            account.state = "restarting"
            account.save(self.where)
            time.sleep(BACKOFF[account.in_a_row - 1])
            if self.stopping:
                break
            self._start()
            account.restarts += 1
            account.last_restart = time.time()
            account.state = "watching"
            account.save(self.where)
        self._drop_standby()
        self.account.state = "stopped"
        self.account.save(self.where)
        return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or args[1:] not in ([], [NO_STANDBY]):
        print(f"usage: python -m emulator.lab.supervisor LAB [{NO_STANDBY}]", file=sys.stderr)
        return 2
    supervisor = Supervisor(args[0], keep_standby=not args[1:])
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
