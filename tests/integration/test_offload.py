"""Kernel offload on real namespaces: a bulk transfer takes the kernel fast path while the
engine's entry stays alive on kernel counters; an idle offloaded flow still expires (T11) and
its next packet is dropped; an untracked flow is offloaded too, and a revoke still cuts it at once
(it is pulled back before the revoke is acknowledged)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from emulator.control.api import permission
from emulator.control.client import request
from emulator.lab import lifecycle as labs
from emulator.topology import parse

from .session import LINE_CLIENT, Session, health

IDLE = 3                        # options.timeouts.tcp_established (emulator-defined, for speed)
PORT = 7000                     # the `tcp` service: a banner line, then echoes lines
IPERF_PORT = 5201
WARM_UP = ("w1", "w2", "w3", "w4", "w5", "w6")


def topology(name: str):
    """a, b in `pair` (all TCP from itself: tracked); w in `open` (7000 from anywhere, all egress:
    untracked at w's ENI)."""
    return parse({
        "name": name, "vpc": {"cidr": "10.0.0.0/16"},
        "subnets": [{"name": "s", "cidr": "10.0.1.0/24"}],
        "security_groups": [
            {"name": "pair", "ingress": [{"protocol": "tcp", "ports": "0-65535", "group": "pair"}]},
            {"name": "open", "ingress": [{"protocol": "tcp", "ports": PORT, "cidr": "0.0.0.0/0"}]}],
        "instances": [
            {"name": "a", "subnet": "s", "security_groups": ["pair"]},
            {"name": "b", "subnet": "s", "security_groups": ["pair"], "services": [{"type": "tcp", "port": PORT}]},
            {"name": "w", "subnet": "s", "security_groups": ["open"], "services": [{"type": "tcp", "port": PORT}]}],
        "options": {"timeouts": {"tcp_established": IDLE}},
    }, "test_offload").topology


@pytest.fixture
def lab(request_name: str = "it6-offload") -> Iterator[str]:
    labs.up(topology(request_name))
    try:
        yield request_name
    finally:
        labs.down(request_name)




def line_session(lab: str, node: str, host: str) -> Session:
    """A line client from NODE to HOST's line server."""
    return Session(labs.exec_argv(lab, node, [sys.executable, "-c", LINE_CLIENT, host, str(PORT)]))




def entry(lab: str, instance: str, port: int) -> dict | None:
    table = request(lab, "conntrack", instance=instance)[instance]
    return next((e for e in table if port in (e["local_port"], e["remote_port"])), None)


def test_a_bulk_transfer_runs_in_the_kernel_and_its_entry_outlives_the_idle_timeout(lab: str) -> None:
    b_ip = str(topology(lab).instance("b").private_ip)
    server = subprocess.Popen(labs.exec_argv(lab, "b", ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        client = subprocess.Popen(labs.exec_argv(lab, "a", ["iperf3", "-c", b_ip, "-p", str(IPERF_PORT),
                                                            "-t", str(2 * IDLE), "-J"]),
                                  stdout=subprocess.PIPE, text=True)
        time.sleep(IDLE + 1.5)          # past the idle timeout, the data never met the engine
        during = health(lab)
        data = entry(lab, "a", IPERF_PORT)
        result = json.loads(client.communicate(timeout=30)[0])
    finally:
        server.kill()
        server.wait()
    assert during["offloaded_flows"] >= 1, during
    assert data is not None and data["state"] == "ESTABLISHED" and data["tracked"], data
    received = result["end"]["sum_received"]["bytes"]
    assert received > 0
    # The kernel's counters reached the engine: its entry counts what went through the kernel.
    assert data["bytes_out"] > received // 4, (data, received)
    assert data["idle_left"] > 0
    time.sleep(1.5)                 # the next sync hands the last kernel counts to the flow log
    logs = request(lab, "flowlogs")
    logged = sum(int(r["bytes"]) for r in (*logs["records"], *logs["current"])
                 if r["eni"] == "a" and r["dstport"] == str(IPERF_PORT) and r["flow-direction"] == "egress")
    assert logged > received * 0.9, (logged, received)


def test_an_idle_offloaded_flow_expires_and_its_next_packet_is_dropped(lab: str) -> None:
    """T11 with offload: the rule is revoked, the busy flow lives on, idle past its timeout it dies."""
    session = line_session(lab, "a", "b")
    try:
        assert session.ask("one", wait=10) == "one"
        for word in WARM_UP:        # enough packets to be worth offloading
            assert session.ask(word) == word
        assert health(lab)["offloaded_flows"] == 1
        # Over the control socket: a CLI process may take longer to start than the flow may idle.
        request(lab, "revoke", sg="pair", direction="ingress", rules=[permission("tcp", "0-65535", group="pair")])
        for word in ("three", "four", "five"):        # busy: kernel counters keep it alive
            time.sleep(IDLE - 1.5)
            assert session.ask(word) == word
        time.sleep(IDLE + 2.5)
        assert session.ask("six") in (None, "FAILED")     # no answer: the packet was dropped
        assert health(lab)["offloaded_flows"] == 0
    finally:
        session.close()


def test_an_offloaded_untracked_flow_is_cut_by_a_revoke_at_its_next_packet(lab: str) -> None:
    """Untracked flows leave the engine too; the revoke is acknowledged only once they are back."""
    session = line_session(lab, "a", "w")
    try:
        assert session.ask("one", wait=10) == "one"
        for word in WARM_UP:        # as busy as the tracked flow that was offloaded
            assert session.ask(word) == word
        assert health(lab)["offloaded_flows"] == 1
        w = entry(lab, "w", PORT)
        assert w is not None and not w["tracked"]
        labs_cli(lab, "sg", "revoke-ingress", "open", "--protocol", "tcp", "--port", str(PORT),
                 "--cidr", "0.0.0.0/0")
        assert session.ask("three") in (None, "FAILED")   # no answer: cut at once
        assert health(lab)["recalled_flows"] == 1
    finally:
        session.close()


def labs_cli(lab: str, *args: str) -> None:
    words = 2 if args[0] == "sg" else 1
    result = subprocess.run([sys.executable, "-m", "emulator.cli", *args[:words], "--lab", lab, *args[words:]],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
