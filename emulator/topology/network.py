"""The VPC and its subnets: address blocks, containment and overlaps."""
from __future__ import annotations

import re
from ipaddress import IPv4Network, IPv6Network

from ..model import Subnet, Vpc
from . import addresses
from .fields import mapping, sequence, string
from .problems import Problems, item, key

SUBNET_NAME = re.compile(r"[a-z0-9-]{1,32}")
VPC_ID = re.compile(r"vpc-[0-9a-f]{8}([0-9a-f]{9})?")
VPC_ID_ALLOWED = "use vpc- and 8 or 17 hex digits, e.g. vpc-0a1b2c3d4e5f60718, or leave id out"
IPV4_PREFIXES = "AWS allows /16 to /28"
# Blocks a lab cannot use as a VPC: the kernel gives them special meaning.
SPECIAL_V4 = {IPv4Network("0.0.0.0/8"): "this-network", IPv4Network("127.0.0.0/8"): "loopback",
              IPv4Network("169.254.0.0/16"): "link-local", IPv4Network("224.0.0.0/4"): "multicast",
              IPv4Network("240.0.0.0/4"): "reserved"}
SPECIAL_V6 = {IPv6Network("fe80::/10"): "link-local", IPv6Network("ff00::/8"): "multicast",
              IPv6Network("::/8"): "loopback and IPv4-mapped"}


def parse_vpc(p: Problems, value: object) -> Vpc | None:
    fields = mapping(p, value, "vpc", ("cidr",), ("ipv6_cidr", "id"))
    if fields is None:
        return None
    vpc_id = ""
    if "id" in fields:
        vpc_id = string(p, fields["id"], "vpc.id", VPC_ID_ALLOWED) or ""
        if vpc_id and not VPC_ID.fullmatch(vpc_id):
            p.error("vpc.id", f"'{vpc_id}' is not a VPC id", VPC_ID_ALLOWED)
    cidr = _ipv4_block(p, fields["cidr"], "vpc.cidr") if "cidr" in fields else None
    if cidr is not None and (special := _special(cidr, SPECIAL_V4)):
        p.error("vpc.cidr", f"{cidr} overlaps {special}", "use a private range such as 10.0.0.0/16 or 172.16.0.0/16")
        cidr = None
    ipv6 = None
    if "ipv6_cidr" in fields:
        ipv6 = addresses.strict_network(p, fields["ipv6_cidr"], "vpc.ipv6_cidr", 6)
        if ipv6 is not None and ipv6.prefixlen > 64:
            p.error("vpc.ipv6_cidr", f"/{ipv6.prefixlen} is smaller than a subnet's /64",
                    "use a prefix of /64 or shorter (AWS gives VPCs a /56), e.g. fd00:10::/56")
            ipv6 = None
        elif ipv6 is not None and (special := _special(ipv6, SPECIAL_V6)):
            p.error("vpc.ipv6_cidr", f"{ipv6} overlaps {special}",
                    "use a ULA range such as fd00:10::/56 or a global one")
            ipv6 = None
    if cidr is None or ("ipv6_cidr" in fields and ipv6 is None):
        return None
    return Vpc(cidr=cidr, ipv6_cidr=ipv6, id=vpc_id)


def _special(net: IPv4Network | IPv6Network, special: dict) -> str | None:
    return next((f"{block} ({what})" for block, what in special.items() if net.overlaps(block)), None)


def _ipv4_block(p: Problems, value: object, path: str) -> IPv4Network | None:
    net = addresses.strict_network(p, value, path, 4)
    if net is not None and not 16 <= net.prefixlen <= 28:
        p.error(path, f"/{net.prefixlen} is not a valid block size", f"{IPV4_PREFIXES}, e.g. 10.0.1.0/24")
        return None
    return net


def parse_subnets(p: Problems, value: object, vpc: Vpc | None) -> tuple[tuple[Subnet, ...], tuple[str, ...]]:
    """Subnets inside the VPC, never overlapping; IPv6 /64s only in a dual-stack VPC.

    Also returns every name declared, valid subnet or not, so that instances in a broken
    subnet are not reported a second time."""
    items = sequence(p, value, "subnets", "subnets")
    if items is not None and not items:
        p.error("subnets", "is empty", "declare at least one subnet, e.g. {name: public, cidr: 10.0.1.0/24}")
    subnets: list[Subnet] = []
    seen: dict[str, str] = {}
    for index, raw in enumerate(items or []):
        path = item("subnets", index)
        fields = mapping(p, raw, path, ("name", "cidr"), ("ipv6_cidr",))
        if fields is None:
            continue
        before = len(p.errors)
        name = _name(p, fields["name"], key(path, "name"), seen) if "name" in fields else None
        cidr = _cidr(p, fields["cidr"], key(path, "cidr"), vpc, subnets) if "cidr" in fields else None
        ipv6 = _ipv6(p, fields["ipv6_cidr"], key(path, "ipv6_cidr"), vpc, subnets) if "ipv6_cidr" in fields else None
        if name is not None:
            seen[name] = path
        if len(p.errors) == before and name is not None and cidr is not None:
            subnets.append(Subnet(name, cidr, ipv6))
    return tuple(subnets), tuple(seen)


def _name(p: Problems, value: object, path: str, seen: dict[str, str]) -> str | None:
    allowed = "use 1-32 of a-z 0-9 and -"
    name = string(p, value, path, allowed)
    if name is None:
        return None
    if not SUBNET_NAME.fullmatch(name):
        p.error(path, f"'{name}' is not a valid subnet name", allowed)
        return None
    if name in seen:
        p.error(path, f"'{name}' is already the name of {seen[name]}", "subnet names must be unique")
        return None
    return name


def _cidr(p: Problems, value: object, path: str, vpc: Vpc | None, subnets: list[Subnet]) -> IPv4Network | None:
    net = _ipv4_block(p, value, path)
    if net is None or vpc is None:
        return None
    if not net.subnet_of(vpc.cidr):
        p.error(path, f"{net} is not inside vpc.cidr {vpc.cidr}", f"use a block inside {vpc.cidr}")
        return None
    other = next((s for s in subnets if s.cidr.overlaps(net)), None)
    if other is not None:
        p.error(path, f"{net} overlaps subnet '{other.name}' ({other.cidr})", "subnets must not overlap")
        return None
    return net


def _ipv6(p: Problems, value: object, path: str, vpc: Vpc | None, subnets: list[Subnet]) -> IPv6Network | None:
    net = addresses.strict_network(p, value, path, 6)
    if net is None or vpc is None:
        return None
    if vpc.ipv6_cidr is None:
        p.error(path, "the VPC is IPv4-only", "add vpc.ipv6_cidr to make it dual-stack, or remove ipv6_cidr")
        return None
    if net.prefixlen != 64 or not net.subnet_of(vpc.ipv6_cidr):
        p.error(path, f"{net} is not a /64 inside vpc.ipv6_cidr {vpc.ipv6_cidr}",
                f"AWS subnets get a /64 of the VPC's block, e.g. {next(vpc.ipv6_cidr.subnets(new_prefix=64))}")
        return None
    other = next((s for s in subnets if s.ipv6_cidr == net), None)
    if other is not None:
        p.error(path, f"{net} is already the ipv6_cidr of subnet '{other.name}'", "each subnet needs its own /64")
        return None
    return net
