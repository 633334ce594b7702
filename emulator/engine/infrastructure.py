"""Traffic AWS never filters, by SGs or NACLs alike: IPv6 neighbour discovery and link-local,
IPv4 link-local (instance metadata, time sync) and the VPC's DNS at base + 2
(https://docs.aws.amazon.com/vpc/latest/userguide/nacl-basics.html: "Network ACLs can't block
DNS requests to or from the Route 53 Resolver ... or the Instance Metadata Service")."""
from __future__ import annotations

from emulator.model import PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

from .packet import Packet

_FE80_PREFIX = 0x3FA               # fe80::/10, the top 10 bits
_FF02_PREFIX = 0xFF02              # link-scope multicast ff02::/16 (MLD, ND)
_V4_LINK_LOCAL_PREFIX = 0xA9FE     # 169.254.0.0/16 (metadata, time sync)
_DNS_PORT = 53


def is_infrastructure(packet: Packet, proto: int, dns: int) -> bool:
    """IPv6 ND/RS/RA and link-local, IPv4 link-local, DNS to or from `dns` (the VPC's base + 2)."""
    if packet.version == 6:
        src, dst = packet.src, packet.dst
        return (src >> 118 == _FE80_PREFIX or dst >> 118 == _FE80_PREFIX or dst >> 112 == _FF02_PREFIX
                or (proto == PROTO_ICMPV6 and 133 <= packet.icmp_type <= 137))
    if packet.src >> 16 == _V4_LINK_LOCAL_PREFIX or packet.dst >> 16 == _V4_LINK_LOCAL_PREFIX:
        return True
    if proto == PROTO_UDP or proto == PROTO_TCP:
        return (packet.dst == dns and packet.dport == _DNS_PORT) or (packet.src == dns and packet.sport == _DNS_PORT)
    return False
