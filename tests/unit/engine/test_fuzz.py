"""Fuzzing the engine with hostile packets: parse and decide never raise, and nothing is accepted
that the rules do not allow.

The oracle is written apart from the engine: scapy dissects the bytes (not packet.parse), and
rule matching follows model.Rule's documented meaning (not rules.CompiledRules). A packet may be
accepted only if it is infrastructure traffic (ND, link-local, VPC DNS), or it is the ENI's own
(source on egress, destination on ingress: EC2's source/destination check) and either a rule
allows it or an earlier accepted packet joined the same two addresses (the loosest reading of
"a tracked flow is behind it", including ICMP errors about such a flow).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6Unknown, IPv6
from scapy.packet import Raw

from emulator.engine.firewall import EniFirewall, build_firewalls
from emulator.engine.packet import Packet, parse
from emulator.model import PROTO_ALL, Direction, Rule, Topology

from .fuzz_corpus import A4, A6, B4, B6, INT_NET, YOU, Sample, corpus, samples
from .helpers import ALL_OUT4, ALL_OUT6, ANY4, ANY6, egress, ingress, instance, sg, topology

NARROW = topology(
    [sg("a", [ingress("tcp", 22, f"{YOU}/32"), ingress("tcp", 80, ANY4), ingress("udp", 53, ANY6),
              ingress("icmp", cidr=ANY4, icmp_type=8), ingress("all", group="sg-b"), ingress(47, cidr=INT_NET),
              ingress("tcp", "1000-2000", "10.0.0.0/16"), ingress("icmpv6", cidr=ANY6, icmp_type=128, icmp_code=0)],
             [egress("tcp", 443, ANY4), egress("udp", "1000-2000", "10.0.0.0/8"), egress("icmpv6", cidr=ANY6,
              icmp_type=128), egress("tcp", 3306, group="sg-b")]),
     sg("b", [ingress("tcp", 5432, group="sg-a"), ingress("icmp", cidr=ANY4)], [ALL_OUT4])],
    [instance("a", A4, ["a"], ipv6=A6), instance("b", B4, ["b"], ipv6=B6)], conntrack_allowance=5)

OPEN = topology(   # all-open both ways: TCP/UDP flows are untracked
    [sg("a", [ingress("tcp", "0-65535", ANY4), ingress("udp", "0-65535", ANY6), ingress("icmp", cidr=ANY4)],
        [ALL_OUT4, ALL_OUT6]),
     sg("b", [ingress("all", group="sg-b")], [ALL_OUT4])],
    [instance("a", A4, ["a"], ipv6=A6), instance("b", B4, ["b"], ipv6=B6)], conntrack_allowance=5)

_ALL = (0, 65535)
_L4 = {6: TCP, 17: UDP, 1: ICMP, 58: ICMPv6Unknown}


@dataclass(frozen=True)
class Seen:
    """What scapy makes of the bytes; None for an L4 field scapy could not read."""

    src: IPv4Address | IPv6Address
    dst: IPv4Address | IPv6Address
    proto: int
    later_fragment: bool
    sport: int | None = None
    dport: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    inner: frozenset | None = None       # the addresses of an embedded original datagram

    @property
    def pair(self) -> frozenset:
        return frozenset((self.src, self.dst))


def _ipv6_chain(data: bytes) -> tuple[int, int, bool]:
    """(upper-layer protocol, its offset, non-initial fragment?) by RFC 8200's chain rules, in any
    order (scapy stops at a hop-by-hop header that is not first)."""
    proto, offset, later = data[6], 40, False
    while proto in (0, 43, 44, 51, 60) and offset + 8 <= len(data):
        if proto == 44:
            later |= int.from_bytes(data[offset + 2:offset + 4], "big") >> 3 != 0
            size = 8
        else:
            size = (data[offset + 1] + 2) * 4 if proto == 51 else (data[offset + 1] + 1) * 8
        proto, offset = data[offset], offset + size
    return proto, offset, later


def dissect(data: bytes) -> Seen:
    if data[0] >> 4 == 4:
        top = IP(data)
        proto, later, l4 = top.proto, top.frag > 0, top.payload
    else:
        top = IPv6(data)
        length = int.from_bytes(data[4:6], "big")
        proto, offset, later = _ipv6_chain(data[:40 + length] if length else data)
        l4 = Raw(data[offset:40 + length] if length else data[offset:])
    if isinstance(l4, Raw) and not later and proto in _L4:
        try:
            l4 = _L4[proto](l4.load)
        except struct.error:
            pass
    fields: dict = {}
    if not later and proto in (6, 17) and isinstance(l4, (TCP, UDP)):
        fields = {"sport": l4.sport, "dport": l4.dport}
    elif not later and proto in (1, 58) and hasattr(l4, "type") and hasattr(l4, "code"):
        fields = {"icmp_type": int(l4.type), "icmp_code": int(l4.code)}
        embedded = l4.payload
        if proto == 58 and len(raw := bytes(l4)) >= 48:       # scapy leaves it raw
            fields["inner"] = frozenset((ip_address(raw[16:32]), ip_address(raw[32:48])))
        elif hasattr(embedded, "src") and hasattr(embedded, "dst") and \
                isinstance(embedded.src, str) and isinstance(embedded.dst, str):
            fields["inner"] = frozenset((ip_address(embedded.src), ip_address(embedded.dst)))
    return Seen(ip_address(top.src), ip_address(top.dst), proto, later, **fields)


def _members(topo: Topology, group: str) -> set:
    return {address for i in topo.instances if group in i.security_groups for address in i.addresses}


def rule_allows(topo: Topology, rule: Rule, seen: Seen, direction: Direction) -> bool | None:
    """Straight from model.Rule: None when scapy could not read a field the rule looks at."""
    if rule.direction is not direction or rule.protocol not in (PROTO_ALL, seen.proto):
        return False
    remote = seen.dst if direction is Direction.EGRESS else seen.src
    if rule.cidr is not None:
        if rule.cidr.version != remote.version or remote not in rule.cidr:
            return False
    elif remote not in _members(topo, rule.group):
        return False
    if rule.protocol in (6, 17):
        ports = (rule.ports.low, rule.ports.high) if rule.ports else _ALL
        if seen.later_fragment:
            return ports == _ALL
        return None if seen.dport is None else ports[0] <= seen.dport <= ports[1]
    if rule.protocol in (1, 58):
        if seen.later_fragment:
            return rule.icmp_type == -1 and rule.icmp_code == -1
        if seen.icmp_type is None:
            return None
        return rule.icmp_type in (-1, seen.icmp_type) and rule.icmp_code in (-1, seen.icmp_code)
    return True                       # protocol -1 and every other protocol ignore ports


def infrastructure(topo: Topology, seen: Seen) -> bool:
    if seen.src.version == 6:
        return any(a in ip_network("fe80::/10") for a in (seen.src, seen.dst)) or \
            seen.dst in ip_network("ff02::/16") or (seen.proto == 58 and seen.icmp_type in range(133, 138))
    if any(a in ip_network("169.254.0.0/16") for a in (seen.src, seen.dst)):
        return True
    dns = topo.vpc.dns_ip
    return seen.proto in (6, 17) and ((seen.dst == dns and seen.dport == 53) or (seen.src == dns and seen.sport == 53))


class Oracle:
    """Follows one firewall; `check` fails the test on any accept it cannot justify."""

    def __init__(self, topo: Topology, name: str):
        self.topo = topo
        self.instance = topo.instance(name)
        self.rules = [r for g in self.instance.security_groups for d in Direction for r in topo.sg(g).rules(d)]
        self.pairs: set[frozenset] = set()

    def check(self, sample: Sample, accepted: bool) -> None:
        if not accepted:
            return
        seen = dissect(sample.data)
        known = seen.pair in self.pairs or (seen.inner is not None and seen.inner in self.pairs)
        self.pairs.add(seen.pair)
        if infrastructure(self.topo, seen):
            return
        own = seen.src if sample.direction is Direction.EGRESS else seen.dst
        assert own in self.instance.addresses, f"{sample.name}: accepted a packet that is not {self.instance.name}'s: {sample.data.hex()}"
        if known:
            return
        allowed = [rule_allows(self.topo, r, seen, sample.direction) for r in self.rules]
        assert None not in allowed or True in allowed, f"{sample.name}: scapy cannot read {seen}"
        assert True in allowed, f"{sample.name}: accepted {seen} {sample.direction.value}, no rule allows it: {sample.data.hex()}"


def run(firewall: EniFirewall, oracle: Oracle, sample: Sample, now: float) -> bool:
    """One sample through parse and decide (neither may raise), checked by the oracle."""
    packet = parse(sample.data)
    if isinstance(packet, str):
        verdict = firewall.malformed()
    else:
        assert isinstance(packet, Packet)
        verdict = firewall.decide(packet, sample.direction, now)
    assert verdict.action in ("ACCEPT", "DROP")
    oracle.check(sample, verdict.accepted)
    return verdict.accepted


def _fresh(topo: Topology, name: str) -> tuple[EniFirewall, Oracle]:
    _, firewalls = build_firewalls(topo)
    return firewalls[name], Oracle(topo, name)


CORPUS = corpus()


@pytest.mark.parametrize("topo", [NARROW, OPEN], ids=["narrow", "open"])
@pytest.mark.parametrize("sample", CORPUS, ids=[s.name for s in CORPUS])
def test_corpus_packet_alone_is_accepted_only_when_a_rule_allows_it(topo, sample):
    firewall, oracle = _fresh(topo, sample.firewall)
    run(firewall, oracle, sample, 1000.0)


@pytest.mark.parametrize("topo", [NARROW, OPEN], ids=["narrow", "open"])
def test_whole_corpus_through_one_firewall_pair(topo):
    _, firewalls = build_firewalls(topo)
    oracles = {name: Oracle(topo, name) for name in firewalls}
    for step, sample in enumerate(CORPUS * 3):
        run(firewalls[sample.firewall], oracles[sample.firewall], sample, 1000.0 + step)
    assert sum(fw.counters["malformed"] for fw in firewalls.values()) >= 3 * 2 * 12


def _by_name(name: str) -> Sample:
    return next(s for s in CORPUS if s.name == name)


@pytest.mark.parametrize("name,action,reason", [
    ("empty", "DROP", "MALFORMED"),
    ("ipv4 total length zero", "DROP", "MALFORMED"),
    ("ipv4 total length huge", "DROP", "MALFORMED"),
    ("tcp data offset zero", "DROP", "MALFORMED"),
    ("v6 chain cut", "DROP", "MALFORMED"),
    ("ipv4 record route to 80", "ACCEPT", "RULE_MATCH"),
    ("ipv4 router alert to 22", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("v4 fragment 0 to 22", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("v4 fragment 1 to 22", "DROP", "FRAGMENT"),
    ("v4 non-initial gre fragment from the gre net", "ACCEPT", "RULE_MATCH"),
    ("v6 non-initial fragment", "DROP", "FRAGMENT"),
    ("v6 atomic fragment to 53", "ACCEPT", "RULE_MATCH"),
    ("bad ip checksum to 80", "ACCEPT", "RULE_MATCH"),
    ("protocol 253", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("tcp SF to 22", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("tcp SF to 80", "ACCEPT", "RULE_MATCH"),
    ("tcp A to 22", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("bare ack out to 25", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("a sends as b", "DROP", "ENI_SOURCE_DEST_CHECK_RESTRICTION"),
    ("a sends as the internet", "DROP", "ENI_SOURCE_DEST_CHECK_RESTRICTION"),
    ("a sends as b v6", "DROP", "ENI_SOURCE_DEST_CHECK_RESTRICTION"),
    ("b's traffic arrives on a's ENI", "DROP", "ENI_SOURCE_DEST_CHECK_RESTRICTION"),
    ("link-local source v4 to 22", "ACCEPT", "INFRASTRUCTURE"),
    ("v6 hbh+dest+routing to 22", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("v6 chain with AH to 53", "ACCEPT", "RULE_MATCH"),
    ("v6 eight hop-by-hops", "ACCEPT", "RULE_MATCH"),
    ("v6 neighbour solicitation", "ACCEPT", "INFRASTRUCTURE"),
    ("port unreachable about nothing", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("v6 unreachable about nothing", "DROP", "ENI_SG_RULES_MISMATCH"),
    ("icmp timestamp", "DROP", "ENI_SG_RULES_MISMATCH"),
])
def test_corpus_verdicts_on_the_narrow_sg(name, action, reason):
    firewall, _ = _fresh(NARROW, "a")
    sample = _by_name(name)
    packet = parse(sample.data)
    verdict = firewall.malformed() if isinstance(packet, str) else firewall.decide(packet, sample.direction, 1.0)
    assert (verdict.action, verdict.reason) == (action, reason)


def test_spoofed_source_cannot_borrow_a_group_membership():
    """a admits everything from sg-b's members; c (not in sg-b, all egress allowed) forging b's
    address is stopped at its own ENI, in both families, before a's SG could be fooled."""
    topo = topology([sg("a", [ingress("all", group="sg-b")], []), sg("b", [], []), sg("c", [], [ALL_OUT4, ALL_OUT6])],
                    [instance("a", A4, ["a"], ipv6=A6), instance("b", B4, ["b"], ipv6=B6),
                     instance("c", "10.0.1.82", ["c"], ipv6="fd00:10::82")])
    _, firewalls = build_firewalls(topo)
    for forged in (IP(src=B4, dst=A4) / TCP(dport=22, flags="S"), IPv6(src=B6, dst=A6) / UDP(dport=53)):
        packet = parse(bytes(forged))
        assert firewalls["a"].decide(packet, Direction.INGRESS, 1.0).accepted    # a alone would be fooled
        verdict = firewalls["c"].decide(packet, Direction.EGRESS, 1.0)
        assert (verdict.action, verdict.reason) == ("DROP", "ENI_SOURCE_DEST_CHECK_RESTRICTION")
    assert firewalls["c"].counters["ENI_SOURCE_DEST_CHECK_RESTRICTION"] == 2


def test_a_later_fragment_passes_once_its_flow_is_open():
    firewall, _ = _fresh(NARROW, "a")
    opening = parse(bytes(IP(src=YOU, dst=A4) / TCP(sport=40001, dport=22, flags="S")))
    assert firewall.decide(opening, Direction.INGRESS, 1.0).accepted
    tail = parse(bytes(IP(src=YOU, dst=A4, frag=3, proto=6) / Raw(b"x" * 40)))
    assert firewall.decide(tail, Direction.INGRESS, 2.0).reason == "FRAGMENT_OF_FLOW"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([NARROW, OPEN]), st.lists(samples(), min_size=1, max_size=25))
def test_random_hostile_traffic_never_raises_and_never_accepts_what_no_rule_allows(topo, drawn):
    _, firewalls = build_firewalls(topo)
    oracles = {name: Oracle(topo, name) for name in firewalls}
    for step, sample in enumerate(drawn):
        run(firewalls[sample.firewall], oracles[sample.firewall], sample, 1000.0 + step * 7)
    for firewall in firewalls.values():
        assert firewall.table.tracked <= 5      # the conntrack allowance holds under any input
