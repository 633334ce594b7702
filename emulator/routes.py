"""Route tables and NAT gateways in the model, and route selection as the VPC router does it: pure,
one answer per (subnet, destination).

AWS: "we use the most specific route in your route table that matches the traffic" (longest
prefix match), IPv4 and IPv6 routes never cover each other, the local route covers the VPC's
own blocks, and a blackhole route still wins the match and drops
(https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html, "Route priority").
Traffic between two addresses of one subnet never consults a route table.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING

if TYPE_CHECKING:      # the model holds route tables; this module must not import it at run time
    from .model import Topology

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Route targets besides NAT gateways (named by their `nat_gateways` name).
TARGET_IGW = "igw"                     # the internet gateway (1:1 NAT of public IPs; IPv6 routed)
TARGET_EIGW = "eigw"                   # egress-only internet gateway: IPv6 flows that start inside
TARGET_BLACKHOLE = "blackhole"         # discard silently
TARGET_LOCAL = "local"                 # the implicit route for the VPC's own blocks
MAIN_ROUTE_TABLE = "main"


@dataclass(frozen=True)
class RouteEntry:
    """One route of a route table (AWS Route): a destination block and where it goes."""

    destination: IPNetwork
    target: str                        # igw | eigw | blackhole | a NAT gateway's name

    def describe(self) -> str:
        return f"{self.destination} -> {self.target}"


@dataclass(frozen=True)
class RouteTable:
    """A route table and its subnet associations. The local route is implicit (always there,
    always first for the VPC's blocks). `main` is the table of every unassociated subnet."""

    name: str
    id: str
    routes: tuple[RouteEntry, ...] = ()
    subnets: tuple[str, ...] = ()
    main: bool = False


@dataclass(frozen=True)
class NatGateway:
    """A public NAT gateway: its own ENI (private IP in `subnet`) and an Elastic IP. No SGs;
    its subnet's NACL applies to its traffic."""

    name: str
    subnet: str
    private_ip: IPv4Address
    public_ip: IPv4Address
    id: str = ""


def default_main_table(table_id: str) -> RouteTable:
    """The main route table of a file that declares none: every subnet is public, as before route
    tables existed (0.0.0.0/0 and ::/0 to the internet gateway)."""
    return RouteTable(MAIN_ROUTE_TABLE, table_id,
                      (RouteEntry(IPv4Network("0.0.0.0/0"), TARGET_IGW),
                       RouteEntry(IPv6Network("::/0"), TARGET_IGW)), main=True)


@dataclass(frozen=True)
class RouteChoice:
    """Where the router sends a packet: `target` is local | igw | eigw | blackhole | a NAT gateway
    name, or None when no route matches (the packet is discarded silently)."""

    table: RouteTable
    route: RouteEntry | None           # None for the implicit local route and for "no route"
    target: str | None

    @property
    def forwards(self) -> bool:
        return self.target is not None and self.target != TARGET_BLACKHOLE

    def describe(self) -> str:
        if self.target == TARGET_LOCAL:
            return f"route table {self.table.name} ({self.table.id}): local route"
        if self.route is None:
            return f"route table {self.table.name} ({self.table.id}): no route"
        return f"route table {self.table.name} ({self.table.id}): {self.route.describe()}"


def longest_match(routes: tuple[RouteEntry, ...], dst: IPAddress) -> RouteEntry | None:
    best: RouteEntry | None = None
    for route in routes:
        if route.destination.version == dst.version and dst in route.destination and \
                (best is None or route.destination.prefixlen > best.destination.prefixlen):
            best = route
    return best


def in_vpc(topology: Topology, dst: IPAddress) -> bool:
    blocks = (topology.vpc.cidr, topology.vpc.ipv6_cidr)
    return any(b is not None and b.version == dst.version and dst in b for b in blocks)


def choose(topology: Topology, table: RouteTable, dst: IPAddress) -> RouteChoice:
    """The route TABLE picks for DST. The local route always wins inside the VPC's blocks (the
    lab accepts no more specific route there)."""
    if in_vpc(topology, dst):
        return RouteChoice(table, None, TARGET_LOCAL)
    route = longest_match(table.routes, dst)
    return RouteChoice(table, route, None if route is None else route.target)


def route_from(topology: Topology, subnet: str, dst: IPAddress) -> RouteChoice:
    """The route a packet from SUBNET to DST takes (its subnet's table, else the main table)."""
    return choose(topology, topology.route_table_of(subnet), dst)


def routes_declared(topology: Topology) -> bool:
    """Does the lab route anything other than "every subnet public"? (Views show routing then.)"""
    return bool(topology.nat_gateways) or any(t.routes != default_main_table("").routes or t.subnets
                                              for t in topology.routing)
