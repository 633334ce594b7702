"""The validated topology: frozen dataclasses, no I/O, no behaviour beyond lookups.

Everything downstream (plan, engine, lab) reads these. The topology/ package builds them from files;
live changes (engine/sgstate.py, control/api.py) derive new ones with dataclasses.replace.
Addresses are `ipaddress` objects; SG references are resolved to SG ids.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from .routes import NatGateway, RouteTable, default_main_table

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# IANA protocol numbers the emulator names; any 0-255 is valid in a rule.
PROTO_ALL = -1
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58
PROTOCOL_NAMES = {"all": PROTO_ALL, "-1": PROTO_ALL, "icmp": PROTO_ICMP, "tcp": PROTO_TCP,
                  "udp": PROTO_UDP, "icmpv6": PROTO_ICMPV6}
PORTED_PROTOCOLS = (PROTO_TCP, PROTO_UDP)
ICMP_PROTOCOLS = (PROTO_ICMP, PROTO_ICMPV6)


def protocol_name(number: int) -> str:
    for name, num in PROTOCOL_NAMES.items():
        if num == number and name != "-1":
            return name
    return str(number)



def traffic_text(protocol: int, ports: PortRange | None, icmp_type: int, icmp_code: int) -> str:
    """What a rule (SG or NACL) matches, in words: `tcp 80`, `icmp 8/-1`, `all`."""
    name = protocol_name(protocol)
    if protocol in PORTED_PROTOCOLS and ports is not None:
        return f"{name} {ports}"
    if protocol in ICMP_PROTOCOLS:
        return f"{name} {icmp_type}/{icmp_code}"
    return name

class Direction(StrEnum):
    """Seen from the instance: INGRESS enters it, EGRESS leaves it."""

    INGRESS = "ingress"
    EGRESS = "egress"


class Outcome(StrEnum):
    """What a client sees when it tries a connection: the vocabulary of probe, matrix, demo and explain."""

    OPEN = "open"            # TCP connected
    REPLY = "reply"          # UDP or ICMP answered
    REFUSED = "refused"      # RST or ICMP port unreachable: the packet got through, nothing listens
    TIMEOUT = "timeout"      # dropped silently somewhere

    @property
    def exit_status(self) -> int:
        """`sgemu probe`'s exit status (CONTRACT.md): 0 answered, 3 refused, 4 timeout."""
        return {"open": 0, "reply": 0, "refused": 3, "timeout": 4}[self.value]

    @property
    def answered(self) -> bool:
        return self in (Outcome.OPEN, Outcome.REPLY)


@dataclass(frozen=True)
class PortRange:
    """Inclusive destination-port range (SGs never look at source ports)."""

    low: int
    high: int

    def __contains__(self, port: int) -> bool:
        return self.low <= port <= self.high

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}-{self.high}"


@dataclass(frozen=True)
class Rule:
    """One SG rule (AWS SecurityGroupRule): exactly one of `cidr` or `group` is set.

    `ports` is set only for tcp/udp; `icmp_type`/`icmp_code` (-1 = all) only for
    icmp/icmpv6. For every other protocol AWS ignores ports, so the rule covers all.
    """

    direction: Direction
    protocol: int                      # PROTO_ALL or 0-255
    ports: PortRange | None = None
    icmp_type: int = -1
    icmp_code: int = -1
    cidr: IPNetwork | None = None
    group: str | None = None           # referenced SG id
    description: str = ""
    rule_id: str = ""                  # sgr-…, stable
    prefix_list: str | None = None     # referenced prefix list id (the third kind of peer)

    @property
    def peer(self) -> str:
        if self.prefix_list is not None:
            return self.prefix_list
        return str(self.cidr) if self.cidr is not None else str(self.group)

    def same_permission(self, other: Rule) -> bool:
        """True when AWS would call the two rules duplicates (description and id aside)."""
        return (self.direction, self.protocol, self.ports, self.icmp_type, self.icmp_code,
                self.cidr, self.group, self.prefix_list) == (
            other.direction, other.protocol, other.ports, other.icmp_type, other.icmp_code, other.cidr,
            other.group, other.prefix_list)

    def describe(self) -> str:
        arrow = "from" if self.direction is Direction.INGRESS else "to"
        what = traffic_text(self.protocol, self.ports, self.icmp_type, self.icmp_code)
        return f"{self.direction.value} {what} {arrow} {self.peer}"


@dataclass(frozen=True)
class SecurityGroup:
    name: str
    id: str
    description: str = ""
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True)
class Service:
    type: str                          # http | https | tcp | udp-echo | ssh | http-proxy | ftp | rdp
    port: int
    to: str | None = None              # http-proxy target "instance:port"
    passive_ports: PortRange | None = None   # ftp: where passive-mode data connections land

    @property
    def transport(self) -> int:
        return PROTO_UDP if self.type == "udp-echo" else PROTO_TCP


@dataclass(frozen=True)
class ConntrackTimeouts:
    """Idle timeouts in seconds. The first three are AWS's ConnectionTrackingSpecification;
    the rest are emulator-defined (AWS documents no value) and Linux-like."""

    tcp_established: int = 432000
    udp: int = 30
    udp_stream: int = 180
    tcp_syn_sent: int = 120
    tcp_syn_recv: int = 60
    tcp_fin_wait: int = 120
    tcp_close_wait: int = 60
    tcp_last_ack: int = 30
    tcp_time_wait: int = 120
    tcp_close: int = 10
    icmp: int = 30
    other: int = 600                   # AWS: other protocols, IP + protocol, 600 s


AWS_TIMEOUTS = ("tcp_established", "udp", "udp_stream")
# ConnectionTrackingSpecification ranges (seconds), as EC2 checks them, for files and live changes alike.
TIMEOUT_RANGES = {"tcp_established": (60, 432000), "udp": (30, 60), "udp_stream": (60, 180)}


@dataclass(frozen=True)
class Quotas:
    """AWS's default VPC quotas; a topology may raise them like a quota increase."""

    rules_per_sg: int = 60             # inbound and outbound each, counted per address family
    sgs_per_eni: int = 5
    rules_per_nacl: int = 20           # per NACL, direction and address family, the `*` rule included


@dataclass(frozen=True)
class Options:
    """Emulator choices where AWS is undocumented or inconsistent ([CHOICE] in the reference)."""

    related_icmp: bool = True          # accept ICMP errors about a tracked flow without a rule
    default_egress_ipv6: bool = True   # new/default SGs get ::/0 egress in a dual-stack VPC
    conntrack_allowance: int = 100_000  # tracked flows per ENI; beyond, new tracked flows drop
    offload: bool = True               # established flows (TCP, UDP, ICMP echo) take the kernel fast path
    standby: bool = True               # a second engine kept ready: a restart takes ~50 ms, not a cold start
    timeouts: ConntrackTimeouts = field(default_factory=ConntrackTimeouts)
    quotas: Quotas = field(default_factory=Quotas)
    flow_log_interval: int = 10        # seconds per flow-log aggregation interval (AWS: 60 or 600)
    account_id: str = "123456789012"   # the account-id field of flow-log records


@dataclass(frozen=True)
class Vpc:
    cidr: IPv4Network
    ipv6_cidr: IPv6Network | None = None
    id: str = ""                       # vpc-…; the loader fills in a stable one from the lab name

    @property
    def dual_stack(self) -> bool:
        return self.ipv6_cidr is not None

    @property
    def dns_ip(self) -> IPv4Address:
        """AmazonProvidedDNS, VPC base + 2: never filtered by SGs."""
        return self.cidr.network_address + 2


@dataclass(frozen=True)
class Subnet:
    name: str
    cidr: IPv4Network
    ipv6_cidr: IPv6Network | None = None

    @property
    def router_ip(self) -> IPv4Address:
        """The VPC router's address in this subnet: base + 1."""
        return self.cidr.network_address + 1


@dataclass(frozen=True)
class Instance:
    name: str
    subnet: str
    private_ip: IPv4Address
    security_groups: tuple[str, ...]   # SG ids, in file order
    ipv6: IPv6Address | None = None
    public_ip: IPv4Address | None = None
    services: tuple[Service, ...] = ()
    conntrack: ConntrackTimeouts = field(default_factory=ConntrackTimeouts)

    @property
    def addresses(self) -> tuple[IPAddress, ...]:
        """Private addresses: what SG references match."""
        return (self.private_ip,) if self.ipv6 is None else (self.private_ip, self.ipv6)

    def listens(self, transport: int, port: int) -> bool:
        return any(s.transport == transport and s.port == port for s in self.services)


@dataclass(frozen=True)
class InternetHost:
    name: str
    ip: IPv4Address | None = None
    ipv6: IPv6Address | None = None

    @property
    def addresses(self) -> tuple[IPAddress, ...]:
        return tuple(a for a in (self.ip, self.ipv6) if a is not None)


@dataclass(frozen=True)
class PrefixListEntry:
    cidr: IPNetwork
    description: str = ""


@dataclass(frozen=True)
class PrefixList:
    """A customer-managed prefix list: one address family; `max_entries` is what SG quotas count."""

    name: str
    id: str
    max_entries: int
    entries: tuple[PrefixListEntry, ...] = ()
    family: int = 4                    # 4 or 6 (AWS: AddressFamily IPv4 | IPv6)

    @property
    def cidrs(self) -> tuple[IPNetwork, ...]:
        return tuple(e.cidr for e in self.entries)


NACL_ALLOW = "allow"
NACL_DENY = "deny"
NACL_RULE_MAX = 32766                  # 32767 (IPv4 `*`) and up are AWS's own


@dataclass(frozen=True)
class NaclEntry:
    """One numbered NACL rule (AWS NetworkAclEntry). `ports` only for tcp/udp, ICMP type/code
    only for icmp/icmpv6; any other protocol matches all its traffic. Ports are destination ports."""

    rule_number: int
    direction: Direction
    action: str                        # NACL_ALLOW | NACL_DENY
    protocol: int
    cidr: IPNetwork
    ports: PortRange | None = None
    icmp_type: int = -1
    icmp_code: int = -1

    def describe(self) -> str:
        arrow = "from" if self.direction is Direction.INGRESS else "to"
        what = traffic_text(self.protocol, self.ports, self.icmp_type, self.icmp_code)
        return f"rule {self.rule_number} {self.action} {what} {arrow} {self.cidr}"


@dataclass(frozen=True)
class NetworkAcl:
    """A subnet-level, stateless list of numbered rules per direction (the `*` deny is implicit).
    `subnets` are its explicit associations; the NACL named `default` also takes every subnet
    associated with no other."""

    name: str
    id: str
    subnets: tuple[str, ...] = ()
    ingress: tuple[NaclEntry, ...] = ()
    egress: tuple[NaclEntry, ...] = ()

    def entries(self, direction: Direction) -> tuple[NaclEntry, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress


DEFAULT_NACL = "default"


@dataclass(frozen=True)
class Topology:
    name: str
    vpc: Vpc
    subnets: tuple[Subnet, ...]
    security_groups: tuple[SecurityGroup, ...]
    instances: tuple[Instance, ...]
    internet: tuple[InternetHost, ...] = ()
    options: Options = field(default_factory=Options)
    source: str = ""                   # the file it came from, for messages
    network_acls: tuple[NetworkAcl, ...] = ()
    prefix_lists: tuple[PrefixList, ...] = ()
    route_tables: tuple[RouteTable, ...] = ()   # the loader always gives the main one (emulator/routes.py)
    nat_gateways: tuple[NatGateway, ...] = ()

    def subnet(self, name: str) -> Subnet:
        return next(s for s in self.subnets if s.name == name)

    def instance(self, name: str) -> Instance:
        return next(i for i in self.instances if i.name == name)

    def sg(self, ref: str) -> SecurityGroup:
        """An SG by id or by name."""
        return next(g for g in self.security_groups if ref in (g.id, g.name))

    def find_sg(self, ref: str) -> SecurityGroup | None:
        return next((g for g in self.security_groups if ref in (g.id, g.name)), None)

    @property
    def nodes(self) -> tuple[Instance | InternetHost, ...]:
        """Every instance and internet host, instances first."""
        return (*self.instances, *self.internet)

    def node(self, name: str) -> Instance | InternetHost | None:
        return next((n for n in self.nodes if n.name == name), None)

    def members(self, sg_id: str) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances if sg_id in i.security_groups)

    def nacl_for(self, subnet: str) -> NetworkAcl | None:
        """The NACL associated with `subnet` (the default one unless another lists it); None when
        the model declares no NACL at all, which means AWS's untouched default: allow all."""
        explicit = next((n for n in self.network_acls if subnet in n.subnets), None)
        return explicit or next((n for n in self.network_acls if n.name == DEFAULT_NACL), None)

    def find_nacl(self, ref: str) -> NetworkAcl | None:
        return next((n for n in self.network_acls if ref in (n.id, n.name)), None)

    def find_prefix_list(self, ref: str) -> PrefixList | None:
        return next((p for p in self.prefix_lists if ref in (p.id, p.name)), None)

    @property
    def routing(self) -> tuple[RouteTable, ...]:
        """Every route table, the main one first (the default main table when none is declared)."""
        tables = self.route_tables or (default_main_table(""),)
        return tuple(sorted(tables, key=lambda t: not t.main))

    def route_table_of(self, subnet: str) -> RouteTable:
        """The subnet's explicit association, else the main table."""
        tables = self.routing
        return next((t for t in tables if subnet in t.subnets), tables[0])

    def nat_gateway(self, ref: str) -> NatGateway | None:
        return next((n for n in self.nat_gateways if ref in (n.name, n.id)), None)
