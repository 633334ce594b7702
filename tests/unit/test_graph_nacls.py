"""`sgemu graph` with network ACLs and routing: every arrow carries the ports that really get through,
and `explain` (the engine, packet by packet) is the oracle: for the shipped labs and generated NACLs,
a sampled port is on an arrow exactly when explain gets an answer, and a blocked arrow's ports time out
at the network ACL it names."""
from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from emulator.cli import cli
from emulator.engine.nacl import NaclVerdict
from emulator.explain import explain
from emulator.graph import Flow, flows, to_dot, to_mermaid
from emulator.model import Instance, Topology
from emulator.routes import routes_declared
from emulator.topology import load, parse

TOPOLOGIES = Path(__file__).parent.parent.parent / "topologies"
TCP_PORTS = (22, 80, 443, 1024, 3306, 8080, 40000, 65535)
UDP_PORTS = (53, 123, 1500, 40000)

Ranges = list[tuple[int, int]]


def _family_text(label: str, version: int) -> str | None:
    """One family's part of an arrow label ("tcp 80 | IPv6: tcp 443"; what NACLs deny: a line each)."""
    parts = re.split(r" \| |\n", label)
    if len(parts) == 2:
        return parts[0] if version == 4 else parts[1].removeprefix("IPv6: ")
    if label.startswith("IPv6: "):
        return label.removeprefix("IPv6: ") if version == 6 else None
    return label


def carried(label: str, version: int) -> dict[str, Ranges]:
    """What an arrow's label says one family carries: protocol name -> ranges ("all" for all traffic)."""
    text = _family_text(label, version)
    if text is None:
        return {}
    text = re.sub(r": (replies )?denied by .*$", "", text)     # a blocked arrow: what its NACLs deny
    text = re.sub(r" \(.*\)$", "", text)                     # "(tcp replies reach only client ports ...)"
    found: dict[str, Ranges] = {}
    current = ""
    for token in text.split(", "):
        words = token.split()
        if token == "all traffic":
            found["all"] = [(0, 65535)]
            continue
        if not words[0][0].isdigit():
            current, words = (token, []) if token == "other protocols" else (words[0], words[1:])
            found.setdefault(current, [])
            if words[:1] == ["type"]:
                words = words[1:]
            elif words in ([], ["all", "ports"]) and current != "other protocols":
                found[current].append((0, 65535))
                continue
        for word in words:
            low, _, high = word.partition("-")
            found[current].append((int(low), int(high or low)))
    return found


def _on(label: str, version: int, proto: str, port: int) -> bool:
    found = carried(label, version)
    return "all" in found or any(lo <= port <= hi for lo, hi in found.get(proto, []))


def _pairs(topology: Topology) -> list[tuple[str, str]]:
    outside = topology.internet if routes_declared(topology) else ()
    return [(s.name, d.name) for s in (*topology.internet, *topology.instances)
            for d in (*topology.instances, *(outside if isinstance(s, Instance) else ())) if d is not s]


def _samples(topology: Topology) -> list[tuple[str, int]]:
    ports = set(TCP_PORTS) | {s.port for i in topology.instances for s in i.services if s.port}
    return [*(("tcp", p) for p in sorted(ports)), *(("udp", p) for p in UDP_PORTS), ("icmp", 0)]


def _probe(proto: str, version: int, port: int) -> tuple[str, int]:
    """The protocol name an arrow uses and the port or type explain's packet has."""
    if proto == "icmp":
        return ("icmpv6", 128) if version == 6 else ("icmp", 8)        # an echo request
    return proto, port


def assert_agrees_with_explain(topology: Topology) -> int:
    """Every pair, family and sampled port; returns how many questions were asked. A label without
    "IPv6:" says the same for both families, or that IPv6 carries nothing at all."""
    arrows = {(f.src, f.dst): f for f in flows(topology)}
    asked = 0
    for src, dst in _pairs(topology):
        arrow = arrows.get((src, dst))
        for version in (4, 6):
            mismatches, answers = [], 0
            for proto, port in _samples(topology):
                e = explain(topology, src, dst, port, proto, ipv6=version == 6, listening=True)
                asked += 1
                answered = e.outcome in ("open", "reply", "refused")
                answers += answered
                wanted, number = _probe(proto, version, port)
                shown = arrow is not None and not arrow.blocked and _on(arrow.label, version, wanted, number)
                if answered != shown:
                    mismatches.append(f"{src} -> {dst} {proto} {port} IPv{version}: explain {e.outcome} ({e.why}); "
                                      f"arrow {arrow}")
                if arrow is not None and arrow.blocked and not answered and _on(arrow.label, version, wanted, number):
                    hop = (e.reply or e.request or (None,))[-1]
                    if hop is None or not isinstance(hop.verdict, NaclVerdict) or \
                            hop.verdict.nacl_name not in arrow.label:
                        mismatches.append(f"{src} -> {dst} {proto} {port} IPv{version}: blocked arrow {arrow}, "
                                          f"but explain: {e.why}")
            unmarked_v6 = version == 6 and arrow is not None and "IPv6: " not in arrow.label and answers == 0
            assert not mismatches or unmarked_v6, mismatches
    return asked


@pytest.mark.parametrize("name", sorted(p.stem for p in TOPOLOGIES.glob("*.yaml")))
def test_shipped_labs_agree_with_explain(name: str):
    assert assert_agrees_with_explain(load(TOPOLOGIES / f"{name}.yaml").topology) > 0


def test_the_ephemeral_mistake_is_drawn_blocked_naming_the_nacl():
    drawn = flows(load(TOPOLOGIES / "nacl-ephemeral.yaml").topology)
    assert Flow("you", "web", "tcp 22, 80: replies denied by network ACL public-nacl\nIPv6: tcp 80: replies "
                "denied by network ACL public-nacl", blocked=True) in drawn
    assert Flow("web", "app", "tcp 8080") in drawn
    dot = to_dot(load(TOPOLOGIES / "nacl-ephemeral.yaml").topology)
    assert 'style=dashed, color="#d7263d", fontcolor="#d7263d", class="blocked"' in dot
    assert '"web" -> "app" [label="tcp 8080"];' in dot
    assert "-.->" in to_mermaid(load(TOPOLOGIES / "nacl-ephemeral.yaml").topology)


def test_routing_decides_the_internet_arrows():
    drawn = flows(load(TOPOLOGIES / "three-tier-nat.yaml").topology)
    # app's SG lets 22 in from anywhere, but it has no public IP and IPv6 leaves through the eigw only;
    # db's SG lets 443 out, but data-rt has no route out
    assert [f for f in drawn if f.src not in ("alb", "app", "db")] == [Flow("you", "alb", "tcp 80"),
                                                                       Flow("updates", "alb", "tcp 80")]
    assert Flow("app", "updates", "tcp 443", via="nat-a (IPv4)") in drawn
    assert not [f for f in drawn if f.src == "db" and f.dst in ("you", "updates")]
    assert '"app" -> "updates" [label="tcp 443\\nvia nat-a (IPv4)"];' in to_dot(load(TOPOLOGIES /
                                                                                    "three-tier-nat.yaml").topology)


def _lab(nacls: list[dict]) -> Topology:
    data = {"name": "g", "vpc": {"cidr": "10.0.0.0/16", "ipv6_cidr": "fd00:10::/56"},
            "subnets": [{"name": "public", "cidr": "10.0.1.0/24", "ipv6_cidr": "fd00:10:0:1::/64"},
                        {"name": "private", "cidr": "10.0.2.0/24", "ipv6_cidr": "fd00:10:0:2::/64"}],
            "security_groups": [{"name": "open", "ingress": [
                {"protocol": "tcp", "ports": "1-65535", "cidr": "0.0.0.0/0"},
                {"protocol": "tcp", "ports": "80-443", "cidr": "::/0"},
                {"protocol": "udp", "ports": "1-2000", "cidr": "10.0.0.0/16"},
                {"protocol": "icmp", "cidr": "0.0.0.0/0"}, {"protocol": "icmpv6", "cidr": "::/0"}]},
                {"name": "all", "ingress": [{"protocol": "all", "cidr": "10.0.0.0/16"}]}],
            "network_acls": nacls,
            "instances": [{"name": "web", "subnet": "public", "public_ip": "198.51.100.10", "ipv6": "fd00:10:0:1::10",
                           "security_groups": ["open"]},
                          {"name": "app", "subnet": "private", "ipv6": "fd00:10:0:2::10", "security_groups": ["open"]},
                          {"name": "app2", "subnet": "private", "security_groups": ["all"]}],
            "internet": [{"name": "you", "ip": "203.0.113.10", "ipv6": "2001:db8:ff::10"}]}
    return parse(data, "test").topology


def _random_nacl(rng: random.Random, name: str, subnets: list[str]) -> dict:
    cidrs = ["0.0.0.0/0", "0.0.0.0/0", "10.0.0.0/16", "10.0.1.0/24", "10.0.2.0/24", "203.0.113.0/24", "::/0"]
    edges = [1, 22, 53, 80, 443, 1023, 1024, 8080, 32768, 40000, 65535]

    def entries() -> list[dict]:
        out = []
        for number in rng.sample(range(1, 200), rng.randint(1, 6)):
            entry = {"rule": number, "action": rng.choice(["allow", "allow", "deny"]),
                     "protocol": rng.choice(["tcp", "tcp", "udp", "icmp", "all"]), "cidr": rng.choice(cidrs)}
            if entry["protocol"] in ("tcp", "udp"):
                low, high = sorted(rng.choice(edges) for _ in range(2))
                entry["ports"] = f"{low}-{high}"
            if entry["protocol"] == "icmp" and entry["cidr"] == "::/0":
                entry["protocol"] = "icmpv6"
            out.append(entry)
        return out
    return {"name": name, "subnets": subnets, "ingress": entries(), "egress": entries()}


@pytest.mark.parametrize("seed", range(8))
def test_generated_nacls_agree_with_explain(seed: int):
    rng = random.Random(seed)
    nacls = [_random_nacl(rng, "pub-acl", ["public"]), _random_nacl(rng, "priv-acl", ["private"])]
    assert assert_agrees_with_explain(_lab(nacls)) > 0


@pytest.mark.parametrize("seed", range(20))
def test_generated_nacls_on_the_nat_lab_agree_with_explain(seed: int):
    """Through a NAT gateway the request crosses its subnet's NACL on both legs, and so does the reply;
    an instance without a public IP in the public subnet has no way out at all."""
    rng = random.Random(1000 + seed)
    data = yaml.safe_load((TOPOLOGIES / "three-tier-nat.yaml").read_text())
    data["instances"].append({"name": "batch", "subnet": "public", "private_ip": "10.0.1.30",
                              "security_groups": ["app-sg"]})
    data["network_acls"] = [_random_nacl(rng, "pub-acl", ["public"]), _random_nacl(rng, "priv-acl", ["private"])]
    assert assert_agrees_with_explain(parse(data, "test").topology) > 0


ALLOW_ALL = [{"rule": 200, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"},
             {"rule": 201, "action": "allow", "protocol": "all", "cidr": "::/0"}]


@pytest.mark.parametrize(("direction", "deny", "label"), [
    ("ingress", {"ports": 443, "cidr": "10.0.2.0/24"}, "tcp 443: denied by network ACL pub-acl"),
    ("egress", {"ports": "1024-65535", "cidr": "10.0.2.0/24"}, "tcp 443: replies denied by network ACL pub-acl"),
    ("egress", {"ports": 443, "cidr": "203.0.113.80/32"}, "tcp 443: denied by network ACL pub-acl"),
    ("ingress", {"ports": "1024-65535", "cidr": "203.0.113.80/32"}, "tcp 443: replies denied by network ACL pub-acl"),
], ids=["inside-leg-request", "inside-leg-reply", "outside-leg-request", "outside-leg-reply"])
def test_the_nat_gateways_subnet_nacl_judges_both_legs(direction: str, deny: dict, label: str):
    data = yaml.safe_load((TOPOLOGIES / "three-tier-nat.yaml").read_text())
    data["network_acls"] = [{"name": "pub-acl", "subnets": ["public"], "ingress": ALLOW_ALL, "egress": ALLOW_ALL}]
    data["network_acls"][0][direction] = [{"rule": 100, "action": "deny", "protocol": "tcp", **deny}, *ALLOW_ALL]
    lab = parse(data, "test").topology
    drawn = {(f.src, f.dst): f for f in flows(lab)}
    # IPv6 leaves app's subnet through the egress-only gateway: no NAT gateway, no public subnet
    assert drawn["app", "updates"] == Flow("app", "updates", "IPv6: tcp 443", label)
    if deny["cidr"] == "203.0.113.80/32":
        assert drawn["app", "you"] == Flow("app", "you", "tcp 443", via="nat-a (IPv4)")
    assert assert_agrees_with_explain(lab) > 0


def test_a_nacl_that_cuts_some_ports_leaves_the_rest_and_says_what_it_denied():
    nacl = {"name": "cut", "subnets": ["private"],
            "ingress": [{"rule": 90, "action": "deny", "protocol": "tcp", "ports": 443, "cidr": "10.0.1.0/24"},
                        {"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}],
            "egress": [{"rule": 100, "action": "allow", "protocol": "tcp", "ports": "32768-65535",
                        "cidr": "0.0.0.0/0"}]}
    lab = _lab([nacl])
    drawn = {(f.src, f.dst): f for f in flows(lab)}
    # 443 denied on the way in; udp and the ping's echo reply have no way out (egress allows tcp only)
    assert drawn["web", "app"] == Flow(
        "web", "app", "tcp 1-442, 444-65535, icmp type 0-7, 9-255 (tcp replies reach only client ports 32768-65535)",
        "tcp 443, udp 1-2000, icmp type 8: denied by network ACL cut\nIPv6: tcp 80-443, icmpv6: denied by network "
        "ACL cut")
    # inside one subnet no NACL applies
    assert drawn["app", "app2"] == Flow("app", "app2", "all traffic")
    # no IPv6 rule at all: the internet's IPv6 flow to app is drawn blocked
    assert drawn["you", "app"] == Flow("you", "app", "IPv6: tcp 80-443, icmpv6: denied by network ACL cut",
                                       blocked=True)
    assert assert_agrees_with_explain(lab) > 0


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_the_svg_marks_blocked_arrows_for_the_browser_view(tmp_path):
    out = tmp_path / "lab.svg"
    run = CliRunner().invoke(cli, ["graph", str(TOPOLOGIES / "nacl-ephemeral.yaml"), "-o", str(out)])
    assert run.exit_code == 0, run.output
    svg = out.read_text()
    assert 'class="edge blocked"' in svg and "denied by network ACL public&#45;nacl" in svg
