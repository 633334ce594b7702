"""A long-lived client inside a lab node, for tests that hold a connection open across SG changes."""
from __future__ import annotations

import queue
import subprocess
import threading
import time

from emulator.lab import state


class Session:
    """Write a line, wait for its answer line (None when nothing comes back in time)."""

    def __init__(self, argv: list[str]):
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line.strip())

    def ask(self, line: str, wait: float = 3.0) -> str | None:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        try:
            return self._lines.get(timeout=wait)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


# One line per input line on ONE connection: skips the banner, prints each echo (or FAILED).
LINE_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)
f = s.makefile("rb")
f.readline()
for line in sys.stdin:
    s.sendall(line.encode())
    try:
        print(f.readline().decode().strip() or "FAILED", flush=True)
    except OSError:
        print("FAILED", flush=True)
"""


def health(lab: str) -> dict:
    """The next health.json the engine writes (once a second)."""
    now = time.time()
    deadline = now + 5
    while time.time() < deadline:
        current = state.read_health(lab) or {}
        if current.get("updated", 0) > now:
            return current
        time.sleep(0.1)
    raise AssertionError("the engine wrote no health update")
