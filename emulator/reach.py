"""Which network ACLs a flow crosses, and whether routing carries it at all: the path `explain` walks
packet by packet, as a static list of subnet boundaries for `sgemu graph`.

A NACL applies where a packet crosses its subnet's boundary, never between two ENIs of one subnet
(https://docs.aws.amazon.com/vpc/latest/userguide/vpc-network-acls.html). The request crosses the
source subnet outbound and the destination subnet inbound; the reply, stateless, the reverse. From the
internet only the instance's side has a NACL. Routing as in emulator/explain/: an instance reaches the
internet through the internet gateway only with a public IP (or IPv6), through a NAT gateway (whose
subnet's NACL the packet crosses on both legs), or through the egress-only gateway (IPv6, outbound only);
the internet reaches an instance only when the instance's subnet routes the answer to the internet gateway.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import (
    ICMP_PROTOCOLS,
    NACL_ALLOW,
    PORTED_PROTOCOLS,
    PROTO_ALL,
    PROTO_ICMP,
    Direction,
    Instance,
    InternetHost,
    IPAddress,
    NetworkAcl,
    Topology,
)
from .portranges import FULL, Ranges, covers, nacl_passes, subtract
from .routes import TARGET_EIGW, TARGET_IGW, NatGateway, route_from

Node = Instance | InternetHost
# The client's ephemeral ports a reply goes to: "1024-65535" is what AWS suggests a NACL allows for them
# (https://docs.aws.amazon.com/vpc/latest/userguide/nacl-ephemeral-ports.html). A reply counts as passing
# when it reaches the caller's client port (graph passes explain's EPHEMERAL_PORT, so the two agree);
# `Passage.replies` tells when it reaches only part of the range.
EPHEMERAL: Ranges = ((1024, 65535),)
ECHO = {PROTO_ICMP: (8, 0)}            # ICMP echo request -> echo reply type (ICMPv6: 128 -> 129)


@dataclass(frozen=True)
class Crossing:
    """One subnet boundary a packet crosses: the NACL, the direction seen from the subnet, and the
    address at the far end of the packet (its destination outbound, its source inbound)."""

    nacl: NetworkAcl
    direction: Direction
    remote: IPAddress


@dataclass(frozen=True)
class Path:
    """How src reaches dst in one address family. `seen_src`: src as dst's SGs see it; `seen_dst`: dst
    as src's SGs see it; `via`: the NAT gateway the request leaves through."""

    seen_src: IPAddress
    seen_dst: IPAddress
    request: tuple[Crossing, ...] = ()
    reply: tuple[Crossing, ...] = ()
    via: NatGateway | None = None


def _crossing(topology: Topology, subnet: str, direction: Direction, remote: IPAddress) -> tuple[Crossing, ...]:
    """The subnet's NACL in that direction, unless it lets the whole address family through with its
    first rule (AWS's default NACL): nothing to cut then, as in the engine's hot path."""
    nacl = topology.nacl_for(subnet)
    if nacl is None:
        return ()
    family = sorted((e for e in nacl.entries(direction) if e.cidr.version == remote.version),
                    key=lambda e: e.rule_number)
    first = family[0] if family else None
    if first is not None and first.action == NACL_ALLOW and first.protocol == PROTO_ALL and first.cidr.prefixlen == 0:
        return ()
    return (Crossing(nacl, direction, remote),)


def _out(topology: Topology, subnet: str, remote: IPAddress) -> tuple[Crossing, ...]:
    return _crossing(topology, subnet, Direction.EGRESS, remote)


def _in(topology: Topology, subnet: str, remote: IPAddress) -> tuple[Crossing, ...]:
    return _crossing(topology, subnet, Direction.INGRESS, remote)


def path(topology: Topology, src: Node, dst: Node, version: int) -> Path | None:
    """The way from src to dst in address family `version`, or None when there is none."""
    if isinstance(src, Instance):
        return _between(topology, src, dst, version) if isinstance(dst, Instance) \
            else _to_internet(topology, src, dst, version)
    return _from_internet(topology, src, dst, version) if isinstance(dst, Instance) else None


def _between(topology: Topology, src: Instance, dst: Instance, version: int) -> Path | None:
    """Private addresses (or IPv6) inside the VPC: the local route, NACLs only across subnets."""
    s, d = (src.ipv6, dst.ipv6) if version == 6 else (src.private_ip, dst.private_ip)
    if s is None or d is None:
        return None
    if src.subnet == dst.subnet:
        return Path(s, d)
    return Path(s, d, _out(topology, src.subnet, d) + _in(topology, dst.subnet, s),
                _out(topology, dst.subnet, s) + _in(topology, src.subnet, d))


def _from_internet(topology: Topology, src: InternetHost, dst: Instance, version: int) -> Path | None:
    """Only to a public IP (IPv4) or an IPv6 address, and only when dst's subnet sends the answer to
    the internet gateway (an egress-only gateway or a NAT gateway carries no connection from outside)."""
    s, d = (src.ipv6, dst.ipv6) if version == 6 else (src.ip, dst.public_ip)
    if s is None or d is None or route_from(topology, dst.subnet, s).target != TARGET_IGW:
        return None
    return Path(s, d if version == 6 else dst.private_ip,
                _in(topology, dst.subnet, s), _out(topology, dst.subnet, s))


def _to_internet(topology: Topology, src: Instance, dst: InternetHost, version: int) -> Path | None:
    d = dst.ipv6 if version == 6 else dst.ip
    s = src.ipv6 if version == 6 else src.private_ip
    if d is None or s is None:
        return None
    target = route_from(topology, src.subnet, d).target
    nat = topology.nat_gateway(target or "")
    if nat is not None:
        across = src.subnet != nat.subnet
        inside_in = _in(topology, nat.subnet, s) if across else ()
        inside_out = _out(topology, nat.subnet, s) if across else ()
        return Path(nat.public_ip, d, _out(topology, src.subnet, d) + inside_in + _out(topology, nat.subnet, d),
                    _in(topology, nat.subnet, d) + inside_out + _in(topology, src.subnet, d), nat)
    seen = s if version == 6 else src.public_ip      # the internet gateway's 1:1 NAT needs a public IP
    if seen is None or target not in (TARGET_IGW, TARGET_EIGW if version == 6 else TARGET_IGW):
        return None
    return Path(seen, d, _out(topology, src.subnet, d), _in(topology, src.subnet, d))


@dataclass(frozen=True)
class Passage:
    """What of one protocol's wanted ranges gets through a path's NACLs both ways. `replies`: the client
    ports (of EPHEMERAL) a tcp/udp reply can reach (also when too few to count); `denied_by`: the NACLs
    that cut something, and `on_reply`: every cut was the reply's."""

    kept: Ranges
    replies: Ranges = EPHEMERAL
    denied_by: tuple[str, ...] = ()
    on_reply: bool = False


def _through(crossings: tuple[Crossing, ...], proto: int, wanted: Ranges, cutters: list[str]) -> Ranges:
    for crossing in crossings:
        passed = nacl_passes(crossing.nacl, crossing.direction, proto, crossing.remote, wanted)
        if passed != wanted and crossing.nacl.name not in cutters:
            cutters.append(crossing.nacl.name)
        wanted = passed
    return wanted


def passage(way: Path, proto: int, wanted: Ranges, client_port: int) -> Passage:
    """The request of each wanted port or type must pass every crossing of the request, and its reply
    every crossing of the reply: to the client's ephemeral ports (tcp, udp), as an echo reply (ICMP echo
    requests; other ICMP types expect none), or as the protocol itself (any other protocol). A tcp/udp reply
    must at least reach `client_port`."""
    cutters: list[str] = []
    kept = _through(way.request, proto, wanted, cutters)
    on_reply = not cutters
    replies = EPHEMERAL
    if proto in PORTED_PROTOCOLS and kept:
        replies = _through(way.reply, proto, EPHEMERAL, [])
        if not covers(replies, client_port):
            _through(way.reply, proto, EPHEMERAL, cutters)
            kept = ()
    elif proto in ICMP_PROTOCOLS:
        echo, answer = ECHO.get(proto, (128, 129))
        if covers(kept, echo) and not _through(way.reply, proto, ((answer, answer),), []):
            _through(way.reply, proto, ((answer, answer),), cutters)
            kept = subtract(kept, ((echo, echo),))
    elif kept and not _through(way.reply, proto, FULL, cutters):
        kept = ()
    return Passage(kept, replies, tuple(cutters), on_reply and bool(cutters))


__all__ = ["EPHEMERAL", "Crossing", "Passage", "Path", "passage", "path"]
