"""`nat_gateways` and `route_tables`: the VPC's path to the internet (CONTRACT.md, "The rest of the
VPC's path"). A file without them keeps its old meaning: one main table sending 0.0.0.0/0 and ::/0
to the internet gateway.

AWS rules checked here (https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateRoute.html): one destination once
per table, a subnet in one table only, NAT gateway targets for IPv4 only, egress-only internet
gateway targets for IPv6 only, nothing inside the VPC's blocks (the local route has them) or the
reserved 169.254.168.0/22 and fd00:ec2::/32.
"""
from __future__ import annotations

import re
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Network

from ..ids import resource_id_for
from ..model import Instance, IPNetwork, Subnet, Vpc
from ..routes import (
    MAIN_ROUTE_TABLE,
    TARGET_BLACKHOLE,
    TARGET_EIGW,
    TARGET_IGW,
    NatGateway,
    RouteEntry,
    RouteTable,
    default_main_table,
)
from . import addresses
from .fields import mapping, sequence, string
from .nodes import Registry, outside_vpc
from .problems import Problems, item, key

TABLE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
TABLE_ID = re.compile(r"rtb-[0-9a-f]{8}([0-9a-f]{9})?")
NAT_ID = re.compile(r"nat-[0-9a-f]{8}([0-9a-f]{9})?")
RESERVED = (IPv4Network("169.254.168.0/22"), IPv6Network("fd00:ec2::/32"))
FIXED_TARGETS = (TARGET_IGW, TARGET_EIGW, TARGET_BLACKHOLE)


def parse_nat_gateways(p: Problems, value: object, vpc: Vpc | None, subnets: tuple[Subnet, ...],
                       registry: Registry, lab: str) -> tuple[NatGateway, ...]:
    """NAT gateways: named like nodes (each runs as a namespace), a private IP in their subnet (the
    next free one when omitted) and a public (Elastic) IP."""
    items = sequence(p, value, "nat_gateways", "NAT gateways") if value is not None else []
    found: list[NatGateway] = []
    names = ", ".join(s.name for s in subnets) or "(none declared)"
    for index, raw in enumerate(items or []):
        path = item("nat_gateways", index)
        fields = mapping(p, raw, path, ("name", "subnet", "public_ip"), ("private_ip", "id"))
        if fields is None:
            continue
        before = len(p.errors)
        name = registry.claim_name(p, fields["name"], key(path, "name")) if "name" in fields else None
        subnet = None
        if "subnet" in fields and (ref := string(p, fields["subnet"], key(path, "subnet"), f"use one of: {names}")):
            subnet = next((s for s in subnets if s.name == ref), None)
            if subnet is None:
                p.error(key(path, "subnet"), f"no subnet named '{ref}'", f"use one of: {names}")
        public = None
        if "public_ip" in fields:
            where = key(path, "public_ip")
            addr = addresses.address(p, fields["public_ip"], where, 4)
            if addr is not None and outside_vpc(p, addr, where, vpc) and registry.claim_address(p, addr, where):
                public = addr
        private = _private_ip(p, fields, path, subnet, registry)
        nat_id = _id(p, fields, path, NAT_ID, "nat-") if "id" in fields else ""
        if len(p.errors) == before and name and subnet and isinstance(public, IPv4Address) and private:
            found.append(NatGateway(name, subnet.name, private, public,
                                    nat_id or resource_id_for("nat", lab, name)))
    return tuple(found)


def _private_ip(p: Problems, fields: dict[str, object], path: str, subnet: Subnet | None,
                registry: Registry) -> IPv4Address | None:
    if subnet is None:
        return None
    if "private_ip" in fields:
        where = key(path, "private_ip")
        addr = addresses.address(p, fields["private_ip"], where, 4)
        if addr is None:
            return None
        if addr not in subnet.cidr or addresses.subnet_reserved(subnet.cidr, addr):
            p.error(where, f"{addr} is not a usable address of subnet '{subnet.name}' ({subnet.cidr})",
                    f"use an address from {addresses.first_usable(subnet.cidr)} to "
                    f"{subnet.cidr.broadcast_address - 1}")
            return None
        return addr if registry.claim_address(p, addr, where) else None
    candidate = addresses.first_usable(subnet.cidr)
    while candidate < subnet.cidr.broadcast_address and candidate in registry.addresses:
        candidate += 1
    if candidate >= subnet.cidr.broadcast_address:
        p.error(path, f"subnet '{subnet.name}' ({subnet.cidr}) has no free address left for the NAT gateway",
                "use a larger subnet")
        return None
    registry.addresses[candidate] = key(path, "private_ip")
    return candidate


def _id(p: Problems, fields: dict[str, object], path: str, pattern: re.Pattern, prefix: str) -> str:
    allowed = f"use {prefix} and 8 or 17 hex digits, or leave id out"
    value = string(p, fields["id"], key(path, "id"), allowed)
    if value is not None and not pattern.fullmatch(value):
        p.error(key(path, "id"), f"'{value}' is not a {prefix} id", allowed)
        return ""
    return value or ""


def parse_route_tables(p: Problems, value: object, vpc: Vpc | None, subnets: tuple[Subnet, ...],
                       nats: tuple[NatGateway, ...], lab: str) -> tuple[RouteTable, ...]:
    """Every table, the main one first: a table named `main` redefines the default main table."""
    items = sequence(p, value, "route_tables", "route tables") if value is not None else []
    tables: list[RouteTable] = []
    seen: dict[str, str] = {}
    associated: dict[str, str] = {}
    for index, raw in enumerate(items or []):
        path = item("route_tables", index)
        fields = mapping(p, raw, path, ("name",), ("id", "subnets", "routes"))
        if fields is None:
            continue
        before = len(p.errors)
        name = string(p, fields["name"], key(path, "name"), "use 1-32 of a-z 0-9 and -") if "name" in fields else None
        if name is not None and not TABLE_NAME.fullmatch(name):
            p.error(key(path, "name"), f"'{name}' is not a valid route table name", "use 1-32 of a-z 0-9 and -")
        elif name is not None and name in seen:
            p.error(key(path, "name"), f"'{name}' is already the name of {seen[name]}",
                    "route table names must be unique")
        elif name is not None:
            seen[name] = path
        members = _associations(p, fields.get("subnets"), key(path, "subnets"), subnets, associated)
        routes = _routes(p, fields.get("routes"), key(path, "routes"), vpc, nats)
        table_id = _id(p, fields, path, TABLE_ID, "rtb-") if "id" in fields else ""
        if len(p.errors) == before and name:
            tables.append(RouteTable(name, table_id or resource_id_for("rtb", lab, name), routes, members,
                                     main=name == MAIN_ROUTE_TABLE))
    if not any(t.main for t in tables):
        tables.insert(0, replace(default_main_table(resource_id_for("rtb", lab, MAIN_ROUTE_TABLE))))
    return tuple(sorted(tables, key=lambda t: not t.main))


def _associations(p: Problems, value: object, path: str, subnets: tuple[Subnet, ...],
                  associated: dict[str, str]) -> tuple[str, ...]:
    if value is None:
        return ()
    refs = sequence(p, value, path, "subnet names")
    names = ", ".join(s.name for s in subnets) or "(none declared)"
    found: list[str] = []
    for index, ref in enumerate(refs or []):
        where = item(path, index)
        name = string(p, ref, where, f"use one of: {names}")
        if name is None:
            continue
        if all(s.name != name for s in subnets):
            p.error(where, f"no subnet named '{name}'", f"use one of: {names}")
        elif name in associated:
            p.error(where, f"subnet '{name}' is already associated at {associated[name]}",
                    "a subnet has exactly one route table (AWS: Resource.AlreadyAssociated)")
        else:
            associated[name] = where
            found.append(name)
    return tuple(found)


def _routes(p: Problems, value: object, path: str, vpc: Vpc | None,
            nats: tuple[NatGateway, ...]) -> tuple[RouteEntry, ...]:
    if value is None:
        return ()
    found: list[RouteEntry] = []
    places: dict[IPNetwork, str] = {}
    for index, raw in enumerate(sequence(p, value, path, "routes") or []):
        where = item(path, index)
        fields = mapping(p, raw, where, ("destination", "target"))
        if fields is None or "destination" not in fields or "target" not in fields:
            continue
        dst = destination(p, fields["destination"], key(where, "destination"), vpc)
        target = _target(p, fields["target"], key(where, "target"), dst, nats)
        if dst is None or target is None:
            continue
        if dst in places:
            p.error(key(where, "destination"), f"{dst} is already routed at {places[dst]}",
                    "a table holds each destination once (AWS: RouteAlreadyExists)")
            continue
        places[dst] = where
        found.append(RouteEntry(dst, target))
    return tuple(found)


def destination(p: Problems, value: object, path: str, vpc: Vpc | None) -> IPNetwork | None:
    """A route's destination: canonical, outside the VPC's blocks and AWS's reserved ranges."""
    read = addresses.network(p, value, path, None)
    if read is None:
        return None
    net, canonical = read
    if not canonical:
        p.error(path, f"'{str(value).strip()}' has host bits set", f"write the network address: {net}")
        return None
    # why the ignore below: same family checked first; typeshed types subnet_of per family
    if any(net.version == r.version and net.subnet_of(r) for r in RESERVED):  # type: ignore[arg-type]
        p.error(path, f"{net} is inside a range AWS reserves (169.254.168.0/22, fd00:ec2::/32)",
                "route somewhere else")
        return None
    blocks = () if vpc is None else (vpc.cidr, vpc.ipv6_cidr)
    inside = next((b for b in blocks if b is not None and b.version == net.version and
                   # why the ignore below: same family checked first; typeshed types subnet_of per family
                   net.subnet_of(b)), None)  # type: ignore[arg-type]
    if inside is not None:
        p.error(path, f"{net} is inside the VPC's {inside}, which the local route covers",
                "route destinations outside the VPC (AWS: RouteAlreadyExists for the local CIDR)")
        return None
    return net


def _target(p: Problems, value: object, path: str, dst: IPNetwork | None,
            nats: tuple[NatGateway, ...]) -> str | None:
    choices = ", ".join((*FIXED_TARGETS, *(n.name for n in nats)))
    name = string(p, value, path, f"use one of: {choices}")
    if name is None:
        return None
    nat = next((n for n in nats if name in (n.name, n.id)), None)
    if name not in FIXED_TARGETS and nat is None:
        p.error(path, f"no gateway named '{name}'", f"use one of: {choices}")
        return None
    return check_target(p, path, nat.name if nat else name, dst, nat is not None)


def check_target(p: Problems, path: str, target: str, dst: IPNetwork | None, is_nat: bool) -> str | None:
    """Family rules of CreateRoute: NAT gateway [IPv4 traffic only], egress-only IGW [IPv6 only]."""
    if dst is None:
        return target
    if is_nat and dst.version == 6:
        p.error(path, f"a NAT gateway takes IPv4 traffic only, not {dst}", "route IPv6 to eigw or igw")
        return None
    if target == TARGET_EIGW and dst.version == 4:
        p.error(path, f"an egress-only internet gateway takes IPv6 traffic only, not {dst}",
                "route IPv4 to a NAT gateway or igw")
        return None
    return target


def warn_unroutable(p: Problems, tables: tuple[RouteTable, ...], nats: tuple[NatGateway, ...],
                    instances: tuple[Instance, ...]) -> None:
    """AWS accepts a public IP or NAT gateway in a subnet without an internet gateway route; it
    cannot work, so say so."""
    main = next(t for t in tables if t.main)

    def igw_routed(subnet: str) -> bool:
        table = next((t for t in tables if subnet in t.subnets), main)
        return any(r.target == TARGET_IGW and r.destination.version == 4 for r in table.routes)

    for index, nat in enumerate(nats):
        if not igw_routed(nat.subnet):
            p.warn(item("nat_gateways", index), f"NAT gateway '{nat.name}' is in subnet '{nat.subnet}', whose "
                   "route table has no IPv4 route to the internet gateway: nothing it translates can reach "
                   "the internet")
    for index, inst in enumerate(instances):
        if inst.public_ip is not None and not igw_routed(inst.subnet):
            p.warn(item("instances", index), f"instance '{inst.name}' has public IP {inst.public_ip} but subnet "
                   f"'{inst.subnet}' has no IPv4 route to the internet gateway: the internet cannot use it "
                   "(replies find no way out)")
