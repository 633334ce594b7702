"""Security groups: names and ids first (rules may reference any SG of the file), then rules."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network

from emulator.ids import rule_id_for, sg_id_for

from ..model import PROTO_ALL, Direction, Options, PrefixList, Rule, SecurityGroup
from .fields import mapping, sequence, string
from .problems import Problems, item, key
from .rules import RuleContext, aws_text, parse_rules

DEFAULT_SG = "default"
SG_ID = re.compile(r"sg-[0-9a-f]{8}(?:[0-9a-f]{9})?")
SG_ID_ALLOWED = "use sg- followed by 8 or 17 lowercase hex digits, or omit id to generate one"
EVERYWHERE_V4 = IPv4Network("0.0.0.0/0")
EVERYWHERE_V6 = IPv6Network("::/0")


@dataclass
class _Declared:
    path: str
    name: str | None
    id: str
    description: str
    fields: dict[str, object]


def _with_ids(sg_id: str, rules: list[Rule]) -> tuple[Rule, ...]:
    return tuple(replace(r, rule_id=rule_id_for(sg_id, r)) for r in rules)


def default_egress(sg_id: str, dual_stack: bool, options: Options) -> tuple[Rule, ...]:
    """AWS's outbound rules for an SG created without any: all to 0.0.0.0/0 (+ ::/0, [CHOICE])."""
    rules = [Rule(Direction.EGRESS, PROTO_ALL, cidr=EVERYWHERE_V4)]
    if dual_stack and options.default_egress_ipv6:
        rules.append(Rule(Direction.EGRESS, PROTO_ALL, cidr=EVERYWHERE_V6))
    return _with_ids(sg_id, rules)


def default_sg(dual_stack: bool, options: Options) -> SecurityGroup:
    """The VPC's default SG: all inbound from its own members, AWS's default outbound."""
    sg_id = sg_id_for(DEFAULT_SG)
    return SecurityGroup(name=DEFAULT_SG, id=sg_id, description="default VPC security group",
                         ingress=_with_ids(sg_id, [Rule(Direction.INGRESS, PROTO_ALL, group=sg_id)]),
                         egress=default_egress(sg_id, dual_stack, options))


def parse_security_groups(p: Problems, value: object, dual_stack: bool, options: Options,
                          prefix_lists: tuple[PrefixList, ...] = ()) -> tuple[SecurityGroup, ...]:
    """Every SG of the file, with the default SG first unless the file redefines it."""
    items = sequence(p, value, "security_groups", "security groups") if value is not None else []
    declared = _declare(p, items or [])
    refs = {d.name: d.id for d in declared if d.name is not None}
    refs.update({d.id: d.id for d in declared})
    groups: list[SecurityGroup] = []
    if DEFAULT_SG not in refs:
        groups.append(default_sg(dual_stack, options))
        default_id = groups[0].id
        if default_id in refs:
            clash = next(d.path for d in declared if d.id == default_id)
            p.error(key(clash, "id"), f"'{default_id}' is the id of the VPC's default security group",
                    "choose another id, or declare the SG as name: default")
        refs.update({DEFAULT_SG: default_id, default_id: default_id})
    lists = {ref: pl for pl in prefix_lists for ref in (pl.name, pl.id)}
    ctx = RuleContext(refs=refs, dual_stack=dual_stack, quotas=options.quotas, prefix_lists=lists)
    for d in declared:
        ingress = parse_rules(p, d.fields.get("ingress", []), key(d.path, "ingress"), Direction.INGRESS, d.id, ctx)
        if "egress" in d.fields:
            egress = parse_rules(p, d.fields["egress"], key(d.path, "egress"), Direction.EGRESS, d.id, ctx)
        else:
            egress = default_egress(d.id, dual_stack, options)
        if d.name is not None:
            groups.append(SecurityGroup(d.name, d.id, d.description, ingress, egress))
    return tuple(groups)


def _declare(p: Problems, items: list[object]) -> list[_Declared]:
    """First pass: names, ids and descriptions (names and ids unique); rules come once every SG is known."""
    declared: list[_Declared] = []
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    for index, raw in enumerate(items):
        path = item("security_groups", index)
        fields = mapping(p, raw, path, ("name",), ("id", "description", "ingress", "egress"))
        if fields is None:
            continue
        name = _name(p, fields["name"], key(path, "name"), names) if "name" in fields else None
        description = aws_text(p, fields["description"], key(path, "description")) if "description" in fields else ""
        sg_id = _id(p, fields, path, name, ids)
        declared.append(_Declared(path, name, sg_id, description or "", fields))
    return declared


def _name(p: Problems, value: object, path: str, names: dict[str, str]) -> str | None:
    name = aws_text(p, value, path)
    if name is None:
        return None
    if not name:
        p.error(path, "is empty", "give the SG a name (1-255 characters)")
    elif name.startswith("sg-"):
        p.error(path, f"'{name}' starts with sg-", "AWS reserves the sg- prefix for ids: choose another name")
    elif name in names:
        p.error(path, f"'{name}' is already the name of {names[name]}", "security group names must be unique")
    else:
        names[name] = path.rsplit(".", 1)[0]
        return name
    return None


def _id(p: Problems, fields: dict[str, object], path: str, name: str | None, ids: dict[str, str]) -> str:
    """The given id if valid and unique, else a generated one (a placeholder when there are errors)."""
    where = key(path, "id")
    if "id" in fields:
        given = string(p, fields["id"], where, SG_ID_ALLOWED)
        if given is not None and not SG_ID.fullmatch(given):
            p.error(where, f"'{given}' is not a security group id", SG_ID_ALLOWED)
        sg_id = given if given is not None and SG_ID.fullmatch(given) else sg_id_for(path)
    else:
        sg_id = sg_id_for(name if name is not None else path)
    if sg_id in ids:
        p.error(where, f"'{sg_id}' is already the id of {ids[sg_id]}", "security group ids must be unique")
    ids[sg_id] = path
    return sg_id
