"""Hypothesis properties: decide never raises, and tracked flows outlive any revoke until idle."""
from ipaddress import ip_address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.engine.firewall import build_firewalls
from emulator.engine.packet import Packet
from emulator.model import Direction

from .helpers import ALL_OUT4, ANY4, ANY6, INT, Net, egress, icmp, ingress, instance, sg, tcp, topology, udp

A4, A6, B4 = "10.0.1.80", "fd00:10::80", "10.0.1.81"

RULES = [ingress("tcp", 22, ANY4), ingress("tcp", "1000-2000", "198.51.100.0/24"), ingress("udp", 53, ANY6),
         ingress("icmp", cidr=ANY4, icmp_type=8), ingress("all", group="sg-b"), ingress(47, cidr=ANY4),
         egress("tcp", 443, ANY4), ALL_OUT4, egress("icmpv6", cidr=ANY6), egress("udp", 53, ANY6)]


def _topology():
    return topology([sg("a", [r for r in RULES if r.direction is Direction.INGRESS],
                        [r for r in RULES if r.direction is Direction.EGRESS]),
                     sg("b", [ingress("all", group="sg-a")], [ALL_OUT4])],
                    [instance("a", A4, ["a"], ipv6=A6), instance("b", B4, ["b"])], conntrack_allowance=50)


OWN = [int(ip_address(A4)), int(ip_address(A6)), int(ip_address(B4))]
addresses = st.one_of(st.sampled_from(OWN), st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 128 - 1),
                      st.sampled_from([0, int(ip_address("198.51.100.7"))]))
small = st.integers(-1, 70000)


@st.composite
def packets(draw, depth=1):
    inner = draw(st.none() | packets(depth=0)) if depth else None
    return Packet(draw(st.sampled_from([4, 6, 0, 5])), draw(addresses), draw(addresses),
                  draw(st.sampled_from([1, 6, 17, 47, 58, 0, 255, -1])), draw(small), draw(small),
                  draw(st.integers(0, 255)), draw(small), draw(small), draw(small), draw(small),
                  draw(st.sampled_from([0, 0, 8, 1480])), draw(st.booleans()), inner)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(packets(), st.sampled_from(list(Direction)), st.floats(0, 1e6)), max_size=12))
def test_decide_never_raises(steps):
    _, firewalls = build_firewalls(_topology())
    fw = firewalls["a"]
    for packet, direction, now in sorted(steps, key=lambda s: s[2]):
        verdict = fw.decide(packet, direction, now)
        assert verdict.action in ("ACCEPT", "DROP")
        assert fw.table.tracked + fw.table.untracked == len(fw.table) <= 2 * len(steps)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(range(len(RULES)))),
       st.lists(st.floats(0, 100), min_size=1, max_size=6),
       st.sampled_from(["ssh", "udp", "ping"]))
def test_tracked_flow_replies_pass_whatever_is_revoked(revoked, gaps, kind):
    net = Net(_topology())
    if kind == "ssh":
        conn = net.connect("198.51.100.7", "a", 1500)     # narrow source: tracked
        assert conn.outcome == "open" and next(iter(net.fw("a").table)).tracked
        reply = lambda: conn.server_sends("PA", b"out")
        request = lambda: conn.client_sends("PA", b"in")
    elif kind == "udp":
        assert net.send(udp(A6, "2001:db8::9", 5000, 53)).delivered
        assert next(iter(net.fw("a").table)).tracked
        reply = lambda: net.send(udp("2001:db8::9", A6, 53, 5000))
        request = lambda: net.send(udp(A6, "2001:db8::9", 5000, 53))
    else:
        assert net.ping(INT, "a", ident=11) == "reply" and next(iter(net.fw("a").table)).tracked
        reply = lambda: net.send(icmp(A4, INT, 0, 0, 11))
        request = lambda: net.send(icmp(INT, A4, 8, 0, 11))
    rules = [RULES[i] for i in sorted(revoked)]
    for rule in rules:
        net.state.revoke("a", [rule])
    for gap in gaps:   # every gap is below the shortest idle timeout in play (30 s for UDP/ICMP)
        net.wait(min(gap, 29))
        assert reply().delivered
        assert request().delivered


@settings(max_examples=100, deadline=None)
@given(st.integers(31, 10000))
def test_tracked_flow_dies_after_idle_timeout_once_rule_is_revoked(idle):
    net = Net(_topology())
    assert net.send(udp(A6, "2001:db8::9", 5000, 53)).delivered
    net.state.revoke("a", [egress("udp", 53, ANY6)])
    net.wait(idle)
    assert not net.send(udp("2001:db8::9", A6, 53, 5000)).delivered


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 65535), st.integers(1, 65535))
def test_untracked_flow_never_outlives_its_rule(sport, port):
    net = Net(topology([sg("a", [ingress("tcp", "0-65535", ANY4)], [ALL_OUT4])], [instance("a", A4, ["a"])]))
    assert net.send(tcp(INT, A4, sport, port)).delivered
    net.state.revoke("a", [ingress("tcp", "0-65535", ANY4)])
    assert not net.send(tcp(INT, A4, sport, port, "A")).delivered
