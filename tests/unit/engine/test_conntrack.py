"""Connection tracking: TCP state machine, every idle timeout, UDP single/stream, ICMP keys,
other protocols, fragments, expiry, per-instance timeouts."""
import pytest
from scapy.layers.inet import ICMP, IP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.packet import Raw

from emulator.engine import conntrack
from emulator.engine.conntrack import (
    CLOSE,
    CLOSE_WAIT,
    ESTABLISHED,
    FIN_WAIT,
    LAST_ACK,
    OTHER,
    SYN_RECV,
    SYN_SENT,
    TIME_WAIT,
    UDP_SINGLE,
    UDP_STREAM,
    flow_key,
    initial_state,
    tcp_event,
)
from emulator.engine.packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet
from emulator.engine.verdict import (
    ENI_SG_RULES_MISMATCH,
    FRAGMENT,
    FRAGMENT_OF_FLOW,
    RULE_MATCH,
    TRACKED_FLOW,
    TRACKED_RESPONSE,
)
from emulator.model import ConntrackTimeouts, Direction

from .helpers import ALL_OUT4, ANY4, INT, Net, ingress, instance, sg, tcp, topology, udp

SERVER = "10.0.1.60"


def server_net(rules_in=None, rules_out=(), **timeouts) -> Net:
    rules_in = rules_in if rules_in is not None else [ingress("tcp", 22, ANY4), ingress("udp", 53, ANY4)]
    return Net(topology([sg("s", rules_in, list(rules_out))], [instance("s", SERVER, ["s"], **timeouts)]))


def entry_of(net: Net):
    entries = list(net.fw("s").table)
    assert len(entries) == 1, entries
    return entries[0]


# --- TCP state machine ------------------------------------------------------------------------

@pytest.mark.parametrize("flags,event", [
    (TCP_SYN, "SYN"), (TCP_SYN | TCP_ACK, "SYNACK"), (TCP_ACK, "ACK"), (TCP_FIN | TCP_ACK, "FIN"),
    (TCP_FIN, "FIN"), (TCP_RST, "RST"), (TCP_RST | TCP_ACK, "RST"), (TCP_SYN | TCP_RST, "RST"), (0, "NONE"),
    (0x08 | TCP_ACK, "ACK"),
])
def test_tcp_events(flags, event):
    assert tcp_event(flags) == event


# (client or server, flags) steps -> the state after each, from the server ENI's point of view
LIFECYCLES = {
    "handshake": [("c", "S", SYN_SENT), ("s", "SA", SYN_RECV), ("c", "A", ESTABLISHED)],
    "client closes first": [("c", "S", SYN_SENT), ("s", "SA", SYN_RECV), ("c", "A", ESTABLISHED),
                            ("c", "FA", FIN_WAIT), ("s", "A", FIN_WAIT), ("s", "FA", LAST_ACK),
                            ("c", "A", TIME_WAIT)],
    "server closes first": [("c", "S", SYN_SENT), ("s", "SA", SYN_RECV), ("c", "A", ESTABLISHED),
                            ("s", "FA", CLOSE_WAIT), ("c", "A", CLOSE_WAIT), ("c", "FA", LAST_ACK),
                            ("s", "A", TIME_WAIT)],
    "refused": [("c", "S", SYN_SENT), ("s", "RA", CLOSE)],
    "reset mid-stream": [("c", "S", SYN_SENT), ("s", "SA", SYN_RECV), ("c", "A", ESTABLISHED),
                         ("c", "PA", ESTABLISHED), ("c", "R", CLOSE)],
    "server resets": [("c", "S", SYN_SENT), ("s", "SA", SYN_RECV), ("c", "A", ESTABLISHED), ("s", "R", CLOSE)],
    "retransmits": [("c", "S", SYN_SENT), ("c", "S", SYN_SENT), ("s", "SA", SYN_RECV), ("s", "SA", SYN_RECV),
                    ("c", "A", ESTABLISHED)],
    "fin during handshake": [("c", "S", SYN_SENT), ("s", "SA", SYN_RECV), ("c", "FA", FIN_WAIT)],
    "mid-stream start": [("c", "PA", ESTABLISHED), ("s", "A", ESTABLISHED)],
    "mid-stream fin": [("c", "FA", FIN_WAIT), ("s", "FA", LAST_ACK), ("c", "A", TIME_WAIT)],
}


@pytest.mark.parametrize("name", LIFECYCLES)
def test_tcp_lifecycle(name):
    net = server_net()
    conn_port = 41000
    for side, flags, state in LIFECYCLES[name]:
        data = tcp(INT, SERVER, conn_port, 22, flags) if side == "c" else tcp(SERVER, INT, 22, conn_port, flags)
        assert net.send(data).delivered, (side, flags)
        assert entry_of(net).state == state, (side, flags)


TIMEOUT_OF_STATE = [
    ([("c", "S")], SYN_SENT, "tcp_syn_sent", 120),
    ([("c", "S"), ("s", "SA")], SYN_RECV, "tcp_syn_recv", 60),
    ([("c", "S"), ("s", "SA"), ("c", "A")], ESTABLISHED, "tcp_established", 432000),
    ([("c", "PA"), ("c", "FA")], FIN_WAIT, "tcp_fin_wait", 120),
    ([("c", "PA"), ("s", "FA")], CLOSE_WAIT, "tcp_close_wait", 60),
    ([("c", "PA"), ("s", "FA"), ("c", "FA")], LAST_ACK, "tcp_last_ack", 30),
    ([("c", "PA"), ("s", "FA"), ("c", "FA"), ("s", "A")], TIME_WAIT, "tcp_time_wait", 120),
    ([("c", "S"), ("s", "R")], CLOSE, "tcp_close", 10),
]


def _drive(net, steps, port=41000):
    for side, flags in steps:
        data = tcp(INT, SERVER, port, 22, flags) if side == "c" else tcp(SERVER, INT, 22, port, flags)
        assert net.send(data).delivered


@pytest.mark.parametrize("steps,state,field,default", TIMEOUT_OF_STATE)
def test_each_tcp_state_uses_its_default_timeout(steps, state, field, default):
    net = server_net()
    _drive(net, steps)
    entry = entry_of(net)
    assert entry.state == state and entry.expires == net.now + default
    assert getattr(ConntrackTimeouts(), field) == default


@pytest.mark.parametrize("steps,state,field,default", TIMEOUT_OF_STATE)
def test_each_tcp_state_timeout_is_configurable_per_instance(steps, state, field, default):
    net = server_net(**{field: 77})
    _drive(net, steps)
    assert entry_of(net).expires == net.now + 77
    # the reply side of an expired flow is no longer a tracked response (s has no egress rules)
    net.wait(77)
    assert not net.send(tcp(SERVER, INT, 22, 41000, "PA")).delivered


@pytest.mark.parametrize("steps,state,field,default", TIMEOUT_OF_STATE)
def test_idle_just_under_timeout_still_passes(steps, state, field, default):
    net = server_net(**{field: 90})
    _drive(net, steps)
    net.wait(89.9)
    trip = net.send(tcp(SERVER, INT, 22, 41000, "A"))
    assert trip.delivered and trip.last.reason == TRACKED_RESPONSE


def test_set_timeouts_applies_from_the_next_packet():
    net = server_net()
    _drive(net, [("c", "S"), ("s", "SA"), ("c", "A")])
    net.fw("s").set_timeouts(ConntrackTimeouts(tcp_established=60))
    assert entry_of(net).expires == net.now + 432000
    _drive(net, [("c", "PA")])
    assert entry_of(net).expires == net.now + 60


@pytest.mark.parametrize("old_state_steps", [[("c", "S"), ("s", "R")],
                                             [("c", "PA"), ("s", "FA"), ("c", "FA"), ("s", "A")]],
                         ids=["close", "time_wait"])
def test_new_syn_on_closed_entry_starts_a_new_flow_checked_against_rules(old_state_steps):
    net = server_net()
    _drive(net, old_state_steps)
    trip = net.send(tcp(INT, SERVER, 41000, 22, "S"))
    assert trip.last.reason == RULE_MATCH and entry_of(net).state == SYN_SENT
    net = server_net()
    _drive(net, old_state_steps)
    net.state.revoke("s", [ingress("tcp", 22, ANY4)])
    assert net.send(tcp(INT, SERVER, 41000, 22, "S")).last.reason == ENI_SG_RULES_MISMATCH
    assert len(net.fw("s").table) == 0


def test_syn_on_established_entry_is_part_of_the_flow():
    net = server_net()
    _drive(net, [("c", "S"), ("s", "SA"), ("c", "A")])
    assert net.send(tcp(INT, SERVER, 41000, 22, "S")).last.reason == TRACKED_FLOW
    assert entry_of(net).state == ESTABLISHED


def test_mid_stream_packet_recreates_entry_after_expiry_when_rule_allows():
    net = server_net(tcp_established=60)
    _drive(net, [("c", "S"), ("s", "SA"), ("c", "A")])
    net.wait(61)
    trip = net.send(tcp(INT, SERVER, 41000, 22, "PA"))
    assert trip.last.reason == RULE_MATCH and entry_of(net).state == ESTABLISHED


def test_entry_counts_packets_and_bytes_per_direction():
    net = server_net()
    _drive(net, [("c", "S"), ("s", "SA"), ("c", "A")])
    net.send(tcp(INT, SERVER, 41000, 22, "PA", b"x" * 100))
    entry = entry_of(net)
    assert (entry.packets_ingress, entry.packets_egress) == (3, 1)
    assert entry.bytes_ingress == 40 + 40 + 140 and entry.bytes_egress == 40
    assert entry.initiator is Direction.INGRESS and entry.first_seen <= entry.last_seen == net.now
    assert entry.rule.ports.low == 22 and entry.sg_id == "sg-s"


# --- UDP --------------------------------------------------------------------------------------

@pytest.mark.parametrize("turns,state,timeout", [
    ("c", UDP_SINGLE, 30), ("cc", UDP_SINGLE, 30), ("cs", UDP_SINGLE, 30), ("csc", UDP_SINGLE, 30),
    ("cscs", UDP_STREAM, 180), ("ccsscs", UDP_STREAM, 180), ("cscscs", UDP_STREAM, 180),
    ("csssss", UDP_SINGLE, 30),
])
def test_udp_becomes_stream_after_more_than_one_exchange(turns, state, timeout):
    net = server_net()
    for side in turns:
        data = udp(INT, SERVER, 5000, 53) if side == "c" else udp(SERVER, INT, 53, 5000)
        assert net.send(data).delivered
    assert entry_of(net).state == state and entry_of(net).expires == net.now + timeout


@pytest.mark.parametrize("udp_timeout,stream_timeout", [(45, 90), (60, 60)])
def test_udp_timeouts_per_instance(udp_timeout, stream_timeout):
    net = server_net(udp=udp_timeout, udp_stream=stream_timeout)
    net.send(udp(INT, SERVER, 5000, 53))
    assert entry_of(net).expires == net.now + udp_timeout
    for side in "scs":
        net.send(udp(INT, SERVER, 5000, 53) if side == "c" else udp(SERVER, INT, 53, 5000))
    assert entry_of(net).expires == net.now + stream_timeout


def test_udp_reply_after_timeout_is_dropped():
    net = server_net()
    net.send(udp(INT, SERVER, 5000, 53))
    net.wait(30)
    assert not net.send(udp(SERVER, INT, 53, 5000)).delivered


# --- ICMP keys --------------------------------------------------------------------------------

def echo(src, dst, kind, ident, v=4):
    return Packet.build(v, src, dst, 1 if v == 4 else 58, icmp_type=kind, icmp_code=0, icmp_id=ident)


@pytest.mark.parametrize("request_type,reply_type", [(8, 0), (13, 14), (15, 16), (17, 18)])
def test_icmp_reply_shares_key_with_its_request(request_type, reply_type):
    out = flow_key(echo("10.0.0.1", "10.0.0.2", request_type, 9), True)
    back = flow_key(echo("10.0.0.2", "10.0.0.1", reply_type, 9), False)
    assert out == back


@pytest.mark.parametrize("a,b", [((8, 9), (13, 9)), ((8, 9), (8, 10)), ((8, 9), (14, 9))])
def test_icmp_keys_differ_by_kind_and_identifier(a, b):
    assert flow_key(echo("10.0.0.1", "10.0.0.2", *a), True) != flow_key(echo("10.0.0.1", "10.0.0.2", *b), True)


def test_icmp_request_from_each_side_are_different_flows():
    mine = flow_key(echo("10.0.0.1", "10.0.0.2", 8, 9), True)
    theirs = flow_key(echo("10.0.0.2", "10.0.0.1", 8, 9), False)
    assert mine != theirs


def test_icmpv6_echo_keys():
    out = flow_key(echo("fd00::1", "fd00::2", 128, 3, v=6), True)
    assert out == flow_key(echo("fd00::2", "fd00::1", 129, 3, v=6), False)


def test_non_query_icmp_is_keyed_by_type_and_code():
    a = Packet.build(4, "10.0.0.1", "10.0.0.2", 1, icmp_type=9, icmp_code=0)
    b = Packet.build(4, "10.0.0.1", "10.0.0.2", 1, icmp_type=10, icmp_code=0)
    assert flow_key(a, True) != flow_key(b, True)
    assert flow_key(a, True)[3] > 0xFFFF      # never collides with an identifier


def test_unsolicited_echo_reply_needs_a_rule():
    net = server_net([ingress("icmp", cidr=ANY4, icmp_type=8)])
    assert not net.send(IP(src=INT, dst=SERVER) / ICMP(type=0, id=4)).delivered


def test_icmp_flow_times_out_after_icmp_timeout():
    net = server_net([ingress("icmp", cidr=ANY4)], icmp=12)
    assert net.ping(INT, "s") == "reply"
    assert entry_of(net).state == conntrack.ICMP and entry_of(net).expires == net.now + 12


@pytest.mark.parametrize("packet,state", [
    (Packet.build(4, 1, 2, 6, tcp_flags=TCP_SYN), SYN_SENT), (Packet.build(4, 1, 2, 6, tcp_flags=TCP_ACK), ESTABLISHED),
    (Packet.build(4, 1, 2, 6, tcp_flags=TCP_RST), CLOSE), (Packet.build(4, 1, 2, 6, tcp_flags=TCP_FIN), ESTABLISHED),
    (Packet.build(4, 1, 2, 17), UDP_SINGLE), (Packet.build(4, 1, 2, 1, icmp_type=8), conntrack.ICMP),
    (Packet.build(6, 1, 2, 58, icmp_type=128), conntrack.ICMP), (Packet.build(4, 1, 2, 47), OTHER),
])
def test_initial_state(packet, state):
    assert initial_state(packet) == state


# --- other protocols --------------------------------------------------------------------------

def test_other_protocol_entry_has_no_ports_and_600s():
    net = server_net([ingress(50, cidr=ANY4)])
    assert net.send(IP(src=INT, dst=SERVER, proto=50) / Raw(b"esp")).delivered
    entry = entry_of(net)
    assert (entry.state, entry.local_port, entry.remote_port, entry.expires) == (OTHER, 0, 0, net.now + 600)


def test_other_protocol_window_refreshes_with_each_packet():
    net = Net(topology([sg("a", [], [ALL_OUT4])], [instance("a", "10.0.1.40", ["a"])]))
    for _ in range(3):
        assert net.send(IP(src="10.0.1.40", dst=INT, proto=47) / Raw(b"g")).delivered
        net.wait(500)
    assert net.send(IP(src=INT, dst="10.0.1.40", proto=47) / Raw(b"g")).delivered


# --- fragments --------------------------------------------------------------------------------

def _fragments(src, dst, sport, dport):
    return [bytes(f) for f in fragment(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(b"z" * 3000), 1000)]


def test_fragments_of_an_allowed_flow_pass():
    net = server_net()
    first, *rest = _fragments(INT, SERVER, 5000, 53)
    assert net.send(first).last.reason == RULE_MATCH
    for data in rest:
        trip = net.send(data)
        assert trip.delivered and trip.last.reason == FRAGMENT_OF_FLOW


def test_fragments_without_flow_or_all_ports_rule_are_dropped():
    net = server_net()
    _, *rest = _fragments(INT, SERVER, 5000, 53)
    trip = net.send(rest[0])
    assert not trip.delivered and trip.last.reason == FRAGMENT


def test_fragments_of_a_disallowed_flow_are_dropped():
    net = server_net()
    first, *rest = _fragments(INT, SERVER, 5000, 9999)
    assert not net.send(first).delivered
    assert net.send(rest[0]).last.reason == FRAGMENT


@pytest.mark.parametrize("rule,expected", [
    (ingress("all", cidr=ANY4), True), (ingress("udp", "0-65535", ANY4), True),
    (ingress("udp", "1-65535", ANY4), False), (ingress("udp", "0-65535", "192.0.2.0/24"), False),
    (ingress("tcp", "0-65535", ANY4), False),
])
def test_fragments_allowed_by_an_all_ports_rule(rule, expected):
    net = server_net([rule])
    _, *rest = _fragments(INT, SERVER, 5000, 53)
    assert net.send(rest[0]).delivered is expected


def test_ipv6_fragment_of_known_flow():
    net = Net(topology([sg("s", [ingress("udp", 53, "::/0")])], [instance("s", SERVER, ["s"], ipv6="fd00:10::60")]))
    assert net.send(udp("2001:db8::7", "fd00:10::60", 5000, 53)).delivered
    later = IPv6(src="2001:db8::7", dst="fd00:10::60") / IPv6ExtHdrFragment(offset=10, m=0, nh=17) / Raw(b"z" * 40)
    assert net.send(later).last.reason == FRAGMENT_OF_FLOW


# --- expiry -----------------------------------------------------------------------------------

def test_expire_sweeps_only_idle_entries():
    net = server_net()
    net.send(udp(INT, SERVER, 5000, 53))                  # 30 s
    _drive(net, [("c", "S"), ("s", "SA"), ("c", "A")])    # established
    fw = net.fw("s")
    assert fw.expire(net.now + 29) == 0 and len(fw.table) == 2
    assert fw.expire(net.now + 30) == 1 and len(fw.table) == 1
    assert fw.table.tracked == 1 and fw.expire(net.now + 432000) == 1 and fw.table.tracked == 0


def test_lookup_expires_lazily_and_frees_allowance():
    net = Net(topology([sg("s", [ingress("udp", 53, ANY4)])], [instance("s", SERVER, ["s"])],
                       conntrack_allowance=1))
    assert net.send(udp(INT, SERVER, 5000, 53)).delivered
    assert not net.send(udp(INT, SERVER, 5001, 53)).delivered
    net.wait(31)
    assert net.send(udp(INT, SERVER, 5000, 53)).delivered   # old entry expired on lookup
    assert net.fw("s").table.tracked == 1


def test_untracked_flows_past_the_cap_pass_without_entries(monkeypatch):
    from emulator.engine import firewall as firewall_module
    monkeypatch.setattr(firewall_module, "UNTRACKED_CAP", 2)
    net = server_net([ingress("tcp", 80, ANY4)], [ALL_OUT4])
    for port in (1, 2, 3, 4):
        assert net.send(tcp(INT, SERVER, port, 80)).delivered
    assert net.fw("s").table.untracked == 2 and len(net.fw("s").table) == 2


def test_table_is_iterable_while_changing():
    net = server_net()
    net.send(udp(INT, SERVER, 5000, 53))
    for entry in net.fw("s").table:
        net.fw("s").table.remove(entry)
    assert len(net.fw("s").table) == 0


def test_tracked_entry_memory_is_small():
    import sys
    key = (4, 6, 2 ** 31, 40000, 2 ** 31 + 5, 443)
    entry = conntrack.ConntrackEntry(key, Direction.INGRESS, True, ESTABLISHED, 0.0, None, None)
    assert sys.getsizeof(entry) + sys.getsizeof(key) < 400
    assert not hasattr(entry, "__dict__")
