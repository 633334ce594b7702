"""Reference section 7: the scenarios the engine alone decides (T, W, P, R), through parse and
two firewalls joined by a fake link."""
import pytest
from scapy.layers.inet import ICMP, IP, TCP, IPerror, UDPerror
from scapy.packet import Raw

from emulator.engine.conntrack import UDP_SINGLE, UDP_STREAM
from emulator.engine.packet import parse
from emulator.engine.verdict import (
    CONNTRACK_ALLOWANCE_EXCEEDED,
    ENI_SG_RULES_MISMATCH,
    INFRASTRUCTURE,
    OTHER_PROTO_600S_WINDOW,
    RELATED_ICMP,
    RULE_MATCH,
    TRACKED_FLOW,
    TRACKED_RESPONSE,
    UNTRACKED_ALLOWED_BY_RULE,
    UNTRACKED_RULE_REVOKED,
)
from emulator.model import Direction

from .helpers import (
    ALL_OUT4,
    ALL_OUT6,
    ANY4,
    ANY6,
    INT,
    INT6,
    YOU,
    Net,
    egress,
    ingress,
    instance,
    proto_packet,
    sg,
    tcp,
    topology,
    udp,
)

# --- 7.1 three-tier ---------------------------------------------------------------------------

def three_tier(**db_timeouts) -> Net:
    return Net(topology(
        [sg("alb", [ingress("tcp", 80, ANY4), ingress("tcp", 443, ANY4)], [egress("tcp", 8080, group="sg-app")]),
         sg("app", [ingress("tcp", 8080, group="sg-alb")], [egress("tcp", 3306, group="sg-db")]),
         sg("db", [ingress("tcp", 3306, group="sg-app")], [])],
        [instance("alb", "10.0.1.10", ["alb"], public_ip="198.51.100.10"),
         instance("app", "10.0.2.10", ["app"]),
         instance("db", "10.0.3.10", ["db"], **db_timeouts)]))


def test_t1_internet_to_alb_80_is_tracked():
    net = three_tier()
    conn = net.connect(INT, "alb", 80)
    assert conn.outcome == "open"
    syn = conn.client_sends("A")
    assert syn.at("alb ingress").reason == TRACKED_FLOW
    reply = conn.server_sends()
    assert reply.at("alb egress").reason == TRACKED_RESPONSE and reply.at("alb egress").tracked
    entry = next(iter(net.fw("alb").table))
    assert entry.tracked and entry.initiator is Direction.INGRESS


def test_t1_first_packet_verdict_names_the_rule():
    net = three_tier()
    trip = net.send(tcp(INT, "10.0.1.10", 40000, 80))
    verdict = trip.at("alb ingress")
    assert verdict.reason == RULE_MATCH and verdict.sg_id == "sg-alb" and verdict.tracked is True
    assert verdict.rule.ports.low == 80
    assert verdict.describe() == "ACCEPT by sg-alb ingress tcp 80 from 0.0.0.0/0 (tracked)"


def test_t2_internet_to_alb_22_times_out():
    net = three_tier()
    conn = net.connect(INT, "alb", 22)
    assert conn.outcome == "timeout"
    assert net.fw("alb").counters[ENI_SG_RULES_MISMATCH] == 1 and len(net.fw("alb").table) == 0


def test_t3_alb_to_app_and_reply_without_app_egress_rule():
    net = three_tier()
    conn = net.connect("alb", "app", 8080)
    assert conn.outcome == "open" and conn.exchange()


@pytest.mark.parametrize("client", [INT, YOU, "10.0.3.10"])
def test_t4_non_members_cannot_reach_app(client):
    net = three_tier()
    if client == "10.0.3.10":   # db: blocked already at its own egress
        assert net.connect("db", "app", 8080).outcome == "timeout"
    else:
        assert net.connect(client, "app", 8080).outcome == "timeout"


def test_t5_app_to_db_replies_without_db_outbound_rules():
    net = three_tier()
    conn = net.connect("app", "db", 3306)
    assert conn.outcome == "open" and conn.exchange()


def test_t6_alb_to_db_dropped_at_alb_egress_and_db_ingress():
    net = three_tier()
    assert net.connect("alb", "db", 3306).outcome == "timeout"
    assert net.fw("alb").counters[ENI_SG_RULES_MISMATCH] == 1
    # Even if alb's egress allowed it, db's ingress refuses a non-App-SG source.
    packet = tcp("10.0.1.10", "10.0.3.10", 40000, 3306)
    assert net.fw("db").decide(parse(packet), Direction.INGRESS, net.now).reason == ENI_SG_RULES_MISMATCH


@pytest.mark.parametrize("target,port", [("app", 8080), ("alb", 80), (INT, 443)])
def test_t7_db_cannot_initiate(target, port):
    assert three_tier().connect("db", target, port).outcome == "timeout"


def test_t8_app_to_alb_80_times_out():
    assert three_tier().connect("app", "alb", 80).outcome == "timeout"


def test_t9_closed_port_is_refused():
    assert three_tier().connect("alb", "app", 8080, listening=False).outcome == "refused"


def test_t10_revoke_keeps_open_tracked_connection_but_new_ones_time_out():
    net = three_tier()
    conn = net.connect("app", "db", 3306)
    assert conn.outcome == "open"
    net.state.revoke("db", [ingress("tcp", 3306, group="sg-app")])
    for _ in range(3):
        net.wait(30)
        assert conn.exchange()
    assert net.connect("app", "db", 3306).outcome == "timeout"


def test_t11_idle_past_established_timeout_is_dropped_at_db():
    net = three_tier(tcp_established=60)
    conn = net.connect("app", "db", 3306)
    net.state.revoke("db", [ingress("tcp", 3306, group="sg-app")])
    net.wait(59)
    assert conn.exchange()
    net.wait(61)
    trip = conn.client_sends("PA", b"late")
    assert not trip.delivered
    assert trip.at("app egress").reason == TRACKED_FLOW      # app's own table still has it
    assert trip.at("db ingress").reason == ENI_SG_RULES_MISMATCH


# --- 7.2 web server ---------------------------------------------------------------------------

def web(dual_stack: bool = True) -> Net:
    rules_in = [ingress("tcp", 22, "203.0.113.10/32"), ingress("tcp", 80, ANY4), ingress("tcp", 443, ANY4)]
    rules_out = [ALL_OUT4, ALL_OUT6] if dual_stack else [ALL_OUT4]
    if dual_stack:
        rules_in += [ingress("tcp", 80, ANY6)]
    return Net(topology([sg("web", rules_in, rules_out)],
                        [instance("web", "10.0.1.20", ["web"], ipv6="fd00:10::20")]))


def test_w1_your_ip_reaches_ssh_tracked():
    net = web()
    conn = net.connect(YOU, "web", 22)
    assert conn.outcome == "open"
    assert all(e.tracked for e in net.fw("web").table)


def test_w2_stranger_ssh_times_out():
    assert web().connect(INT, "web", 22).outcome == "timeout"


@pytest.mark.parametrize("client", [INT, YOU, "192.0.2.1"])
def test_w3_any_to_80_is_untracked(client):
    net = web()
    conn = net.connect(client, "web", 80)
    assert conn.outcome == "open" and conn.exchange()
    entries = list(net.fw("web").table)
    assert len(entries) == 1 and not entries[0].tracked
    assert net.fw("web").table.tracked == 0


def test_w3_untracked_reply_is_allowed_by_the_egress_rule():
    net = web()
    conn = net.connect(INT, "web", 80)
    verdict = conn.server_sends().at("web egress")
    assert verdict.reason == UNTRACKED_ALLOWED_BY_RULE and verdict.tracked is False
    assert verdict.rule.protocol == -1 and verdict.rule.direction is Direction.EGRESS


def test_w4_no_listener_on_443_is_refused():
    assert web().connect(INT, "web", 443, listening=False).outcome == "refused"


def test_w5_8080_times_out():
    assert web().connect(INT, "web", 8080).outcome == "timeout"


def test_w6_revoking_80_stalls_open_keepalive_connection_at_once():
    net = web()
    conn = net.connect(INT, "web", 80)
    assert conn.exchange()
    net.state.revoke("web", [ingress("tcp", 80, ANY4)])
    trip = conn.client_sends("PA", b"GET again")
    assert not trip.delivered and trip.last.reason == UNTRACKED_RULE_REVOKED
    assert net.connect(INT, "web", 80).outcome == "timeout"


def test_w7_revoking_22_keeps_ssh_session():
    net = web()
    conn = net.connect(YOU, "web", 22)
    net.state.revoke("web", [ingress("tcp", 22, "203.0.113.10/32")])
    assert conn.exchange()
    assert net.connect(YOU, "web", 22).outcome == "timeout"


def test_w8_after_revoking_outbound_all_new_http_is_tracked():
    net = web()
    net.state.revoke("web", [ALL_OUT4])
    conn = net.connect(INT, "web", 80)
    assert conn.outcome == "open" and conn.exchange()
    assert all(e.tracked for e in net.fw("web").table)
    assert conn.server_sends().at("web egress").reason == TRACKED_RESPONSE


def test_w9_revoking_outbound_all_breaks_open_untracked_http():
    net = web()
    conn = net.connect(INT, "web", 80)
    net.state.revoke("web", [ALL_OUT4])
    assert conn.client_sends("PA", b"GET").delivered          # inbound 80 still allows it
    trip = conn.server_sends("PA", b"200")
    assert not trip.delivered and trip.last.reason == UNTRACKED_RULE_REVOKED


def test_w10_ping_from_internet_times_out():
    net = web()
    assert net.ping(INT, "web") == "timeout"


@pytest.mark.parametrize("action", ["ping", "curl"])
def test_w11_web_reaches_out_and_replies_come_back_tracked(action):
    net = web()
    if action == "ping":
        assert net.ping("web", INT) == "reply"
    else:
        conn = net.connect("web", INT, 443)
        assert conn.outcome == "open" and conn.exchange()
    assert all(e.tracked for e in net.fw("web").table)


# --- 7.3 ICMP, UDP, other protocols -----------------------------------------------------------

def single(ingress_rules, egress_rules=(), name="host", **kw) -> Net:
    return Net(topology([sg(name, ingress_rules, egress_rules)],
                        [instance(name, "10.0.1.30", [name], ipv6="fd00:10::30", **kw)]))


def test_p1_ping_replies_without_outbound_rules():
    net = single([ingress("icmp", cidr=ANY4)])
    assert net.ping(INT, "host") == "reply"
    assert net.fw("host").counters[TRACKED_RESPONSE] == 1


def test_p2_echo_rule_does_not_allow_timestamp():
    net = single([ingress("icmp", cidr=ANY4, icmp_type=8)], [ALL_OUT4])
    assert net.ping(INT, "host") == "reply"
    assert net.ping(INT, "host", request=13) == "timeout"


def test_p2_timestamp_does_not_ride_on_an_echo_flow():
    net = single([ingress("icmp", cidr=ANY4, icmp_type=8)], [])
    assert net.ping(INT, "host", ident=5) == "reply"
    assert net.ping(INT, "host", ident=5, request=13) == "timeout"


def test_p3_icmpv6_echo_rule_allows_ping6_not_ipv4_ping():
    net = single([ingress("icmpv6", cidr=ANY6, icmp_type=128, icmp_code=0)])
    assert net.ping(INT6, "host", v6=True) == "reply"
    assert net.ping(INT, "host") == "timeout"


def test_p4_continuous_ping_survives_revoke_until_idle_past_icmp_timeout():
    net = single([ingress("icmp", cidr=ANY4)])
    assert net.ping(INT, "host", ident=3) == "reply"
    net.state.revoke("host", [ingress("icmp", cidr=ANY4)])
    for _ in range(10):
        net.wait(1)
        assert net.ping(INT, "host", ident=3) == "reply"
    net.wait(31)
    assert net.ping(INT, "host", ident=3) == "timeout"


def p5() -> Net:
    return Net(topology([sg("a", [], [ALL_OUT4]), sg("b", [ingress("udp", 53, "10.0.1.40/32")], [])],
                        [instance("a", "10.0.1.40", ["a"]), instance("b", "10.0.1.41", ["b"])]))


def test_p5_udp_reply_reaches_a_without_b_outbound_rules():
    net = p5()
    assert net.udp_exchange("a", "b", 53) == "reply"


def test_p6_after_udp_timeout_b_cannot_send_to_old_port():
    net = p5()
    assert net.udp_exchange("a", "b", 53, sport=5000) == "reply"
    net.wait(31)
    trip = net.send(udp("10.0.1.41", "10.0.1.40", 53, 5000))
    assert not trip.delivered and trip.at("b egress").reason == ENI_SG_RULES_MISMATCH


def test_p6_within_udp_timeout_b_may_still_answer():
    net = p5()
    assert net.udp_exchange("a", "b", 53, sport=5000) == "reply"
    net.wait(29)
    assert net.send(udp("10.0.1.41", "10.0.1.40", 53, 5000)).delivered


def test_p7_more_than_one_exchange_makes_a_stream_with_180s_timeout():
    net = p5()
    for _ in range(2):
        assert net.udp_exchange("a", "b", 53, sport=5001) == "reply"
    entry = next(iter(net.fw("b").table))
    assert entry.state == UDP_STREAM and entry.expires == net.now + 180
    net.wait(170)
    assert net.send(udp("10.0.1.41", "10.0.1.40", 53, 5001)).delivered
    net.wait(181)
    assert not net.send(udp("10.0.1.41", "10.0.1.40", 53, 5001)).delivered


def test_p7_single_exchange_stays_single():
    net = p5()
    assert net.udp_exchange("a", "b", 53, sport=5002) == "reply"
    assert next(iter(net.fw("b").table)).state == UDP_SINGLE


def test_p8_udp_from_all_open_outbound_is_tracked_when_inbound_is_closed():
    net = Net(topology([sg("a", [], [ALL_OUT4])], [instance("a", "10.0.1.40", ["a"])]))
    assert net.udp_exchange("a", INT, 53) == "reply"
    assert all(e.tracked for e in net.fw("a").table)


def test_p9_port_unreachable_is_related_at_both_ends():
    net = Net(topology([sg("a", [], [ALL_OUT4]), sg("b", [ingress("udp", 9999, ANY4)], [])],
                       [instance("a", "10.0.1.40", ["a"]), instance("b", "10.0.1.41", ["b"])]))
    assert net.udp_exchange("a", "b", 9999, answer=False, sport=6000) == "sent"
    original = IPerror(src="10.0.1.40", dst="10.0.1.41") / UDPerror(sport=6000, dport=9999)
    trip = net.send(IP(src="10.0.1.41", dst="10.0.1.40") / ICMP(type=3, code=3) / original)
    assert trip.delivered
    assert [v.reason for _, v in trip.verdicts] == [RELATED_ICMP, RELATED_ICMP]


def p10() -> Net:
    return Net(topology([sg("a", [], [ALL_OUT4]), sg("b", [ingress(47, cidr=ANY4)], [ALL_OUT4])],
                        [instance("a", "10.0.1.40", ["a"]), instance("b", "10.0.1.41", ["b"])]))


def test_p10_peer_may_initiate_same_protocol_within_600s():
    net = p10()
    assert net.send(proto_packet("10.0.1.40", "10.0.1.41", 47)).delivered
    net.wait(599)
    trip = net.send(proto_packet("10.0.1.41", "10.0.1.40", 47))
    assert trip.delivered and trip.at("a ingress").reason == OTHER_PROTO_600S_WINDOW


def test_p11_after_600s_idle_it_is_dropped():
    net = p10()
    assert net.send(proto_packet("10.0.1.40", "10.0.1.41", 47)).delivered
    net.wait(601)
    trip = net.send(proto_packet("10.0.1.41", "10.0.1.40", 47))
    assert not trip.delivered and trip.at("a ingress").reason == ENI_SG_RULES_MISMATCH


def test_p10_other_protocol_does_not_open_a_different_protocol():
    net = p10()
    assert net.send(proto_packet("10.0.1.40", "10.0.1.41", 47)).delivered
    assert not net.send(proto_packet("10.0.1.41", "10.0.1.40", 50)).delivered


@pytest.mark.parametrize("proto,port", [(6, 5432), (17, 1), (6, 22), (47, 0), (1, 0)])
def test_p12_all_protocols_rule_ignores_ports(proto, port):
    net = single([ingress("all", ports=22, cidr=ANY4)])
    if proto == 6:
        assert net.connect(INT, "host", port).outcome == "open"
    elif proto == 17:
        assert net.udp_exchange(INT, "host", port) == "reply"
    elif proto == 1:
        assert net.ping(INT, "host") == "reply"
    else:
        assert net.send(proto_packet(INT, "10.0.1.30", proto)).delivered


def test_p13_protocol_47_rule_with_ports_allows_all_gre():
    net = single([ingress(47, ports="1000-2000", cidr=ANY4)])
    assert net.send(proto_packet(INT, "10.0.1.30", 47)).delivered
    assert not net.send(proto_packet(INT, "10.0.1.30", 50)).delivered


def test_p14_frag_needed_from_a_router_is_related_to_the_tracked_flow():
    net = Net(topology([sg("a", [], [ALL_OUT4])], [instance("a", "10.0.1.40", ["a"])]))
    conn = net.connect("a", INT, 443)
    assert conn.outcome == "open"
    original = bytes(IP(src="10.0.1.40", dst=INT) / TCP(sport=conn.cport, dport=443, flags="PA"))[:28]
    trip = net.send(IP(src="192.0.2.254", dst="10.0.1.40") / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(original))
    assert trip.delivered and trip.last.reason == RELATED_ICMP


def test_p14_unrelated_frag_needed_is_dropped():
    net = Net(topology([sg("a", [], [ALL_OUT4])], [instance("a", "10.0.1.40", ["a"])]))
    original = bytes(IP(src="10.0.1.40", dst=INT) / TCP(sport=1234, dport=443, flags="PA"))[:28]
    trip = net.send(IP(src="192.0.2.254", dst="10.0.1.40") / ICMP(type=3, code=4) / Raw(original))
    assert not trip.delivered and trip.last.reason == ENI_SG_RULES_MISMATCH


def test_p14_related_icmp_can_be_switched_off():
    net = Net(topology([sg("a", [], [ALL_OUT4])], [instance("a", "10.0.1.40", ["a"])], related_icmp=False))
    conn = net.connect("a", INT, 443)
    original = bytes(IP(src="10.0.1.40", dst=INT) / TCP(sport=conn.cport, dport=443))[:28]
    assert not net.send(IP(src="192.0.2.254", dst="10.0.1.40") / ICMP(type=3, code=4) / Raw(original)).delivered


# --- 7.4 references, unions, families, limits -------------------------------------------------

def default_sg_net() -> Net:
    return Net(topology([sg("default", [ingress("all", group="sg-default")], [ALL_OUT4, ALL_OUT6])],
                        [instance("a", "10.0.1.40", ["default"], ipv6="fd00:10::40"),
                         instance("b", "10.0.1.41", ["default"], ipv6="fd00:10::41")]))


@pytest.mark.parametrize("v6", [False, True])
def test_r1_default_sg_members_talk_and_internet_does_not(v6):
    net = default_sg_net()
    assert net.connect("a", "b", 5432, v6=v6).outcome == "open"
    assert net.udp_exchange("a", "b", 9000) == "reply"
    assert net.ping("b", "a", v6=v6) == "reply"
    assert net.connect(INT6 if v6 else INT, "a", 22, v6=v6).outcome == "timeout"


def r2() -> Net:
    return Net(topology([sg("x", [ingress("tcp", 22, ANY4)], [ALL_OUT4])],
                        [instance("a", "10.0.1.40", ["x"]), instance("b", "10.0.1.41", ["x"])]))


def test_r2_no_implicit_self_allow():
    assert r2().connect("a", "b", 5432).outcome == "timeout"


def test_r3_self_reference_rule_then_connects():
    net = r2()
    net.state.authorize("x", [ingress("all", group="sg-x")])
    assert net.connect("a", "b", 5432).outcome == "open"


def test_r4_reference_never_matches_public_ip_source():
    net = Net(topology([sg("a", [], [ALL_OUT4]), sg("b", [ingress("tcp", 5432, group="sg-a")], [ALL_OUT4])],
                       [instance("a", "10.0.1.40", ["a"], public_ip="198.51.100.40"),
                        instance("b", "10.0.1.41", ["b"], public_ip="198.51.100.41")]))
    # Through the IGW, b sees a's public IP as the source.
    assert net.connect("198.51.100.40", "b", 5432).outcome == "timeout"
    assert net.connect("a", "b", 5432).outcome == "open"


def test_r5_union_of_sgs_most_permissive_wins():
    net = Net(topology([sg("one", [ingress("tcp", 22, "10.0.0.0/16")]), sg("two", [ingress("tcp", 22, ANY4)])],
                       [instance("h", "10.0.1.40", ["one", "two"])]))
    assert net.connect(INT, "h", 22).outcome == "open"
    assert net.connect("10.0.9.9", "h", 22).outcome == "open"


def test_r6_ipv4_any_rule_never_matches_ipv6():
    net = single([ingress("tcp", 80, ANY4)], [ALL_OUT4, ALL_OUT6])
    assert net.connect(INT6, "host", 80, v6=True).outcome == "timeout"
    assert net.connect(INT, "host", 80).outcome == "open"


def test_r7_revoke_breaks_untracked_v4_but_not_tracked_v6():
    net = single([ingress("tcp", 80, ANY4), ingress("tcp", 80, ANY6)], [ALL_OUT4])
    v4 = net.connect(INT, "host", 80)
    v6 = net.connect(INT6, "host", 80, v6=True)
    assert v4.outcome == v6.outcome == "open"
    tracked = {e.version: e.tracked for e in net.fw("host").table}
    assert tracked == {4: False, 6: True}
    net.state.revoke("host", [ingress("tcp", 80, ANY4), ingress("tcp", 80, ANY6)])
    assert not v4.client_sends("PA", b"x").delivered
    assert v6.exchange()


def test_r13_dns_to_vpc_plus_two_is_never_filtered():
    net = Net(topology([sg("db", [], [])], [instance("db", "10.0.3.10", ["db"])]))
    query = net.send(udp("10.0.3.10", "10.0.0.2", 5353, 53))
    answer = net.send(udp("10.0.0.2", "10.0.3.10", 53, 5353))
    assert query.delivered and answer.delivered
    assert query.last.reason == answer.last.reason == INFRASTRUCTURE
    assert len(net.fw("db").table) == 0
    assert net.send(tcp("10.0.3.10", "10.0.0.2", 40000, 53)).delivered
    assert not net.send(udp("10.0.3.10", "10.0.0.3", 5353, 53)).delivered


def test_r14_allowance_drops_flow_n_plus_1_and_spares_untracked():
    n = 5
    net = Net(topology([sg("s", [ingress("tcp", 22, "203.0.113.0/24"), ingress("tcp", 80, ANY4)], [ALL_OUT4])],
                       [instance("s", "10.0.1.40", ["s"])], conntrack_allowance=n))
    for _ in range(n):
        assert net.connect(YOU, "s", 22).outcome == "open"
    trip = net.send(tcp(YOU, "10.0.1.40", 50000, 22))
    assert not trip.delivered and trip.last.reason == CONNTRACK_ALLOWANCE_EXCEEDED
    assert net.fw("s").counters["conntrack_allowance_exceeded"] == 1
    for _ in range(3):
        assert net.connect(INT, "s", 80).outcome == "open"      # untracked: not counted
    assert net.fw("s").table.tracked == n and net.fw("s").table.untracked == 3
