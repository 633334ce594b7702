"""Live SG changes on a running lab, with real clients (ssh, keep-alive HTTP, UDP), through the CLI:
tracked flows survive a revoke until idle, untracked ones are cut at once (W6, W7, W9), new flows
see the change (W8, authorize), idle timeouts expire, set-sgs moves an instance, flow logs record
ACCEPT and REJECT, AWS error codes reach the user, and `down` removes the control socket."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from emulator.lab import lifecycle as labs
from emulator.model import Topology
from emulator.paths import paths
from emulator.testing.probe import probe
from emulator.topology import parse

from .session import Session

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def topology(file: str, name: str, **options: object) -> Topology:
    """A shipped topology under a test lab name (it4-*), with `options` merged in."""
    data = yaml.safe_load((TOPOLOGIES / file).read_text())
    data["name"] = name
    data.setdefault("options", {}).update(options)
    return parse(data, file).topology


class Lab:
    def __init__(self, topo: Topology):
        self.name = topo.name
        labs.up(topo)

    def sgemu(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The CLI verb in `args` against this lab (`--lab` goes right after the verb's words)."""
        words = 2 if args[0] in ("sg", "instance") else 1
        result = subprocess.run([sys.executable, "-m", "emulator.cli", *args[:words], "--lab", self.name,
                                 *args[words:]], capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, f"sgemu {' '.join(args)}: {result.stderr}"
        return result

    def probe(self, src: str, dst: str, port: int, proto: str = "tcp", timeout: float = 2.0) -> str:
        return probe(self.name, src, dst, port, proto, timeout)

    def session(self, node: str, argv: list[str]) -> Session:
        return Session(labs.exec_argv(self.name, node, argv))


# One HTTP/1.1 request per input line on ONE keep-alive connection; prints each status line.
HTTP_CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=2)
for _ in sys.stdin:
    s.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        while len(body) < length:
            body += s.recv(4096)
        print(head.split(b"\r\n")[0].decode(), flush=True)
    except (OSError, ConnectionError):
        print("FAILED", flush=True)
"""

# One datagram per input line on one connected UDP socket (a fixed source port); prints the echo.
UDP_CLIENT = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], int(sys.argv[2])))
for line in sys.stdin:
    s.send(line.strip().encode())
    try:
        print("echo " + s.recv(4096).decode().strip(), flush=True)
    except OSError:
        print("FAILED", flush=True)
"""


@pytest.fixture
def web_lab(request):
    """The web-server lab (W1-W11) under it4-<suffix>; options from the test's parametrisation."""
    suffix, options = getattr(request, "param", ("web", {}))
    running = Lab(topology("web-server.yaml", f"it4-{suffix}", **options))
    yield running
    labs.down(running.name)


def ssh_session(running: Lab) -> Session:
    # A real SSH login from "you" (203.0.113.10/32: narrow, so tracked), echoing each line back.
    return running.session("you", ["ssh", "-T", "web", "while read l; do echo got $l; done"])


def test_w7_revoke_during_ssh_session_it_survives_new_logins_time_out(web_lab: Lab) -> None:
    session = ssh_session(web_lab)
    try:
        assert session.ask("a", wait=15) == "got a"
        out = web_lab.sgemu("sg", "revoke-ingress", "web-sg", "--protocol", "tcp", "--port", "22",
                            "--cidr", "203.0.113.10/32")
        assert out.stdout.startswith("sgr-") and "revoked" in out.stdout
        assert session.ask("b") == "got b"
        assert web_lab.probe("you", "web", 22) == "timeout"
        assert session.ask("c") == "got c"
    finally:
        session.close()


def test_w6_revoke_of_the_rule_behind_an_untracked_flow_cuts_it_at_once(web_lab: Lab) -> None:
    client = web_lab.session("stranger", [sys.executable, "-c", HTTP_CLIENT, "web"])
    try:
        assert client.ask("1") == "HTTP/1.1 200 OK"
        tables = web_lab.sgemu("conntrack", "web", "--json").stdout
        assert '"tracked": false' in tables and '"local_port": 80' in tables
        web_lab.sgemu("sg", "revoke-ingress", "web-sg", "--protocol", "tcp", "--port", "80", "--cidr", "0.0.0.0/0")
        assert client.ask("2") == "FAILED"
    finally:
        client.close()


def test_w9_revoking_the_all_open_egress_breaks_open_untracked_flows_w8_new_ones_work(web_lab: Lab) -> None:
    client = web_lab.session("stranger", [sys.executable, "-c", HTTP_CLIENT, "web"])
    try:
        assert client.ask("1") == "HTTP/1.1 200 OK"
        web_lab.sgemu("sg", "revoke-egress", "web-sg", "--protocol", "-1", "--cidr", "0.0.0.0/0")
        assert client.ask("2") == "FAILED"                       # W9: its replies had only that rule
        assert web_lab.probe("stranger", "web", 80) == "open"    # W8: new flows are tracked now
        curl = subprocess.run(labs.exec_argv(web_lab.name, "you", ["curl", "-s", "-m", "3", "http://web/"]),
                              capture_output=True, text=True, timeout=10)
        assert curl.returncode == 0 and "web" in curl.stdout
    finally:
        client.close()


def test_authorize_opens_a_port_and_errors_have_aws_codes(web_lab: Lab) -> None:
    assert web_lab.probe("you", "web", 8080) == "timeout"
    out = web_lab.sgemu("sg", "authorize-ingress", "web-sg", "--protocol", "tcp", "--port", "8080",
                        "--cidr", "0.0.0.0/0", "--description", "alt http")
    assert out.stdout.count("\n") == 1 and "authorized" in out.stdout
    assert web_lab.probe("you", "web", 8080) == "open"
    refusals = {
        "InvalidPermission.Duplicate": ("sg", "authorize-ingress", "web-sg", "--protocol", "tcp", "--port", "8080",
                                        "--cidr", "0.0.0.0/0"),
        "InvalidPermission.NotFound": ("sg", "revoke-ingress", "web-sg", "--protocol", "tcp", "--port", "9",
                                       "--cidr", "0.0.0.0/0"),
        "InvalidGroup.NotFound": ("sg", "authorize-egress", "no-such-sg", "--protocol", "tcp", "--port", "1",
                                  "--cidr", "0.0.0.0/0"),
        "InvalidInstanceID.NotFound": ("instance", "set-sgs", "nobody", "web-sg"),
        "InvalidParameterValue": ("instance", "set-conntrack", "web", "--udp", "5"),
    }
    for code, args in refusals.items():
        result = web_lab.sgemu(*args, check=False)
        assert result.returncode == 1, (args, result)
        assert result.stderr.startswith(f"sgemu: {code}: ") and result.stderr.count("\n") == 1, result.stderr
    exported = yaml.safe_load(web_lab.sgemu("export", "--format", "yaml").stdout)
    ports = [r.get("ports") for r in exported["security_groups"][0]["ingress"]]
    assert ports == [22, 80, 80, 443, 443, 8080]


@pytest.mark.parametrize("web_lab", [("idle", {"timeouts": {"tcp_established": 4}, "offload": False}),
                                     ("idle-offload", {"timeouts": {"tcp_established": 4}})],
                         ids=["engine-path", "kernel-offload"], indirect=True)
def test_a_tracked_flow_outlives_its_rule_until_its_idle_timeout(web_lab: Lab) -> None:
    # options.timeouts sets the established timeout to 4 s for speed (AWS's minimum is 60 s);
    # with offload the busy flow's packets pass in the kernel, and must still idle out.
    session = ssh_session(web_lab)
    try:
        assert session.ask("a", wait=15) == "got a"
        web_lab.sgemu("sg", "revoke-ingress", "web-sg", "--protocol", "tcp", "--port", "22",
                      "--cidr", "203.0.113.10/32")
        for word in ("b", "c", "d"):          # busy: every packet pushes the idle deadline
            time.sleep(2)
            assert session.ask(word) == f"got {word}"
        time.sleep(6)                         # idle past 4 s: the entry expires, the rule is gone
        assert session.ask("e", wait=4) is None
    finally:
        session.close()


def test_udp_flow_expires_after_the_aws_udp_timeout() -> None:
    """The real AWS default (UdpTimeout 30 s): a single request/response flow outlives its rule
    while it is younger than 30 s idle, not longer (a second exchange would make it a 180 s stream)."""
    running = Lab(_udp_topology())
    clients = [running.session("a", [sys.executable, "-c", UDP_CLIENT, "b", "53"]) for _ in range(2)]
    try:
        assert [c.ask("one") for c in clients] == ["echo one", "echo one"]
        running.sgemu("sg", "revoke-ingress", "b-sg", "--protocol", "udp", "--port", "53", "--group", "a-sg")
        assert running.probe("a", "b", 53, "udp") == "timeout"      # a new flow (another port)
        time.sleep(20)
        assert clients[0].ask("two") == "echo two"                  # tracked, idle 20 s < 30 s
        time.sleep(13)
        assert clients[1].ask("two") == "FAILED"                    # idle 33 s > 30 s: no echo
    finally:
        for client in clients:
            client.close()
        labs.down(running.name)


def _udp_topology() -> Topology:
    return parse({
        "name": "it4-udp", "vpc": {"cidr": "10.0.0.0/16"}, "subnets": [{"name": "s", "cidr": "10.0.1.0/24"}],
        "security_groups": [
            {"name": "a-sg", "ingress": []},
            # b answers only because the flow is tracked: b-sg has no outbound rules (P5).
            {"name": "b-sg", "ingress": [{"protocol": "udp", "ports": 53, "group": "a-sg"}], "egress": []},
        ],
        "instances": [{"name": "a", "subnet": "s", "security_groups": ["a-sg"]},
                      {"name": "b", "subnet": "s", "security_groups": ["b-sg"],
                       "services": [{"type": "udp-echo", "port": 53}]}],
    }, "udp test").topology


@pytest.mark.parametrize("web_lab", [("flow", {"flow_log_interval": 2})], indirect=True)
def test_flow_logs_record_accepted_and_rejected_connects(web_lab: Lab) -> None:
    assert web_lab.probe("stranger", "web", 22, timeout=3.5) == "timeout"    # SYN at 0, 1 and 3 s
    assert web_lab.probe("you", "web", 22) == "open"
    lines = web_lab.sgemu("flowlogs").stdout.splitlines()                    # the open interval too
    records = [line.split() for line in lines]
    assert all(len(r) == 14 and r[0] == "2" and r[13] == "OK" for r in records)
    rejected = [r for r in records if r[3] == "198.51.100.7" and r[6] == "22"]
    assert {r[12] for r in rejected} == {"REJECT"}
    assert sum(int(r[8]) for r in rejected) >= 3                             # the SYN and its retransmits
    accepted = [r for r in records if r[3] == "203.0.113.10" and r[6] == "22"]
    replies = [r for r in records if r[4] == "203.0.113.10" and r[5] == "22"]
    assert {r[12] for r in accepted + replies} == {"ACCEPT"} and accepted and replies
    custom = web_lab.sgemu("flowlogs", "--format", "${srcaddr} ${tcp-flags} ${flow-direction} ${reject-reason}")
    assert "198.51.100.7 2 ingress ENI_SG_RULES_MISMATCH" in custom.stdout.splitlines()
    time.sleep(3)                                                            # a 2 s interval has closed
    logged = (Path("/run/sgemu") / web_lab.name / "flowlogs.log").read_text().splitlines()
    assert any(line.split()[3] == "198.51.100.7" and line.split()[12] == "REJECT" for line in logged)


def test_set_sgs_moves_an_instance_between_groups_and_membership_follows() -> None:
    running = Lab(topology("three-tier.yaml", "it4-move"))
    try:
        assert running.probe("alb", "db", 3306) == "timeout"                  # T6
        out = running.sgemu("instance", "set-sgs", "alb", "alb-sg", "app-sg")
        assert out.stdout.startswith("alb: sg-")
        assert running.probe("alb", "db", 3306) == "open"      # app-sg's egress, and db admits app-sg members
        [status] = json.loads(running.sgemu("status", "--json").stdout)
        assert next(n for n in status["nodes"] if n["name"] == "alb")["security_groups"] == ["alb-sg", "app-sg"]
        running.sgemu("instance", "set-sgs", "alb", "app-sg")
        assert running.probe("you", "alb", 80) == "timeout"                    # alb-sg's 80 is gone
    finally:
        labs.down(running.name)


def test_down_removes_the_control_socket_and_the_cli_says_the_lab_is_gone(web_lab: Lab) -> None:
    assert paths(web_lab.name).control.is_socket()
    labs.down(web_lab.name)
    assert not paths(web_lab.name).control.exists()
    result = web_lab.sgemu("conntrack", check=False)
    assert result.returncode == 1 and "no lab named" in result.stderr
