"""The NACL evaluator against an independent oracle: AWS's rules written the plainest way (sort, walk,
compare with ipaddress objects), over random NACLs and random packets of both families."""
from __future__ import annotations

from ipaddress import ip_address, ip_network

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.engine.nacl import SubnetGate
from emulator.engine.packet import Packet
from emulator.model import NACL_ALLOW, NACL_DENY, Direction, NaclEntry, NetworkAcl, PortRange

V4_NETS = ["0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "203.0.113.0/24"]
V6_NETS = ["::/0", "2001:db8::/32", "2001:db8:1::/48", "fd00::/8"]
V4_HOSTS = ["10.1.2.3", "10.1.2.4", "10.1.9.9", "10.7.0.1", "203.0.113.10", "198.51.100.7"]
V6_HOSTS = ["2001:db8:1::5", "2001:db8:2::5", "fd00::1", "2001:db9::1"]
PROTOCOLS = [-1, 6, 17, 1, 58, 47]
DNS = int(ip_address("10.250.0.2"))       # a VPC base + 2 no generated address uses


@st.composite
def entries(draw, direction: Direction) -> list[NaclEntry]:
    numbers = draw(st.lists(st.integers(1, 32766), min_size=0, max_size=8, unique=True))
    out = []
    for number in numbers:
        protocol = draw(st.sampled_from(PROTOCOLS))
        cidr = ip_network(draw(st.sampled_from(V4_NETS + V6_NETS)))
        ports = None
        icmp_type = icmp_code = -1
        if protocol in (6, 17):
            low = draw(st.integers(0, 65535))
            ports = PortRange(low, draw(st.integers(low, 65535)))
        elif protocol in (1, 58):
            icmp_type = draw(st.integers(-1, 20))
            icmp_code = -1 if icmp_type == -1 else draw(st.integers(-1, 5))
        out.append(NaclEntry(number, direction, draw(st.sampled_from([NACL_ALLOW, NACL_DENY])), protocol, cidr,
                             ports, icmp_type, icmp_code))
    return out


@st.composite
def packets(draw) -> Packet:
    version = draw(st.sampled_from([4, 6]))
    hosts = V4_HOSTS if version == 4 else V6_HOSTS
    src, dst = draw(st.sampled_from(hosts)), draw(st.sampled_from(hosts))
    proto = draw(st.sampled_from([6, 17, 1 if version == 4 else 58, 47]))
    if proto in (6, 17):
        return Packet.build(version, src, dst, proto, draw(st.integers(0, 65535)), draw(st.integers(0, 65535)))
    if proto in (1, 58):
        return Packet.build(version, src, dst, proto, icmp_type=draw(st.integers(0, 20)),
                            icmp_code=draw(st.integers(0, 5)))
    return Packet.build(version, src, dst, proto)


def oracle(rules: list[NaclEntry], packet: Packet, outbound: bool) -> tuple[bool, int | None]:
    """(allowed, deciding rule number or None for `*`), straight from the AWS documentation."""
    remote = packet.dst_ip if outbound else packet.src_ip
    for rule in sorted(rules, key=lambda r: r.rule_number):
        if rule.cidr.version != packet.version or remote not in rule.cidr:
            continue
        if rule.protocol != -1 and rule.protocol != packet.proto:
            continue
        if rule.protocol in (6, 17) and not (rule.ports.low <= packet.dport <= rule.ports.high):  # type: ignore[union-attr]
            continue
        if rule.protocol in (1, 58) and not (rule.protocol == 58 and rule.cidr.version == 4):
            if rule.icmp_type != -1 and rule.icmp_type != packet.icmp_type:
                continue
            if rule.icmp_code != -1 and rule.icmp_code != packet.icmp_code:
                continue
        return rule.action == NACL_ALLOW, rule.rule_number
    return False, None


@settings(max_examples=400, deadline=None)
@given(inbound=entries(Direction.INGRESS), outbound=entries(Direction.EGRESS),
       batch=st.lists(packets(), min_size=1, max_size=10))
def test_the_engine_agrees_with_the_oracle(inbound, outbound, batch):
    gate = SubnetGate("s", NetworkAcl("n", "acl-00000001", (), tuple(inbound), tuple(outbound)), DNS)
    for packet in batch:
        for is_out, rules in ((False, inbound), (True, outbound)):
            verdict = gate.check(packet, is_out)
            allowed, number = oracle(rules, packet, is_out)
            assert verdict.accepted == allowed, (packet, is_out, rules)
            assert verdict.rule_number == (str(number) if number is not None else "*")   # type: ignore[attr-defined]


@settings(max_examples=200, deadline=None)
@given(inbound=entries(Direction.INGRESS), batch=st.lists(packets(), min_size=1, max_size=10))
def test_the_short_circuit_never_changes_a_verdict(inbound, batch):
    """An `open` family must be one where every packet is allowed by the first rule."""
    gate = SubnetGate("s", NetworkAcl("n", "acl-00000001", (), tuple(inbound), ()), DNS)
    for packet in batch:
        if gate.open_in[packet.version]:
            assert oracle(inbound, packet, False)[0]


@settings(max_examples=200, deadline=None)
@given(inbound=entries(Direction.INGRESS), batch=st.lists(packets(), min_size=1, max_size=6))
def test_the_verdict_depends_on_the_rules_not_their_order_in_the_file(inbound, batch):
    forward = SubnetGate("s", NetworkAcl("n", "acl-00000001", (), tuple(inbound), ()), DNS)
    backward = SubnetGate("s", NetworkAcl("n", "acl-00000001", (), tuple(reversed(inbound)), ()), DNS)
    for packet in batch:
        assert forward.check(packet, False).accepted == backward.check(packet, False).accepted
