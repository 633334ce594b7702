"""The probe's attempt, run inside the source namespace: prints one outcome word or `error <text>`.

    python -m emulator.guest.attempt tcp|udp HOST PORT TIMEOUT

TCP connects a socket; UDP sends on a connected socket and waits for an answer (an ICMP
port-unreachable surfaces as ECONNREFUSED: `refused`). Standard library only.
"""
from __future__ import annotations

import socket
import sys


def attempt(proto: str, host: str, port: int, timeout: float) -> str:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            if proto == "udp":
                sock.send(b"sgemu probe\n")
                sock.recv(65535)
                return "reply"
            return "open"
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except OSError as exc:
            return f"error {exc.strerror or exc}"


if __name__ == "__main__":
    print(attempt(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
