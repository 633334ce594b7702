"""`sgemu import terraform`: `terraform show -json` (or `tofu show -json`) of a plan or of a state.

One handler per resource type (`HANDLERS`, read in that order: VPCs and subnets, then groups, then
the rules and instances naming them). Types in `not_carried.TERRAFORM_TYPES` are named in the report;
other resources that hold security groups (load balancers, databases, functions) become nodes
(`terraform_services`); the rest (IAM, S3, ...) have no say in what traffic passes and are counted in a
note.

Each attribute read follows `terraform_plan`'s rules; where the provider computes an attribute the
configuration does not set, the default is the AWS provider's:
- aws_security_group vpc_id: the region's default VPC. ingress/egress: none; Terraform removes the
  allow-all egress rule AWS adds ("NOTE on Egress rules",
  https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/security_group), so only
  rule resources add to them. aws_default_security_group: Terraform removes all its rules and creates
  the configured ones (…/docs/resources/default_security_group).
- rule peers (cidr_blocks, source_security_group_id, self, ...): the ones not set are no peer.
- aws_instance subnet_id: the default VPC's default subnet; private_ip: the next free address. An
  Elastic IP (aws_eip instance, aws_eip_association) replaces its instance's public IP.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Network

from . import terraform_routing as routing
from . import terraform_vpc_path as vpc_path
from .build import ImportResult, build
from .inventory import DEFAULT_VPC, ImportedInstance, ImportedRule, ImportedSubnet, ImportedVpc, Inventory, Permission
from .json_source import JsonValue, read_json
from .not_carried import TERRAFORM_TYPES
from .terraform_plan import Plan, Resource, Unresolved, as_list, same_instance
from .terraform_services import holds_groups, read_service

PLACEHOLDER_PUBLIC = IPv4Network("198.51.100.128/25")
# Data sources read like the resource: they describe a VPC or subnet that exists. A data source of a
# security group has no rules in it, so it is only what references to it make of it.
DATA_SOURCES = ("aws_vpc", "aws_subnet")


class Reader:
    def __init__(self, doc: JsonValue, strict: bool = False):
        self.plan = Plan(doc)
        self.inv = Inventory(sources=[doc.source], strict=strict)
        self.publics = (str(a) for a in PLACEHOLDER_PUBLIC.hosts())

    # --- attribute values ---------------------------------------------------------------------

    def ref(self, res: Resource, attr: str, what: str, keep_unresolved: bool = True) -> list[str] | None:
        """An id-valued attribute (string or list) as keys: its value, else what its expression references
        (else, with `keep_unresolved`, the references themselves, so objects naming the same outside thing
        stay together); None when it is not set (or unknown and left to the provider)."""
        value = res.value(attr)
        if value is not None:
            return _strings(value)
        if not res.is_unknown(attr) or not res.configured(attr):
            return None
        found = self.plan.targets(res.module, res.expression(attr))
        if isinstance(found, list):      # subnet_id = aws_subnet.x[count.index].id: the referrer's own instance
            return [r.key for r in same_instance(res, res.expression(attr), found)]
        fallback = [r.removesuffix(".id") for r in found.references] \
            if isinstance(found, Unresolved) and keep_unresolved else []
        self.inv.notes.append(f"{res.values.where}: {res.address}: {attr} ({what}) is known only after apply "
                              f"and comes from {found or 'the configuration'}, which this document does not hold: "
                              f"{'kept as ' + ', '.join(fallback) if fallback else 'taken as the imported one'}")
        return fallback or None

    def first(self, res: Resource, attr: str, what: str, keep_unresolved: bool = True) -> str | None:
        keys = self.ref(res, attr, what, keep_unresolved)
        return keys[0] if keys else None

    def attribute_values(self, res: Resource, *path: str | int) -> list[str]:
        """Values an unknown attribute takes from the attributes it references (cidr_blocks =
        [aws_vpc.main.cidr_block]), where those are known."""
        expression = res.expression(*path)
        refs = as_list(expression.get("references")) if isinstance(expression, dict) else []
        out: list[str] = []
        for ref in (r for r in refs if isinstance(r, str)):
            parts = ref.split(".")
            size = 3 if parts[0] == "data" else 2
            if len(parts) <= size or parts[0] in ("var", "module", "local", "each", "count"):
                continue
            for target in self.plan._matching(res.module, ".".join(parts[:size]),
                                              "data" if parts[0] == "data" else "managed"):
                found = target.value(parts[size])
                out += _strings(found)
        return list(dict.fromkeys(out))

    def vpc_of(self, res: Resource) -> str | None:
        """The VPC's key; DEFAULT_VPC when vpc_id is not set; None when it is set to something this
        document does not hold (the object joins the imported VPC)."""
        if res.value("vpc_id") is None and not (res.is_unknown("vpc_id") and res.configured("vpc_id")):
            return DEFAULT_VPC
        return self.first(res, "vpc_id", "its VPC", keep_unresolved=False)

    # --- the document -------------------------------------------------------------------------

    def read(self) -> Inventory:
        handled = [r for kind in HANDLERS for r in self.plan.resources
                   if r.type == kind and (r.mode == "managed" or kind in DATA_SOURCES)]
        for res in handled:
            if res.configured_only:
                self.inv.notes.append(f"{res.values.where}: {res.address}: the plan knows none of its values "
                                      "(e.g. its count is known only after apply): read from its configuration")
            with self.inv.item(res.address):
                HANDLERS[res.type](self, res)
        ignored: Counter[str] = Counter()
        for res in self.plan.resources:
            if res.type in HANDLERS or res.mode != "managed":
                continue
            if res.type in TERRAFORM_TYPES:
                self.inv.skipped.append(f"{res.values.where}: {res.address} not carried over: "
                                        f"{TERRAFORM_TYPES[res.type]}")
            elif holds_groups(self, res):
                with self.inv.item(res.address):
                    read_service(self, res)
            else:
                ignored[res.type] += 1
        if ignored:
            self.inv.notes.append(f"{sum(ignored.values())} resources without network interfaces or rules ignored: "
                                  + ", ".join(f"{t} ({n})" for t, n in sorted(ignored.items())))
        return self.inv


# --- resource types ---------------------------------------------------------------------------

def read_vpc(rd: Reader, res: Resource) -> None:
    v = res.values
    cidr = res.value("cidr_block")
    if cidr is None and res.is_unknown("cidr_block"):
        rd.inv.notes.append(f"{v.where}: {res.address}: cidr_block is known only after apply (IPAM): the lab's "
                            "block comes from its subnets")
    ipv6 = res.value("ipv6_cidr_block")
    if ipv6 is None and res.is_unknown("ipv6_cidr_block") and res.value("assign_generated_ipv6_cidr_block"):
        rd.inv.notes.append(f"{v.where}: {res.address}: ipv6_cidr_block is known only after apply (Amazon "
                            "assigns it): the lab's VPC gets none from it")
    rd.inv.vpcs[res.key] = ImportedVpc(res.key, _text(cidr), v.where, _text(ipv6))


def read_subnet(rd: Reader, res: Resource) -> None:
    v = res.values
    if res.is_unknown("ipv6_cidr_block") and res.configured("ipv6_cidr_block"):
        rd.inv.notes.append(f"{v.where}: {res.address}: ipv6_cidr_block is known only after apply: the subnet "
                            "stays IPv4-only in the lab")
    tags = res.value("tags")
    rd.inv.subnets[res.key] = ImportedSubnet(res.key, v.where, rd.vpc_of(res), _text(res.value("cidr_block")),
                                             _text(res.value("ipv6_cidr_block")),
                                             _text(tags.get("Name")) if isinstance(tags, dict) else None)


def read_group(rd: Reader, res: Resource) -> None:
    v = res.values
    default = res.type == "aws_default_security_group"
    name = "default" if default else _text(res.value("name"))
    if name is None:
        name = (_text(res.value("name_prefix")) or "").rstrip("-_") or \
            res.address.rsplit(".", 1)[-1].split("[")[0]
        if res.is_unknown("name"):
            rd.inv.notes.append(f"{v.where}: {res.address}: name is known only after apply; the lab calls it {name}")
    group = rd.inv.group(res.key, name, v.where, rd.vpc_of(res))
    group.has_rules, group.where, group.description = True, v.where, _text(res.value("description")) or ""
    group.owner = _text(res.value("owner_id"))          # known in a state and for groups that exist
    for direction in ("ingress", "egress"):
        blocks = v.items(direction) if not res.is_unknown(direction) or isinstance(_members(v).get(direction), list) \
            else []
        if res.is_unknown(direction) and not blocks and res.configured(direction):
            rd.inv.skipped.append(f"{v.where}: {res.address}: its {direction} rules are known only after apply: "
                                  "not carried over (import the state after apply)")
        elif direction == "egress" and not blocks and not res.configured(direction):
            rd.inv.notes.append(f"{v.where}: {res.address}: no egress blocks: Terraform removes AWS's default "
                                "allow-all egress rule, so only egress rule resources allow traffic out")
        for index, block in enumerate(blocks):
            with rd.inv.item(f"this {direction} block"):
                (group.ingress if direction == "ingress" else group.egress).extend(
                    legacy_rules(rd, res, block, direction, res.key, (direction, index)))


def legacy_rules(rd: Reader, res: Resource, block: JsonValue, direction: str, own: str,
                 path: tuple[str | int, ...]) -> list[ImportedRule]:
    """A rule in the aws_security_group / aws_security_group_rule shape: one per peer."""
    base = Permission(direction, _protocol(block), block.integer("from_port"), block.integer("to_port"))
    described = _text(_members(block).get("description")) or ""
    ports = "" if base.from_port is None else f" {base.from_port}" if base.from_port == base.to_port \
        else f" {base.from_port}-{base.to_port}"
    shown = f"{res.address}: {direction} {base.protocol}{ports}"
    rules: list[ImportedRule] = []
    for field_name in ("cidr_blocks", "ipv6_cidr_blocks"):
        cidrs = _strings(_members(block).get(field_name) or [])
        if res.is_unknown(*path, field_name) and res.configured(*path, field_name):
            resolved = rd.attribute_values(res, *path, field_name)
            if resolved:
                cidrs += resolved
                rd.inv.notes.append(f"{block.where}: {shown}: {field_name} is known only after apply; taken from "
                                    f"the attributes it references: {', '.join(resolved)}")
            else:
                rd.inv.skipped.append(f"{block.where}: {shown}: {field_name} is known only after apply: those "
                                      "peers are not carried over (import the state after apply)")
        rules += [ImportedRule(*base, block.where, cidr=c, description=described) for c in dict.fromkeys(cidrs)]
    rules += [ImportedRule(*base, block.where, prefix_list=p, description=described)
              for p in _strings(_members(block).get("prefix_list_ids") or [])]
    if res.is_unknown(*path, "prefix_list_ids") and res.configured(*path, "prefix_list_ids"):
        rd.inv.skipped.append(f"{block.where}: {shown}: prefix_list_ids is known only after apply: not carried over")
    groups: list[str] = []
    # source_security_group_id conflicts with cidr_blocks, ipv6_cidr_blocks, prefix_list_ids and self in
    # the provider: when one of those is set, an unknown source_security_group_id is only computed.
    other_peer = bool(rules) or _members(block).get("self") is True
    for attr in ("security_groups", "source_security_group_id"):
        known = _strings(_members(block).get(attr) or [])
        if attr == "source_security_group_id" and other_peer and not known:
            continue
        if not known and res.is_unknown(*path, attr) and res.configured(*path, attr):
            found = rd.plan.targets(res.module, res.expression(*path, attr))
            if isinstance(found, list):
                known = [r.key for r in found]
            else:
                rd.inv.skipped.append(f"{block.where}: {shown}: {attr} is known only after apply and comes from "
                                      f"{found or 'the configuration'}, which this document does not hold: that "
                                      "peer is not carried over")
        groups += known
    if _members(block).get("self") is True:
        groups.append(own)
    for g in dict.fromkeys(groups):
        rules.append(ImportedRule(*base, block.where, group=g, description=described, not_carried=(
            f"it references {g} of another account; a lab holds one account's VPC: allow its CIDRs instead"
            if "/" in g else None)))
    return rules


def read_group_rule(rd: Reader, res: Resource) -> None:
    owner = rd.first(res, "security_group_id", "its security group")
    if owner is None:
        res.values.fail("security_group_id is not set", "every aws_security_group_rule names its group")
    direction = _text(res.value("type"))
    if direction not in ("ingress", "egress"):
        res.values.fail(f"type is {direction!r}", "aws_security_group_rule's type is ingress or egress")
    group = rd.inv.group(owner, None, res.values.where)
    rules = legacy_rules(rd, res, res.values, direction, owner, ())
    (group.ingress if direction == "ingress" else group.egress).extend(rules)


def read_vpc_rule(rd: Reader, res: Resource) -> None:
    v = res.values
    owner = rd.first(res, "security_group_id", "its security group")
    if owner is None:
        v.fail("security_group_id is not set", f"every {res.type} names its group")
    direction = "ingress" if res.type.endswith("ingress_rule") else "egress"
    base = Permission(direction, _protocol(v, "ip_protocol"), v.integer("from_port"), v.integer("to_port"))
    described = _text(res.value("description")) or ""
    cidr = _text(res.value("cidr_ipv4")) or _text(res.value("cidr_ipv6"))
    prefix_list = _text(res.value("prefix_list_id"))
    if cidr is not None:
        rule = ImportedRule(*base, v.where, cidr=cidr, description=described)
    elif prefix_list is not None:
        rule = ImportedRule(*base, v.where, prefix_list=prefix_list, description=described)
    else:
        target = rd.first(res, "referenced_security_group_id", "the referenced security group")
        if target is None:
            unknown = [a for a in ("cidr_ipv4", "cidr_ipv6", "prefix_list_id") if res.is_unknown(a)
                       and res.configured(a)]
            if unknown:
                v.fail(f"{', '.join(unknown)} is known only after apply", "import the state after apply")
            v.fail("has none of cidr_ipv4, cidr_ipv6, prefix_list_id, referenced_security_group_id",
                   f"every {res.type} has exactly one")
        rule = ImportedRule(*base, v.where, group=target, description=described, not_carried=(
            f"it references {target} of another account; allow its CIDRs instead" if "/" in target else None))
    group = rd.inv.group(owner, None, v.where)
    (group.ingress if direction == "ingress" else group.egress).append(rule)


def read_instance(rd: Reader, res: Resource) -> None:
    v = res.values
    groups = rd.ref(res, "vpc_security_group_ids", "its security groups") or []
    by_name = {g.name: g.key for g in rd.inv.groups.values()}
    for name in rd.ref(res, "security_groups", "its security groups by name") or []:  # the default VPC's way
        key = by_name.get(name, name)
        if key not in groups:
            groups.append(key)
    for g in groups:
        rd.inv.group(g, None, v.where)
    if res.is_unknown("private_ip"):
        rd.inv.notes.append(f"{v.where}: {res.address}: private_ip is known only after apply; the lab assigns the "
                            "next free address of its subnet")
    public_ip = _text(res.value("public_ip"))
    if public_ip is None and res.is_unknown("public_ip") and res.value("associate_public_ip_address") is True:
        public_ip = next(rd.publics)
        rd.inv.notes.append(f"{v.where}: {res.address}: public_ip is known only after apply; "
                            f"the lab gives it {public_ip}")
    ipv6 = _strings(res.value("ipv6_addresses") or [])
    count = res.value("ipv6_address_count")
    if not ipv6 and res.is_unknown("ipv6_addresses") and isinstance(count, int) and count > 0:
        rd.inv.notes.append(f"{v.where}: {res.address}: ipv6_addresses are known only after apply; "
                            "the instance has no IPv6 address in the lab")
    subnet = rd.first(res, "subnet_id", "its subnet")
    tags = res.value("tags")
    rd.inv.instances.append(ImportedInstance(
        res.key, v.where, _text(tags.get("Name")) if isinstance(tags, dict) else None,
        None if subnet is not None else DEFAULT_VPC, subnet, _text(res.value("private_ip")), public_ip,
        ipv6[0] if ipv6 else None, tuple(groups)))


def read_eip(rd: Reader, res: Resource) -> None:
    """An Elastic IP (aws_eip with instance, or aws_eip_association) is its instance's public IP."""
    instance = rd.first(res, "instance" if res.type == "aws_eip" else "instance_id", "its instance")
    index = next((n for n, i in enumerate(rd.inv.instances) if instance is not None and i.key == instance), None)
    if index is None:
        return                         # a NAT gateway's, or one not associated in this document
    public_ip = _text(res.value("public_ip"))
    if public_ip is None:
        public_ip = next(rd.publics)
        rd.inv.notes.append(f"{res.values.where}: {res.address}: public_ip is known only after apply; the lab "
                            f"gives {instance} {public_ip}")
    rd.inv.instances[index] = replace(rd.inv.instances[index], public_ip=public_ip)


def _strings(value: object) -> list[str]:
    """A string or a list of them (ids, CIDRs) as a list; empty ones dropped."""
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items if isinstance(v, (str, int)) and v != ""]


def _members(v: JsonValue) -> dict:
    return v.value if isinstance(v.value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _protocol(block: JsonValue, name: str = "protocol") -> str:
    value = block.need(name).value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        block.fail(f"{name} is {value!r}", "Terraform writes a protocol name or number")
    return str(value)


# Resource type -> handler, in reading order (groups before the rules and instances naming them).
HANDLERS: dict[str, Callable[[Reader, Resource], None]] = {
    "aws_vpc": read_vpc, "aws_subnet": read_subnet, "aws_ec2_managed_prefix_list": vpc_path.read_prefix_list,
    "aws_security_group": read_group,
    "aws_default_security_group": read_group, "aws_security_group_rule": read_group_rule,
    "aws_vpc_security_group_ingress_rule": read_vpc_rule, "aws_vpc_security_group_egress_rule": read_vpc_rule,
    "aws_instance": read_instance, "aws_eip": read_eip, "aws_eip_association": read_eip, **vpc_path.HANDLERS,
    **routing.HANDLERS,
}


def import_terraform(path: str | os.PathLike, lab_name: str = "imported", vpc: str | None = None,
                     strict: bool = False) -> ImportResult:
    """A validated topology of one VPC from `terraform show -json` (plan or state)."""
    return build(Reader(read_json(path), strict).read(), lab_name, vpc)

