"""Inventory -> the lab's `nat_gateways` and `route_tables`, the same for both importers (AWS CLI
JSON: importers/aws_routing.py; Terraform: importers/terraform_routing.py).

The input's main route table becomes `main` (CONTRACT.md); the local route is implicit in a lab; a
route whose target a lab cannot model (peering, transit gateway, VPC endpoint, ENI or instance, VPN
gateway, a NAT gateway not carried) becomes `blackhole`, with a note naming the real target; a route
whose target the input does not say (Terraform: known only after apply, from outside the document)
becomes `blackhole` too, named in what is not carried over. Identical duplicates merge; conflicting
ones are named (strict: refused), as CONTRACT.md asks of imports.
"""
from __future__ import annotations

from ipaddress import ip_network

from ..routes import MAIN_ROUTE_TABLE, TARGET_BLACKHOLE, TARGET_EIGW, TARGET_IGW
from ..topology.routes import NAT_ID, RESERVED, TABLE_ID
from .inventory import (
    DEFAULT_VPC,
    ROUTE_LOCAL,
    ROUTE_NAT,
    ROUTE_UNKNOWN,
    ROUTE_UNMODELLED,
    ImportedRoute,
    ImportedRouteTable,
    Inventory,
)
from .json_source import ImportSourceError
from .names import Names, node_name
from .not_carried import prefix_list_reason

NAT_NEEDS = "a lab runs public NAT gateways that are available, with an Elastic IP, in a subnet of the lab"
# https://docs.aws.amazon.com/vpc/latest/userguide/vpc-nat-gateway.html: a private NAT gateway has no
# Elastic IP; routed to an internet gateway, "the internet gateway drops the traffic".
NAT_PRIVATE = ("it is a private NAT gateway (connectivity type private: no Elastic IP; AWS's internet gateway "
               "drops its traffic); a lab runs public ones")
EDGE = "a gateway (edge) route table steers traffic entering the VPC, which a lab does not model"
RESERVED_NAMES = (MAIN_ROUTE_TABLE, TARGET_IGW, TARGET_EIGW, TARGET_BLACKHOLE, "vpc")


def routing_section(inv: Inventory, vpc: str | None, subnet_names: dict[str, str],
                    vpc_blocks: tuple[str, ...]) -> dict[str, list[dict[str, object]]]:
    """`nat_gateways` and `route_tables` for the chosen VPC (subnet keys -> lab subnet names)."""
    nats, out_nats = _nat_gateways(inv, vpc, subnet_names)
    tables: list[dict[str, object]] = []
    names = Names(set(RESERVED_NAMES), limit=32)
    associated: dict[str, str] = {}           # subnet key -> where its association was carried
    for t in inv.route_tables.values():
        other_vpc = vpc is not None and t.vpc not in (None, vpc, DEFAULT_VPC)
        if other_vpc or (t.main and any(known["name"] == MAIN_ROUTE_TABLE for known in tables)):
            why = f"it belongs to {t.vpc}, not the lab's VPC" if other_vpc else \
                "the lab has one VPC, whose main route table is already carried"
            inv.skipped.append(f"{t.where}: route table {t.key} not carried over: {why}")
            continue
        tables.append(_table(inv, t, names, nats, subnet_names, vpc_blocks, associated))
    if tables and not any(t["name"] == MAIN_ROUTE_TABLE for t in tables):
        inv.notes.append("the inputs declare no main route table: subnets without an association use the lab's "
                         "default main table (0.0.0.0/0 and ::/0 to igw); in AWS a new VPC's main table holds only "
                         "the local route")
    return {"nat_gateways": out_nats, "route_tables": tables}


def _nat_gateways(inv: Inventory, vpc: str | None,
                  subnet_names: dict[str, str]) -> tuple[dict[str, str], list[dict[str, object]]]:
    """The NAT gateways a lab can run (key -> lab name, and their entries); the others named."""
    nats: dict[str, str] = {}
    out: list[dict[str, object]] = []
    names = Names(set(RESERVED_NAMES))
    for key, n in inv.nat_gateways.items():
        if vpc is not None and n.vpc not in (None, vpc, DEFAULT_VPC):
            inv.skipped.append(f"{n.where}: NAT gateway {key} not carried over: it belongs to {n.vpc}")
            continue
        subnet = subnet_names.get(n.subnet or "")
        if n.not_carried is not None or subnet is None or n.public_ip is None:
            inv.skipped.append(f"{n.where}: NAT gateway {key} not carried over: {n.not_carried or NAT_NEEDS}")
            continue
        nats[key] = names.claim(node_name(n.label or key), node_name(_tail(key)) or "nat")
        out.append({"name": nats[key], **({"id": key} if NAT_ID.fullmatch(key) else {}), "subnet": subnet,
                    **({"private_ip": n.private_ip} if n.private_ip else {}), "public_ip": n.public_ip})
    return nats, out


def _table(inv: Inventory, t: ImportedRouteTable, names: Names, nats: dict[str, str],
           subnet_names: dict[str, str], vpc_blocks: tuple[str, ...], associated: dict[str, str]) -> dict[str, object]:
    name = MAIN_ROUTE_TABLE if t.main else names.claim(node_name(t.label or t.key, 32),
                                                       node_name(_tail(t.key), 32) or "route-table")
    subnets: list[str] = []
    for key, where in t.subnets:
        if key not in subnet_names:
            inv.skipped.append(f"{where}: route table {t.key}: its association with {key} is not carried over: "
                               "that subnet is not in the lab")
        elif key in associated:
            _conflict(inv, f"{where}: route table {t.key}: subnet {key} is already associated at {associated[key]} "
                           "(a subnet has one route table)")
        else:
            associated[key] = where
            subnets.append(subnet_names[key])
    routes: dict[str, tuple[str, str]] = {}       # destination -> (lab target, where)
    # CIDR routes first: on an equal destination a CIDR route beats a prefix-list route (AWS "Route priority",
    # https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html#route-tables-priority)
    for r in sorted(t.routes, key=lambda r: r.destination is None):
        for dst, target in _routes(inv, t, r, nats, vpc_blocks):
            _add(inv, t, routes, r, dst, target)
    return {"name": name, **({"id": t.key} if TABLE_ID.fullmatch(t.key) else {}),
            **({"subnets": subnets} if subnets else {}),
            "routes": [{"destination": d, "target": target} for d, (target, _) in routes.items()]}


def _add(inv: Inventory, t: ImportedRouteTable, routes: dict[str, tuple[str, str]], r: ImportedRoute, dst: str,
         target: str) -> None:
    if dst not in routes:
        routes[dst] = (target, r.where)
    elif r.destination is None:
        inv.notes.append(f"{r.where}: route table {t.key}: prefix list {r.prefix_list} entry {dst}: the CIDR route "
                         f"at {routes[dst][1]} wins, as in AWS")
    elif routes[dst][0] == target:
        inv.notes.append(f"{r.where}: route table {t.key}: route {dst} -> {target} repeats {routes[dst][1]}; merged")
    else:
        _conflict(inv, f"{r.where}: route table {t.key}: route {dst} -> {target} conflicts with "
                       f"{routes[dst][1]} (-> {routes[dst][0]}; a table holds each destination once)")


def _routes(inv: Inventory, t: ImportedRouteTable, r: ImportedRoute, nats: dict[str, str],
            vpc_blocks: tuple[str, ...]) -> list[tuple[str, str]]:
    """(destination, lab target) of a route the lab carries, one per entry of a prefix list whose
    entries are known; [] (named when it matters) otherwise."""
    if r.target == ROUTE_LOCAL:
        return []
    if r.destination is not None:
        carried = _route(inv, r, r.destination, nats, vpc_blocks)
        return [carried] if carried else []
    listed = inv.prefix_lists.get(r.prefix_list or "")
    if r.prefix_list and listed is not None and listed.entries:
        inv.notes.append(f"{r.where}: route to prefix list {r.prefix_list}: one route per entry "
                         f"({', '.join(c for c, _ in listed.entries)})")
        return [c for cidr, _ in listed.entries if (c := _route(inv, r, cidr, nats, vpc_blocks))]
    if r.prefix_list:
        inv.skipped.append(f"{r.where}: route to prefix list {r.prefix_list} not carried over: its entries are not in "
                           f"the inputs ({prefix_list_reason(r.prefix_list)})")
    else:
        inv.skipped.append(f"{r.where}: route table {t.key}: a route not carried over: "
                           f"{r.detail or 'it has no destination'}")
    return []


def _route(inv: Inventory, r: ImportedRoute, destination: str, nats: dict[str, str],
           vpc_blocks: tuple[str, ...]) -> tuple[str, str] | None:
    try:
        net = ip_network(destination.strip(), strict=False)
    except ValueError:
        inv.skipped.append(f"{r.where}: route {destination} not carried over: not a CIDR")
        return None
    dst = str(net)
    # why the ignores below: the comprehensions compare blocks of one family only (version checked)
    if any(net.subnet_of(ip_network(b)) for b in vpc_blocks  # type: ignore[arg-type]
           if ip_network(b).version == net.version):
        inv.skipped.append(f"{r.where}: route {dst} inside the VPC not carried over: a lab's local route "
                           "carries everything inside the VPC")
        return None
    if any(net.version == b.version and net.subnet_of(b) for b in RESERVED):  # type: ignore[arg-type]
        inv.skipped.append(f"{r.where}: route {dst} not carried over: AWS reserves that range")
        return None
    return dst, _target(inv, r, dst, nats)


def _target(inv: Inventory, r: ImportedRoute, dst: str, nats: dict[str, str]) -> str:
    if r.target in (TARGET_IGW, TARGET_EIGW, TARGET_BLACKHOLE):
        return r.target
    if r.target == ROUTE_NAT and r.detail in nats:
        return nats[r.detail]
    if r.target == ROUTE_NAT:
        why = "that NAT gateway is not carried over (named above)" if r.detail in inv.nat_gateways else \
            "it is not in the inputs: give describe-nat-gateways output with that NAT gateway (available, with " \
            "an Elastic IP; Terraform: its aws_nat_gateway)"
        inv.notes.append(f"{r.where}: route {dst} -> {r.detail} became blackhole: {why}")
    elif r.target == ROUTE_UNMODELLED:
        inv.notes.append(f"{r.where}: route {dst} -> {r.detail} became blackhole: a lab does not emulate it")
    elif r.target == ROUTE_UNKNOWN:
        inv.skipped.append(f"{r.where}: route {dst}: its target is not carried over ({r.detail}): it became "
                           "blackhole")
    return TARGET_BLACKHOLE


def _conflict(inv: Inventory, message: str) -> None:
    """Two declarations that cannot both hold: the first is kept and the second named (strict: refused)."""
    if inv.strict:
        raise ImportSourceError(message + "; keep one of them")
    inv.skipped.append(message + ": not carried over (the first one is kept)")


def _tail(key: str) -> str:
    """A Terraform address's own part: module.vpc.aws_route_table.private[0] -> private-0."""
    return key.rsplit(".", 1)[-1].replace("[", "-").replace("_", "-")
