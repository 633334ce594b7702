"""Instances and internet hosts: names, addresses (with AWS's reservations), SGs and services."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from typing import Literal, overload

from ..model import ConntrackTimeouts, Instance, InternetHost, IPAddress, Options, SecurityGroup, Service, Subnet, Vpc
from . import addresses
from .fields import mapping, sequence, string
from .problems import Problems, item, key
from .security_groups import DEFAULT_SG
from .services import parse_conntrack, parse_services

NODE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
NODE_NAME_ALLOWED = "use 1-32 of a-z 0-9 and -, starting with a letter or digit"
RESERVED_NODE_NAMES = ("vpc",)         # the fabric namespace is sgemu-<lab>-vpc
INSTANCE_OPTIONAL = ("private_ip", "ipv6", "public_ip", "security_groups", "services", "conntrack")


@dataclass
class Registry:
    """What must be unique across all nodes of the lab: names and addresses, each with its path."""

    names: dict[str, str] = field(default_factory=dict)
    addresses: dict[IPAddress, str] = field(default_factory=dict)

    def claim_name(self, p: Problems, value: object, path: str) -> str | None:
        name = string(p, value, path, NODE_NAME_ALLOWED)
        if name is None:
            return None
        if not NODE_NAME.fullmatch(name):
            p.error(path, f"'{name}' is not a valid name", NODE_NAME_ALLOWED)
        elif name in RESERVED_NODE_NAMES:
            p.error(path, f"'{name}' is reserved for the lab's VPC router", "choose another name")
        elif name in self.names:
            p.error(path, f"'{name}' is already the name of {self.names[name]}",
                    "names must be unique across instances and internet hosts")
        else:
            self.names[name] = path.rsplit(".", 1)[0]
            return name
        return None

    def claim_address(self, p: Problems, addr: IPAddress, path: str) -> bool:
        if addr in self.addresses:
            p.error(path, f"{addr} is already used by {self.addresses[addr]}", "every address must be unique")
            return False
        self.addresses[addr] = path
        return True


@dataclass
class _Pending:
    """An instance read from the file, waiting for address assignment."""

    path: str
    name: str
    subnet: Subnet
    private_ip: IPv4Address | None
    security_groups: tuple[str, ...]
    ipv6: IPv6Address | None
    public_ip: IPv4Address | None
    services: tuple[Service, ...]
    conntrack: ConntrackTimeouts
    fields_ok: bool


def parse_instances(p: Problems, value: object, vpc: Vpc | None, subnets: tuple[Subnet, ...],
                    subnet_names: tuple[str, ...], groups: tuple[SecurityGroup, ...], options: Options,
                    registry: Registry) -> tuple[Instance, ...]:
    items = sequence(p, value, "instances", "instances") if value is not None else []
    pending: list[_Pending] = []
    proxy_targets: list[tuple[str, str]] = []
    for index, raw in enumerate(items or []):
        path = item("instances", index)
        fields = mapping(p, raw, path, ("name", "subnet"), INSTANCE_OPTIONAL)
        if fields is None:
            continue
        before = len(p.errors)
        name = registry.claim_name(p, fields["name"], key(path, "name")) if "name" in fields else None
        subnet = _subnet(p, fields["subnet"], key(path, "subnet"), subnets, subnet_names) \
            if "subnet" in fields else None
        private_ip = _private_ip(p, fields, path, subnet, registry)
        ipv6 = _ipv6(p, fields, path, subnet, registry)
        public_ip = _outside(p, fields, path, "public_ip", 4, vpc, registry)
        sgs = _security_groups(p, fields, path, groups, options)
        services = parse_services(p, fields["services"], key(path, "services"), proxy_targets) \
            if "services" in fields else ()
        conntrack = parse_conntrack(p, fields["conntrack"], key(path, "conntrack"), options.timeouts) \
            if "conntrack" in fields else options.timeouts
        if name is not None and subnet is not None:
            pending.append(_Pending(path, name, subnet, private_ip, sgs, ipv6, public_ip, services, conntrack,
                                    len(p.errors) == before))
    for where, target in proxy_targets:
        if target not in registry.names:   # internet hosts are registered later
            p.error(where, f"no instance named '{target}'", "forward to an instance of this file")
    _assign_private_ips(p, pending, registry)
    return tuple(Instance(name=i.name, subnet=i.subnet.name, private_ip=i.private_ip,
                          security_groups=i.security_groups, ipv6=i.ipv6, public_ip=i.public_ip,
                          services=i.services, conntrack=i.conntrack)
                 for i in pending if i.fields_ok and i.private_ip is not None)


def _subnet(p: Problems, value: object, path: str, subnets: tuple[Subnet, ...],
            declared: tuple[str, ...]) -> Subnet | None:
    names = ", ".join(declared) or "(none declared)"
    name = string(p, value, path, f"use one of: {names}")
    if name is None:
        return None
    found = next((s for s in subnets if s.name == name), None)
    if found is None and name not in declared:   # a declared but broken subnet has its own problem
        p.error(path, f"no subnet named '{name}'", f"use one of: {names}")
    return found


def _private_ip(p: Problems, fields: dict[str, object], path: str, subnet: Subnet | None,
                registry: Registry) -> IPv4Address | None:
    if "private_ip" not in fields:
        return None
    where = key(path, "private_ip")
    addr = addresses.address(p, fields["private_ip"], where, 4)
    if addr is None or subnet is None:
        return None
    usable = f"use an address from {addresses.first_usable(subnet.cidr)} to {subnet.cidr.broadcast_address - 1}"
    if addr not in subnet.cidr:
        p.error(where, f"{addr} is not inside subnet '{subnet.name}' ({subnet.cidr})", usable)
    elif addresses.subnet_reserved(subnet.cidr, addr):
        p.error(where, f"{addr} is reserved by AWS (the first four and the last address of a subnet)", usable)
    elif registry.claim_address(p, addr, where):
        return addr
    return None


def _ipv6(p: Problems, fields: dict[str, object], path: str, subnet: Subnet | None,
          registry: Registry) -> IPv6Address | None:
    if "ipv6" not in fields:
        return None
    where = key(path, "ipv6")
    addr = addresses.address(p, fields["ipv6"], where, 6)
    if addr is None or subnet is None:
        return None
    block = subnet.ipv6_cidr
    if block is None:
        p.error(where, f"subnet '{subnet.name}' has no ipv6_cidr", "give the subnet an ipv6_cidr, or remove ipv6")
    elif addr not in block:
        p.error(where, f"{addr} is not inside subnet '{subnet.name}' ({block})", f"use an address inside {block}")
    elif addresses.subnet_reserved(block, addr):
        p.error(where, f"{addr} is reserved by AWS (the first four and the last address of a subnet's /64)",
                f"use an address from {block.network_address + 4} inside {block}")
    elif registry.claim_address(p, addr, where):
        return addr
    return None


@overload
def _outside(p: Problems, fields: dict[str, object], path: str, name: str, family: Literal[4], vpc: Vpc | None,
             registry: Registry) -> IPv4Address | None: ...
@overload
def _outside(p: Problems, fields: dict[str, object], path: str, name: str, family: Literal[6], vpc: Vpc | None,
             registry: Registry) -> IPv6Address | None: ...
def _outside(p: Problems, fields: dict[str, object], path: str, name: str, family: Literal[4, 6],
             vpc: Vpc | None, registry: Registry) -> IPAddress | None:
    """An address outside the VPC (a public IP, an internet host's), claimed once in the whole file."""
    if name not in fields:
        return None
    where = key(path, name)
    addr = addresses.address(p, fields[name], where, family)
    if addr is None or not outside_vpc(p, addr, where, vpc):
        return None
    return addr if registry.claim_address(p, addr, where) else None


def outside_vpc(p: Problems, addr: IPAddress, path: str, vpc: Vpc | None) -> bool:
    """An address on the internet side: unicast, routable, and not inside the VPC's blocks."""
    allowed = "use a unicast address outside the VPC, e.g. 198.51.100.10 or 2001:db8::10"
    if (why := addresses.unroutable(addr)) is not None:
        p.error(path, f"{addr} is a {why} address", allowed)
        return False
    block = None if vpc is None else (vpc.cidr if addr.version == 4 else vpc.ipv6_cidr)
    if block is not None and addr in block:
        p.error(path, f"{addr} is inside the VPC ({block})", allowed)
        return False
    return vpc is not None   # without a valid VPC (already reported) nothing more can be checked


def _security_groups(p: Problems, fields: dict[str, object], path: str, groups: tuple[SecurityGroup, ...],
                     options: Options) -> tuple[str, ...]:
    by_ref = {ref: g.id for g in groups for ref in (g.name, g.id)}
    if "security_groups" not in fields:
        return (by_ref[DEFAULT_SG],) if DEFAULT_SG in by_ref else ()
    where = key(path, "security_groups")
    refs = sequence(p, fields["security_groups"], where, "security group names or ids")
    if refs is None:
        return ()
    if not refs:
        p.error(where, "is empty", "an instance needs at least one security group; omit the key to use default")
    names = ", ".join(g.name for g in groups)
    ids: list[str] = []
    for index, ref in enumerate(refs):
        ref_path = item(where, index)
        sg_ref = string(p, ref, ref_path, f"use one of: {names}")
        if sg_ref is None:
            continue
        if sg_ref not in by_ref:
            p.error(ref_path, f"no security group named or with id '{sg_ref}'", f"use one of: {names}")
        elif by_ref[sg_ref] in ids:
            p.error(ref_path, f"'{sg_ref}' is listed twice", "list each security group once")
        else:
            ids.append(by_ref[sg_ref])
    if len(refs) > options.quotas.sgs_per_eni:
        p.error(where, f"{len(refs)} security groups exceed the quota of {options.quotas.sgs_per_eni} "
                       "per network interface",
                "remove some or raise options.quotas.sgs_per_eni (1-16; rules_per_sg x sgs_per_eni <= 1000)")
    return tuple(ids)


def _assign_private_ips(p: Problems, pending: list[_Pending], registry: Registry) -> None:
    """Like EC2: the next free address from base+4, in file order, after every explicit one is known.
    Every address below a subnet's last assignment is taken, so the search resumes there (linear in
    the subnet, not quadratic: a lab of 1000 instances)."""
    resume: dict[IPv4Network, IPv4Address] = {}
    for instance in pending:
        if instance.private_ip is not None or not instance.fields_ok:
            continue
        cidr = instance.subnet.cidr
        candidate = resume.get(cidr, addresses.first_usable(cidr))
        while candidate < cidr.broadcast_address and candidate in registry.addresses:
            candidate += 1
        resume[cidr] = candidate
        if candidate >= cidr.broadcast_address:
            p.error(instance.path, f"subnet '{instance.subnet.name}' ({cidr}) has no free address left",
                    "use a larger subnet or give fewer instances")
            continue
        registry.addresses[candidate] = key(instance.path, "private_ip")
        instance.private_ip = candidate


def parse_internet(p: Problems, value: object, vpc: Vpc | None, registry: Registry) -> tuple[InternetHost, ...]:
    items = sequence(p, value, "internet", "internet hosts") if value is not None else []
    hosts: list[InternetHost] = []
    for index, raw in enumerate(items or []):
        path = item("internet", index)
        fields = mapping(p, raw, path, ("name",), ("ip", "ipv6"))
        if fields is None:
            continue
        before = len(p.errors)
        name = registry.claim_name(p, fields["name"], key(path, "name")) if "name" in fields else None
        if "ip" not in fields and "ipv6" not in fields:
            p.error(path, "has neither ip nor ipv6", "give ip (IPv4), ipv6, or both")
        ip = _outside(p, fields, path, "ip", 4, vpc, registry)
        ipv6 = _outside(p, fields, path, "ipv6", 6, vpc, registry)
        if len(p.errors) == before and name is not None:
            hosts.append(InternetHost(name, ip, ipv6))
    return tuple(hosts)
