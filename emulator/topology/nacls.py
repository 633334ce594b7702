"""Network ACLs: numbered allow/deny rules per direction, associations with subnets.

AWS (https://docs.aws.amazon.com/vpc/latest/userguide/nacl-basics.html, nacl-rules.html and
CreateNetworkAclEntry): rule numbers 1-32766, evaluated lowest first, the first match decides, the
final `*` denies; each subnet is associated with exactly one NACL (the default one unless another);
a NACL entry's peer is a CIDR only (no SG, no prefix list). The default NACL allows everything
(rule 100, and 101 for ::/0 in an IPv6 VPC).
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from emulator.ids import nacl_id_for

from ..errors import TopologyError
from ..model import (
    DEFAULT_NACL,
    ICMP_PROTOCOLS,
    NACL_ALLOW,
    NACL_DENY,
    NACL_RULE_MAX,
    PORTED_PROTOCOLS,
    PROTO_ALL,
    PROTO_ICMP,
    Direction,
    IPNetwork,
    NaclEntry,
    NetworkAcl,
    Quotas,
    protocol_name,
)
from . import addresses
from .fields import declared_id, integer, mapping, sequence, string
from .problems import Problems, item, key
from .rules import port_range, protocol
from .security_groups import EVERYWHERE_V4, EVERYWHERE_V6

NACL_ID = re.compile(r"acl-[0-9a-f]{8}(?:[0-9a-f]{9})?")
NACL_ID_ALLOWED = "use acl- followed by 8 or 17 lowercase hex digits, or omit id to generate one"
NACL_NAME = re.compile(r"[a-z0-9-]{1,32}")
NACL_NAME_ALLOWED = "use 1-32 of a-z 0-9 and -"
ENTRY_REQUIRED = ("rule", "action", "protocol", "cidr")
ENTRY_OPTIONAL = ("ports", "icmp_type", "icmp_code")
ACTIONS = (NACL_ALLOW, NACL_DENY)
RULE_ALLOWED = f"use a rule number from 1 to {NACL_RULE_MAX} (32767 and up are AWS's `*` rules)"


def default_nacl(dual_stack: bool, name: str = DEFAULT_NACL, nacl_id: str = "") -> NetworkAcl:
    """AWS's default NACL: rule 100 allows all IPv4 (and 101 all IPv6 in a dual-stack VPC), each way."""
    def entries(direction: Direction) -> tuple[NaclEntry, ...]:
        allow = [NaclEntry(100, direction, NACL_ALLOW, PROTO_ALL, EVERYWHERE_V4)]
        if dual_stack:
            allow.append(NaclEntry(101, direction, NACL_ALLOW, PROTO_ALL, EVERYWHERE_V6))
        return tuple(allow)
    return NetworkAcl(name, nacl_id or nacl_id_for(name), (), entries(Direction.INGRESS), entries(Direction.EGRESS))


def parse_network_acls(p: Problems, value: object, subnet_names: Sequence[str], dual_stack: bool,
                       quotas: Quotas) -> tuple[NetworkAcl, ...]:
    """Every NACL of the file, the default one first (AWS's unless the file declares `default`)."""
    items = sequence(p, value, "network_acls", "network ACLs") if value is not None else []
    nacls: list[NetworkAcl] = []
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    associated: dict[str, str] = {}
    for index, raw in enumerate(items or []):
        path = item("network_acls", index)
        fields = mapping(p, raw, path, ("name",), ("id", "subnets", "ingress", "egress"))
        if fields is None:
            continue
        before = len(p.errors)
        name = _name(p, fields["name"], key(path, "name"), names) if "name" in fields else None
        nacl_id = _id(p, fields, path, name, ids)
        subnets = _subnets(p, fields.get("subnets", []), key(path, "subnets"), subnet_names, associated)
        ingress = parse_entries(p, fields.get("ingress", []), key(path, "ingress"), Direction.INGRESS,
                                dual_stack, quotas)
        egress = parse_entries(p, fields.get("egress", []), key(path, "egress"), Direction.EGRESS,
                               dual_stack, quotas)
        if len(p.errors) == before and name is not None:
            nacls.append(NetworkAcl(name, nacl_id, subnets, ingress, egress))
    if DEFAULT_NACL not in names:
        default = default_nacl(dual_stack)
        if default.id in ids:
            p.error(key(ids[default.id], "id"), f"'{default.id}' is the id of the VPC's default network ACL",
                    "choose another id, or declare the NACL as name: default")
        nacls.insert(0, default)
    return tuple(nacls)


def parse_entries(p: Problems, value: object, path: str, direction: Direction, dual_stack: bool,
                  quotas: Quotas) -> tuple[NaclEntry, ...]:
    """One direction's entries in rule-number order; numbers unique, the quota per family checked."""
    items = sequence(p, value, path, "NACL rules")
    entries: list[NaclEntry] = []
    numbers: dict[int, str] = {}
    for index, raw in enumerate(items or []):
        entry_path = item(path, index)
        entry = parse_entry(p, raw, entry_path, direction, dual_stack)
        if entry is None:
            continue
        if entry.rule_number in numbers:
            p.error(key(entry_path, "rule"), f"NetworkAclEntryAlreadyExists: rule {entry.rule_number} is "
                                             f"already {numbers[entry.rule_number]}",
                    "rule numbers are unique per NACL and direction: renumber one of them")
            continue
        numbers[entry.rule_number] = entry_path
        entries.append(entry)
    problem = quota_problem(entries, direction, quotas)
    if problem is not None:
        p.error(path, problem, "remove rules or raise options.quotas.rules_per_nacl (AWS allows up to 40)")
    return tuple(sorted(entries, key=lambda e: e.rule_number))


def quota_problem(entries: Sequence[NaclEntry], direction: Direction, quotas: Quotas) -> str | None:
    """AWS's quota counts rules per NACL, direction and address family, the `*` deny included
    (https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html#vpc-limits-nacls)."""
    bound = "inbound" if direction is Direction.INGRESS else "outbound"
    for family in (4, 6):
        count = sum(1 for e in entries if e.cidr.version == family)
        if count + 1 > quotas.rules_per_nacl:
            return (f"{count} IPv{family} {bound} rules plus the `*` rule exceed the quota of "
                    f"{quotas.rules_per_nacl} rules per network ACL, direction and address family")
    return None


def parse_entry(p: Problems, value: object, path: str, direction: Direction, dual_stack: bool) -> NaclEntry | None:
    before = len(p.errors)
    fields = mapping(p, value, path, ENTRY_REQUIRED, ENTRY_OPTIONAL)
    if fields is None:
        return None
    number = integer(p, fields["rule"], key(path, "rule"), 1, NACL_RULE_MAX) if "rule" in fields else None
    action = _action(p, fields["action"], key(path, "action")) if "action" in fields else None
    proto = protocol(p, fields["protocol"], key(path, "protocol")) if "protocol" in fields else None
    cidr = _cidr(p, fields["cidr"], key(path, "cidr"), proto, dual_stack) if "cidr" in fields else None
    ports = None
    where = key(path, "ports")
    if proto in PORTED_PROTOCOLS:
        if "ports" in fields:
            ports = port_range(p, fields["ports"], where)
        else:
            p.error(where, "is missing", f"{protocol_name(proto)} NACL rules need ports: N or \"N-M\" (0-65535)")
    elif "ports" in fields and proto is not None:
        p.warn(where, f"ignored for protocol {protocol_name(proto)} (AWS ignores the port range unless the "
                      "protocol is tcp or udp: the rule covers all of its traffic)")
    icmp = {"icmp_type": -1, "icmp_code": -1}
    for name in icmp:
        if name not in fields:
            continue
        if proto is not None and proto not in ICMP_PROTOCOLS:
            p.error(key(path, name), f"does not apply to protocol {protocol_name(proto)}",
                    "use it only with icmp or icmpv6, or remove it")
            continue
        read = integer(p, fields[name], key(path, name), -1, 255, unit=" (-1 = all)")
        if read is not None:
            icmp[name] = read
    if icmp["icmp_type"] == -1 and icmp["icmp_code"] != -1:
        p.error(key(path, "icmp_code"), f"{icmp['icmp_code']} needs a specific icmp_type",
                "use icmp_code -1 when icmp_type is -1 (all types)")
    if len(p.errors) > before or number is None or action is None or proto is None or cidr is None:
        return None
    return NaclEntry(number, direction, action, proto, cidr, ports, icmp["icmp_type"], icmp["icmp_code"])


def _action(p: Problems, value: object, path: str) -> str | None:
    text = string(p, value, path, "use allow or deny")
    if text is None:
        return None
    if text.strip().lower() not in ACTIONS:
        p.error(path, f"'{text}' is not a NACL action", "use allow or deny")
        return None
    return text.strip().lower()


def _cidr(p: Problems, value: object, path: str, proto: int | None, dual_stack: bool) -> IPNetwork | None:
    read = addresses.network(p, value, path, None)
    if read is None:
        return None
    net, canonical = read
    if not canonical:
        p.warn(path, f"'{str(value).strip()}' canonicalised to {net} (AWS stores the network address)")
    if net.version == 6 and not dual_stack:
        p.warn(path, f"{net} is IPv6 but the VPC is IPv4-only: this rule can never match")
    if proto == PROTO_ICMP and net.version == 6:
        p.warn(path, "protocol icmp never carries IPv6 traffic: this rule can never match (use icmpv6)")
    return net


def _subnets(p: Problems, value: object, path: str, subnet_names: Sequence[str],
             associated: dict[str, str]) -> tuple[str, ...]:
    items = sequence(p, value, path, "subnet names")
    names: list[str] = []
    for index, raw in enumerate(items or []):
        where = item(path, index)
        name = string(p, raw, where, "use the name of a subnet of this file")
        if name is None:
            continue
        if name not in subnet_names:
            p.error(where, f"no subnet named '{name}'", f"use one of: {', '.join(subnet_names) or '(none)'}")
        elif name in associated:
            p.error(where, f"subnet '{name}' is already associated with {associated[name]}",
                    "a subnet has exactly one network ACL: list it under one NACL only")
        else:
            associated[name] = path.rsplit(".", 1)[0]
            names.append(name)
    return tuple(names)


def _name(p: Problems, value: object, path: str, names: dict[str, str]) -> str | None:
    name = string(p, value, path, NACL_NAME_ALLOWED)
    if name is None:
        return None
    if not NACL_NAME.fullmatch(name):
        p.error(path, f"'{name}' is not a valid network ACL name", NACL_NAME_ALLOWED)
        return None
    if name in names:
        p.error(path, f"'{name}' is already the name of {names[name]}", "network ACL names must be unique")
        return None
    names[name] = path.rsplit(".", 1)[0]
    return name


def _id(p: Problems, fields: dict[str, object], path: str, name: str | None, ids: dict[str, str]) -> str:
    generated = nacl_id_for(name if name is not None else path)
    return declared_id(p, fields, path, generated, NACL_ID, NACL_ID_ALLOWED, "network ACL", ids)


def build_entry(fields: dict[str, object], direction: Direction, dual_stack: bool, source: str) -> NaclEntry:
    """One entry given outside a file (a live `nacl create-entry`), validated like a file's entry."""
    p = Problems(source)
    entry = parse_entry(p, fields, "entry", direction, dual_stack)
    if entry is None:
        raise TopologyError(p.errors)
    return entry
