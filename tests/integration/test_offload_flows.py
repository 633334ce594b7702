"""Offload of UDP and untracked flows on real namespaces, with real UDP clients: an untracked UDP
flow runs in the kernel, and a revoke (acknowledged only after the flow was pulled back) cuts it
at its next datagram; an idle offloaded UDP flow still expires on its timeout; ping's echo flow
leaves the engine too."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from emulator.control.client import request
from emulator.lab import lifecycle as labs
from emulator.topology import parse

from .session import Session, health

OPEN_PORT, PAIR_PORT = 5000, 5001
STREAM_IDLE = 60                # the shortest UDP stream timeout AWS allows (an echo flow is a stream)
EXCHANGES = 12                  # request + reply each: past the engine's offer threshold


def topology(name: str):
    """a talks to u (udp-echo 5000 open to anywhere, all egress: untracked at u) and to b
    (udp-echo 5001 from its own SG: tracked)."""
    return parse({
        "name": name, "vpc": {"cidr": "10.0.0.0/16"},
        "subnets": [{"name": "s", "cidr": "10.0.1.0/24"}],
        "security_groups": [
            {"name": "pair", "ingress": [{"protocol": "udp", "ports": PAIR_PORT, "group": "pair"},
                                         {"protocol": "icmp", "group": "pair"}]},
            {"name": "open", "ingress": [{"protocol": "udp", "ports": OPEN_PORT, "cidr": "0.0.0.0/0"}]}],
        "instances": [
            {"name": "a", "subnet": "s", "security_groups": ["pair"]},
            {"name": "b", "subnet": "s", "security_groups": ["pair"],
             "services": [{"type": "udp-echo", "port": PAIR_PORT}]},
            {"name": "u", "subnet": "s", "security_groups": ["open"],
             "services": [{"type": "udp-echo", "port": OPEN_PORT}]}],
        "options": {"timeouts": {"udp_stream": STREAM_IDLE}},
    }, "test_offload_flows").topology


@pytest.fixture
def lab() -> Iterator[str]:
    name = "it16-offload"
    labs.up(topology(name))
    try:
        yield name
    finally:
        labs.down(name)


# One datagram per input line from ONE socket (one flow); prints the echo or FAILED.
UDP_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
for line in sys.stdin:
    s.send(line.strip().encode())
    try:
        print(s.recv(2048).decode() or "FAILED", flush=True)
    except OSError:
        print("FAILED", flush=True)
"""


def udp_session(lab: str, host: str, port: int) -> Session:
    ip = str(topology(lab).instance(host).private_ip)
    return Session(labs.exec_argv(lab, "a", [sys.executable, "-c", UDP_CLIENT, ip, str(port)]))




def decided(lab: str, eni: str) -> int:
    counters = health(lab)["enis"][eni]["counters"]
    return int(counters["accepted"]) + int(counters["dropped"])


def entry(lab: str, instance: str, port: int) -> dict:
    table = request(lab, "conntrack", instance=instance)[instance]
    return next(e for e in table if port in (e["local_port"], e["remote_port"]))


def warm(session: Session, word: str = "w") -> None:
    for n in range(EXCHANGES):
        assert session.ask(f"{word}{n}", wait=10 if n == 0 else 3) == f"{word}{n}"


def sgemu(lab: str, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "emulator.cli", "sg", *args, "--lab", lab],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_an_untracked_udp_flow_runs_in_the_kernel_and_a_revoke_still_cuts_it_at_its_next_datagram(lab: str) -> None:
    session = udp_session(lab, "u", OPEN_PORT)
    try:
        warm(session)
        assert health(lab)["offloaded_flows"] == 1
        assert not entry(lab, "u", OPEN_PORT)["tracked"]
        seen, counted = decided(lab, "u"), entry(lab, "u", OPEN_PORT)["packets_in"]
        for n in range(20):
            assert session.ask(f"k{n}") == f"k{n}"
        time.sleep(1.5)             # the next sync brings the kernel's counters
        # The engine decided (almost) none of them, yet its entry counts them all.
        assert decided(lab, "u") - seen <= 2
        assert entry(lab, "u", OPEN_PORT)["packets_in"] >= counted + 20
        sgemu(lab, "revoke-ingress", "open", "--protocol", "udp", "--port", str(OPEN_PORT), "--cidr", "0.0.0.0/0")
        assert session.ask("after") == "FAILED"         # cut at once: pulled back before the ack
        after = health(lab)
        assert after["recalled_flows"] == 1 and after["offloaded_flows"] == 0
    finally:
        session.close()


def test_an_idle_offloaded_udp_flow_expires_on_time_and_its_next_datagram_is_dropped(lab: str) -> None:
    """Tracked: a revoke leaves it running (in the kernel); idle past its (stream) timeout it dies."""
    session = udp_session(lab, "b", PAIR_PORT)
    try:
        warm(session)
        assert health(lab)["offloaded_flows"] == 1
        sgemu(lab, "revoke-ingress", "pair", "--protocol", "udp", "--port", str(PAIR_PORT), "--group", "pair")
        time.sleep(STREAM_IDLE / 2)
        assert session.ask("busy") == "busy"            # tracked: it survives the revoke, in the kernel
        assert health(lab)["offloaded_flows"] == 1
        time.sleep(STREAM_IDLE + 2.5)
        assert health(lab)["offloaded_flows"] == 0      # expired in the engine, released in the kernel
        assert session.ask("late") == "FAILED"
    finally:
        session.close()


def test_ping_echo_flow_leaves_the_engine(lab: str) -> None:
    b_ip = str(topology(lab).instance("b").private_ip)
    first = subprocess.run(labs.exec_argv(lab, "a", ["ping", "-c", "1", "-W", "5", b_ip]), capture_output=True)
    assert first.returncode == 0        # neighbours resolved: no echo waits on ARP below
    ping = subprocess.run(labs.exec_argv(lab, "a", ["ping", "-c", "30", "-i", "0.05", "-q", b_ip]),
                          capture_output=True, text=True, timeout=30)
    assert ping.returncode == 0 and " 0% packet loss" in ping.stdout, ping.stdout
    during = health(lab)
    assert during["offloaded_flows"] == 1
    # Only the first echo exchanges (and whatever was in flight) met the engine on a's ENI.
    assert during["enis"]["a"]["counters"]["accepted"] < 30, during["enis"]["a"]
