"""A long-lived client inside a lab node, for tests that hold a connection open across SG changes."""
from __future__ import annotations

import queue
import subprocess
import threading


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
