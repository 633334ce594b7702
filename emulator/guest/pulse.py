"""A client that watches a lab's enforcement from inside a namespace, for the restart tests and
the restart benchmark (standard library only).

    python -m emulator.guest.pulse HOST OPEN_PORT BLOCKED_PORT ECHO_PORT SECONDS

Every INTERVAL it starts a new TCP connection to OPEN_PORT (allowed: shows when the lab
enforces, i.e. decides packets) and one to BLOCKED_PORT (a listener no rule allows: must never
connect), each abandoned after ATTEMPT_TIMEOUT; all the while it holds one connection to an echo
server on ECHO_PORT and sends it a line every ECHO_PERIOD (must never break). Prints "ready" once
the held connection is up, then, after SECONDS, one JSON line: the CLOCK_MONOTONIC start and end
of every connection that succeeded (shared with the test's clock), the attempts, and the echo
connection's fate.
"""
from __future__ import annotations

import json
import selectors
import socket
import sys
import time

INTERVAL = 0.01
ATTEMPT_TIMEOUT = 0.5
ECHO_PERIOD = 0.05


class Pulse:
    def __init__(self, host: str, open_port: int, blocked_port: int, echo_port: int):
        self.host = host
        self.ports = {"open": open_port, "blocked": blocked_port}
        self.selector = selectors.DefaultSelector()
        self.pending: dict[socket.socket, tuple[str, float]] = {}
        self.succeeded: dict[str, list[tuple[float, float]]] = {"open": [], "blocked": []}
        self.attempts = {"open": 0, "blocked": 0}
        self.echo = socket.create_connection((host, echo_port), timeout=5)
        self.echo.recv(256)                      # the banner
        self.echo.setblocking(False)
        self.selector.register(self.echo, selectors.EVENT_READ, "echo")
        self.echo_sent = self.echo_answered = 0
        self.echo_broken: str | None = None
        self.echo_since = time.monotonic()      # when the oldest unanswered line was sent
        self.echo_max_stall = 0.0

    def attempt(self, kind: str, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex((self.host, self.ports[kind]))
        self.pending[sock] = (kind, now)
        self.attempts[kind] += 1
        self.selector.register(sock, selectors.EVENT_WRITE, "attempt")

    def finish(self, sock: socket.socket, now: float) -> None:
        kind, started = self.pending.pop(sock)
        self.selector.unregister(sock)
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            self.succeeded[kind].append((started, now))
        sock.close()

    def read_echo(self, now: float) -> None:
        try:
            data = self.echo.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            data, self.echo_broken = b"", str(exc)
        if not data:
            self.echo_broken = self.echo_broken or "closed by the peer"
            self.selector.unregister(self.echo)
            return
        answered = data.count(b"\n")
        if answered:
            self.echo_answered += answered
            self.echo_max_stall = max(self.echo_max_stall, now - self.echo_since)
            self.echo_since = now

    def run(self, seconds: float) -> dict[str, object]:
        start = time.monotonic()
        next_attempt = next_echo = start
        while (now := time.monotonic()) < start + seconds:
            if now >= next_attempt:
                self.attempt("open", now)
                self.attempt("blocked", now)
                next_attempt += INTERVAL
            if now >= next_echo and self.echo_broken is None:
                if self.echo_sent == self.echo_answered:
                    self.echo_since = now
                self.echo.send(f"{self.echo_sent}\n".encode())
                self.echo_sent += 1
                next_echo += ECHO_PERIOD
            for key, _ in self.selector.select(max(0.0, min(next_attempt, next_echo) - time.monotonic())):
                if key.data == "echo":
                    self.read_echo(time.monotonic())
                else:
                    # why the ignore below: only sockets are registered with this selector
                    self.finish(key.fileobj, time.monotonic())     # type: ignore[arg-type]
            for sock, (_, started) in list(self.pending.items()):
                if time.monotonic() - started > ATTEMPT_TIMEOUT:
                    self.selector.unregister(sock)
                    del self.pending[sock]
                    sock.close()
        return {"open": self.succeeded["open"], "blocked": self.succeeded["blocked"], "attempts": self.attempts,
                "echo_sent": self.echo_sent, "echo_answered": self.echo_answered,
                "echo_broken": self.echo_broken, "echo_max_stall": round(self.echo_max_stall, 3)}


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, open_port, blocked_port, echo_port, seconds = argv
    pulse = Pulse(host, int(open_port), int(blocked_port), int(echo_port))
    print("ready", flush=True)
    print(json.dumps(pulse.run(float(seconds))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
