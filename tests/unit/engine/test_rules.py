"""Rule matching matrices: protocols, ports, ICMP type/code, families, references, unions."""
import pytest

from emulator.engine.firewall import build_firewalls
from emulator.engine.packet import TCP_SYN, Packet
from emulator.engine.rules import CompiledRules
from emulator.engine.verdict import ENI_SG_RULES_MISMATCH, RULE_MATCH
from emulator.model import Direction

from .helpers import ALL_OUT4, ALL_OUT6, ANY4, ANY6, egress, ingress, instance, sg, topology

HOST4, HOST6 = "10.0.1.50", "fd00:10::50"
PEER4, PEER6 = "198.51.100.7", "2001:db8::7"
IN, OUT = Direction.INGRESS, Direction.EGRESS


def firewall(ingress_rules=(), egress_rules=(), groups=(), extra_instances=()):
    topo = topology([sg("h", ingress_rules, egress_rules), *groups],
                    [instance("h", HOST4, ["h"], ipv6=HOST6), *extra_instances])
    state, firewalls = build_firewalls(topo)
    return state, firewalls["h"]


def inbound(proto, dport=0, src=PEER4, icmp_type=-1, icmp_code=-1, sport=40000) -> Packet:
    dst = HOST6 if ":" in src else HOST4
    return Packet.build(6 if ":" in src else 4, src, dst, proto, sport=sport, dport=dport,
                        tcp_flags=TCP_SYN if proto == 6 else 0, icmp_type=icmp_type,
                        icmp_code=icmp_code, length=60)


def outbound(proto, dport=0, dst=PEER4, icmp_type=-1, icmp_code=-1) -> Packet:
    src = HOST6 if ":" in dst else HOST4
    return Packet.build(6 if ":" in dst else 4, src, dst, proto, sport=40000, dport=dport,
                        tcp_flags=TCP_SYN if proto == 6 else 0, icmp_type=icmp_type,
                        icmp_code=icmp_code, length=60)


def allowed(fw, packet, direction=IN) -> bool:
    return fw.decide(packet, direction, 0.0).accepted


# --- protocols and ports ----------------------------------------------------------------------

@pytest.mark.parametrize("rule_proto", ["tcp", 6])
@pytest.mark.parametrize("dport,expected", [(79, False), (80, True), (81, True), (90, True), (91, False),
                                            (0, False), (65535, False)])
def test_tcp_port_range_edges(rule_proto, dport, expected):
    _, fw = firewall([ingress(rule_proto, "80-90", ANY4)])
    assert allowed(fw, inbound(6, dport)) is expected


@pytest.mark.parametrize("dport,expected", [(0, True), (1, True), (65535, True)])
def test_full_port_range(dport, expected):
    _, fw = firewall([ingress("udp", "0-65535", ANY4)])
    assert allowed(fw, inbound(17, dport)) is expected


@pytest.mark.parametrize("rule_proto,packet_proto,expected", [
    ("tcp", 6, True), ("tcp", 17, False), ("udp", 17, True), ("udp", 6, False),
    ("all", 6, True), ("all", 17, True), ("all", 1, True), ("all", 47, True), ("-1", 50, True),
    (47, 47, True), (47, 6, False), (50, 51, False), (132, 132, True),
])
def test_protocol_matching(rule_proto, packet_proto, expected):
    ports = 22 if rule_proto in ("tcp", "udp") else None
    _, fw = firewall([ingress(rule_proto, ports, ANY4)])
    dport = 22 if packet_proto in (6, 17) else 0
    icmp = (8, 0) if packet_proto == 1 else (-1, -1)
    assert allowed(fw, inbound(packet_proto, dport, icmp_type=icmp[0], icmp_code=icmp[1])) is expected


@pytest.mark.parametrize("proto", [47, 50, 132, "all"])
@pytest.mark.parametrize("ports", [None, 22, "1000-2000"])
def test_ports_ignored_for_other_protocols(proto, ports):
    _, fw = firewall([ingress(proto, ports, ANY4)])
    number = 47 if proto == "all" else proto
    assert allowed(fw, inbound(number))


def test_all_protocols_rule_allows_any_tcp_port():
    _, fw = firewall([ingress("all", 22, ANY4)])
    assert all(allowed(fw, inbound(6, port, sport=port + 1)) for port in (1, 22, 443, 65535))


def test_source_port_is_never_looked_at():
    _, fw = firewall([ingress("tcp", 22, ANY4)])
    assert allowed(fw, inbound(6, 22, sport=22))
    assert not allowed(fw, inbound(6, 23, sport=22))


def test_egress_matches_destination_port():
    _, fw = firewall([], [egress("tcp", 443, ANY4)])
    assert allowed(fw, outbound(6, 443), OUT)
    assert not allowed(fw, outbound(6, 80), OUT)


# --- ICMP type/code ---------------------------------------------------------------------------

@pytest.mark.parametrize("rule_type,rule_code,packet_type,packet_code,expected", [
    (-1, -1, 8, 0, True), (-1, -1, 13, 0, True), (-1, -1, 3, 4, True),
    (8, -1, 8, 0, True), (8, -1, 8, 5, True), (8, -1, 13, 0, False), (8, -1, 0, 0, False),
    (8, 0, 8, 0, True), (8, 0, 8, 1, False),
    (3, 4, 3, 4, True), (3, 4, 3, 3, False), (3, -1, 3, 13, True), (11, -1, 3, 0, False),
])
def test_icmp_type_code_matrix(rule_type, rule_code, packet_type, packet_code, expected):
    _, fw = firewall([ingress("icmp", cidr=ANY4, icmp_type=rule_type, icmp_code=rule_code)])
    assert allowed(fw, inbound(1, icmp_type=packet_type, icmp_code=packet_code)) is expected


@pytest.mark.parametrize("rule_type,rule_code,packet_type,expected", [
    (-1, -1, 128, True), (128, 0, 128, True), (128, -1, 129, False), (2, 0, 2, True),
])
def test_icmpv6_type_code(rule_type, rule_code, packet_type, expected):
    _, fw = firewall([ingress("icmpv6", cidr=ANY6, icmp_type=rule_type, icmp_code=rule_code)])
    assert allowed(fw, inbound(58, src=PEER6, icmp_type=packet_type, icmp_code=0)) is expected


def test_icmp_rule_does_not_match_icmpv6_and_back():
    _, fw = firewall([ingress("icmp", cidr=ANY6)])
    assert not allowed(fw, inbound(58, src=PEER6, icmp_type=128, icmp_code=0))
    _, fw = firewall([ingress("icmpv6", cidr=ANY4)])
    assert not allowed(fw, inbound(1, icmp_type=8, icmp_code=0))


# --- CIDRs and address families ---------------------------------------------------------------

@pytest.mark.parametrize("cidr,src,expected", [
    ("0.0.0.0/0", PEER4, True), ("0.0.0.0/0", PEER6, False),
    ("::/0", PEER6, True), ("::/0", PEER4, False),
    ("198.51.100.0/24", "198.51.100.255", True), ("198.51.100.0/24", "198.51.101.0", False),
    ("198.51.100.7/32", PEER4, True), ("198.51.100.7/32", "198.51.100.8", False),
    ("2001:db8::/32", PEER6, True), ("2001:db8::/32", "2001:db9::1", False),
    ("2001:db8::7/128", PEER6, True), ("2001:db8::7/128", "2001:db8::8", False),
    ("10.0.0.0/8", "10.255.255.255", True), ("10.0.0.0/8", "11.0.0.0", False),
])
def test_cidr_and_family(cidr, src, expected):
    _, fw = firewall([ingress("tcp", 22, cidr)])
    assert allowed(fw, inbound(6, 22, src=src)) is expected


def test_ipv4_compatible_ipv6_address_does_not_match_ipv4_rule():
    _, fw = firewall([ingress("tcp", 22, "198.51.100.7/32")])
    assert not allowed(fw, inbound(6, 22, src="::c633:6407"))   # same int as 198.51.100.7


# --- references through membership --------------------------------------------------------------

def referencing(extra_groups=("app",)):
    return firewall([ingress("tcp", 5432, group="sg-app")], [],
                    groups=[sg("app"), sg("other")],
                    extra_instances=[instance("app1", "10.0.2.11", list(extra_groups), ipv6="fd00:10::211"),
                                     instance("app2", "10.0.2.12", ["app"], public_ip="198.51.100.12"),
                                     instance("stray", "10.0.2.13", ["other"])])


@pytest.mark.parametrize("src,expected", [
    ("10.0.2.11", True), ("10.0.2.12", True), ("fd00:10::211", True),
    ("10.0.2.13", False), ("198.51.100.12", False), (PEER4, False), ("fd00:10::212", False),
])
def test_reference_matches_private_addresses_of_members_only(src, expected):
    _, fw = referencing()
    assert allowed(fw, inbound(6, 5432, src=src)) is expected


def test_membership_change_applies_at_once():
    state, fw = referencing()
    state.set_instance_groups("stray", ["app"])
    assert allowed(fw, inbound(6, 5432, src="10.0.2.13"))
    state.set_instance_groups("app1", ["other"])
    assert not allowed(fw, inbound(6, 5432, src="10.0.2.11"))


def test_reference_to_empty_group_matches_nothing():
    _, fw = firewall([ingress("all", group="sg-empty")], groups=[sg("empty")])
    assert not allowed(fw, inbound(6, 22))


# --- union and reporting ----------------------------------------------------------------------

def test_union_of_groups_on_one_eni():
    topo = topology([sg("a", [ingress("tcp", 22, ANY4)]), sg("b", [ingress("tcp", 80, ANY4)])],
                    [instance("h", HOST4, ["a", "b"])])
    _, fws = build_firewalls(topo)
    assert allowed(fws["h"], inbound(6, 22)) and allowed(fws["h"], inbound(6, 80, sport=2))
    assert not allowed(fws["h"], inbound(6, 443, sport=3))


def test_open_rule_is_reported_even_when_a_narrow_one_comes_first():
    _, fw = firewall([ingress("tcp", 80, "198.51.100.0/24"), ingress("tcp", 80, ANY4)], [ALL_OUT4])
    verdict = fw.decide(inbound(6, 80), IN, 0.0)
    assert str(verdict.rule.cidr) == ANY4 and verdict.tracked is False


def test_first_matching_rule_is_reported_otherwise():
    _, fw = firewall([ingress("tcp", "1-100", "198.51.100.0/24"), ingress("tcp", 80, "198.51.100.7/32")])
    verdict = fw.decide(inbound(6, 80), IN, 0.0)
    assert verdict.reason == RULE_MATCH and str(verdict.rule.ports) == "1-100"


def test_no_rules_no_traffic():
    _, fw = firewall()
    for packet in (inbound(6, 22), inbound(17, 53), inbound(1, icmp_type=8, icmp_code=0), inbound(47)):
        assert fw.decide(packet, IN, 0.0).reason == ENI_SG_RULES_MISMATCH


# --- trackedness decision (section 2.2) -------------------------------------------------------

@pytest.mark.parametrize("in_rule,out_rules,proto,tracked", [
    (ingress("tcp", 80, ANY4), [ALL_OUT4], 6, False),
    (ingress("tcp", 80, ANY4), [egress("tcp", "0-65535", ANY4)], 6, False),
    (ingress("tcp", 80, ANY4), [egress("tcp", "1024-65535", ANY4)], 6, True),
    (ingress("tcp", 80, ANY4), [egress("udp", "0-65535", ANY4)], 6, True),
    (ingress("tcp", 80, ANY4), [egress("all", cidr="10.0.0.0/8")], 6, True),
    (ingress("tcp", 80, ANY4), [ALL_OUT6], 6, True),
    (ingress("tcp", 80, ANY4), [], 6, True),
    (ingress("tcp", 80, "198.51.100.0/24"), [ALL_OUT4], 6, True),
    (ingress("udp", 53, ANY4), [ALL_OUT4], 17, False),
    (ingress("udp", 53, ANY4), [egress("udp", "0-65535", ANY4)], 17, False),
    (ingress("all", cidr=ANY4), [ALL_OUT4], 6, False),
    (ingress("all", cidr=ANY4), [ALL_OUT4], 1, True),       # ICMP is always tracked
    (ingress("all", cidr=ANY4), [ALL_OUT4], 47, True),      # so are other protocols
    (ingress("tcp", 80, group="sg-h"), [ALL_OUT4], 6, True),
])
def test_trackedness(in_rule, out_rules, proto, tracked):
    _, fw = firewall([in_rule], out_rules)
    packet = inbound(proto, 80 if proto == 6 else 53 if proto == 17 else 0,
                     icmp_type=8 if proto == 1 else -1, icmp_code=0 if proto == 1 else -1)
    if in_rule.group:
        packet = inbound(proto, 80, src=HOST4)   # a member (itself) as the source
    verdict = fw.decide(packet, IN, 0.0)
    assert verdict.accepted and verdict.tracked is tracked
    assert len(fw.table) == 1 and next(iter(fw.table)).tracked is tracked


def test_trackedness_is_per_family():
    _, fw = firewall([ingress("tcp", 80, ANY4), ingress("tcp", 80, ANY6)], [ALL_OUT6])
    assert fw.decide(inbound(6, 80), IN, 0.0).tracked is True
    assert fw.decide(inbound(6, 80, src=PEER6), IN, 0.0).tracked is False


def test_egress_initiated_flow_untracked_when_inbound_all_open():
    _, fw = firewall([ingress("all", cidr=ANY4)], [egress("tcp", 443, ANY4)])
    assert fw.decide(outbound(6, 443), OUT, 0.0).tracked is False


# --- compiled structure -----------------------------------------------------------------------

def test_all_open_per_direction_family_protocol():
    rules = CompiledRules([sg("g", [ingress("tcp", "0-65535", ANY6)], [ALL_OUT4])], lambda g, v: frozenset())
    assert rules.all_open(True, 4, 6) and rules.all_open(True, 4, 17)
    assert not rules.all_open(True, 6, 6)
    assert rules.all_open(False, 6, 6) and not rules.all_open(False, 6, 17)
    assert not rules.all_open(False, 4, 6)


def test_rules_recompile_only_when_state_version_moves():
    state, fw = firewall([ingress("tcp", 22, ANY4)])
    first = fw.rules
    assert fw.rules is first
    state.authorize("h", [ingress("tcp", 23, ANY4)])
    assert fw.rules is not first
