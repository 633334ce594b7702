"""Topology -> LabPlan: every namespace, interface, address, route, sysctl, hosts file,
queue number and hook ruleset a lab needs. Pure: no root, no I/O; `sgemu plan` prints it
and lab/ executes it.

Shape (see ARCHITECTURE.md): one fabric namespace (VPC router + IGW) joined by a veth to each
instance (`eth0` <-> `eni-<name>`) and to each internet host (`eth0` <-> `igw-<name>`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from ipaddress import IPv4Address, IPv6Address

from ..model import Instance, InternetHost, Topology

PREFIX = "sgemu-"
IFNAMSIZ = 15                  # usable characters in a Linux interface name
FABRIC_NODE = "vpc"
NODE_DEV = "eth0"
ENI_PREFIX = "eni-"            # fabric end of an instance's veth: its ENI
IGW_PREFIX = "igw-"            # fabric end of an internet host's veth
IGW_GATEWAY_V4 = IPv4Address("169.254.0.1")   # next hop of internet hosts; never routed
LINK_GATEWAY_V6 = IPv6Address("fe80::1")      # next hop of every IPv6 node
# The Amazon DNS server's other addresses besides VPC base + 2 (vpc-dns.html); internet hosts ask
# the lab's "public DNS" at their gateway. All live on the fabric's lo: traffic to the fabric's own
# addresses never meets an SG queue (nor anything else of the engine), as in AWS.
VPC_DNS_LINK_LOCAL = IPv4Address("169.254.169.253")
VPC_DNS_V6 = IPv6Address("fd00:ec2::253")
INTERNET_DNS = IGW_GATEWAY_V4
HAIRPIN_MARK = 0x1             # skb mark bit: instance -> public IP of another instance
OFFLOAD_MARK = 0x2             # connmark bit: the engine hands the flow's later packets to the kernel
PULLBACK_MARK = 0x4            # mark bit, verdict then connection: the flow closes, no more fast path
KERNEL_TIMEOUT_MARGIN = 5      # seconds a kernel conntrack entry outlives the engine's longest timeout
DECIDED_MARK = 0x8             # skb mark bit: the engine already decided the destination ENI's ingress
ENI_QUEUE = 1                  # the one NFQUEUE every ENI's packets go to; the engine tells ENIs by interface
ND_TYPES = (133, 134, 135, 136, 137)          # RS, RA, NS, NA, redirect: infrastructure
Views = tuple[tuple[str, str, int, str], ...]


def namespace_name(lab: str, node: str) -> str:
    return f"{PREFIX}{lab}-{node}"


def marker(lab: str) -> str:
    """The ifalias every interface of the lab carries, so cleanup never touches a foreign one."""
    return f"sgemu:{lab}"


@dataclass(frozen=True)
class Route:
    dst: str                   # "default" or a CIDR
    dev: str | None            # None for a blackhole
    via: str | None = None
    blackhole: bool = False    # silently discard (no ICMP unreachable), like a VPC route to nowhere
    table: int = 0             # 0: the main table; else a route table's kernel table (plan/routing.py)
    onlink: bool = False       # the next hop is on the device even if no route says so

    def args(self) -> list[str]:
        """Arguments after `ip route add` / `ip -6 route add`."""
        table = ["table", str(self.table)] if self.table else []
        if self.blackhole:
            return ["blackhole", self.dst, *table]
        return [self.dst, *(["via", self.via] if self.via else []), "dev", str(self.dev),
                *(["onlink"] if self.onlink else []), *table]


@dataclass(frozen=True)
class Address:
    cidr: str                  # "10.0.1.10/24"
    dev: str
    nodad: bool = False        # IPv6: usable at once, no duplicate detection on a point-to-point link

    @property
    def family(self) -> int:
        return 6 if ":" in self.cidr else 4


@dataclass(frozen=True)
class Veth:
    """A veth pair created from the fabric: `device` in the fabric, `peer` (eth0) in `peer_ns`."""

    device: str
    peer_ns: str
    peer: str = NODE_DEV


@dataclass(frozen=True)
class Namespace:
    name: str
    node: str                  # instance or internet-host name, or "vpc" for the fabric
    role: str                  # fabric | instance | internet
    addresses: tuple[Address, ...]
    routes: tuple[Route, ...]
    sysctls: tuple[tuple[str, str], ...]
    hosts: str                 # /etc/netns/<name>/hosts ("" for the fabric: it needs none)
    nameservers: tuple[str, ...] = ()   # its /etc/netns/<name>/resolv.conf (none: names from hosts only)
    rules: tuple[str, ...] = ()   # `ip rule add` arguments (the fabric's route tables)

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.dev for a in self.addresses))


@dataclass(frozen=True)
class Eni:
    """An instance's ENI: the fabric device its SG hooks sit on (every ENI shares ENI_QUEUE)."""

    instance: str
    device: str


@dataclass(frozen=True)
class GatewayEni:
    """A NAT gateway's ENI: the fabric device its packets cross, to the same queue as every ENI.
    No security group applies; its subnet's network ACL does where a packet crosses the subnet's
    boundary (engine/gateway.py), and each packet is a flow-log record of this ENI."""

    gateway: str
    device: str
    subnet: str
    private_ip: str
    public_ip: str             # its Elastic IP, how the internet addresses it


@dataclass(frozen=True)
class Ruleset:
    """One iptables-restore (family 4) or ip6tables-restore (family 6) input for one table."""

    family: int
    table: str
    text: str
    namespace: str = ""        # "" for the fabric; else the namespace it belongs in (a NAT gateway)


@dataclass(frozen=True)
class LabPlan:
    lab: str
    fabric: Namespace
    nodes: tuple[Namespace, ...]
    veths: tuple[Veth, ...]
    enis: tuple[Eni, ...]
    rulesets: tuple[Ruleset, ...]
    views: Views               # (from node, to node, family, address): how each node addresses the others
    gateways: tuple[Namespace, ...] = ()   # NAT gateways (plan/routing.py)
    gateway_enis: tuple[GatewayEni, ...] = ()

    @property
    def marker(self) -> str:
        return marker(self.lab)

    @property
    def namespaces(self) -> tuple[Namespace, ...]:
        return (self.fabric, *self.nodes, *self.gateways)

    @cached_property
    def _by_node(self) -> dict[str, Namespace]:
        return {ns.node: ns for ns in self.namespaces}

    @cached_property
    def _addresses(self) -> dict[tuple[str, str, int], str]:
        return {(s, d, f): a for s, d, f, a in self.views}

    def namespace(self, node: str) -> Namespace:
        return self._by_node[node]

    def eni(self, instance: str) -> Eni:
        return next(e for e in self.enis if e.instance == instance)

    def address(self, src: str, dst: str, family: int = 4) -> str | None:
        """The address `src` uses to reach node `dst` (private inside the VPC, public from outside)."""
        return self._addresses.get((src, dst, family))

    def render(self) -> str:
        lines = [f"lab {self.lab} (interfaces marked {self.marker!r})"]
        for ns in self.namespaces:
            lines.append(f"namespace {ns.name} ({ns.role})")
            lines += [f"  addr  {a.cidr} dev {a.dev}{' nodad' if a.nodad else ''}" for a in ns.addresses]
            lines += [f"  route {' '.join(r.args())}" for r in ns.routes]
            lines += [f"  rule  {r}" for r in ns.rules]
            lines += [f"  sysctl {k}={v}" for k, v in ns.sysctls]
            lines += [f"  nameserver {a}" for a in ns.nameservers]
        lines += [f"veth {v.device} <-> {v.peer_ns}/{v.peer}" for v in self.veths]
        if self.enis or self.gateway_enis:
            count = len(self.enis) + len(self.gateway_enis)
            lines.append(f"queue {ENI_QUEUE}: every ENI ({count}), told apart by interface")
        lines += [f"eni {e.instance} on {e.device}" for e in self.enis]
        lines += [f"eni {g.gateway} on {g.device} (NAT gateway: no security group; network ACL of {g.subnet})"
                  for g in self.gateway_enis]
        for rs in self.rulesets:
            where = f" in {rs.namespace}" if rs.namespace else ""
            lines.append(f"{'ip6tables' if rs.family == 6 else 'iptables'}-restore ({rs.table}){where}:")
            lines += [f"  {line}" for line in rs.text.splitlines()]
        return "\n".join(lines)


def device_names(prefix: str, names: list[str], taken: set[str]) -> dict[str, str]:
    """`prefix+name` per name, cut to IFNAMSIZ; cut names that collide get a numeric suffix."""
    result: dict[str, str] = {}
    for name in names:
        candidate = (prefix + name)[:IFNAMSIZ]
        index = 1
        while candidate in taken:
            suffix = str(index)
            candidate = (prefix + name)[:IFNAMSIZ - len(suffix)] + suffix
            index += 1
        taken.add(candidate)
        result[name] = candidate
    return result


def build_plan(topology: Topology, enforce: bool = True) -> LabPlan:
    """`enforce=False` leaves out every NFQUEUE hook: the same lab with no SG at all (the
    benchmark's baseline)."""
    from .hooks import rulesets  # imported here: like routing, it builds on this package's types
    from .routing import NGW_PREFIX, build_routing
    lab = topology.name
    fabric_ns = namespace_name(lab, FABRIC_NODE)
    taken: set[str] = set()
    eni_dev = device_names(ENI_PREFIX, [i.name for i in topology.instances], taken)
    igw_dev = device_names(IGW_PREFIX, [h.name for h in topology.internet], taken)
    ngw_dev = device_names(NGW_PREFIX, [n.name for n in topology.nat_gateways], taken)
    routing = build_routing(topology, igw_dev, ngw_dev)
    enis = tuple(Eni(i.name, eni_dev[i.name]) for i in topology.instances)
    seen = _views(topology)
    views = tuple(view for node in topology.nodes for view in seen[node.name])
    nodes = tuple(_instance_ns(topology, i, seen[i.name]) for i in topology.instances) + \
        tuple(_internet_ns(topology, h, seen[h.name]) for h in topology.internet)
    veths = tuple(Veth(eni_dev[i.name], namespace_name(lab, i.name)) for i in topology.instances) + \
        tuple(Veth(igw_dev[h.name], namespace_name(lab, h.name)) for h in topology.internet) + routing.veths
    fabric = _fabric_ns(topology, fabric_ns, eni_dev, igw_dev)
    fabric = replace(fabric, addresses=fabric.addresses + routing.addresses,
                     routes=fabric.routes + routing.routes, sysctls=fabric.sysctls + routing.sysctls,
                     rules=routing.rules)
    tables = rulesets(topology, enis, enforce, routing) + routing.rulesets
    return LabPlan(lab, fabric, nodes, veths, enis, tables, views, routing.gateways, routing.enis)


# -- addresses as each node sees them -------------------------------------------------------

def _views(topology: Topology) -> dict[str, Views]:
    """Per source node, how it addresses every node. Inside the VPC, instances are their private
    addresses and internet hosts their own; from the internet, instances are their public IPv4
    and their (globally routed) IPv6. A node without IPv6 cannot use an IPv6 address.
    Each address is rendered once per viewpoint (a lab of 1000 nodes has a million views)."""
    def seen_as(inside: bool, with_v6: bool) -> list[tuple[str, int, str]]:
        out: list[tuple[str, int, str]] = []
        for dst in topology.nodes:
            v4 = (dst.private_ip if inside else dst.public_ip) if isinstance(dst, Instance) else dst.ip
            v6 = dst.ipv6 if with_v6 else None
            out += [(dst.name, family, str(a)) for family, a in ((4, v4), (6, v6)) if a is not None]
        return out

    viewpoints: dict[tuple[bool, bool], list[tuple[str, int, str]]] = {}
    views: dict[str, Views] = {}
    for src in topology.nodes:
        point = (isinstance(src, Instance), src.ipv6 is not None)
        if point not in viewpoints:
            viewpoints[point] = seen_as(*point)
        views[src.name] = tuple((src.name, dst, family, address) for dst, family, address in viewpoints[point])
    return views


def _hosts(node: str, seen: Views, resolved: bool) -> str:
    """localhost and the node itself; every other name comes from the lab's DNS (lab/dns.py), or
    from here when the node has no resolver to ask (an IPv6-only internet host)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost"]
    lines += [f"{address}\t{dst}" for _, dst, _, address in seen if dst == node or not resolved]
    return "\n".join(lines) + "\n"


def vpc_nameservers(topology: Topology, inst: Instance) -> tuple[str, ...]:
    dual = inst.ipv6 is not None and topology.vpc.ipv6_cidr is not None
    return (str(topology.vpc.dns_ip), *([str(VPC_DNS_V6)] if dual else []))


# -- namespaces -----------------------------------------------------------------------------

def _instance_ns(topology: Topology, inst: Instance, seen: Views) -> Namespace:
    subnet = topology.subnet(inst.subnet)
    addresses = [Address(f"{inst.private_ip}/{subnet.cidr.prefixlen}", NODE_DEV)]
    routes = [Route("default", NODE_DEV, str(subnet.router_ip))]
    if inst.ipv6 is not None and subnet.ipv6_cidr is not None:
        # As EC2 shows it: the address as a /128, everything routed through the VPC router.
        addresses.append(Address(f"{inst.ipv6}/128", NODE_DEV, nodad=True))
        routes += [Route(str(subnet.ipv6_cidr), NODE_DEV, str(LINK_GATEWAY_V6)),
                   Route("default", NODE_DEV, str(LINK_GATEWAY_V6))]
    return Namespace(namespace_name(topology.name, inst.name), inst.name, "instance",
                     tuple(addresses), tuple(routes), (), _hosts(inst.name, seen, True),
                     vpc_nameservers(topology, inst))


def _internet_ns(topology: Topology, host: InternetHost, seen: Views) -> Namespace:
    addresses, routes = [], []
    if host.ip is not None:
        addresses.append(Address(f"{host.ip}/32", NODE_DEV))
        routes.append(Route(f"{IGW_GATEWAY_V4}/32", NODE_DEV))
        routes.append(Route("default", NODE_DEV, str(IGW_GATEWAY_V4)))
    if host.ipv6 is not None:
        addresses.append(Address(f"{host.ipv6}/128", NODE_DEV, nodad=True))
        routes.append(Route("default", NODE_DEV, str(LINK_GATEWAY_V6)))
    nameservers = (str(INTERNET_DNS),) if host.ip is not None else ()
    return Namespace(namespace_name(topology.name, host.name), host.name, "internet",
                     tuple(addresses), tuple(routes), (), _hosts(host.name, seen, bool(nameservers)),
                     nameservers)


def _fabric_ns(topology: Topology, name: str, eni_dev: dict[str, str],
               igw_dev: dict[str, str]) -> Namespace:
    addresses = [Address(f"{topology.vpc.dns_ip}/32", "lo"), Address(f"{VPC_DNS_LINK_LOCAL}/32", "lo")]
    if topology.vpc.ipv6_cidr is not None:
        addresses.append(Address(f"{VPC_DNS_V6}/128", "lo", nodad=True))
    routes: list[Route] = []
    sysctls: list[tuple[str, str]] = [
        ("net.ipv4.ip_forward", "1"), ("net.ipv6.conf.all.forwarding", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"), ("net.ipv4.conf.default.rp_filter", "0")]
    if topology.options.offload:
        from .hooks import offload_sysctls
        sysctls += offload_sysctls(topology)
    for inst in topology.instances:
        dev = eni_dev[inst.name]
        addresses.append(Address(f"{topology.subnet(inst.subnet).router_ip}/32", dev))
        routes.append(Route(f"{inst.private_ip}/32", dev))
        if inst.ipv6 is not None:
            addresses.append(Address(f"{LINK_GATEWAY_V6}/64", dev, nodad=True))
            routes.append(Route(f"{inst.ipv6}/128", dev))
        # Proxy ARP answers at once: the kernel's default delays each answer by up to 0.8 s
        # (proxy_delay), so a first connection between two instances of one subnet was slow.
        sysctls += [(f"net.ipv4.conf.{dev}.proxy_arp", "1"), (f"net.ipv4.neigh.{dev}.proxy_delay", "0")]
    for host in topology.internet:
        dev = igw_dev[host.name]
        if host.ip is not None:
            addresses.append(Address(f"{IGW_GATEWAY_V4}/32", dev))
            routes.append(Route(f"{host.ip}/32", dev))
        if host.ipv6 is not None:
            addresses.append(Address(f"{LINK_GATEWAY_V6}/64", dev, nodad=True))
            routes.append(Route(f"{host.ipv6}/128", dev))
    # Anything else goes nowhere, silently: a client sees a timeout, as in a VPC, never "unreachable".
    routes += [Route("0.0.0.0/0", None, blackhole=True), Route("::/0", None, blackhole=True)]
    return Namespace(name, FABRIC_NODE, "fabric", tuple(addresses), tuple(routes),
                     tuple(sysctls), "")
