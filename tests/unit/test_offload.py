"""Offload decisions (which flows the kernel may fast-path, when they come back), the kernel
counter sync, the plan's bypass rules, header-only parsing and the bench's pure parts."""
from __future__ import annotations

from ipaddress import ip_address

import pytest

from emulator.bench import run as bench
from emulator.bench import topologies
from emulator.engine.conntrack import flow_key
from emulator.engine.firewall import ACCEPT, EniFirewall, build_firewalls
from emulator.engine.offload import OFFER_AFTER, KernelFlow, Offloads, reverse, wire
from emulator.engine.packet import TCP_ACK, TCP_FIN, TCP_SYN, Packet, parse
from emulator.errors import TopologyError
from emulator.model import Direction, Topology
from emulator.plan import DECIDED_MARK, OFFLOAD_MARK, PULLBACK_MARK, build_plan
from emulator.topology import parse as parse_topology

E, I = Direction.EGRESS, Direction.INGRESS
A, B, WEB, INT = "10.0.1.10", "10.0.1.20", "10.0.1.30", "198.51.100.7"
WEB_PUBLIC = "198.51.100.30"
TIMEOUT = 5


def lab(offload: bool = True) -> Topology:
    """a and b: TCP between them tracked (an SG reference); web: 80 from anywhere with all
    egress, so its port-80 flows are untracked; 22 from one address, tracked."""
    return parse_topology({
        "name": "t6", "vpc": {"cidr": "10.0.0.0/16"},
        "subnets": [{"name": "s", "cidr": "10.0.1.0/24"}],
        "security_groups": [
            {"name": "pair", "ingress": [{"protocol": "tcp", "ports": "0-65535", "group": "pair"}]},
            {"name": "web-sg", "ingress": [{"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0"},
                                           {"protocol": "tcp", "ports": 22, "cidr": f"{INT}/32"}]}],
        "instances": [{"name": "a", "subnet": "s", "private_ip": A, "security_groups": ["pair"]},
                      {"name": "b", "subnet": "s", "private_ip": B, "security_groups": ["pair"]},
                      {"name": "web", "subnet": "s", "private_ip": WEB, "public_ip": WEB_PUBLIC,
                       "security_groups": ["web-sg"]}],
        "internet": [{"name": "int", "ip": INT}],
        "options": {"offload": offload, "timeouts": {"tcp_established": TIMEOUT}},
    }, "t6.yaml").topology


def tcp(src: str, dst: str, sport: int, dport: int, flags: int, length: int = 60) -> Packet:
    return Packet.build(4, src, dst, 6, sport, dport, flags, length=length)


def cross(firewalls: dict[str, EniFirewall], packet: Packet, now: float = 0.0) -> None:
    """Through the sender's egress (if an instance) and the receiver's ingress (if one)."""
    by_ip = {str(fw.instance.private_ip): fw for fw in firewalls.values()}
    for address, direction in ((packet.src_ip, E), (packet.dst_ip, I)):
        firewall = by_ip.get(str(address))
        if firewall is not None:
            assert firewall.decide(packet, direction, now).action == ACCEPT


def handshake(firewalls, client: str, server: str, port: int, sport: int = 40000, now: float = 0.0) -> None:
    cross(firewalls, tcp(client, server, sport, port, TCP_SYN), now)
    cross(firewalls, tcp(server, client, port, sport, TCP_SYN | TCP_ACK), now)
    cross(firewalls, tcp(client, server, sport, port, TCP_ACK), now)


def busy(firewalls, client: str, server: str, port: int, sport: int = 40000, now: float = 0.0) -> None:
    """Enough data both ways for the flow to be worth offloading."""
    for n in range(OFFER_AFTER):
        there = n % 2 == 0
        cross(firewalls, tcp(client if there else server, server if there else client,
                             sport if there else port, port if there else sport, TCP_ACK, 1000), now)


@pytest.fixture
def engine():
    topology = lab()
    _, firewalls = build_firewalls(topology)
    return firewalls, Offloads(topology, firewalls)


# --- when a flow may be offloaded -------------------------------------------------------------

def test_a_tracked_tcp_flow_established_on_both_enis_is_offloaded(engine) -> None:
    firewalls, offloads = engine
    handshake(firewalls, A, B, 5201)
    data = tcp(A, B, 40000, 5201, TCP_ACK, 1500)
    assert not offloads.offer(firewalls["a"], data, 0.1)     # a handshake alone is not worth it
    busy(firewalls, A, B, 5201)
    assert offloads.offer(firewalls["a"], data, 0.1)
    assert len(offloads) == 1
    assert offloads.offer(firewalls["a"], data, 0.2)        # a packet still in flight: already offloaded
    assert len(offloads) == 1


def test_not_before_the_destination_eni_is_established_too(engine) -> None:
    firewalls, offloads = engine
    cross(firewalls, tcp(A, B, 40000, 5201, TCP_SYN))
    cross(firewalls, tcp(B, A, 5201, 40000, TCP_SYN | TCP_ACK))
    ack = tcp(A, B, 40000, 5201, TCP_ACK)
    for _ in range(OFFER_AFTER):     # a: ESTABLISHED and busy; b never saw the ACK: still SYN_RECV
        assert firewalls["a"].decide(ack, E, 0.0).action == ACCEPT
    assert not offloads.offer(firewalls["a"], ack, 0.0)
    assert firewalls["b"].decide(ack, I, 0.0).action == ACCEPT
    assert offloads.offer(firewalls["a"], ack, 0.0)


def test_an_untracked_flow_is_offloaded_too_and_known_as_untracked(engine) -> None:
    """Untracked flows may leave the engine: every change that could cut them recalls them first."""
    firewalls, offloads = engine
    handshake(firewalls, INT, WEB, 80)
    entry = firewalls["web"].table.get(flow_key(tcp(WEB, INT, 80, 40000, TCP_ACK), True), 0.0)
    assert entry is not None and not entry.tracked
    assert not offloads.offer(firewalls["web"], tcp(WEB, INT, 80, 40000, TCP_ACK, 1500), 0.1)   # 3 packets
    busy(firewalls, INT, WEB, 80)
    assert offloads.offer(firewalls["web"], tcp(WEB, INT, 80, 40000, TCP_ACK, 1500), 0.1)
    [flow] = offloads.flows.values()
    assert not flow.tracked


def test_a_tracked_internet_flow_needs_only_the_instance_eni(engine) -> None:
    firewalls, offloads = engine
    handshake(firewalls, INT, WEB, 22)
    busy(firewalls, INT, WEB, 22)
    assert offloads.offer(firewalls["web"], tcp(WEB, INT, 22, 40000, TCP_ACK, 200), 0.1)


def test_hairpin_to_a_public_ip_is_not_offloaded(engine) -> None:
    firewalls, offloads = engine
    handshake(firewalls, A, WEB_PUBLIC, 22)
    assert not offloads.offer(firewalls["a"], tcp(A, WEB_PUBLIC, 40000, 22, TCP_ACK), 0.1)


def test_a_udp_packet_without_an_entry_is_not_offloaded(engine) -> None:
    firewalls, offloads = engine
    assert not offloads.offer(firewalls["a"], Packet.build(4, A, B, 17, 5000, 53, length=60), 0.0)


def test_fin_pulls_a_flow_back_for_good_and_its_last_counts_are_read(engine) -> None:
    firewalls, offloads = engine
    flow = offloaded(engine)
    assert offloads.pull_back(tcp(B, A, 5201, 40000, TCP_FIN | TCP_ACK))      # from either side
    assert not offloads.pull_back(tcp(A, B, 40000, 5201, TCP_FIN | TCP_ACK))  # already back
    assert not offloads.offer(firewalls["b"], tcp(B, A, 5201, 40000, TCP_ACK), 1.5)
    a, _ = entries(firewalls, 1.5)
    last = KernelFlow(flow.orig, flow.reply, flow.orig_packets + 5, flow.orig_bytes + 5000,
                      flow.reply_packets, flow.reply_bytes, flow.mark | 0x4)
    assert offloads.sync([last], 2.0) == [last]          # counted, then released
    assert a.packets_egress == flow.orig_packets + 5 and len(offloads) == 0


# --- keeping the engine's view right ----------------------------------------------------------

def offloaded(engine, now: float = 1.0) -> KernelFlow:
    firewalls, offloads = engine
    handshake(firewalls, A, B, 5201, now=now)
    busy(firewalls, A, B, 5201, now=now)
    data = tcp(A, B, 40000, 5201, TCP_ACK, 1000)
    cross(firewalls, data, now)
    assert offloads.offer(firewalls["a"], data, now)
    a, _ = entries(firewalls, now)
    # So far the kernel counted what the engine saw.
    return KernelFlow(wire(data), reverse(wire(data)), a.packets_egress, a.bytes_egress, a.packets_ingress,
                      a.bytes_ingress, OFFLOAD_MARK)


def entries(firewalls, now: float):
    a = firewalls["a"].table.get(flow_key(tcp(A, B, 40000, 5201, TCP_ACK), True), now)
    b = firewalls["b"].table.get(flow_key(tcp(A, B, 40000, 5201, TCP_ACK), False), now)
    return a, b


def test_kernel_counters_keep_a_busy_offloaded_flow_alive_on_every_eni(engine) -> None:
    firewalls, offloads = engine
    flow = offloaded(engine)
    p, b_, q = flow.orig_packets, flow.orig_bytes, flow.reply_packets
    for second in range(2, 20):        # far past the 5 s idle timeout, busy all along
        counts = KernelFlow(flow.orig, flow.reply, p + second, b_ + 1000 * second, q + second,
                            flow.reply_bytes + 52 * second, OFFLOAD_MARK)
        assert offloads.sync([counts], float(second)) == []
    a, b = entries(firewalls, 19.0)
    assert a is not None and b is not None
    assert a.last_seen == b.last_seen == 19.0 and a.expires == 19.0 + TIMEOUT
    assert (a.packets_egress, a.bytes_egress, a.packets_ingress) == (p + 19, b_ + 19000, q + 19)
    assert (b.packets_ingress, b.bytes_ingress, b.packets_egress) == (p + 19, b_ + 19000, q + 19)


def test_an_idle_offloaded_flow_expires_and_is_released(engine) -> None:
    firewalls, offloads = engine
    flow = offloaded(engine)
    assert offloads.sync([flow], 3.0) == []                  # idle 2 s < 5 s
    assert offloads.sync([flow], 6.5) == [flow]              # idle 5.5 s: released at once
    assert len(offloads) == 0
    assert entries(firewalls, 6.5) == (None, None)


def test_a_kernel_flow_the_engine_never_offered_is_released(engine) -> None:
    _, offloads = engine
    stranger = KernelFlow((4, 6, int(ip_address(A)), 1, int(ip_address(B)), 2),
                          (4, 6, int(ip_address(B)), 2, int(ip_address(A)), 1), mark=OFFLOAD_MARK | 1)
    assert offloads.sync([stranger], 1.0) == [stranger]


def test_a_flow_the_kernel_no_longer_marks_is_forgotten(engine) -> None:
    _, offloads = engine
    offloaded(engine)
    assert offloads.sync([], 2.0) == []
    assert len(offloads) == 0


def test_counters_follow_the_kernel_direction_when_matched_by_the_reply_tuple(engine) -> None:
    """NAT: the offering packet (web's reply to the internet) is the kernel's REPLY tuple."""
    firewalls, offloads = engine
    handshake(firewalls, INT, WEB, 22)
    busy(firewalls, INT, WEB, 22)
    reply = tcp(WEB, INT, 22, 40000, TCP_ACK, 500)
    cross(firewalls, reply)
    assert offloads.offer(firewalls["web"], reply, 0.0)
    web = firewalls["web"].table.get(flow_key(reply, True), 0.0)
    before = (web.packets_egress, web.packets_ingress)
    orig = (4, 6, int(ip_address(INT)), 40000, int(ip_address(WEB_PUBLIC)), 22)     # before DNAT
    kernel = KernelFlow(orig, wire(reply), before[1] + 7, 7 * 60, before[0] + 2, 2 * 500, OFFLOAD_MARK)
    assert offloads.sync([kernel], 1.0) == []
    assert (web.packets_egress, web.packets_ingress) == (before[0] + 2, before[1] + 7)


# --- the plan -----------------------------------------------------------------------------------

def mangle(topology: Topology, enforce: bool = True) -> str:
    return next(r.text for r in build_plan(topology, enforce).rulesets if r.family == 4 and r.table == "mangle")


def test_bypass_rules_come_before_the_queues_and_skip_syn_fin_rst() -> None:
    lines = mangle(lab()).splitlines()
    both = OFFLOAD_MARK | PULLBACK_MARK        # offloaded, and not closing
    bypass = f"-p tcp --tcp-flags FIN,SYN,RST NONE -m connmark --mark 0x{OFFLOAD_MARK:x}/0x{both:x} -j ACCEPT"
    pre = lines.index(f"-A PREROUTING -i eni-+ {bypass}")
    post = lines.index(f"-A POSTROUTING -o eni-+ {bypass}")
    assert pre < min(i for i, line in enumerate(lines) if line.startswith("-A PREROUTING") and "NFQUEUE" in line)
    assert post < min(i for i, line in enumerate(lines) if line.startswith("-A POSTROUTING") and "NFQUEUE" in line)
    assert f"-A FORWARD -m mark --mark 0x{PULLBACK_MARK:x}/0x{PULLBACK_MARK:x} " \
           f"-j CONNMARK --set-xmark 0x{PULLBACK_MARK:x}/0x{PULLBACK_MARK:x}" in lines
    assert ("net.netfilter.nf_conntrack_acct", "1") in build_plan(lab()).fabric.sysctls


def test_without_offload_there_is_no_fast_path() -> None:
    lines = mangle(lab(offload=False)).splitlines()
    assert not any("--tcp-flags" in line or line.startswith("-A FORWARD") for line in lines)
    assert any("NFQUEUE" in line for line in lines)
    assert ("net.netfilter.nf_conntrack_acct", "1") not in build_plan(lab(offload=False)).fabric.sysctls


def test_ingress_decided_with_the_egress_skips_the_second_queue() -> None:
    lines = mangle(lab(offload=False)).splitlines()
    decided = lines.index(f"-A POSTROUTING -o eni-+ -m mark --mark 0x{DECIDED_MARK:x}/0x{DECIDED_MARK:x} -j ACCEPT")
    assert decided < lines.index("-A POSTROUTING -o eni-+ -j NFQUEUE --queue-num 1")


def test_no_enforcement_means_no_hook_at_all() -> None:
    plan = build_plan(lab(), enforce=False)
    assert all("NFQUEUE" not in r.text and "--tcp-flags" not in r.text for r in plan.rulesets)
    assert any("DNAT" in r.text for r in plan.rulesets)     # the rest of the lab is unchanged


def test_offload_option_is_a_boolean() -> None:
    assert lab(offload=False).options.offload is False
    with pytest.raises(TopologyError, match="options.offload"):
        parse_topology({"vpc": {"cidr": "10.0.0.0/16"}, "subnets": [], "options": {"offload": "fast"}}, "x.yaml")


# --- header-only parsing (copy range, GSO) ------------------------------------------------------

def test_a_cut_packet_parses_with_the_length_its_header_gives() -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    for layer in (IP(src=A, dst=B), IPv6(src="fd00::1", dst="fd00::2")):
        whole = bytes(layer / TCP(sport=1, dport=2, flags="A") / (b"x" * 60000))
        assert isinstance(parse(whole[:512]), str)                 # a packet cut short is malformed
        packet = parse(whole[:512], cut=True)
        assert not isinstance(packet, str)
        assert (packet.length, packet.dport, packet.tcp_flags) == (len(whole), 2, TCP_ACK)


def test_a_cut_packet_still_needs_its_headers() -> None:
    from scapy.layers.inet import IP, TCP
    whole = bytes(IP(src=A, dst=B) / TCP(sport=1, dport=2) / (b"x" * 100))
    assert parse(whole[:30], cut=True) == "truncated TCP header"


# --- the bench's pure parts ----------------------------------------------------------------------

def test_bench_labs_are_valid_and_their_pair_flows_tracked() -> None:
    pair = parse_topology(topologies.pair_topology("bench-x", offload=True), "bench").topology
    _, firewalls = build_firewalls(pair)
    a, b = pair.instance("a"), pair.instance("b")
    syn = tcp(str(a.private_ip), str(b.private_ip), 40000, 5201, TCP_SYN)
    assert firewalls["a"].decide(syn, E, 0.0).tracked
    fleet = parse_topology(topologies.fleet_topology("bench-up100", 100), "bench").topology
    assert len(fleet.instances) == 100


def test_bench_targets() -> None:
    assert bench.met("throughput_ratio_offload", 0.95) and not bench.met("throughput_ratio_offload", 0.5)
    assert bench.met("rtt_added_us_offload", 12) and not bench.met("rtt_added_us_offload", 25)
    assert bench.met("verdict_cost_ratio_rules", 1.2) and not bench.met("engine_vs_binding_ratio", 0.7)


def test_offloaded_traffic_is_told_per_eni_and_direction(engine) -> None:
    """What the flow log gets for traffic it never saw packet by packet."""
    _, offloads = engine
    flow = offloaded(engine)
    told: list[tuple] = []
    more = KernelFlow(flow.orig, flow.reply, flow.orig_packets + 10, flow.orig_bytes + 10_000,
                      flow.reply_packets + 4, flow.reply_bytes + 200, OFFLOAD_MARK)
    assert offloads.sync([more], 2.0, lambda *args: told.append(args)) == []
    there, back = flow.orig, reverse(flow.orig)
    assert sorted(told) == sorted([("a", there, True, 10, 10_000, 2.0), ("a", back, False, 4, 200, 2.0),
                                   ("b", there, False, 10, 10_000, 2.0), ("b", back, True, 4, 200, 2.0)])
    told.clear()
    assert offloads.sync([more], 3.0, lambda *args: told.append(args)) == [] and told == []   # nothing new


# --- ctnetlink messages (lab/offload.py), without a kernel --------------------------------------

def test_a_conntrack_message_decodes_to_a_kernel_flow() -> None:
    import socket

    from emulator.dataplane import kernel_conntrack as ct

    def counters(kind: int, packets: int, size: int) -> bytes:
        return ct.attr(kind, ct.attr(ct.CTA_COUNTERS_PACKETS, packets.to_bytes(8, "big")) +
                       ct.attr(ct.CTA_COUNTERS_BYTES, size.to_bytes(8, "big")), nested=True)

    for version, src, dst in ((4, A, B), (6, "fd00::1", "fd00::2")):
        orig = (version, 6, int(ip_address(src)), 40000, int(ip_address(dst)), 5201)
        body = ct.tuple_attr(ct.CTA_TUPLE_ORIG, orig) + ct.tuple_attr(ct.CTA_TUPLE_REPLY, reverse(orig)) + \
            ct.attr(ct.CTA_MARK, (OFFLOAD_MARK | 1).to_bytes(4, "big")) + \
            counters(ct.CTA_COUNTERS_ORIG, 12, 9000) + counters(ct.CTA_COUNTERS_REPLY, 7, 420)
        data = ct.message(ct.IPCTNL_MSG_CT_NEW, 0, ct.VERSION_FAMILY[version], body, 5)
        [(kind, seq, start, end)] = list(ct.messages(data))
        assert (kind & 0xFF, seq) == (ct.IPCTNL_MSG_CT_NEW, 5)
        family = data[start]
        assert family == (socket.AF_INET if version == 4 else socket.AF_INET6)
        flow = ct.kernel_flow(family, data, start + 4, end)
        assert flow == KernelFlow(orig, reverse(orig), 12, 9000, 7, 420, OFFLOAD_MARK | 1)
    assert ct.kernel_flow(socket.AF_INET, b"\x04\x00\x01\x00", 0, 4) is None     # truncated: no flow
