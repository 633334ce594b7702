"""The routing part of the LabPlan: route tables as kernel policy routing in the fabric, NAT
gateways as namespaces of their own, and the egress-only internet gateway. Pure, like plan.py.

- Route tables. Each table is a kernel routing table in the fabric; a subnet's packets look up its
  table (`ip rule from <subnet> lookup N`), and one that finds nothing hits a `blackhole` rule:
  silently discarded, a timeout, never ICMP unreachable (AWS sends none). The local route is a rule
  before them (`to <VPC block> lookup main`). Longest-prefix match is decided by
  emulator.engine.routing for every internet address of the lab, and each table holds the result
  as host routes (the internet hosts are the only destinations outside the VPC): a live route
  change is a diff of those host routes, nothing else.
- NAT gateways. A namespace with the gateway's ENI (its private IP in its subnet); the kernel's own
  NAT and conntrack translate (source to its private IP, ports 1024-65535), then the fabric's 1:1
  NAT (the IGW) maps that private IP to its Elastic IP, the two stages AWS describes
  (https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html). Nothing addressed to
  the gateway itself is answered and nothing from outside is forwarded unless it is a reply.
  Idle TCP flows expire after 350 s and a later packet from inside gets a RST, as AWS documents
  (https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html).
- Egress-only internet gateway: connections the internet opens are marked on their connection
  (EIGW_MARK); the replies of their instance then look up the table's "inbound" twin, where eigw
  routes are blackholes (https://docs.aws.amazon.com/vpc/latest/userguide/egress-only-internet-gateway.html:
  it "prevents the internet from initiating an IPv6 connection").
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from ..model import Topology
from ..routes import TARGET_BLACKHOLE, TARGET_EIGW, TARGET_IGW, IPAddress, NatGateway, RouteTable, choose
from . import NODE_DEV, Address, GatewayEni, Namespace, Route, Ruleset, Veth, namespace_name

NGW_PREFIX = "ngw-"            # fabric end of a NAT gateway's veth: its ENI (queued: NACL and flow logs, no SG)
TABLE_BASE = 100               # kernel table of the route table at index i: 100 + i
INBOUND_TABLE_BASE = 200       # its twin for replies to connections the internet opened (eigw -> drop)
EIGW_MARK = 0x10               # connmark bit: an IPv6 connection the internet opened
RULE_LOCAL, RULE_SUBNETS = 1000, 2000
NAT_PORTS = "1024-65535"       # AWS: the NAT gateway's source ports
NAT_TIMEOUTS = (("tcp_timeout_established", 350), ("udp_timeout", 350), ("udp_timeout_stream", 350),
                ("icmp_timeout", 60))   # TCP per AWS; UDP and ICMP emulator-defined (AWS is silent)


@dataclass(frozen=True)
class RoutingPlan:
    """What routing adds to the fabric, and the NAT gateways' own namespaces."""

    routes: tuple[Route, ...]            # in the fabric: table routes (and the NAT gateways' ENI routes)
    rules: tuple[str, ...]               # `ip rule add` arguments, in the fabric
    addresses: tuple[Address, ...]       # router addresses on the NAT gateways' ENIs
    sysctls: tuple[tuple[str, str], ...]
    gateways: tuple[Namespace, ...]
    veths: tuple[Veth, ...]
    rulesets: tuple[Ruleset, ...]        # the NAT gateways' own (their namespace named in each)
    nat4: tuple[str, ...]                # fabric nat table: the gateways' Elastic IPs (1:1, like public IPs)
    filter4: tuple[str, ...]             # fabric filter FORWARD additions
    mangle6: tuple[str, ...]             # fabric mangle PREROUTING additions (eigw marking)
    enis: tuple[GatewayEni, ...]         # the NAT gateways' ENIs, on the engine's queue
    public_ips: tuple[IPv4Address, ...]  # instances' public IPs the tables route (see `public_ips`)


def internet_addresses(topology: Topology) -> tuple[tuple[str, IPAddress], ...]:
    """(internet host, address): every destination outside the VPC a lab can reach."""
    return tuple((h.name, a) for h in topology.internet for a in h.addresses)


def public_ips(topology: Topology) -> tuple[IPv4Address, ...]:
    """The instances' public IPs a source WITHOUT one routes by its table (one with a public IP is
    hairpinned by the IGW's 1:1 NAT before routing): through a NAT gateway it reaches them, as in AWS;
    through the IGW it cannot (no public IP), so a table holds a route only where a NAT gateway is the
    target, and the subnet's blackhole rule discards the rest. Only in labs with NAT
    gateways: without one, such a packet has nowhere to go whatever its table says (as before)."""
    if not topology.nat_gateways:
        return ()
    return tuple(i.public_ip for i in topology.instances if i.public_ip is not None)


def table_number(topology: Topology, table: RouteTable, inbound: bool = False) -> int:
    index = next(i for i, t in enumerate(topology.routing) if t.name == table.name)
    return (INBOUND_TABLE_BASE if inbound else TABLE_BASE) + index


def table_routes(topology: Topology, igw_dev: dict[str, str], ngw_dev: dict[str, str]) -> tuple[Route, ...]:
    """Every route table's decision for every internet address, as kernel host routes."""
    routes: list[Route] = []
    for table in topology.routing:
        for inbound in (False, True):
            number = table_number(topology, table, inbound)
            for host, addr in internet_addresses(topology):
                if inbound and addr.version == 4:
                    continue    # the twin only matters for IPv6 (the eigw)
                route = _host_route(topology, table, host, addr, number, inbound, igw_dev, ngw_dev)
                if route is not None:
                    routes.append(route)
        number = table_number(topology, table)
        for public in public_ips(topology):
            nat = topology.nat_gateway(choose(topology, table, public).target or "")
            if nat is not None:     # any other target: no route, so the subnet's blackhole rule discards
                routes.append(Route(f"{public}/32", ngw_dev[nat.name], via=str(nat.private_ip), onlink=True,
                                    table=number))
    return tuple(routes)


def _host_route(topology: Topology, table: RouteTable, host: str, addr: IPAddress, number: int,
                inbound: bool, igw_dev: dict[str, str], ngw_dev: dict[str, str]) -> Route | None:
    dst = f"{addr}/{addr.max_prefixlen}"
    target = choose(topology, table, addr).target
    if target is None:
        return None                  # no route: the subnet's blackhole rule discards it
    if target == TARGET_BLACKHOLE or (inbound and target == TARGET_EIGW):
        return Route(dst, None, blackhole=True, table=number)
    if target in (TARGET_IGW, TARGET_EIGW):
        return Route(dst, igw_dev[host], table=number)
    nat = topology.nat_gateway(target)
    assert nat is not None, f"route target {target!r} was validated"
    return Route(dst, ngw_dev[nat.name], via=str(nat.private_ip), onlink=True, table=number)


def policy_rules(topology: Topology) -> tuple[str, ...]:
    """The local route first (the VPC's blocks through the main table), then each subnet's table,
    then a silent discard for what its table has no route for."""
    vpc = topology.vpc
    rules = [f"to {block} lookup main pref {RULE_LOCAL + n}"
             for n, block in enumerate(b for b in (vpc.cidr, vpc.ipv6_cidr) if b is not None)]
    pref = RULE_SUBNETS
    for subnet in topology.subnets:
        table = topology.route_table_of(subnet.name)
        number = table_number(topology, table)
        for block in (subnet.cidr, subnet.ipv6_cidr):
            if block is None:
                continue
            if block.version == 6:
                mark = f"0x{EIGW_MARK:x}"
                rules.append(f"from {block} fwmark {mark}/{mark} lookup "
                             f"{table_number(topology, table, inbound=True)} pref {pref}")
            rules += [f"from {block} lookup {number} pref {pref + 1}", f"from {block} blackhole pref {pref + 2}"]
            pref += 3
    return tuple(rules)


def build_routing(topology: Topology, igw_dev: dict[str, str], ngw_dev: dict[str, str]) -> RoutingPlan:
    lab = topology.name
    routes: list[Route] = []
    addresses: list[Address] = []
    sysctls: list[tuple[str, str]] = []
    for nat in topology.nat_gateways:
        dev = ngw_dev[nat.name]
        addresses.append(Address(f"{topology.subnet(nat.subnet).router_ip}/32", dev))
        routes.append(Route(f"{nat.private_ip}/32", dev))
        sysctls += [(f"net.ipv4.conf.{dev}.proxy_arp", "1"), (f"net.ipv4.neigh.{dev}.proxy_delay", "0")]
    routes += table_routes(topology, igw_dev, ngw_dev)
    gateways = tuple(_gateway_ns(topology, nat) for nat in topology.nat_gateways)
    veths = tuple(Veth(ngw_dev[n.name], namespace_name(lab, n.name)) for n in topology.nat_gateways)
    rulesets = tuple(rs for nat in topology.nat_gateways for rs in _gateway_rulesets(topology, nat))
    # The IGW's 1:1 NAT for each gateway, and its hairpin: an instance's public IP reached through the
    # gateway sees the gateway's Elastic IP (as a public instance's hairpin shows its own).
    nat4 = tuple(line for n in topology.nat_gateways for line in (
        f"-A PREROUTING -d {n.public_ip}/32 -j DNAT --to-destination {n.private_ip}",
        f"-A POSTROUTING -s {n.private_ip}/32 -o {IGW_WILD} -j SNAT --to-source {n.public_ip}",
        f"-A POSTROUTING -s {n.private_ip}/32 -m conntrack --ctstate DNAT -j SNAT --to-source {n.public_ip}"))
    # The internet reaches a NAT gateway only as replies (its Elastic IP is DNATed like a public IP
    # and then dropped inside the gateway); a gateway sends to the internet from its own address only.
    filter4 = (*(f"-A FORWARD -i {ngw_dev[n.name]} -o {IGW_WILD} ! -s {n.private_ip}/32 -j DROP"
                       for n in topology.nat_gateways),
                     *([f"-A FORWARD -i {IGW_WILD} -o {NGW_PREFIX}+ -m conntrack ! --ctstate DNAT,SNAT -j DROP"]
                       if topology.nat_gateways else []))
    mark = f"0x{EIGW_MARK:x}/0x{EIGW_MARK:x}"
    mangle6 = (f"-A PREROUTING -i {IGW_WILD} -m conntrack --ctstate NEW -j CONNMARK --set-xmark {mark}",
               f"-A PREROUTING -i {ENI_WILD} -j CONNMARK --restore-mark --mask 0x{EIGW_MARK:x}")
    enis = tuple(GatewayEni(n.name, ngw_dev[n.name], n.subnet, str(n.private_ip), str(n.public_ip))
                 for n in topology.nat_gateways)
    return RoutingPlan(tuple(routes), policy_rules(topology), tuple(addresses), tuple(sysctls), gateways, veths,
                       rulesets, nat4, filter4, mangle6, enis, public_ips(topology))


IGW_WILD, ENI_WILD = "igw-+", "eni-+"


def _gateway_ns(topology: Topology, nat: NatGateway) -> Namespace:
    subnet = topology.subnet(nat.subnet)
    sysctls = [("net.ipv4.ip_forward", "1"), ("net.ipv4.conf.all.send_redirects", "0"),
               (f"net.ipv4.conf.{NODE_DEV}.send_redirects", "0"),
               ("net.netfilter.nf_conntrack_tcp_loose", "0"),    # a flow it forgot is not picked up again
               *((f"net.netfilter.nf_conntrack_{name}", str(value)) for name, value in NAT_TIMEOUTS)]
    return Namespace(namespace_name(topology.name, nat.name), nat.name, "natgw",
                     (Address(f"{nat.private_ip}/{subnet.cidr.prefixlen}", NODE_DEV),),
                     (Route("default", NODE_DEV, str(subnet.router_ip)),), tuple(sysctls), "")


def _gateway_rulesets(topology: Topology, nat: NatGateway) -> tuple[Ruleset, ...]:
    ns = namespace_name(topology.name, nat.name)
    vpc = topology.vpc.cidr
    out = f"-A POSTROUTING -o {NODE_DEV} -s {vpc} ! -d {vpc}"
    nat_rules = [f"{out} -p tcp -j SNAT --to-source {nat.private_ip}:{NAT_PORTS}",
                 f"{out} -p udp -j SNAT --to-source {nat.private_ip}:{NAT_PORTS}",
                 f"{out} -j SNAT --to-source {nat.private_ip}"]
    new = f"-s {vpc} ! -d {vpc} -m conntrack --ctstate NEW"
    filter_rules = [
        "-A INPUT -j DROP",          # pings and connections to the gateway itself: never answered
        "-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
        # a packet of a flow the gateway no longer knows (idle 350 s): RST to the inside, as AWS
        f"-A FORWARD -i {NODE_DEV} -s {vpc} -p tcp -m conntrack --ctstate INVALID -j REJECT --reject-with tcp-reset",
        f"-A FORWARD -p tcp --syn {new} -j ACCEPT",
        f"-A FORWARD -p udp {new} -j ACCEPT",
        f"-A FORWARD -p icmp {new} -j ACCEPT",      # TCP, UDP and ICMP only, as AWS's NAT gateway
        "-A FORWARD -j DROP"]
    return (Ruleset(4, "nat", _restore("nat", ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"), nat_rules), ns),
            Ruleset(4, "filter", _restore("filter", ("INPUT", "FORWARD", "OUTPUT"), filter_rules), ns))


def _restore(table: str, chains: tuple[str, ...], rules: list[str]) -> str:
    return "\n".join([f"*{table}", *(f":{c} ACCEPT [0:0]" for c in chains), *rules, "COMMIT"]) + "\n"


def route_changes(before: tuple[Route, ...], after: tuple[Route, ...]) -> list[str]:
    """`ip -batch` lines turning the fabric's table routes BEFORE into AFTER (a live route change)."""
    old = {r for r in before if r.table}
    new = {r for r in after if r.table}
    kept = {(r.table, r.dst) for r in new}
    # replace in place first (no instant without a route), then remove what has no successor
    changed = [f"route replace {' '.join(r.args())}" for r in sorted(new - old, key=_order)]
    gone = [f"route del {' '.join(r.args())}" for r in sorted(old - new, key=_order) if (r.table, r.dst) not in kept]
    return [*changed, *gone]


def _order(route: Route) -> tuple[int, int, str]:
    addr = ip_address(route.dst.split("/")[0])
    return route.table, 4 if isinstance(addr, IPv4Address) else 6, route.dst
