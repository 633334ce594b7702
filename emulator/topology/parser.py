"""From already-loaded YAML data to a validated Topology, reporting every problem at once."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from emulator.ids import vpc_id_for

from ..errors import TopologyError
from ..model import Options, Topology
from .fields import describe, mapping, string
from .nacls import parse_network_acls
from .network import parse_subnets, parse_vpc
from .nodes import Registry, parse_instances, parse_internet
from .options import parse_options
from .prefix_lists import parse_prefix_lists
from .problems import Problems
from .routes import parse_nat_gateways, parse_route_tables, warn_unroutable
from .security_groups import parse_security_groups

TOP_REQUIRED = ("vpc", "subnets")
TOP_OPTIONAL = ("name", "security_groups", "instances", "internet", "options", "prefix_lists", "network_acls",
                "nat_gateways", "route_tables")
LAB_NAME = re.compile(r"[a-z0-9-]{1,16}")
LAB_NAME_ALLOWED = "use 1-16 of a-z 0-9 and -"


@dataclass(frozen=True)
class Loaded:
    topology: Topology
    warnings: tuple[str, ...]


def parse(data: object, source: str, default_name: str = "lab") -> Loaded:
    """Validate a topology given as YAML data; raises TopologyError listing every problem."""
    p = Problems(source)
    if data is None:
        p.error("(file)", "is empty", "write a topology with at least vpc and subnets")
        raise TopologyError(p.errors)
    if not isinstance(data, dict):
        p.error("(file)", f"expected a mapping, got {describe(data)}", "write a topology with at least vpc and subnets")
        raise TopologyError(p.errors)
    top = mapping(p, data, "", TOP_REQUIRED, TOP_OPTIONAL)
    assert top is not None
    name = _lab_name(p, top, default_name)
    options = parse_options(p, top["options"]) if "options" in top else Options()
    vpc = parse_vpc(p, top["vpc"]) if "vpc" in top else None
    subnets, subnet_names = parse_subnets(p, top["subnets"], vpc) if "subnets" in top else ((), ())
    dual_stack = vpc is not None and vpc.dual_stack
    prefix_lists = parse_prefix_lists(p, top.get("prefix_lists"))
    groups = parse_security_groups(p, top.get("security_groups"), dual_stack, options, prefix_lists)
    nacls = parse_network_acls(p, top.get("network_acls"), subnet_names, dual_stack, options.quotas)
    registry = Registry()
    instances = parse_instances(p, top.get("instances"), vpc, subnets, subnet_names, groups, options,
                                registry)
    internet = parse_internet(p, top.get("internet"), vpc, registry)
    owner = name or default_name
    nats = parse_nat_gateways(p, top.get("nat_gateways"), vpc, subnets, registry, owner)
    tables = parse_route_tables(p, top.get("route_tables"), vpc, subnets, nats, owner)
    if p.errors or vpc is None or name is None:
        raise TopologyError(p.errors)
    if not vpc.id:
        vpc = replace(vpc, id=vpc_id_for(name))
    topology = Topology(name=name, vpc=vpc, subnets=subnets, security_groups=groups, instances=instances,
                        internet=internet, options=options, source=source, network_acls=nacls,
                        prefix_lists=prefix_lists, route_tables=tables,
                        nat_gateways=nats)
    warn_unroutable(p, tables, nats, instances)
    return Loaded(topology, tuple(p.warnings))


def _lab_name(p: Problems, top: dict[str, object], default_name: str) -> str | None:
    if "name" in top:
        name = string(p, top["name"], "name", LAB_NAME_ALLOWED)
        if name is not None and not LAB_NAME.fullmatch(name):
            p.error("name", f"'{name}' is not a valid lab name", LAB_NAME_ALLOWED)
            return None
        return name
    if not LAB_NAME.fullmatch(default_name):
        p.error("name", f"is missing and the default '{default_name}' is not a valid lab name",
                f"add name: ({LAB_NAME_ALLOWED})")
        return None
    return default_name


def renamed(topology: Topology, name: str, where: str) -> Topology:
    """The same lab under another name (`up --name`): a second copy of a file runs beside the first."""
    if not LAB_NAME.fullmatch(name):
        raise TopologyError([f"{where}: '{name}' is not a valid lab name; {LAB_NAME_ALLOWED}"])
    return replace(topology, name=name)
