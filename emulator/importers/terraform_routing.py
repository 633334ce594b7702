"""`sgemu import terraform` handlers for route tables, routes and gateways; `routing.routing_section`
builds the lab's `route_tables` and `nat_gateways` from them, as for `sgemu import aws`.

Resources (https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/...):
- route_table: vpc_id, inline `route` blocks (cidr_block | ipv6_cidr_block | destination_prefix_list_id,
  and one target: gateway_id, nat_gateway_id, egress_only_gateway_id, transit_gateway_id,
  vpc_peering_connection_id, network_interface_id, vpc_endpoint_id, local_gateway_id,
  carrier_gateway_id, core_network_arn), propagating_vgws.
- default_route_table: default_route_table_id, the VPC's main table; Terraform removes its routes
  and creates the configured ones (…/docs/resources/default_route_table), so they are all it holds.
- route: route_table_id, destination_cidr_block | destination_ipv6_cidr_block |
  destination_prefix_list_id, the targets above and instance_id.
- route_table_association: route_table_id with subnet_id (or gateway_id: an edge association).
- main_route_table_association: vpc_id, route_table_id: that table becomes the VPC's main one.
- nat_gateway: subnet_id, connectivity_type (public, the default, or private), allocation_id (an
  aws_eip, whose public_ip is the gateway's), private_ip.
- internet_gateway, egress_only_internet_gateway: what gateway_id / egress_only_gateway_id name.

Targets: an internet gateway -> igw, an egress-only one -> eigw, a NAT gateway -> its lab name, the
rest -> blackhole naming the real target (routing.py). A value unknown until apply is read from what
its expression references (`same_instance`: X[count.index] is the referrer's own instance); one that
names nothing here, or several things, is reported, never guessed.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, TypeGuard

from .inventory import (
    DEFAULT_VPC,
    ROUTE_LOCAL,
    ROUTE_NAT,
    ROUTE_UNKNOWN,
    ROUTE_UNMODELLED,
    ImportedNatGateway,
    ImportedRoute,
    ImportedRouteTable,
)
from .json_source import JsonValue
from .routing import EDGE, NAT_NEEDS, NAT_PRIVATE
from .terraform_plan import Resource, same_instance, walk

if TYPE_CHECKING:
    from .terraform import Reader

# Target attributes a lab cannot follow, with what they name.
UNMODELLED = (("vpc_peering_connection_id", "VPC peering connection"), ("transit_gateway_id", "transit gateway"),
              ("network_interface_id", "network interface"), ("instance_id", "instance"),
              ("vpc_endpoint_id", "VPC endpoint"), ("local_gateway_id", "local gateway"),
              ("carrier_gateway_id", "carrier gateway"), ("core_network_arn", "core network"))
GATEWAY_TYPES = {"aws_internet_gateway": "igw", "aws_egress_only_internet_gateway": "eigw",
                 "aws_nat_gateway": ROUTE_NAT, "aws_vpn_gateway": ROUTE_UNMODELLED}
TABLE_TYPES = ("aws_route_table", "aws_default_route_table", "aws_vpc")


class Ref(NamedTuple):
    """What an id-valued attribute names: its value, or the resource its expression references, or
    why neither is known."""

    value: str | None = None
    resource: Resource | None = None
    unknown: str | None = None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _at(res: Resource, path: tuple[str | int, ...]) -> object:
    return None if res.is_unknown(*path) else walk(res.values.value, path)


def _expression(res: Resource, path: tuple[str | int, ...]) -> object:
    """The attribute's configuration expression, or the one that writes its whole enclosing value
    (`route = [{...}]` as an attribute rather than as blocks)."""
    for end in range(len(path), 0, -1):
        found = res.expression(*path[:end])
        if isinstance(found, dict) and ("references" in found or "constant_value" in found):
            return found
    return None


def resolve(rd: Reader, res: Resource, path: tuple[str | int, ...], kinds: tuple[str, ...] | None,
            config_path: tuple[str | int, ...] | None = None) -> Ref | None:
    """The attribute at `path` (config_path: where the configuration writes it, when it differs),
    naming a resource of one of `kinds` (None: any); None when it is not set (or only computed by
    the provider)."""
    value = _at(res, path)
    if isinstance(value, str) and value:
        return Ref(value=value)
    expression = _expression(res, config_path or path)
    if not res.is_unknown(*path) or (expression is None and res.config() is not None):
        return None
    name = ".".join(str(p) for p in path)
    found = rd.plan.targets(res.module, expression)
    if not isinstance(found, list):
        return Ref(unknown=f"{name} is known only after apply and comes from {found or 'the configuration'}, "
                           "which this document does not hold")
    matching = same_instance(res, expression, [r for r in found if kinds is None or r.type in kinds])
    if len(matching) == 1:
        return Ref(resource=matching[0])
    named = ", ".join(r.address for r in (matching or found))
    return Ref(unknown=f"{name} is known only after apply and references {named}: " + (
        "which one depends on values this importer does not evaluate" if matching else "none of them is read here"))


def read_gateway(rd: Reader, res: Resource) -> None:
    kind = GATEWAY_TYPES[res.type]
    rd.inv.notes.append(f"{res.values.where}: {res.address}: routes to it become {kind}")


def read_nat_gateway(rd: Reader, res: Resource) -> None:
    v = res.values
    tags = res.value("tags")
    label = _text(tags.get("Name")) if isinstance(tags, dict) else None
    subnet = resolve(rd, res, ("subnet_id",), ("aws_subnet",))
    subnet_key = subnet.value or (subnet.resource.key if subnet.resource else None) if subnet else None
    known = rd.inv.subnets.get(subnet_key or "")
    why = None
    if _text(res.value("connectivity_type")) == "private":
        why = NAT_PRIVATE
    elif subnet is not None and subnet.unknown:
        why = f"its subnet_id: {subnet.unknown}"
    public_ip = _public_ip(rd, res) if why is None else None
    if why is None and public_ip is None:
        why = f"it has no Elastic IP (allocation_id): {NAT_NEEDS}"
    rd.inv.nat_gateways[res.key] = ImportedNatGateway(
        res.key, v.where, known.vpc if known is not None else None, subnet_key, _text(res.value("private_ip")),
        public_ip, label or "nat-" + res.address.rsplit(".", 1)[-1].replace("[", "-"), why)
    if why is None and res.value("private_ip") is None:
        rd.inv.notes.append(f"{v.where}: {res.address}: private_ip is known only after apply; the lab gives the "
                            "NAT gateway the next free address of its subnet")


def _public_ip(rd: Reader, res: Resource) -> str | None:
    """The Elastic IP's address: known (a state), else a placeholder noted as such; None without one."""
    known = _text(res.value("public_ip"))
    if known is not None:
        return known
    allocation = resolve(rd, res, ("allocation_id",), ("aws_eip",))
    if allocation is None:
        return None
    eip = allocation.resource
    address = _text(eip.value("public_ip")) if eip is not None else None
    if address is None:
        address = next(rd.publics)
        source = eip.address if eip is not None else allocation.value or allocation.unknown
        rd.inv.notes.append(f"{res.values.where}: {res.address}: its Elastic IP ({source}) is known only after "
                            f"apply; the lab gives the NAT gateway {address}")
    return address


def read_route_table(rd: Reader, res: Resource) -> None:
    v = res.values
    if res.type == "aws_default_route_table":
        table = _default_table(rd, res)
    else:
        table = rd.inv.route_table(res.key, v.where)
        table.vpc = rd.vpc_of(res)
    tags = res.value("tags")
    table.where, table.label = v.where, _text(tags.get("Name")) if isinstance(tags, dict) else None
    table.label = table.label or res.address.rsplit(".", 1)[-1].replace("[", "-")
    for vgw in _strings(res.value("propagating_vgws")):
        rd.inv.skipped.append(f"{v.where}: {res.address}: routes propagated from {vgw} not carried over: a lab has "
                              "no VPN gateway")
    if res.is_unknown("route") and not isinstance(_at_raw(v, "route"), list):
        if res.configured("route") and res.expression("route") is not None:
            rd.inv.skipped.append(f"{v.where}: {res.address}: its routes are known only after apply: not carried "
                                  "over (import the state after apply)")
        return
    blocks = v.items("route")
    for index, block in enumerate(blocks):
        with rd.inv.item("this route"):
            destination = _text(block.text("cidr_block")) or _text(block.text("ipv6_cidr_block"))
            table.routes.append(_route(rd, res, block, ("route", index),
                                       ("route", _config_index(res, index, destination, len(blocks))),
                                       ("cidr_block", "ipv6_cidr_block")))


def _known(found: Ref | None, rd: Reader, res: Resource, missing: str) -> TypeGuard[Ref]:
    """Whether a reference names something known; if not, the resource is named as not carried over."""
    if found is not None and not found.unknown:
        return True
    rd.inv.skipped.append(f"{res.values.where}: {res.address} not carried over: "
                          f"{found.unknown if found else missing}")
    return False


def read_route(rd: Reader, res: Resource) -> None:
    v = res.values
    table = resolve(rd, res, ("route_table_id",), TABLE_TYPES)
    if not _known(table, rd, res, "it names no route table"):
        return
    _table_of(rd, table, v.where).routes.append(
        _route(rd, res, v, (), (), ("destination_cidr_block", "destination_ipv6_cidr_block")))


def read_association(rd: Reader, res: Resource) -> None:
    v = res.values
    table = resolve(rd, res, ("route_table_id",), TABLE_TYPES)
    subnet = resolve(rd, res, ("subnet_id",), ("aws_subnet",))
    if subnet is None and resolve(rd, res, ("gateway_id",), tuple(GATEWAY_TYPES)) is not None:
        rd.inv.skipped.append(f"{v.where}: {res.address} not carried over: {EDGE}")
        return
    if not _known(table, rd, res, "it names no route table"):
        return
    if not _known(subnet, rd, res, "it names no subnet"):
        return
    key = subnet.value or (subnet.resource.key if subnet.resource else "")
    _table_of(rd, table, v.where).subnets.append((key, v.where))


def read_main_association(rd: Reader, res: Resource) -> None:
    v = res.values
    table = resolve(rd, res, ("route_table_id",), TABLE_TYPES)
    if not _known(table, rd, res, "it names no route table"):
        return
    chosen = _table_of(rd, table, v.where)
    vpc = rd.vpc_of(res)
    chosen.main, chosen.vpc = True, chosen.vpc or vpc
    for other in rd.inv.route_tables.values():
        if other is not chosen and other.main and other.vpc in (vpc, None, DEFAULT_VPC):
            other.main = False
            rd.inv.notes.append(f"{v.where}: {res.address} makes {chosen.key} the main route table: {other.key} "
                                "is an ordinary one")


# --- routes -----------------------------------------------------------------------------------

def _route(rd: Reader, res: Resource, block: JsonValue, path: tuple[str | int, ...],
           config_path: tuple[str | int, ...], destinations: tuple[str, str]) -> ImportedRoute:
    destination = next((d for name in destinations if (d := _text(_members(block).get(name)))), None)
    prefix_list = _text(_members(block).get("destination_prefix_list_id"))
    where, unknown = block.where, None
    for name in destinations if destination is None and prefix_list is None else ():
        if res.is_unknown(*path, name) and _expression(res, (*config_path, name)) is not None:
            found = rd.attribute_values(res, *config_path, name)
            if len(found) != 1:
                return ImportedRoute(where, None, ROUTE_UNKNOWN, f"{name} is known only after apply and comes from "
                                     "values this document does not hold")
            destination = found[0]
    for attr, kinds in (("gateway_id", tuple(GATEWAY_TYPES)), ("nat_gateway_id", ("aws_nat_gateway",)),
                        ("egress_only_gateway_id", ("aws_egress_only_internet_gateway",))):
        ref = resolve(rd, res, (*path, attr), kinds, (*config_path, attr))
        if ref is not None and ref.unknown is None:
            return _gateway(where, destination, prefix_list, ref)
        unknown = unknown or (ref.unknown if ref else None)
    for attr, what in UNMODELLED:
        ref = resolve(rd, res, (*path, attr), None, (*config_path, attr))
        if ref is not None and (ref.value or not unknown):
            real = ref.value or (ref.resource.address if ref.resource else f"({ref.unknown})")
            return ImportedRoute(where, destination, ROUTE_UNMODELLED, f"{what} {real}", prefix_list)
    if unknown is not None:
        return ImportedRoute(where, destination, ROUTE_UNKNOWN, unknown, prefix_list)
    return ImportedRoute(where, destination, ROUTE_UNMODELLED, "no target the document names", prefix_list)


def _gateway(where: str, destination: str | None, prefix_list: str | None, ref: Ref) -> ImportedRoute:
    if ref.resource is not None:
        kind = GATEWAY_TYPES[ref.resource.type]
        real, vpn = ref.resource.key, ref.resource.type == "aws_vpn_gateway"
    else:
        real = ref.value or ""
        kind = ROUTE_LOCAL if real == "local" else "igw" if real.startswith("igw-") else \
            "eigw" if real.startswith("eigw-") else ROUTE_NAT if real.startswith("nat-") else ROUTE_UNMODELLED
        vpn = real.startswith("vgw-")
    detail = real if kind == ROUTE_NAT else f"{'virtual private gateway' if vpn else 'gateway'} {real}" \
        if kind == ROUTE_UNMODELLED else None
    return ImportedRoute(where, destination, kind, detail, prefix_list)


def _default_table(rd: Reader, res: Resource) -> ImportedRouteTable:
    """An aws_default_route_table: its VPC's main table (the one routes naming the VPC's
    default_route_table_id or main_route_table_id join)."""
    ref = resolve(rd, res, ("default_route_table_id",), ("aws_vpc",))
    if ref is None or ref.unknown is not None:
        table = rd.inv.route_table(res.key, res.values.where)
        table.main, table.vpc = True, _text(res.value("vpc_id"))
        return table
    return _table_of(rd, ref, res.values.where)


def _table_of(rd: Reader, ref: Ref, where: str) -> ImportedRouteTable:
    """The route table a resolved route_table_id names, created on first sight; a VPC's
    main_route_table_id / default_route_table_id name its main table."""
    res = ref.resource
    if res is not None and res.type == "aws_default_route_table":
        return _default_table(rd, res)
    vpc = res if res is not None and res.type == "aws_vpc" else next(
        (r for r in rd.plan.resources if r.type == "aws_vpc" and ref.value is not None and ref.value in
         (r.value("main_route_table_id"), r.value("default_route_table_id"))), None)
    if vpc is None:
        return rd.inv.route_table(res.key if res is not None else ref.value or "", where)
    key = _text(vpc.value("default_route_table_id")) or f"{vpc.key}.default_route_table_id"
    found = key in rd.inv.route_tables
    table = rd.inv.route_table(key, where)
    if not found:
        table.main, table.vpc, table.label = True, vpc.key, "main"
    return table


def _config_index(res: Resource, index: int, destination: str | None, count: int) -> int:
    """Route blocks are a set: the plan may list them in another order than the configuration."""
    blocks = res.expression("route")
    if not isinstance(blocks, list) or destination is None:
        return index
    for n, block in enumerate(blocks):
        written = [e.get("constant_value") for e in (block.get("cidr_block"), block.get("ipv6_cidr_block"))
                   if isinstance(e, dict)] if isinstance(block, dict) else []
        if destination in written:
            return n
    return index if count == len(blocks) else 0


def _members(v: JsonValue) -> dict:
    return v.value if isinstance(v.value, dict) else {}


def _at_raw(v: JsonValue, name: str) -> object:
    return _members(v).get(name)


def _strings(value: object) -> list[str]:
    return [s for s in value if isinstance(s, str) and s] if isinstance(value, list) else []


# Reading order: gateways, then tables, then the routes and associations that name them.
HANDLERS = {
    "aws_internet_gateway": read_gateway, "aws_egress_only_internet_gateway": read_gateway,
    "aws_nat_gateway": read_nat_gateway, "aws_route_table": read_route_table,
    "aws_default_route_table": read_route_table, "aws_route": read_route, "aws_route_table_association":
    read_association, "aws_main_route_table_association": read_main_association,
}
