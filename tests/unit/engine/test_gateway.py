"""A NAT gateway's ENI in the engine: no security group, its subnet's NACL only where a packet crosses
the subnet's boundary (never between the gateway and an instance of its own subnet), on both legs of a
translated flow, and a NACL changed in place is seen by the next packet."""
from __future__ import annotations

from ipaddress import ip_network

from emulator.engine.gateway import FORWARDED, GatewayPort
from emulator.engine.nacl import NaclVerdict, SubnetGate
from emulator.engine.packet import Packet, parse
from emulator.engine.verdict import NAT_GATEWAY_FORWARD, SUBNET_ACL_ALLOWED, SUBNET_ACL_RESTRICTION
from emulator.model import NACL_ALLOW, PROTO_TCP, Direction, NaclEntry, NetworkAcl, PortRange

from .helpers import tcp

NAT, APP, ALB, HOST = "10.0.1.20", "10.0.2.10", "10.0.1.10", "203.0.113.80"
PUBLIC = ("10.0.1.0/24", "fd00:20:0:1::/64")


def allow(number: int, direction: Direction, ports: tuple[int, int], cidr: str) -> NaclEntry:
    return NaclEntry(number, direction, NACL_ALLOW, PROTO_TCP, ip_network(cidr), PortRange(*ports))


# AWS's NAT gateway table of NACL checks, public side, for app -> host:443 (reference aws-vpc-path.md 5.4),
# without the inbound ephemeral range for the replies (scenario NG8).
REQUESTS_ONLY = NetworkAcl("public-nacl", "acl-00000001", ("public",),
                           (allow(100, Direction.INGRESS, (443, 443), "10.0.2.0/24"),),
                           (allow(100, Direction.EGRESS, (443, 443), "0.0.0.0/0"),
                            allow(110, Direction.EGRESS, (1024, 65535), "10.0.2.0/24")))
WITH_REPLIES = NetworkAcl(REQUESTS_ONLY.name, REQUESTS_ONLY.id, REQUESTS_ONLY.subnets,
                          (*REQUESTS_ONLY.ingress, allow(120, Direction.INGRESS, (1024, 65535), "0.0.0.0/0")),
                          REQUESTS_ONLY.egress)


def port(nacl: NetworkAcl = REQUESTS_ONLY) -> GatewayPort:
    return GatewayPort(SubnetGate("public", nacl, int(ip_network("10.0.0.0/16").network_address) + 2), PUBLIC)


def pkt(raw: bytes) -> Packet:
    packet = parse(raw)
    assert isinstance(packet, Packet)
    return packet


def test_both_legs_of_a_request_meet_the_gateways_subnet_nacl() -> None:
    gw = port()
    inside = gw.decide(pkt(tcp(APP, HOST, 40000, 443)), outbound=False)     # app -> gateway: enters public
    outside = gw.decide(pkt(tcp(NAT, HOST, 40000, 443)), outbound=True)     # gateway -> host: leaves public
    assert isinstance(inside, NaclVerdict) and inside.reason == SUBNET_ACL_ALLOWED and inside.rule_number == "100"
    assert isinstance(outside, NaclVerdict) and outside.accepted and outside.outbound


def test_a_reply_without_an_inbound_ephemeral_rule_is_dropped_at_the_gateway() -> None:
    verdict = port().decide(pkt(tcp(HOST, NAT, 443, 40000, "SA")), outbound=False)
    assert isinstance(verdict, NaclVerdict)
    assert (verdict.reason, verdict.rule_number, verdict.outbound) == (SUBNET_ACL_RESTRICTION, "*", False)


def test_the_answer_back_to_the_private_instance_is_judged_by_the_outbound_rules() -> None:
    gw = port(WITH_REPLIES)
    assert gw.decide(pkt(tcp(HOST, NAT, 443, 40000, "SA")), outbound=False).accepted
    back = gw.decide(pkt(tcp(HOST, APP, 443, 40000, "SA")), outbound=True)
    assert isinstance(back, NaclVerdict) and back.accepted and back.rule_number == "110"
    # the same answer to an address outside 10.0.2.0/24 meets the final deny
    assert not gw.decide(pkt(tcp(HOST, "10.0.3.10", 443, 40000, "SA")), outbound=True).accepted


def test_traffic_with_an_instance_of_its_own_subnet_crosses_no_nacl() -> None:
    gw = port()                                    # this NACL allows nothing from 10.0.1.0/24
    assert gw.decide(pkt(tcp(ALB, HOST, 40000, 443)), outbound=False) is FORWARDED
    assert gw.decide(pkt(tcp(HOST, ALB, 443, 40000, "SA")), outbound=True) is FORWARDED
    assert FORWARDED.accepted and FORWARDED.reason == NAT_GATEWAY_FORWARD


def test_a_nacl_changed_in_place_applies_to_the_next_packet() -> None:
    gw = port()
    reply = pkt(tcp(HOST, NAT, 443, 40000, "A"))
    assert not gw.decide(reply, outbound=False).accepted
    gw.gate.load(WITH_REPLIES)
    assert gw.decide(reply, outbound=False).accepted


def test_counters_are_an_enis_and_every_gateway_of_a_lab_has_its_port() -> None:
    from pathlib import Path

    from emulator.engine.gateway import gateway_ports
    from emulator.engine.naclstate import NaclState
    from emulator.topology import load

    gw = port()
    gw.decide(pkt(tcp(APP, HOST, 40000, 443)), outbound=False)
    gw.decide(pkt(tcp(HOST, NAT, 443, 40000, "SA")), outbound=False)
    gw.malformed()
    assert {k: v for k, v in gw.counters.items() if v} == {
        "accepted": 1, "dropped": 2, "malformed": 1, "MALFORMED": 1, SUBNET_ACL_ALLOWED: 1, SUBNET_ACL_RESTRICTION: 1}
    topology = load(Path(__file__).resolve().parents[3] / "topologies" / "three-tier-nat.yaml").topology
    nacls = NaclState(topology)
    ports = gateway_ports(topology, nacls)
    assert list(ports) == ["nat-a"] and ports["nat-a"].gate is nacls.gate("public")
    assert ports["nat-a"].decide(pkt(tcp(ALB, HOST, 40000, 443)), outbound=False) is FORWARDED
