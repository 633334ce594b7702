"""The model back to the YAML schema (for `sgemu export`): parse(dump(t)) == t.

Defaults that parse would recreate (generated ids, AWS's default egress, the untouched default SG,
default options) are left out so the output reads like a hand-written file.
"""
from __future__ import annotations

from dataclasses import asdict

from emulator.ids import nacl_id_for, prefix_list_id_for, resource_id_for, sg_id_for, vpc_id_for

from ..model import (
    AWS_TIMEOUTS,
    ICMP_PROTOCOLS,
    PROTOCOL_NAMES,
    ConntrackTimeouts,
    Instance,
    NaclEntry,
    NetworkAcl,
    Options,
    PrefixList,
    Quotas,
    Rule,
    SecurityGroup,
    Topology,
    protocol_name,
)
from ..routes import MAIN_ROUTE_TABLE, RouteTable, default_main_table
from .nacls import default_nacl
from .security_groups import DEFAULT_SG, default_egress, default_sg
from .services import DEFAULT_PORTS


def dump(topology: Topology) -> dict:
    t = topology
    vpc: dict[str, str] = {"cidr": str(t.vpc.cidr)}
    if t.vpc.ipv6_cidr is not None:
        vpc["ipv6_cidr"] = str(t.vpc.ipv6_cidr)
    if t.vpc.id and t.vpc.id != vpc_id_for(t.name):
        vpc["id"] = t.vpc.id
    out: dict[str, object] = {"name": t.name, "vpc": vpc}
    out["subnets"] = [{"name": s.name, "cidr": str(s.cidr),
                       **({"ipv6_cidr": str(s.ipv6_cidr)} if s.ipv6_cidr is not None else {})}
                      for s in t.subnets]
    if t.prefix_lists:
        out["prefix_lists"] = [_prefix_list(pl) for pl in t.prefix_lists]
    groups = list(t.security_groups)
    if groups and groups[0] == default_sg(t.vpc.dual_stack, t.options):
        groups.pop(0)  # parse puts the untouched default SG first again
    out["security_groups"] = [_group(t, g) for g in groups]
    nacls = [n for n in t.network_acls if n != default_nacl(t.vpc.dual_stack)]
    if nacls:
        out["network_acls"] = [_nacl(n) for n in nacls]
    out.update(_routing(t))
    out["instances"] = [_instance(t, i) for i in t.instances]
    if t.internet:
        out["internet"] = [{"name": h.name, **({"ip": str(h.ip)} if h.ip is not None else {}),
                            **({"ipv6": str(h.ipv6)} if h.ipv6 is not None else {})} for h in t.internet]
    options = _options(t.options)
    if options:
        out["options"] = options
    return out


def _group(t: Topology, g: SecurityGroup) -> dict[str, object]:
    out: dict[str, object] = {"name": g.name}
    if g.id != sg_id_for(g.name):
        out["id"] = g.id
    if g.description:
        out["description"] = g.description
    if g.ingress:
        out["ingress"] = [_rule(t, r) for r in g.ingress]
    if g.egress != default_egress(g.id, t.vpc.dual_stack, t.options):
        out["egress"] = [_rule(t, r) for r in g.egress]
    return out


def _rule(t: Topology, r: Rule) -> dict[str, object]:
    name = protocol_name(r.protocol)
    out: dict[str, object] = {"protocol": name if name in PROTOCOL_NAMES else r.protocol}
    if r.ports is not None:
        out["ports"] = r.ports.low if r.ports.low == r.ports.high else str(r.ports)
    if r.protocol in ICMP_PROTOCOLS:
        if r.icmp_type != -1:
            out["icmp_type"] = r.icmp_type
        if r.icmp_code != -1:
            out["icmp_code"] = r.icmp_code
    if r.prefix_list is not None:
        listed = t.find_prefix_list(r.prefix_list)
        out["prefix_list"] = listed.name if listed is not None else r.prefix_list
    elif r.cidr is not None:
        out["cidr"] = str(r.cidr)
    else:
        group = t.find_sg(str(r.group))
        out["group"] = group.name if group is not None else r.group
    if r.description:
        out["description"] = r.description
    return out


def _prefix_list(pl: PrefixList) -> dict[str, object]:
    out: dict[str, object] = {"name": pl.name}
    if pl.id != prefix_list_id_for(pl.name):
        out["id"] = pl.id
    if pl.max_entries != (len(pl.entries) or 1):
        out["max_entries"] = pl.max_entries
    out["entries"] = [{"cidr": str(e.cidr), "description": e.description} if e.description else str(e.cidr)
                      for e in pl.entries]
    return out


def _nacl(n: NetworkAcl) -> dict[str, object]:
    out: dict[str, object] = {"name": n.name}
    if n.id != nacl_id_for(n.name):
        out["id"] = n.id
    if n.subnets:
        out["subnets"] = list(n.subnets)
    out["ingress"] = [_nacl_entry(e) for e in n.ingress]
    out["egress"] = [_nacl_entry(e) for e in n.egress]
    return out


def _nacl_entry(e: NaclEntry) -> dict[str, object]:
    name = protocol_name(e.protocol)
    out: dict[str, object] = {"rule": e.rule_number, "action": e.action,
                              "protocol": name if name in PROTOCOL_NAMES else e.protocol}
    if e.ports is not None:
        out["ports"] = e.ports.low if e.ports.low == e.ports.high else str(e.ports)
    if e.protocol in ICMP_PROTOCOLS:
        if e.icmp_type != -1:
            out["icmp_type"] = e.icmp_type
        if e.icmp_code != -1:
            out["icmp_code"] = e.icmp_code
    out["cidr"] = str(e.cidr)
    return out


def _instance(t: Topology, i: Instance) -> dict[str, object]:
    out: dict[str, object] = {"name": i.name, "subnet": i.subnet, "private_ip": str(i.private_ip)}
    if i.ipv6 is not None:
        out["ipv6"] = str(i.ipv6)
    if i.public_ip is not None:
        out["public_ip"] = str(i.public_ip)
    default = t.find_sg(DEFAULT_SG)
    if default is None or i.security_groups != (default.id,):
        out["security_groups"] = [_sg_ref(t, ref) for ref in i.security_groups]
    if i.services:
        out["services"] = [{"type": s.type, **({"port": s.port} if DEFAULT_PORTS.get(s.type) != s.port else {}),
                            **({"to": s.to} if s.to is not None else {}),
                            **({"passive_ports": str(s.passive_ports)} if s.passive_ports is not None else {})}
                           for s in i.services]
    conntrack = {n: getattr(i.conntrack, n) for n in AWS_TIMEOUTS
                 if getattr(i.conntrack, n) != getattr(t.options.timeouts, n)}
    if conntrack:
        out["conntrack"] = conntrack
    return out


def _sg_ref(t: Topology, sg_id: str) -> str:
    group = t.find_sg(sg_id)
    return group.name if group is not None else sg_id


def _options(options: Options) -> dict[str, object]:
    out = {n: v for n, v in asdict(options).items()
           if n not in ("timeouts", "quotas") and v != getattr(Options(), n)}
    for name, value, default in (("timeouts", options.timeouts, ConntrackTimeouts()),
                                 ("quotas", options.quotas, Quotas())):
        changed = {n: v for n, v in asdict(value).items() if v != getattr(default, n)}
        if changed:
            out[name] = changed
    return out


def _routing(t: Topology) -> dict[str, object]:
    """nat_gateways and route_tables, leaving out the default main table and generated ids."""
    out: dict[str, object] = {}
    if t.nat_gateways:
        out["nat_gateways"] = [{"name": n.name, "subnet": n.subnet, "private_ip": str(n.private_ip),
                                "public_ip": str(n.public_ip),
                                **({"id": n.id} if n.id != resource_id_for("nat", t.name, n.name) else {})}
                               for n in t.nat_gateways]
    default_main = default_main_table(resource_id_for("rtb", t.name, MAIN_ROUTE_TABLE))
    tables = [_route_table(t, r) for r in t.route_tables if r != default_main]
    if tables:
        out["route_tables"] = tables
    return out


def _route_table(t: Topology, r: RouteTable) -> dict[str, object]:
    out: dict[str, object] = {"name": r.name}
    if r.id != resource_id_for("rtb", t.name, r.name):
        out["id"] = r.id
    if r.subnets:
        out["subnets"] = list(r.subnets)
    out["routes"] = [{"destination": str(e.destination), "target": e.target} for e in r.routes]
    return out
