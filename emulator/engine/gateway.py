"""A NAT gateway's ENI on the packet path: no security group, only its subnet's network ACL.

AWS: no security group can be attached to a NAT gateway's requester-managed ENI, and its subnet's
network ACL filters it like any ENI of that subnet (AWS's "NAT gateways" and "Compare NAT gateways and
NAT instances" pages, https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html and
vpc-nat-comparison.html; reference/aws-vpc-path.md 2.3 and 5.4): a packet meets the NACL where it
crosses the subnet's boundary, so traffic between the gateway and an instance of its own subnet meets none. Both legs of
a translated flow cross the gateway's ENI, each a flow-log record of that ENI
(https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html, "NAT gateway traffic"):
the inside leg (instance <-> internet host) and the outside leg (gateway <-> internet host).
"""
from __future__ import annotations

from ipaddress import ip_network

from emulator.model import Topology

from .nacl import SubnetGate
from .naclstate import NaclState
from .packet import Packet
from .verdict import ACCEPT, MALFORMED, NAT_GATEWAY_FORWARD, REASONS, Verdict

FORWARDED = Verdict(ACCEPT, NAT_GATEWAY_FORWARD)


class GatewayPort:
    """The NAT gateway's ENI in subnet `gate.subnet`, whose address blocks are `blocks`; `counters`
    as an instance ENI's (status and watch show both alike; a gateway has no connection table)."""

    __slots__ = ("_inside", "counters", "gate")

    def __init__(self, gate: SubnetGate, blocks: tuple[str, ...]):
        self.gate = gate
        nets = [ip_network(b) for b in blocks]
        self._inside = {v: tuple((int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == v)
                        for v in (4, 6)}
        self.counters: dict[str, int] = dict.fromkeys(
            ("accepted", "dropped", "malformed", "conntrack_allowance_exceeded", *REASONS), 0)

    def decide(self, packet: Packet, outbound: bool) -> Verdict:
        """A packet leaving the gateway (outbound, towards its destination) or reaching it (from its source)."""
        peer = packet.dst if outbound else packet.src
        if any(lo <= peer <= hi for lo, hi in self._inside.get(packet.version, ())):
            verdict = FORWARDED
        else:
            verdict = self.gate.check(packet, outbound)
        counters = self.counters
        counters["accepted" if verdict.action == ACCEPT else "dropped"] += 1
        counters[verdict.reason] += 1
        return verdict

    def malformed(self) -> None:
        self.counters["malformed"] += 1
        self.counters["dropped"] += 1
        self.counters[MALFORMED] += 1


def gateway_ports(topology: Topology, nacls: NaclState) -> dict[str, GatewayPort]:
    """Every NAT gateway's ENI, by gateway name, on its subnet's live NACL gate."""
    ports: dict[str, GatewayPort] = {}
    for nat in topology.nat_gateways:
        subnet = topology.subnet(nat.subnet)
        blocks = tuple(str(b) for b in (subnet.cidr, subnet.ipv6_cidr) if b is not None)
        ports[nat.name] = GatewayPort(nacls.gate(nat.subnet), blocks)
    return ports
