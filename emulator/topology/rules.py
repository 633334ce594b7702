"""One SG direction's rules: protocol, ports or ICMP type/code, peer, duplicates and quotas."""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Network

from emulator.ids import rule_id_for

from ..errors import TopologyError
from ..model import (
    ICMP_PROTOCOLS,
    PORTED_PROTOCOLS,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTOCOL_NAMES,
    Direction,
    IPNetwork,
    PortRange,
    PrefixList,
    Quotas,
    Rule,
    protocol_name,
)
from . import addresses
from .fields import describe, integer, mapping, parse_int, sequence, string
from .problems import Problems, item, key

RULE_OPTIONAL = ("ports", "icmp_type", "icmp_code", "cidr", "group", "prefix_list", "description")
PROTOCOL_ALLOWED = "use tcp, udp, icmp, icmpv6, all, -1 or a protocol number 0-255"
PORTS_ALLOWED = 'use N or "N-M" with 0 <= N <= M <= 65535'
PEER_ALLOWED = ("give exactly one of cidr (an IPv4 or IPv6 CIDR), group (an SG name or id of this file) "
                "or prefix_list (a prefix list name or id of this file)")
PEERS = ("cidr", "group", "prefix_list")
# AWS's character set for SG names and descriptions (VPC security groups).
AWS_TEXT = re.compile(r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]*")
AWS_TEXT_ALLOWED = "use at most 255 of a-z A-Z 0-9 space and ._-:/()#,@[]+=;{}!$*"
_PORTS = re.compile(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?")


@dataclass(frozen=True)
class RuleContext:
    """What a rule needs to know about the rest of the file."""

    refs: Mapping[str, str]            # SG name or id -> SG id
    dual_stack: bool
    quotas: Quotas
    prefix_lists: Mapping[str, PrefixList] = field(default_factory=dict)   # by name and by id


def aws_text(p: Problems, value: object, path: str) -> str | None:
    """An SG name or description in AWS's allowed characters, at most 255 long."""
    text = string(p, value, path, AWS_TEXT_ALLOWED)
    if text is None:
        return None
    if len(text) > 255 or not AWS_TEXT.fullmatch(text):
        what = f"is {len(text)} characters long" if len(text) > 255 \
            else f"{describe(text)} has characters AWS does not allow"
        p.error(path, what, AWS_TEXT_ALLOWED)
        return None
    return text


def protocol(p: Problems, value: object, path: str) -> int | None:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        name = value.strip().lower()
        number = PROTOCOL_NAMES[name] if name in PROTOCOL_NAMES else parse_int(name)
    if number is None or not -1 <= number <= 255:
        p.error(path, f"{describe(value)} is not a protocol", PROTOCOL_ALLOWED)
        return None
    return number


def port_range(p: Problems, value: object, path: str) -> PortRange | None:
    if isinstance(value, int) and not isinstance(value, bool):
        low = high = value
    elif isinstance(value, str) and (m := _PORTS.fullmatch(value)):
        low, high = int(m[1]), int(m[2] or m[1])
    else:
        p.error(path, f"{describe(value)} is not a port or port range", PORTS_ALLOWED)
        return None
    if not (0 <= low <= 65535 and 0 <= high <= 65535):
        p.error(path, f"'{value}' is out of range", PORTS_ALLOWED)
        return None
    if low > high:
        p.error(path, f"'{value}' has low > high", PORTS_ALLOWED)
        return None
    return PortRange(low, high)


def parse_rule(p: Problems, value: object, path: str, direction: Direction, ctx: RuleContext) -> Rule | None:
    """One rule without its id; None (with problems reported) when anything is wrong."""
    before = len(p.errors)
    fields = mapping(p, value, path, ("protocol",), RULE_OPTIONAL)
    if fields is None:
        return None
    number = protocol(p, fields["protocol"], key(path, "protocol")) if "protocol" in fields else None
    ports = _ports(p, fields, path, number)
    icmp_type, icmp_code = _icmp(p, fields, path, number)
    cidr, group, prefix_list = _peer(p, fields, path, number, ctx)
    description = aws_text(p, fields["description"], key(path, "description")) if "description" in fields else ""
    if len(p.errors) > before or number is None:
        return None
    return Rule(direction=direction, protocol=number, ports=ports, icmp_type=icmp_type,
                icmp_code=icmp_code, cidr=cidr, group=group, description=description or "",
                prefix_list=prefix_list)


def _ports(p: Problems, fields: dict[str, object], path: str, number: int | None) -> PortRange | None:
    where = key(path, "ports")
    if number in PORTED_PROTOCOLS:
        if "ports" not in fields:
            p.error(where, "is missing", f"{protocol_name(number)} rules need ports: N or \"N-M\" (0-65535)")
            return None
        return port_range(p, fields["ports"], where)
    if "ports" in fields and number is not None:
        if number in ICMP_PROTOCOLS:
            p.warn(where, f"not used for {protocol_name(number)} (use icmp_type and icmp_code)")
        else:
            p.warn(where, f"ignored for protocol {protocol_name(number)} (AWS ignores ports for it: "
                          "the rule covers all of its traffic)")
    return None


def _icmp(p: Problems, fields: dict[str, object], path: str, number: int | None) -> tuple[int, int]:
    values = {"icmp_type": -1, "icmp_code": -1}
    for name in values:
        if name not in fields:
            continue
        where = key(path, name)
        if number is not None and number not in ICMP_PROTOCOLS:
            p.error(where, f"does not apply to protocol {protocol_name(number)}",
                    "use it only with icmp or icmpv6, or remove it")
            continue
        read = integer(p, fields[name], where, -1, 255, unit=" (-1 = all)")
        if read is not None:
            values[name] = read
    if values["icmp_type"] == -1 and values["icmp_code"] != -1:
        p.error(key(path, "icmp_code"), f"{values['icmp_code']} needs a specific icmp_type",
                "AWS requires icmp_code -1 when icmp_type is -1 (all types)")
    return values["icmp_type"], values["icmp_code"]


def _peer(p: Problems, fields: dict[str, object], path: str, number: int | None,
          ctx: RuleContext) -> tuple[IPNetwork | None, str | None, str | None]:
    given = [peer for peer in PEERS if peer in fields]
    if len(given) != 1:
        what = "has both " + " and ".join(given) if given else "has neither cidr nor group (nor prefix_list)"
        p.error(path, what, PEER_ALLOWED)
        return None, None, None
    if "group" in fields:
        return None, _group(p, fields["group"], key(path, "group"), ctx), None
    if "prefix_list" in fields:
        return None, None, _prefix_list(p, fields["prefix_list"], key(path, "prefix_list"), number, ctx)
    where = key(path, "cidr")
    read = addresses.network(p, fields["cidr"], where, None)
    if read is None:
        return None, None, None
    net, canonical = read
    if not canonical:
        p.warn(where, f"'{str(fields['cidr']).strip()}' canonicalised to {net} (AWS stores the network address)")
    if isinstance(net, IPv6Network) and not ctx.dual_stack:
        p.warn(where, f"{net} is IPv6 but the VPC is IPv4-only: this rule can never match")
    if number is not None and (number, net.version) in ((PROTO_ICMP, 6), (PROTO_ICMPV6, 4)):
        p.warn(where, f"protocol {protocol_name(number)} never carries IPv{net.version} traffic: "
                      "this rule can never match (icmp is IPv4, icmpv6 is IPv6)")
    return net, None, None


def _prefix_list(p: Problems, value: object, path: str, number: int | None, ctx: RuleContext) -> str | None:
    ref = string(p, value, path, "use the name or id of a prefix list in this file's prefix_lists")
    if ref is None:
        return None
    found = ctx.prefix_lists.get(ref.strip())
    if found is None:
        names = ", ".join(sorted({pl.name for pl in ctx.prefix_lists.values()})) or "(none declared)"
        p.error(path, f"no prefix list named or with id '{ref.strip()}' in this file",
                f"declare it under prefix_lists, or use one of: {names}")
        return None
    if number is not None and (number, found.family) in ((PROTO_ICMP, 6), (PROTO_ICMPV6, 4)):
        p.warn(path, f"protocol {protocol_name(number)} never carries IPv{found.family} traffic: "
                     f"this rule can never match ({found.name} is an IPv{found.family} list)")
    return found.id


def _group(p: Problems, value: object, path: str, ctx: RuleContext) -> str | None:
    ref = string(p, value, path, "use the name or id of a security group in this file")
    if ref is None:
        return None
    ref = ref.strip()
    if "/" in ref:   # "123456789012/sg-…": another account or a peered VPC
        p.error(path, f"'{ref}' references a security group of another account or peered VPC",
                "a lab has one VPC: reference an SG of this file by name or id, or allow the peer's CIDR")
    elif ref.startswith("pl-"):
        p.error(path, f"'{ref}' is a prefix list", "write it as prefix_list: (declared under prefix_lists)")
    elif ref not in ctx.refs:
        names = ", ".join(sorted({n for n in ctx.refs if not n.startswith("sg-")}))
        p.error(path, f"no security group named or with id '{ref}' in this file", f"use one of: {names}")
    else:
        return ctx.refs[ref]
    return None


def parse_rules(p: Problems, value: object, path: str, direction: Direction, sg_id: str,
                ctx: RuleContext) -> tuple[Rule, ...]:
    """A direction's rule list, each rule with its stable id; duplicates and quotas checked."""
    items = sequence(p, value, path, "rules")
    if items is None:
        return ()
    rules: list[Rule] = []
    where: list[str] = []
    for index, raw in enumerate(items):
        rule_path = item(path, index)
        rule = parse_rule(p, raw, rule_path, direction, ctx)
        if rule is None:
            continue
        twin = next((w for r, w in zip(rules, where) if r.same_permission(rule)), None)
        if twin is not None:
            p.error(rule_path, f"InvalidPermission.Duplicate: the same permission as {twin} ({rule.describe()})",
                    "remove one of them (AWS compares protocol, ports or ICMP type/code and peer, "
                    "not descriptions)")
            continue
        rules.append(replace(rule, rule_id=rule_id_for(sg_id, rule)))
        where.append(rule_path)
    check_rule_quota(p, rules, path, direction, ctx.quotas, ctx.prefix_lists)
    return tuple(rules)


def rule_weight(rule: Rule, prefix_lists: Mapping[str, PrefixList]) -> tuple[int, int]:
    """(address family, rules of the quota it uses): group rules count as one IPv4 rule; a prefix-list
    rule counts its list's max_entries, whatever its current size (AWS managed-prefix-lists.html:
    "max entries 20 ... counts as 20 security group rules")."""
    if rule.prefix_list is not None:
        found = prefix_lists.get(rule.prefix_list)
        return (found.family, found.max_entries) if found is not None else (4, 1)
    return (rule.cidr.version if rule.cidr is not None else 4), 1


def check_rule_quota(p: Problems, rules: tuple[Rule, ...] | list[Rule], path: str, direction: Direction,
                     quotas: Quotas, prefix_lists: Mapping[str, PrefixList] | None = None) -> None:
    """AWS counts inbound and outbound separately, and IPv4 and IPv6 separately (group rules are IPv4)."""
    bound = "inbound" if direction is Direction.INGRESS else "outbound"
    weights = [rule_weight(r, prefix_lists or {}) for r in rules]
    for family in (4, 6):
        count = sum(n for f, n in weights if f == family)
        if count > quotas.rules_per_sg:
            lists = " (prefix lists count their max_entries)" if any(r.prefix_list for r in rules) else ""
            p.error(path, f"{count} IPv{family} {bound} rules{lists} exceed the quota of {quotas.rules_per_sg} "
                          f"{bound} rules per security group per address family",
                    "remove rules or raise options.quotas.rules_per_sg (rules_per_sg x sgs_per_eni <= 1000)")



def build_rule(fields: dict[str, object], direction: Direction, sg_id: str, refs: Mapping[str, str],
               dual_stack: bool, source: str,
               prefix_lists: Mapping[str, PrefixList] | None = None) -> tuple[Rule, tuple[str, ...]]:
    """One rule given outside a file (a live `sg authorize-*`), validated exactly like a file's rule,
    with its stable id; returns the rule and its warnings, raises TopologyError."""
    p = Problems(source)
    rule = parse_rule(p, fields, "rule", direction, RuleContext(refs, dual_stack, Quotas(), prefix_lists or {}))
    if rule is None:
        raise TopologyError(p.errors)
    return replace(rule, rule_id=rule_id_for(sg_id, rule)), tuple(p.warnings)
