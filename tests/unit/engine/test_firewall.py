"""EniFirewall specifics: infrastructure traffic, ICMP errors, counters, verdict text, robustness."""
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6PacketTooBig,
    ICMPv6TimeExceeded,
    IPv6,
)

from emulator.engine.firewall import ACCEPT, DROP, Verdict, build_firewalls
from emulator.engine.packet import Packet, parse
from emulator.engine.verdict import (
    ENI_SG_RULES_MISMATCH,
    INFRASTRUCTURE,
    MALFORMED,
    RELATED_ICMP,
    RULE_MATCH,
    TRACKED_RESPONSE,
    UNTRACKED_RULE_REVOKED,
)
from emulator.model import Direction

from .helpers import ALL_OUT4, ALL_OUT6, ANY4, ANY6, INT, INT6, Net, egress, ingress, instance, sg, tcp, topology, udp

A4, A6 = "10.0.1.70", "fd00:10::70"


def closed_net(**options) -> Net:
    """An instance with no rules at all."""
    return Net(topology([sg("a")], [instance("a", A4, ["a"], ipv6=A6)], **options))


# --- infrastructure ---------------------------------------------------------------------------

@pytest.mark.parametrize("data", [
    IPv6(src=A6, dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="fd00:10::1"),
    IPv6(src="fe80::1", dst=A6) / ICMPv6ND_NA(tgt="fe80::1"),
    IPv6(src="fe80::2", dst="ff02::2") / ICMPv6ND_RS(),
    IPv6(src="fe80::1", dst="ff02::1") / ICMPv6ND_RA(),
    IPv6(src="::", dst="ff02::16") / ICMPv6MLReport2(),
    IPv6(src="fe80::1", dst="fe80::2") / TCP(dport=22),
    IPv6(src=A6, dst="fe80::1") / ICMPv6EchoRequest(),
    IP(src=A4, dst="169.254.169.254") / TCP(dport=80),
    IP(src=A4, dst="10.0.0.2") / UDP(sport=3000, dport=53),
], ids=["ns", "na", "rs", "ra", "mld", "link-local-tcp", "ping-router-ll", "metadata", "dns"])
@pytest.mark.parametrize("direction", [Direction.INGRESS, Direction.EGRESS])
def test_infrastructure_is_never_filtered_and_never_tracked(data, direction):
    net = closed_net()
    verdict = net.fw("a").decide(parse(bytes(data)), direction, 0.0)
    assert verdict.reason == INFRASTRUCTURE and verdict.accepted
    assert len(net.fw("a").table) == 0


@pytest.mark.parametrize("data", [
    IP(src=A4, dst="10.0.0.2") / UDP(sport=3000, dport=54),
    IP(src=A4, dst="10.0.0.3") / UDP(sport=3000, dport=53),
    IP(src=A4, dst="10.0.0.2") / ICMP(),
    IPv6(src=A6, dst="fd00:10::1") / ICMPv6EchoRequest(),
], ids=["dns-wrong-port", "dns-wrong-address", "ping-dns-address", "global-v6-ping"])
def test_near_infrastructure_is_filtered(data):
    net = closed_net()
    assert net.fw("a").decide(parse(bytes(data)), Direction.EGRESS, 0.0).reason == ENI_SG_RULES_MISMATCH


# --- ICMP errors ------------------------------------------------------------------------------

def client_net(**options) -> Net:
    return Net(topology([sg("a", [], [ALL_OUT4, ALL_OUT6])], [instance("a", A4, ["a"], ipv6=A6)], **options))


@pytest.mark.parametrize("icmp_type,code", [(3, 0), (3, 1), (3, 3), (3, 4), (3, 13), (11, 0), (12, 0)])
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_icmp_errors_about_an_open_flow_are_related(icmp_type, code, transport):
    net = client_net()
    if transport == "tcp":
        assert net.send(tcp(A4, INT, 41000, 443)).delivered
        inner = IPerror(src=A4, dst=INT) / TCPerror(sport=41000, dport=443)
    else:
        assert net.send(udp(A4, INT, 41000, 443)).delivered
        inner = IPerror(src=A4, dst=INT) / UDPerror(sport=41000, dport=443)
    trip = net.send(IP(src="192.0.2.1", dst=A4) / ICMP(type=icmp_type, code=code) / inner)
    assert trip.delivered and trip.last.reason == RELATED_ICMP
    assert len(net.fw("a").table) == 1          # errors never create entries


@pytest.mark.parametrize("inner", [
    IPerror(src=A4, dst=INT) / TCPerror(sport=41001, dport=443),   # other source port
    IPerror(src=A4, dst=INT) / TCPerror(sport=41000, dport=444),   # other destination port
    IPerror(src=A4, dst="192.0.2.9") / TCPerror(sport=41000, dport=443),
    IPerror(src=A4, dst=INT) / UDPerror(sport=41000, dport=443),   # other protocol
    IPerror(src=INT, dst=A4) / TCPerror(sport=443, dport=41000),   # wrong way round
], ids=["sport", "dport", "address", "protocol", "reversed"])
def test_icmp_errors_about_other_flows_are_dropped(inner):
    net = client_net()
    assert net.send(tcp(A4, INT, 41000, 443)).delivered
    trip = net.send(IP(src="192.0.2.1", dst=A4) / ICMP(type=3, code=1) / inner)
    assert not trip.delivered and trip.last.reason == ENI_SG_RULES_MISMATCH


def test_icmp_error_after_flow_expired_is_dropped():
    net = client_net()
    assert net.send(udp(A4, INT, 41000, 53)).delivered
    net.wait(31)
    inner = IPerror(src=A4, dst=INT) / UDPerror(sport=41000, dport=53)
    assert not net.send(IP(src=INT, dst=A4) / ICMP(type=3, code=3) / inner).delivered


def test_icmp_error_about_a_ping_is_related():
    net = client_net()
    assert net.send(IP(src=A4, dst=INT) / ICMP(type=8, id=5)).delivered
    error = IP(src="192.0.2.1", dst=A4) / ICMP(type=11, code=0) / IPerror(src=A4, dst=INT) / ICMP(type=8, id=5)
    assert net.send(error).last.reason == RELATED_ICMP


@pytest.mark.parametrize("error", [ICMPv6DestUnreach(code=1), ICMPv6PacketTooBig(mtu=1280),
                                   ICMPv6TimeExceeded()])
def test_icmpv6_errors_are_related(error):
    net = client_net()
    assert net.send(tcp(A6, INT6, 41000, 443)).delivered
    original = IPv6(src=A6, dst=INT6) / TCP(sport=41000, dport=443)
    trip = net.send(IPv6(src="2001:db8::1", dst=A6) / error / original)
    assert trip.last.reason == RELATED_ICMP


def test_icmp_error_allowed_by_a_rule_needs_no_flow_and_makes_no_entry():
    net = Net(topology([sg("a", [ingress("icmp", cidr=ANY4, icmp_type=3, icmp_code=4)])],
                       [instance("a", A4, ["a"])]))
    trip = net.send(IP(src="192.0.2.1", dst=A4) / ICMP(type=3, code=4) / IPerror(src=A4, dst=INT) / TCPerror())
    assert trip.delivered and trip.last.reason == RULE_MATCH and trip.last.tracked is None
    assert len(net.fw("a").table) == 0


def test_icmp_error_related_to_an_untracked_flow():
    net = Net(topology([sg("a", [ingress("tcp", 80, ANY4)], [ALL_OUT4])], [instance("a", A4, ["a"])]))
    assert net.send(tcp(INT, A4, 41000, 80)).delivered
    assert net.fw("a").table.untracked == 1
    # with a's egress closed, only relatedness lets its own stack's error out
    net.state.revoke("a", [ALL_OUT4])
    error = IP(src=A4, dst=INT) / ICMP(type=3, code=3) / IPerror(src=INT, dst=A4) / TCPerror(sport=41000, dport=80)
    assert net.send(error).last.reason == RELATED_ICMP


# --- counters, verdict text, robustness -------------------------------------------------------

def test_counters_per_verdict_and_reason():
    net = Net(topology([sg("a", [ingress("tcp", 22, ANY4)])], [instance("a", A4, ["a"])]))
    net.connect(INT, "a", 22)
    net.connect(INT, "a", 23)
    counters = net.fw("a").counters
    assert counters["accepted"] == 3 and counters["dropped"] == 1
    assert counters[RULE_MATCH] == 1 and counters[TRACKED_RESPONSE] == 1
    assert counters[ENI_SG_RULES_MISMATCH] == 1 and counters["malformed"] == 0


def test_malformed_is_counted_and_dropped():
    net = closed_net()
    verdict = net.fw("a").malformed()
    assert verdict.action == DROP and verdict.reason == MALFORMED
    assert net.fw("a").counters["malformed"] == 1 and net.fw("a").counters["dropped"] == 1


def test_packet_of_unknown_version_is_malformed():
    net = closed_net()
    assert net.fw("a").decide(Packet.build(5, 1, 2, 6), Direction.INGRESS, 0.0).reason == MALFORMED


@pytest.mark.parametrize("verdict,text", [
    (Verdict(DROP, ENI_SG_RULES_MISMATCH), "DROP: no security group rule allows it"),
    (Verdict(ACCEPT, TRACKED_RESPONSE, tracked=True), "ACCEPT: reply of a tracked flow (no rule needed) (tracked)"),
    (Verdict(DROP, UNTRACKED_RULE_REVOKED, tracked=False),
     "DROP: untracked flow whose allowing rule is gone (untracked)"),
    (Verdict(ACCEPT, RULE_MATCH, ingress("tcp", 80, ANY6), "sg-1", False),
     "ACCEPT by sg-1 ingress tcp 80 from ::/0 (untracked)"),
    (Verdict(ACCEPT, RULE_MATCH, egress("all", cidr=ANY4), "sg-2", True), "ACCEPT by sg-2 egress all to 0.0.0.0/0 (tracked)"),
])
def test_describe(verdict, text):
    assert verdict.describe() == text
    assert verdict.accepted is (verdict.action == ACCEPT)


def test_one_firewall_per_instance_sharing_one_state():
    topo = topology([sg("a"), sg("b")], [instance("x", "10.0.1.1", ["a"]), instance("y", "10.0.1.2", ["b"])])
    state, firewalls = build_firewalls(topo)
    assert set(firewalls) == {"x", "y"}
    assert all(fw._state is state for fw in firewalls.values())
    assert firewalls["x"].table is not firewalls["y"].table


def test_each_eni_has_its_own_table():
    net = Net(topology([sg("a", [ingress("all", cidr=ANY4)], [ALL_OUT4])],
                       [instance("x", "10.0.1.1", ["a"]), instance("y", "10.0.1.2", ["a"])]))
    assert net.connect("x", "y", 5000).outcome == "open"
    assert len(net.fw("x").table) == 1 and len(net.fw("y").table) == 1
    x_entry, y_entry = next(iter(net.fw("x").table)), next(iter(net.fw("y").table))
    assert x_entry.initiator is Direction.EGRESS and y_entry.initiator is Direction.INGRESS
    assert x_entry.local_port == y_entry.remote_port
