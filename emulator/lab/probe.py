"""A real connection attempt from inside a lab node: `open`, `refused`, `timeout` or `reply`.

TCP connects a socket; UDP sends on a connected socket and waits for an answer (an ICMP
port-unreachable surfaces as ECONNREFUSED: `refused`); ICMP runs `ping -c1`. The attempt runs
in the source's namespace through `ip netns exec`, like a user's own client would.
"""
from __future__ import annotations

import subprocess
import sys
from ipaddress import ip_address

from emulator.errors import LabError
from .lab import exec_argv, lab_plan

OUTCOMES = ("open", "refused", "timeout", "reply")
EXIT_STATUS = {"open": 0, "reply": 0, "refused": 3, "timeout": 4}   # `sgemu probe`, per CONTRACT.md

# Runs inside the source namespace; prints one outcome word or `error <text>`.
_SOCKET_ATTEMPT = r"""
import socket, sys
proto, host, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(family, kind)
s.settimeout(timeout)
try:
    s.connect((host, port))
    if proto == "udp":
        s.send(b"sgemu probe\n")
        s.recv(65535)
        print("reply")
    else:
        print("open")
except ConnectionRefusedError:
    print("refused")
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as e:
    print("error", e.strerror or e)
"""


def resolve(lab: str, src: str, dst: str, ipv6: bool = False) -> str:
    """DST as SRC would address it: a literal address, or a node name seen from SRC
    (private IP inside the VPC; public IP or IPv6 from the internet)."""
    plan = lab_plan(lab)
    nodes = {ns.node: ns for ns in plan.nodes}
    if src not in nodes:
        raise LabError(f"lab {lab!r} has no node {src!r} (nodes: {', '.join(nodes)})")
    try:
        return str(ip_address(dst))
    except ValueError:
        pass
    if dst not in nodes:
        raise LabError(f"lab {lab!r} has no node {dst!r} (nodes: {', '.join(nodes)})")
    family = 6 if ipv6 else 4
    address = plan.address(src, dst, family)
    if address is None:
        if plan.address(src, src, family) is None:
            raise LabError(f"{src} has no IPv{family} address")
        where = "inside the VPC" if nodes[src].role == "instance" else "from the internet"
        raise LabError(f"{dst} has no IPv{family} address reachable {where} (from {src})")
    return address


def probe(lab: str, src: str, dst: str, port: int = 0, proto: str = "tcp", timeout: float = 2.0,
          ipv6: bool = False) -> str:
    address = resolve(lab, src, dst, ipv6)
    if proto == "icmp":
        argv = exec_argv(lab, src, ["ping", "-c1", "-n", f"-W{max(1, round(timeout))}", address])
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
        if result.returncode == 0:
            return "reply"
        if result.returncode == 1:
            return "timeout"
        raise LabError(f"ping from {src} to {address} failed: {result.stderr.strip() or result.stdout.strip()}")
    if proto not in ("tcp", "udp"):
        raise LabError(f"unknown protocol {proto!r}: use tcp, udp or icmp")
    if not 0 < port < 65536:
        raise LabError(f"{proto} needs a port between 1 and 65535 (--port)")
    argv = exec_argv(lab, src, [sys.executable, "-c", _SOCKET_ATTEMPT, proto, address, str(port), str(timeout)])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
    word = result.stdout.strip()
    if word in OUTCOMES:
        return word
    raise LabError(f"{proto} probe from {src} to {address}:{port} failed: "
                   f"{word.removeprefix('error ') or result.stderr.strip()}")
