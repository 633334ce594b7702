"""Route tables, NAT gateways and the egress-only gateway with real clients: a private instance
reaches an internet host through the NAT gateway (the host's listener sees the gateway's Elastic
IP), nothing on the internet reaches the private instance or the gateway, a subnet without a route
and a blackhole route time out, IPv6 through the eigw goes out only."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.explain import explain
from emulator.lab import lifecycle as labs
from emulator.testing.probe import probe
from emulator.topology import parse

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, NFQUEUE)")]

NAT_FILE = Path(__file__).resolve().parents[2] / "topologies" / "three-tier-nat.yaml"
LAB = "it-rt-nat"
TIMEOUT = 1.5

# Accepts one connection on [::]:443 (IPv4 too), prints the peer's address, answers "hello".
LISTENER = """
import socket, sys
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 443)); s.listen(); s.settimeout(15)
print("listening", flush=True)
conn, peer = s.accept()
print(peer[0].removeprefix("::ffff:"), flush=True)
conn.sendall(b"hello\\n"); conn.close()
"""


def nat_doc() -> dict[str, Any]:
    data = yaml.safe_load(NAT_FILE.read_text())
    data["name"] = LAB
    return data


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    topology = parse(nat_doc(), str(NAT_FILE)).topology
    labs.up(topology)
    try:
        yield LAB
    finally:
        labs.down(LAB)


def peer_seen(lab: str, host: str, client: str, address: str) -> tuple[str, str]:
    """Start the listener on HOST, connect from CLIENT with a real client (curl); returns
    (what the client got, the peer address the listener saw)."""
    listener = subprocess.Popen(labs.exec_argv(lab, host, [sys.executable, "-c", LISTENER]),
                                stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None and listener.stdout.readline().strip() == "listening"
        target = f"[{address}]" if ":" in address else address
        got = subprocess.run(labs.exec_argv(lab, client, ["curl", "-sS", "-m", "5", f"telnet://{target}:443"]),
                             input="", capture_output=True, text=True, timeout=20)
        peer = listener.communicate(timeout=20)[0].strip()
    finally:
        listener.kill()
        listener.wait()
    return got.stdout.strip(), peer


def test_private_instance_reaches_the_internet_with_the_nat_gateways_address(lab: str) -> None:
    answer, peer = peer_seen(lab, "updates", "app", "203.0.113.80")
    assert (answer, peer) == ("hello", "198.51.100.50")


def test_ipv6_leaves_through_the_egress_only_gateway_with_its_own_address(lab: str) -> None:
    answer, peer = peer_seen(lab, "updates", "app", "2001:db8:ff::80")
    assert (answer, peer) == ("hello", "fd00:20:0:2::10")


def test_nothing_on_the_internet_reaches_the_private_instance_or_the_nat_gateway(lab: str) -> None:
    # app-sg allows 22 from anywhere: only routing hides app.
    assert probe(lab, "you", "10.0.2.10", 22, timeout=TIMEOUT) == "timeout"
    assert probe(lab, "you", "198.51.100.50", 22, timeout=TIMEOUT) == "timeout"     # the Elastic IP
    assert probe(lab, "you", "198.51.100.50", 0, "icmp", timeout=TIMEOUT) == "timeout"
    assert probe(lab, "you", "app", 22, timeout=TIMEOUT, ipv6=True) == "timeout"    # eigw: outbound only
    assert probe(lab, "alb", "app", 8080, timeout=TIMEOUT) == "open"                # the VPC inside works


def test_a_subnet_without_a_route_times_out_and_the_public_subnet_still_works(lab: str) -> None:
    assert probe(lab, "db", "updates", 443, timeout=TIMEOUT) == "timeout"           # data-rt: local only
    assert probe(lab, "you", "alb", 80, timeout=TIMEOUT) == "open"
    assert explain(parse(nat_doc(), "f").topology, "db", "updates", 443).outcome == "timeout"


def test_a_blackhole_route_times_out_and_never_answers_unreachable() -> None:
    data = nat_doc()
    data["name"] = "it-rt-bh"
    data["route_tables"][0]["routes"].insert(0, {"destination": "203.0.113.80/32", "target": "blackhole"})
    labs.up(parse(data, "f").topology)
    try:
        assert probe("it-rt-bh", "app", "updates", 443, timeout=TIMEOUT) == "timeout"
        # ping would print "Destination Host Unreachable" on an ICMP error: it sees nothing at all
        ping = subprocess.run(labs.exec_argv("it-rt-bh", "app", ["ping", "-c1", "-W1", "203.0.113.80"]),
                              capture_output=True, text=True)
        assert ping.returncode == 1 and "nreachable" not in ping.stdout + ping.stderr
        assert probe("it-rt-bh", "app", "you", 443, timeout=TIMEOUT) == "refused"  # 0.0.0.0/0 still NATs: RST
    finally:
        labs.down("it-rt-bh")


def sgemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True, timeout=60)


def test_routes_changed_live_take_effect_at_once() -> None:
    data = nat_doc()
    data["name"] = "it-rt-live"
    labs.up(parse(data, "f").topology)
    lab = "it-rt-live"
    try:
        assert probe(lab, "app", "you", 443, timeout=TIMEOUT) == "refused"          # out through nat-a
        done = sgemu("route", "delete", "--lab", lab, "private-rt", "--destination", "0.0.0.0/0")
        assert done.returncode == 0, done.stderr
        assert probe(lab, "app", "you", 443, timeout=TIMEOUT) == "timeout"          # no route any more
        again = sgemu("route", "delete", "--lab", lab, "private-rt", "--destination", "0.0.0.0/0")
        assert again.returncode != 0 and "InvalidRoute.NotFound" in again.stderr
        assert sgemu("route", "create", "--lab", lab, "private-rt", "--destination", "203.0.113.0/24",
                     "--target", "nat-a").returncode == 0
        assert probe(lab, "app", "you", 443, timeout=TIMEOUT) == "refused"          # back, for that /24 only
        # The egress-only gateway is what hides app's IPv6 (its SG allows 22 from ::/0): swap it for the IGW.
        assert probe(lab, "you", "app", 22, timeout=TIMEOUT, ipv6=True) == "timeout"
        assert sgemu("route", "delete", "--lab", lab, "private-rt", "--destination", "::/0").returncode == 0
        assert sgemu("route", "create", "--lab", lab, "private-rt", "--destination", "::/0",
                     "--target", "igw").returncode == 0
        assert probe(lab, "you", "app", 22, timeout=TIMEOUT, ipv6=True) == "open"
        listed = sgemu("route", "describe", "--lab", lab, "private-rt")
        assert "203.0.113.0/24 -> nat-" in listed.stdout and "::/0 -> igw" in listed.stdout
    finally:
        labs.down(lab)


def test_an_imported_configuration_with_a_nat_gateway_comes_up_and_routes(tmp_path: Path) -> None:
    """describe-* JSON (route tables, NAT gateway, an instance in the private subnet) -> import -> up -> probe."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
    from test_import_routing import DOCS, VPC

    from emulator.importers import import_aws

    docs = {**DOCS, "instances.json": {"Reservations": [{"Instances": [{
        "InstanceId": "i-0123456789abcdef0", "State": {"Name": "running"}, "SubnetId": "subnet-0000000000000000b",
        "VpcId": VPC, "PrivateIpAddress": "10.0.2.10", "Tags": [{"Key": "Name", "Value": "app"}],
        "SecurityGroups": [{"GroupId": "sg-0123456789abcdef0", "GroupName": "app"}]}]}]}}
    paths = []
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
        paths.append(str(tmp_path / name))
    data = import_aws(files=paths).data
    data["name"] = "it-rt-imp"
    labs.up(parse(data, "imported").topology)
    try:
        assert probe("it-rt-imp", "app", "you", 443, timeout=TIMEOUT) == "refused"     # out through the NAT: RST
        assert probe("it-rt-imp", "you", "10.0.2.10", 22, timeout=TIMEOUT) == "timeout"
    finally:
        labs.down("it-rt-imp")


def flow_records(lab: str) -> list[list[str]]:
    fields = "${interface-id} ${instance-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${dstport} " \
             "${action} ${flow-direction} ${reject-reason}"
    done = sgemu("flowlogs", "--lab", lab, "--format", fields)
    assert done.returncode == 0, done.stderr
    return [line.split() for line in done.stdout.splitlines()]


def gateway_status(lab: str) -> dict[str, Any]:
    """nat-a as `sgemu status --json` shows it: a node, and an ENI with counters (health is rewritten
    once a second)."""
    for _ in range(30):
        done = sgemu("status", "--lab", lab, "--json")
        assert done.returncode == 0, done.stderr
        [shown] = json.loads(done.stdout)
        assert {"name": "nat-a", "kind": "nat gateway", "private_ip": "10.0.1.20", "public_ip": "198.51.100.50"}.items() \
            <= next(n for n in shown["nodes"] if n["name"] == "nat-a").items()
        eni = shown["engine"]["enis"]["nat-a"]
        if eni["counters"]["dropped"]:
            return eni
        time.sleep(0.2)
    raise AssertionError("nat-a's ENI counted no drop")


def test_the_nat_gateways_subnet_nacl_applies_on_its_eni_and_it_logs_both_legs() -> None:
    """AWS scenario NG8: the public subnet's NACL lets the request through but has no inbound rule for
    the NAT gateway's ports (1024-65535): the answer is dropped at the gateway's ENI, a REJECT record
    there; the entry added live opens it (NG1: the gateway's ENI logs both legs, instance-id `-`).
    NG2: a connection the internet opens to the Elastic IP is an ACCEPT at the ENI (the NACL allows
    it), dropped by the gateway itself."""
    data = nat_doc()
    lab = data["name"] = "it-rt-ngw"
    data["network_acls"] = [{
        "name": "public-nacl", "subnets": ["public"],
        "ingress": [{"rule": 100, "action": "allow", "protocol": "tcp", "ports": 443, "cidr": "10.0.2.0/24"},
                    {"rule": 110, "action": "allow", "protocol": "tcp", "ports": 22, "cidr": "0.0.0.0/0"}],
        "egress": [{"rule": 100, "action": "allow", "protocol": "tcp", "ports": 443, "cidr": "0.0.0.0/0"},
                   {"rule": 110, "action": "allow", "protocol": "tcp", "ports": "1024-65535",
                    "cidr": "10.0.2.0/24"}]}]
    topology = parse(data, "f").topology
    assert explain(topology, "app", "updates", 443).outcome == "timeout"
    labs.up(topology)
    try:
        assert peer_seen(lab, "updates", "app", "203.0.113.80") == ("", "")         # curl times out, no peer
        rejected = [r for r in flow_records(lab) if r[7] == "REJECT"]
        assert rejected and {(*r[1:4], r[8], r[9]) for r in rejected} == \
            {("-", "203.0.113.80", "10.0.1.20", "ingress", "SUBNET_ACL_RESTRICTION")}
        assert gateway_status(lab)["counters"]["SUBNET_ACL_RESTRICTION"] >= 1
        added = sgemu("nacl", "create-entry", "--lab", lab, "public-nacl", "--ingress", "--rule-number", "120",
                      "--rule-action", "allow", "--protocol", "tcp", "--port", "1024-65535", "--cidr", "0.0.0.0/0")
        assert added.returncode == 0, added.stderr
        assert peer_seen(lab, "updates", "app", "203.0.113.80") == ("hello", "198.51.100.50")
        assert probe(lab, "you", "198.51.100.50", 22, timeout=TIMEOUT) == "timeout"
        records = flow_records(lab)
        gateway = {r[0] for r in records if r[1] == "-"}
        assert len(gateway) == 1
        legs = {(*r[2:6], r[8]) for r in records if r[0] in gateway and r[7] == "ACCEPT" and r[6] != "22"}
        assert {("10.0.2.10", "10.0.1.20", "10.0.2.10", "203.0.113.80", "ingress"),
                ("10.0.1.20", "203.0.113.80", "10.0.1.20", "203.0.113.80", "egress"),
                ("203.0.113.80", "10.0.1.20", "203.0.113.80", "10.0.1.20", "ingress"),
                ("10.0.1.20", "10.0.2.10", "203.0.113.80", "10.0.2.10", "egress")} <= legs
        assert ["203.0.113.10", "10.0.1.20", "22", "ACCEPT", "ingress"] in \
            [[r[2], r[3], r[6], r[7], r[8]] for r in records if r[0] in gateway]
    finally:
        labs.down(lab)


def test_a_private_instance_reaches_a_public_ip_of_the_vpc_through_its_nat_gateway() -> None:
    """AWS: app (no public IP, 0.0.0.0/0 -> nat-a) calling alb's public IP goes out through the NAT
    gateway and back in through the IGW, so alb sees nat-a's Elastic IP (its SG allows 443 from that
    address only: the engine sees it too); db (no route out) cannot."""
    data = nat_doc()
    lab = data["name"] = "it-rt-hp"
    data["security_groups"][0]["ingress"].append({"protocol": "tcp", "ports": 443, "cidr": "198.51.100.50/32"})
    topology = parse(data, "f").topology
    assert explain(topology, "app", "198.51.100.10", 443, listening=True).outcome == "open"
    labs.up(topology)
    try:
        assert peer_seen(lab, "alb", "app", "198.51.100.10") == ("hello", "198.51.100.50")
        assert probe(lab, "db", "198.51.100.10", 80, timeout=TIMEOUT) == "timeout"
        assert probe(lab, "app", "198.51.100.10", 80, timeout=TIMEOUT) == "timeout"   # app-sg: no egress 80
        assert probe(lab, "you", "alb", 443, timeout=TIMEOUT) == "timeout"          # not from nat-a's EIP
    finally:
        labs.down(lab)
