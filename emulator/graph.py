"""`sgemu graph`: the lab as a picture. Subnets are boxes inside the VPC, instances show their addresses
and SGs, internet hosts sit outside, and an arrow src -> dst carries the ports that both src's egress
and dst's ingress allow (computed statically from the SG rules, per address family). A subnet with a
network ACL lists its rules in evaluation order under its name (`explain` tells what they do to a flow).

The arrows are what really gets through (`explain` is the oracle, tests/unit/test_graph_nacls.py):
- network ACLs (emulator/reach.py, emulator/portranges.py): the request must pass every subnet boundary
  it crosses (none between two ENIs of one subnet), first match by rule number, and its stateless reply
  the reverse way to the client's ephemeral ports. Ports a NACL cuts are left off and named on a second
  line; when NACLs deny all the SGs allow, the arrow is drawn dashed red (class `blocked` in the SVG)
  with "tcp 80: replies denied by network ACL public-nacl" as its label.
- routing: the internet reaches only instances whose subnet answers through the internet gateway, and
  a lab that declares routing also draws the instances' arrows to internet hosts where a route leads
  out ("via nat-a" through a NAT gateway; none without a route or a public IP).
Labs without NACLs and route tables draw exactly as SG rules alone say."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from . import reach
from .explain import EPHEMERAL_PORT
from .model import (
    DEFAULT_NACL,
    ICMP_PROTOCOLS,
    NACL_ALLOW,
    PORTED_PROTOCOLS,
    PROTO_ALL,
    PROTO_ICMP,
    PROTO_ICMPV6,
    Direction,
    Instance,
    InternetHost,
    IPAddress,
    Rule,
    Topology,
    protocol_name,
)
from .portranges import FULL, ICMP_ALL, OTHER_PROTOCOLS, Ranges, intersect, merge, subtract
from .reach import Node, Path
from .routes import routes_declared

Allowed = dict[int, Ranges]            # protocol (PROTO_ALL = everything) -> port or ICMP-type ranges


@dataclass(frozen=True)
class Flow:
    src: str
    dst: str
    label: str                         # "tcp 80, 443", "all traffic", "tcp 22 | IPv6: tcp 22, icmpv6"
    denied: str = ""                   # what the SGs allow but network ACLs deny: "tcp 443: denied by ...",
    #                                    a line per family when they differ
    blocked: bool = False              # NACLs deny all of it: `label` says what and which NACL
    via: str = ""                      # the NAT gateway the flow leaves the VPC through


def _span(rule: Rule) -> Ranges:
    if rule.protocol in PORTED_PROTOCOLS:
        return ((rule.ports.low, rule.ports.high),) if rule.ports is not None else FULL
    if rule.protocol in ICMP_PROTOCOLS:
        return ICMP_ALL if rule.icmp_type == -1 else ((rule.icmp_type, rule.icmp_type),)
    return FULL


def allowed(topology: Topology, instance: Instance, direction: Direction, remote: IPAddress) -> Allowed:
    """What the union of the instance's SGs allows to/from `remote` in that direction."""
    found: dict[int, list[tuple[int, int]]] = {}
    for sg_id in instance.security_groups:
        for rule in topology.sg(sg_id).rules(direction):
            if rule.cidr is not None:
                matches = rule.cidr.version == remote.version and remote in rule.cidr
            elif rule.prefix_list is not None:
                listed = topology.find_prefix_list(rule.prefix_list)
                matches = listed is not None and any(c.version == remote.version and remote in c
                                                     for c in listed.cidrs)
            else:
                matches = any(remote in m.addresses for m in topology.members(str(rule.group)))
            if matches:
                found.setdefault(rule.protocol, []).extend(_span(rule))
    return {proto: merge(ranges) for proto, ranges in found.items()}


def _both(a: Allowed | None, b: Allowed | None, version: int) -> Allowed:
    """What both sides allow; None means no SG on that side (an internet host)."""
    if a is None or b is None:
        both = dict(a or b or {})
    elif PROTO_ALL in a and PROTO_ALL in b:
        both = {PROTO_ALL: FULL}
    else:
        both = {}
        for proto in {*a, *b} - {PROTO_ALL}:
            full = ICMP_ALL if proto in ICMP_PROTOCOLS else FULL
            mine = a.get(proto, full if PROTO_ALL in a else ())
            theirs = b.get(proto, full if PROTO_ALL in b else ())
            if common := intersect(mine, theirs):
                both[proto] = common
    wrong_icmp = PROTO_ICMPV6 if version == 4 else PROTO_ICMP
    return {p: r for p, r in both.items() if p != wrong_icmp}


def _numbers(ranges: Ranges) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def describe(flow: Allowed, version: int) -> str:
    if PROTO_ALL in flow:
        return "all traffic"
    parts = []
    for proto in sorted(flow, key=lambda p: (PORTED_PROTOCOLS + ICMP_PROTOCOLS + (p,)).index(p)):
        ranges = flow[proto]
        if proto in PORTED_PROTOCOLS:
            parts.append(f"{protocol_name(proto)} {'all ports' if ranges == FULL else _numbers(ranges)}")
        elif proto in ICMP_PROTOCOLS:
            types = "" if ranges == ICMP_ALL else " type " + _numbers(ranges)
            parts.append(f"{protocol_name(proto)}{types}")
        elif proto == OTHER_PROTOCOLS:
            parts.append("other protocols")
        else:
            parts.append(f"protocol {proto}")
    return ", ".join(parts)


@dataclass(frozen=True)
class _Family:
    """One address family of an arrow: what gets through, and what the SGs allow but NACLs deny."""

    passes: str
    denied: str
    via: str


def _through_nacls(both: Allowed, way: Path, version: int) -> _Family:
    """`both` (what the SGs allow) cut to what the path's NACLs let through both ways."""
    via = way.via.name if way.via is not None else ""
    if not way.request and not way.reply:
        return _Family(describe(both, version), "", via)
    icmp = PROTO_ICMPV6 if version == 6 else PROTO_ICMP
    wanted = {**dict.fromkeys(PORTED_PROTOCOLS, FULL), icmp: ICMP_ALL, OTHER_PROTOCOLS: FULL} \
        if PROTO_ALL in both else both
    kept: Allowed = {}
    denied: Allowed = {}
    cutters: list[str] = []
    on_reply = True
    replies: list[str] = []
    for proto, ranges in wanted.items():
        passage = reach.passage(way, proto, ranges, EPHEMERAL_PORT)
        if passage.replies and passage.replies != reach.EPHEMERAL:
            replies.append(f"{protocol_name(proto)} replies reach only client ports {_numbers(passage.replies)}")
        if passage.kept:
            kept[proto] = passage.kept
        if lost := subtract(ranges, passage.kept):
            denied[proto] = lost
            cutters += [n for n in passage.denied_by if n not in cutters]
            on_reply = on_reply and passage.on_reply
    if PROTO_ALL in both and not denied:
        kept = {PROTO_ALL: FULL}
    note = f" ({'; '.join(replies)})" if replies else ""
    passes = describe(kept, version) + note if kept else ""
    why = ""
    if denied:
        acls = f"network ACL{'s' if len(cutters) > 1 else ''} {', '.join(cutters)}"
        why = f"{describe(denied, version)}: {'replies ' if on_reply else ''}denied by {acls}" + ("" if kept else note)
    return _Family(passes, why, via)


def _join(labels: dict[int, str], between: str = " | ") -> str:
    """One text for both families: once when they agree, else each with its family."""
    v4, v6 = labels.get(4), labels.get(6)
    return (v4 if v6 is None or v6 == v4 else f"IPv6: {v6}" if v4 is None else f"{v4}{between}IPv6: {v6}") or ""


def _flow(topology: Topology, src: Node, dst: Node) -> Flow | None:
    families: dict[int, _Family] = {}
    for version in (4, 6):
        way = reach.path(topology, src, dst, version)
        if way is None:
            continue
        out_of_src = allowed(topology, src, Direction.EGRESS, way.seen_dst) if isinstance(src, Instance) else None
        into_dst = allowed(topology, dst, Direction.INGRESS, way.seen_src) if isinstance(dst, Instance) else None
        if both := _both(out_of_src, into_dst, version):
            families[version] = _through_nacls(both, way, version)
    passing = {v: f.passes for v, f in families.items() if f.passes}
    denied = _join({v: f.denied for v, f in families.items() if f.denied}, "\n")    # long: a line each
    via = "".join(f.via + (" (IPv4)" if len(passing) > 1 else "") for f in families.values() if f.via and f.passes)
    if passing:
        return Flow(src.name, dst.name, _join(passing), denied, via=via)
    return Flow(src.name, dst.name, denied, blocked=True) if denied else None


def flows(topology: Topology) -> list[Flow]:
    """Every (node, instance) pair with something the SGs allow out of src and into dst: what the
    NACLs let through both ways, or, when they let nothing through, a blocked flow naming them. A lab
    that declares routing also gets the instances' flows to the internet hosts routing lets them reach."""
    out = []
    sources: tuple[Node, ...] = (*topology.internet, *topology.instances)
    outside = topology.internet if routes_declared(topology) else ()
    for src in sources:
        targets: tuple[Node, ...] = (*topology.instances, *(outside if isinstance(src, Instance) else ()))
        out += [f for dst in targets if dst is not src and (f := _flow(topology, src, dst)) is not None]
    return out


def _instance_lines(topology: Topology, i: Instance) -> list[str]:
    addresses = " / ".join(str(a) for a in (i.private_ip, i.public_ip, i.ipv6) if a is not None)
    return [i.name, addresses, ", ".join(topology.sg(g).name for g in i.security_groups)]


def _host_lines(h: InternetHost) -> list[str]:
    return [h.name, " / ".join(str(a) for a in h.addresses)]


@dataclass(frozen=True)
class PlacedNode:
    kind: str                          # "nat gateway": the model's field name, singular
    name: str
    subnet: str
    addresses: tuple[str, ...]


def placed_nodes(topology: Topology) -> list[PlacedNode]:
    """Every node of a kind other than instances that sits in a subnet and has an address (a NAT
    gateway, say): drawn in its subnet without a case of its own per kind."""
    found: list[PlacedNode] = []
    for field in dataclasses.fields(topology):
        items = getattr(topology, field.name)
        if field.name == "instances" or not isinstance(items, tuple):
            continue
        for item in items:
            if not dataclasses.is_dataclass(item):
                continue
            name, subnet = getattr(item, "name", None), getattr(item, "subnet", None)
            addresses = tuple(str(v) for f in dataclasses.fields(item)
                              if isinstance(v := getattr(item, f.name), IPv4Address | IPv6Address))
            if isinstance(name, str) and isinstance(subnet, str) and addresses:
                found.append(PlacedNode(field.name.removesuffix("s").replace("_", " "), name, subnet, addresses))
    return found


def nacl_lines(topology: Topology, subnet: str) -> list[str]:
    """The subnet's network ACL when it is not the untouched default that allows everything (the web view
    and `sgemu nacl describe` show its rules)."""
    nacl = topology.nacl_for(subnet)
    if nacl is None:
        return []
    entries = (*nacl.ingress, *nacl.egress)
    allows_all = all(e.action == NACL_ALLOW and e.protocol == PROTO_ALL and e.cidr.prefixlen == 0 for e in entries)
    return [] if nacl.name == DEFAULT_NACL and allows_all else [f"NACL {nacl.name}"]


def _route_line(topology: Topology, subnet: str) -> list[str]:
    """The subnet's route table and routes, when the lab routes anything but "every subnet public"."""
    if not routes_declared(topology):
        return []
    table = topology.route_table_of(subnet)
    routes = ", ".join(r.describe() for r in table.routes) or "local only"
    return [f"routes {table.name}: {routes}"]


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


BLOCKED_COLOR = "#d7263d"             # the web view's drop colour


def flow_lines(flow: Flow) -> list[str]:
    """An arrow's label: what gets through, then what NACLs deny and the NAT gateway it leaves through."""
    text = "\n".join(t for t in (flow.label, flow.denied, flow.via and f"via {flow.via}") if t)
    return text.split("\n")


def _edge_attributes(flow: Flow) -> str:
    """A flow the SGs allow but NACLs block entirely: a dashed red arrow (class `blocked` in the SVG)."""
    label = "label=" + _dot_text("\n".join(flow_lines(flow))).replace("\n", "\\n")
    return f'{label}, style=dashed, color="{BLOCKED_COLOR}", fontcolor="{BLOCKED_COLOR}", class="blocked"' \
        if flow.blocked else label


def to_dot(topology: Topology) -> str:
    """Graphviz source: `dot -Tsvg` draws it."""
    def label(lines: list[str]) -> str:
        return _dot_text("\n".join(lines)).replace("\n", "\\n")
    out = [f"digraph {_dot_text(topology.name)} {{", "  rankdir=LR;", "  compound=true;",
           '  graph [fontname="Helvetica"];', '  node [fontname="Helvetica", fontsize=11];',
           '  edge [fontname="Helvetica", fontsize=10];']
    if topology.internet:
        out += ["  subgraph cluster_internet {", '    label="internet"; style=dashed;']
        out += [f"    {_dot_text(h.name)} [shape=ellipse, label={label(_host_lines(h))}];" for h in topology.internet]
        out.append("  }")
    cidrs = " ".join(str(c) for c in (topology.vpc.cidr, topology.vpc.ipv6_cidr) if c is not None)
    out += ["  subgraph cluster_vpc {", f"    label={_dot_text(f'VPC {topology.name} {cidrs}')}; style=bold;"]
    for index, subnet in enumerate(topology.subnets):
        members = [i for i in topology.instances if i.subnet == subnet.name]
        blocks = " ".join(str(c) for c in (subnet.cidr, subnet.ipv6_cidr) if c is not None)
        title = [f"{subnet.name} {blocks}", *nacl_lines(topology, subnet.name), *_route_line(topology, subnet.name)]
        out += [f"    subgraph cluster_subnet_{index} {{",
                f"      label={label(title)}; style=rounded;",
                f"      id={_dot_text(f'subnet:{subnet.name}')};"]
        out += [f"      {_dot_text(i.name)} [shape=box, label={label(_instance_lines(topology, i))}];" for i in members]
        placed = [n for n in placed_nodes(topology) if n.subnet == subnet.name]
        out += [f"      {_dot_text(n.name)} [shape=hexagon, style=dashed, "
                f"label={label([n.name, n.kind, ' / '.join(n.addresses)])}];" for n in placed]
        if not members and not placed:
            out.append(f'      "empty subnet {index}" [shape=plaintext, label="(no instances)"];')
        out.append("    }")
    out.append("  }")
    out += [f"  {_dot_text(f.src)} -> {_dot_text(f.dst)} [{_edge_attributes(f)}];" for f in flows(topology)]
    out.append("}")
    return "\n".join(out) + "\n"


def _mermaid_text(lines: list[str]) -> str:
    return '"' + "<br/>".join(line.replace('"', "#quot;") for line in lines if line) + '"'


def to_mermaid(topology: Topology) -> str:
    """A Mermaid flowchart (GitHub renders it in Markdown)."""
    nodes: tuple[Instance | InternetHost, ...] = (*topology.internet, *topology.instances)
    ids = {n.name: f"n{k}" for k, n in enumerate(nodes)}
    out = ["flowchart LR"]
    if topology.internet:
        out.append('  subgraph internet["internet"]')
        out += [f"    {ids[h.name]}([{_mermaid_text(_host_lines(h))}])" for h in topology.internet]
        out.append("  end")
    out.append(f"  subgraph vpc[{_mermaid_text([f'VPC {topology.name} {topology.vpc.cidr}'])}]")
    for index, subnet in enumerate(topology.subnets):
        title = [f"{subnet.name} {subnet.cidr}", *nacl_lines(topology, subnet.name)]
        out.append(f"    subgraph s{index}[{_mermaid_text(title)}]")
        out += [f"      {ids[i.name]}[{_mermaid_text(_instance_lines(topology, i))}]"
                for i in topology.instances if i.subnet == subnet.name]
        out.append("    end")
    out.append("  end")
    out += [f"  {ids[f.src]} {'-.->' if f.blocked else '-->'}|{_mermaid_text(flow_lines(f))}| {ids[f.dst]}"
            for f in flows(topology)]
    return "\n".join(out) + "\n"


__all__ = ["Flow", "PlacedNode", "allowed", "describe", "flows", "placed_nodes", "to_dot", "to_mermaid"]
