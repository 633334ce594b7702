"""A NAT gateway's ENI on the packet path: no security group, only its subnet's network ACL.

AWS: "A NAT gateway has no security groups" and "network ACLs apply to traffic to and from the NAT
gateway" (https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-basics.html), the NACL of
the gateway's subnet, like any ENI of that subnet: a packet meets it where it crosses the subnet's
boundary, so traffic between the gateway and an instance of its own subnet meets none. Both legs of
a translated flow cross the gateway's ENI, each a flow-log record of that ENI
(https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-records-examples.html, "NAT gateway traffic"):
the inside leg (instance <-> internet host) and the outside leg (gateway <-> internet host).
"""
from __future__ import annotations

from ipaddress import ip_network

from .nacl import SubnetGate
from .packet import Packet
from .verdict import ACCEPT, NAT_GATEWAY_FORWARD, Verdict

FORWARDED = Verdict(ACCEPT, NAT_GATEWAY_FORWARD)


class GatewayPort:
    """The NAT gateway's ENI in subnet `gate.subnet`, whose address blocks are `blocks`."""

    __slots__ = ("_inside", "gate")

    def __init__(self, gate: SubnetGate, blocks: tuple[str, ...]):
        self.gate = gate
        nets = [ip_network(b) for b in blocks]
        self._inside = {v: tuple((int(n.network_address), int(n.broadcast_address)) for n in nets if n.version == v)
                        for v in (4, 6)}

    def decide(self, packet: Packet, outbound: bool) -> Verdict:
        """A packet leaving the gateway (outbound, towards its destination) or reaching it (from its source)."""
        peer = packet.dst if outbound else packet.src
        if any(lo <= peer <= hi for lo, hi in self._inside.get(packet.version, ())):
            return FORWARDED
        return self.gate.check(packet, outbound)
