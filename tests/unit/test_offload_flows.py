"""Offload beyond tracked TCP: UDP streams, ICMP echo flows and untracked flows leave the engine;
a change pulls back exactly the flows whose verdict it could alter before it is acknowledged
(LabApi's recall hook); kernel counters advance UDP state; ICMP echo tuples over ctnetlink."""
from __future__ import annotations

import socket
from ipaddress import ip_address
from pathlib import Path

import pytest

from emulator.control.api import RECALL_ALL, RECALL_NONE, RECALL_UNTRACKED, LabApi, permission
from emulator.dataplane import kernel_conntrack as ct
from emulator.engine.conntrack import UDP_SINGLE, UDP_STREAM, flow_key
from emulator.engine.firewall import ACCEPT, DROP, build_firewalls
from emulator.engine.offload import OFFER_AFTER, KernelFlow, Offloads, every, reverse, untracked, wire
from emulator.engine.packet import Packet
from emulator.model import Direction
from emulator.plan import OFFLOAD_MARK, build_plan
from emulator.topology import parse as parse_topology

E, I = Direction.EGRESS, Direction.INGRESS
A, B, OPEN = "10.0.1.10", "10.0.1.20", "10.0.1.30"
UDP_IDLE = 30


def topology():
    """a, b: UDP and ICMP from each other (tracked, an SG reference); o: UDP 5000 from anywhere
    with all egress (untracked at o)."""
    return parse_topology({
        "name": "t16", "vpc": {"cidr": "10.0.0.0/16", "ipv6_cidr": "fd00::/56"},
        "subnets": [{"name": "s", "cidr": "10.0.1.0/24", "ipv6_cidr": "fd00::/64"}],
        "security_groups": [
            {"name": "pair", "ingress": [{"protocol": "udp", "ports": "0-65535", "group": "pair"},
                                         {"protocol": "icmp", "group": "pair"}]},
            {"name": "open", "ingress": [{"protocol": "udp", "ports": 5000, "cidr": "0.0.0.0/0"}]}],
        "instances": [{"name": "a", "subnet": "s", "private_ip": A, "security_groups": ["pair"]},
                      {"name": "b", "subnet": "s", "private_ip": B, "security_groups": ["pair"]},
                      {"name": "o", "subnet": "s", "private_ip": OPEN, "security_groups": ["open"]}],
        "options": {"timeouts": {"udp": UDP_IDLE}},
    }, "t16.yaml").topology


@pytest.fixture
def engine():
    topo = topology()
    state, firewalls = build_firewalls(topo)
    return state, firewalls, Offloads(topo, firewalls)


def udp(src: str, dst: str, sport: int = 40000, dport: int = 5000, length: int = 92) -> Packet:
    return Packet.build(4, src, dst, 17, sport, dport, length=length)


def echo(src: str, dst: str, request: bool, ident: int = 77) -> Packet:
    return Packet.build(4, src, dst, 1, icmp_type=8 if request else 0, icmp_code=0, icmp_id=ident, length=84)


def cross(firewalls, packet: Packet, now: float = 0.0) -> str:
    by_ip = {str(fw.instance.private_ip): fw for fw in firewalls.values()}
    for address, direction in ((packet.src_ip, E), (packet.dst_ip, I)):
        firewall = by_ip.get(str(address))
        if firewall is not None:
            verdict = firewall.decide(packet, direction, now)
            if verdict.action != ACCEPT:
                return verdict.action
    return ACCEPT


def test_a_one_way_udp_stream_is_offloaded_after_enough_packets(engine) -> None:
    _, firewalls, offloads = engine
    for n in range(OFFER_AFTER):
        assert not offloads.offer(firewalls["a"], udp(A, B), 0.0), n
        assert cross(firewalls, udp(A, B)) == ACCEPT
    assert offloads.offer(firewalls["a"], udp(A, B), 0.0)
    [flow] = offloads.flows.values()
    assert flow.tracked and [fw.instance.name for fw, _ in flow.legs] == ["a", "b"]


def test_an_icmp_echo_flow_is_offloaded_but_never_an_icmp_error(engine) -> None:
    _, firewalls, offloads = engine
    for _ in range(OFFER_AFTER // 2):
        assert cross(firewalls, echo(A, B, True)) == ACCEPT
        assert cross(firewalls, echo(B, A, False)) == ACCEPT
    assert offloads.offer(firewalls["b"], echo(B, A, False), 0.0)     # offered by the reply leaving b
    assert offloads.offer(firewalls["a"], echo(A, B, True), 0.0)      # the same flow, seen from a
    assert len(offloads) == 1
    unreachable = Packet.build(4, B, A, 1, icmp_type=3, icmp_code=3, inner=udp(A, B), length=120)
    assert not offloads.offer(firewalls["b"], unreachable, 0.0)


def test_echo_tuples_pair_request_and_reply_like_the_kernel() -> None:
    request = wire(echo(A, B, True))
    assert reverse(request) == wire(echo(B, A, False))
    assert reverse(reverse(request)) == request
    v6 = wire(Packet.build(6, "fd00::1", "fd00::2", 58, icmp_type=128, icmp_code=0, icmp_id=5))
    assert reverse(v6)[5] == 129


def untracked_flow(firewalls, offloads, now: float = 0.0) -> None:
    for _ in range(OFFER_AFTER):
        assert cross(firewalls, udp(A, OPEN), now) == ACCEPT
    assert offloads.offer(firewalls["a"], udp(A, OPEN), now)


def test_recall_takes_back_exactly_the_untracked_flows_before_a_revoke(engine) -> None:
    state, firewalls, offloads = engine
    untracked_flow(firewalls, offloads)
    for _ in range(OFFER_AFTER):
        cross(firewalls, udp(A, B, 40001))
    assert offloads.offer(firewalls["a"], udp(A, B, 40001), 0.0)
    flows = {f.wire: f for f in offloads.flows.values()}
    assert [w for w, f in flows.items() if not f.tracked] == [wire(udp(A, OPEN))]
    kernel = [KernelFlow(w, reverse(w), OFFER_AFTER + 5, 1000, 0, 0, OFFLOAD_MARK | 0x10) for w in flows]
    assert offloads.sync(kernel, 1.0) == []
    released = offloads.recall(kernel, untracked)
    assert [k.orig for k in released] == [wire(udp(A, OPEN))] and released[0].mark & 0x10
    assert list(offloads.flows) == [wire(udp(A, B, 40001))]          # the tracked one stays in the kernel
    # The change itself: the untracked flow's next packet meets the engine and is cut at once.
    state.revoke("open", list(state.group("open").ingress))
    assert cross(firewalls, udp(A, OPEN), 1.5) == DROP
    assert cross(firewalls, udp(A, B, 40001), 1.5) == ACCEPT          # tracked: survives (AWS)
    # A stateless check's change (a NACL) takes back the rest.
    assert [k.orig for k in offloads.recall(kernel, every)] == [wire(udp(A, B, 40001))]
    assert len(offloads) == 0


def test_kernel_counts_turn_a_udp_flow_into_a_stream_and_keep_it_alive(engine) -> None:
    _, firewalls, offloads = engine
    for _ in range(OFFER_AFTER):
        cross(firewalls, udp(A, B))
    assert offloads.offer(firewalls["a"], udp(A, B), 0.0)
    key = flow_key(udp(A, B), True)
    entry = firewalls["a"].table.get(key, 0.0)
    assert entry is not None and entry.state == UDP_SINGLE
    sent = entry.packets_egress
    for second, back in ((1, 0), (2, 3), (3, 3), (4, 5)):      # replies start: turns the kernel implies
        flow = KernelFlow(wire(udp(A, B)), reverse(wire(udp(A, B))), sent + second, 0, back, 0, OFFLOAD_MARK)
        assert offloads.sync([flow], float(second)) == []
    assert entry.state == UDP_STREAM and entry.packets_ingress == 5
    assert entry.expires == 4.0 + firewalls["a"]._timeouts[UDP_STREAM]
    idle = KernelFlow(wire(udp(A, B)), reverse(wire(udp(A, B))), sent + 4, 0, 5, 0, OFFLOAD_MARK)
    assert offloads.sync([idle], 4.0 + firewalls["a"]._timeouts[UDP_STREAM] + 0.5) == [idle]   # idle: expires


def test_an_idle_offloaded_udp_flow_expires_on_its_udp_timeout(engine) -> None:
    _, firewalls, offloads = engine
    for _ in range(OFFER_AFTER):
        cross(firewalls, udp(A, B), 0.0)
    assert offloads.offer(firewalls["a"], udp(A, B), 0.0)
    entry = firewalls["a"].table.get(flow_key(udp(A, B), True), 0.0)
    same = KernelFlow(wire(udp(A, B)), reverse(wire(udp(A, B))), entry.packets_egress, entry.bytes_egress,
                      0, 0, OFFLOAD_MARK)
    assert offloads.sync([same], UDP_IDLE - 0.5) == []
    assert offloads.sync([same], UDP_IDLE + 0.5) == [same] and len(offloads) == 0


# --- LabApi: the recall hook ---------------------------------------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def __call__(self, scope: str, now: float) -> int:
        self.calls.append((scope, now))
        return 2


@pytest.fixture
def api(tmp_path: Path):
    topo = topology()
    state, firewalls = build_firewalls(topo)
    live = LabApi("t16", topo, state, firewalls, 0.0, 0.0, tmp_path / "flowlogs", lambda t: None)
    recorder = Recorder()
    live.set_recall(recorder)
    return live, recorder


def test_a_revoke_or_membership_change_recalls_untracked_flows_before_it_applies(api) -> None:
    live, recorder = api
    rule = permission("udp", "5000", cidr="0.0.0.0/0")
    live.handle("revoke", {"sg": "open", "direction": "ingress", "rules": [rule]}, 5.0)
    live.handle("set_sgs", {"instance": "o", "groups": ["pair"]}, 6.0)
    assert recorder.calls == [(RECALL_UNTRACKED, 5.0), (RECALL_UNTRACKED, 6.0)]
    assert live.recalled == 4


def test_adding_rules_timeouts_and_reads_recall_nothing(api) -> None:
    live, recorder = api
    live.handle("authorize", {"sg": "open", "direction": "ingress", "rules": [permission("udp", "6000",
                                                                                         cidr="0.0.0.0/0")]}, 1.0)
    live.handle("set_conntrack", {"instance": "a", "udp": 60}, 1.0)
    live.handle("conntrack", {}, 1.0)
    assert recorder.calls == []


def test_an_added_mutating_operation_recalls_every_flow_unless_told_otherwise(api) -> None:
    live, recorder = api
    live.add_ops({"nacl_change": lambda now: {}, "note": lambda now: {}, "read": lambda now: {}},
                 mutating={"nacl_change", "note"}, recall={"note": RECALL_NONE})
    for op in ("nacl_change", "note", "read"):
        live.handle(op, {}, 2.0)
    assert recorder.calls == [(RECALL_ALL, 2.0)]
    with pytest.raises(ValueError, match="recall scopes"):
        live.add_ops({"other": lambda now: {}}, mutating={"other"}, recall={"other": "some"})


# --- the plan and ctnetlink --------------------------------------------------------------------

def test_udp_and_echo_take_the_fast_path_in_both_families_and_kernel_timeouts_outlast_the_engine() -> None:
    plan = build_plan(topology())
    mangle = {r.family: r.text for r in plan.rulesets if r.table == "mangle"}
    marked = f"-m connmark --mark 0x{OFFLOAD_MARK:x}/0x6 -j ACCEPT"
    assert f"-A PREROUTING -i eni-+ -p udp {marked}" in mangle[4].splitlines()
    assert f"-A POSTROUTING -o eni-+ -p icmp -m icmp --icmp-type echo-reply {marked}" in mangle[4].splitlines()
    assert f"-A PREROUTING -i eni-+ -p ipv6-icmp -m icmp6 --icmpv6-type echo-request {marked}" in \
        mangle[6].splitlines()
    assert "destination-unreachable" not in mangle[4]
    sysctls = dict(plan.fabric.sysctls)
    assert int(sysctls["net.netfilter.nf_conntrack_udp_timeout"]) > 60
    assert int(sysctls["net.netfilter.nf_conntrack_udp_timeout_stream"]) > 180
    assert int(sysctls["net.netfilter.nf_conntrack_icmp_timeout"]) > 30


def test_an_echo_tuple_encodes_and_decodes_with_identifier_and_type() -> None:
    for version, proto, src, dst in ((4, 1, A, B), (6, 58, "fd00::1", "fd00::2")):
        orig = (version, proto, int(ip_address(src)), 77, int(ip_address(dst)), 8 if version == 4 else 128)
        body = ct.tuple_attr(ct.CTA_TUPLE_ORIG, orig) + ct.tuple_attr(ct.CTA_TUPLE_REPLY, reverse(orig)) + \
            ct.attr(ct.CTA_MARK, OFFLOAD_MARK.to_bytes(4, "big"))
        data = ct.message(ct.IPCTNL_MSG_CT_NEW, 0, ct.VERSION_FAMILY[version], body, 9)
        [(_kind, _seq, start, end)] = list(ct.messages(data))
        flow = ct.kernel_flow(data[start], data, start + 4, end)
        assert flow == KernelFlow(orig, reverse(orig), mark=OFFLOAD_MARK)
        assert data[start] == (socket.AF_INET if version == 4 else socket.AF_INET6)


def test_a_flow_about_to_expire_comes_back_before_the_next_sync_so_expiry_is_on_time(engine) -> None:
    """Released `ahead` of its deadline, its entry alive: its next packet meets the engine, which
    refreshes and offers it again, or drops it once the timeout has passed."""
    _, firewalls, offloads = engine
    for _ in range(OFFER_AFTER):
        cross(firewalls, udp(A, B), 0.0)
    assert offloads.offer(firewalls["a"], udp(A, B), 0.0)
    entry = firewalls["a"].table.get(flow_key(udp(A, B), True), 0.0)
    idle = KernelFlow(wire(udp(A, B)), reverse(wire(udp(A, B))), entry.packets_egress, entry.bytes_egress,
                      0, 0, OFFLOAD_MARK)
    assert offloads.sync([idle], UDP_IDLE - 3.0, ahead=2.0) == []               # 3 s left: stays
    assert offloads.sync([idle], UDP_IDLE - 1.5, ahead=2.0) == [idle]           # 1.5 s left: back
    assert offloads.gone == set() and len(offloads) == 0                         # its entry lives on
    assert cross(firewalls, udp(A, B), UDP_IDLE - 1.0) == ACCEPT                 # in time: the engine passes it
    assert offloads.offer(firewalls["a"], udp(A, B), UDP_IDLE - 1.0)            # and hands it back
    late = KernelFlow(idle.orig, idle.reply, idle.orig_packets + 1, 0, 0, 0, OFFLOAD_MARK)
    assert offloads.sync([late], 2 * UDP_IDLE + 5, ahead=2.0) == [late] and offloads.gone == {late}
