"""`sgemu import terraform` handlers for network ACLs and managed prefix lists.

Resources (https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/...):
aws_network_acl (ingress/egress blocks: rule_no, action, protocol, from_port, to_port, cidr_block or
ipv6_cidr_block, icmp_type, icmp_code; subnet_ids), aws_default_network_acl (the VPC's default NACL,
same blocks; subnet_ids), aws_network_acl_rule (one entry: network_acl_id, rule_number, egress,
rule_action, ...), aws_network_acl_association (network_acl_id, subnet_id), aws_ec2_managed_prefix_list
(name, address_family, max_entries, entry blocks {cidr, description}) and
aws_ec2_managed_prefix_list_entry (prefix_list_id, cidr, description).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .inventory import ImportedNacl, ImportedNaclEntry
from .json_source import JsonValue
from .terraform_plan import Resource

if TYPE_CHECKING:
    from .terraform import Reader


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _nacl(rd: Reader, key: str, where: str) -> ImportedNacl:
    found = rd.inv.nacls.get(key)
    if found is None:
        found = rd.inv.nacls[key] = ImportedNacl(key, where)
    return found


def _entry(v: JsonValue, egress: bool, number_field: str, action_field: str) -> ImportedNaclEntry:
    number = v.integer(number_field)
    if number is None:
        v.fail(f"has no {number_field}", "Terraform writes a rule number for every NACL rule")
    cidr = _text(v.text("cidr_block")) or _text(v.text("ipv6_cidr_block"))
    if cidr is None:
        v.fail("has neither cidr_block nor ipv6_cidr_block", "a NACL rule needs one of them")
    return ImportedNaclEntry(number, egress, v.need_text(action_field), str(v.need("protocol").value), cidr,
                             v.where, v.integer("from_port"), v.integer("to_port"), v.integer("icmp_type"),
                             v.integer("icmp_code"))


def read_network_acl(rd: Reader, res: Resource) -> None:
    v = res.values
    default = res.type == "aws_default_network_acl"
    key = _text(res.value("default_network_acl_id")) if default else None
    nacl = _nacl(rd, key or res.key, v.where)
    nacl.where, nacl.is_default = v.where, default
    nacl.vpc = rd.vpc_of(res) if not default or res.value("vpc_id") is not None else None
    tags = res.value("tags")
    nacl.name = _text(tags.get("Name")) if isinstance(tags, dict) else None
    for direction in ("ingress", "egress"):
        if res.is_unknown(direction) and res.configured(direction):
            rd.inv.skipped.append(f"{v.where}: {res.address}: its {direction} rules are known only after apply: "
                                  "not carried over (import the state after apply)")
            continue
        for block in v.items(direction):
            with rd.inv.item(f"this {direction} block"):
                nacl.entries.append(_entry(block, direction == "egress", "rule_no", "action"))
    nacl.subnets += rd.ref(res, "subnet_ids", "its subnets") or []


def read_network_acl_rule(rd: Reader, res: Resource) -> None:
    v = res.values
    key = rd.first(res, "network_acl_id", "its network ACL")
    if key is None:
        v.fail("has no network_acl_id", "an aws_network_acl_rule names its network ACL")
    egress = res.value("egress") is True
    _nacl(rd, key, v.where).entries.append(_entry(v, egress, "rule_number", "rule_action"))


def read_network_acl_association(rd: Reader, res: Resource) -> None:
    v = res.values
    key = rd.first(res, "network_acl_id", "its network ACL")
    subnet = rd.first(res, "subnet_id", "its subnet")
    if key is None or subnet is None:
        v.fail("has no network_acl_id or subnet_id", "an aws_network_acl_association names both")
    _nacl(rd, key, v.where).subnets.append(subnet)


def read_prefix_list(rd: Reader, res: Resource) -> None:
    v = res.values
    listed = rd.inv.prefix_list(res.key, v.where)
    listed.where, listed.name = v.where, _text(res.value("name"))
    listed.max_entries = v.integer("max_entries")
    family = _text(res.value("address_family")) or ""
    listed.family = 6 if family.lower() == "ipv6" else 4 if family else None
    listed.entries = listed.entries or []
    if res.is_unknown("entry") and res.configured("entry"):
        rd.inv.skipped.append(f"{v.where}: {res.address}: its entries are known only after apply: not carried over")
        return
    for e in v.items("entry"):
        with rd.inv.item("this entry"):
            listed.entries.append((e.need_text("cidr"), _text(e.text("description")) or ""))


def read_prefix_list_entry(rd: Reader, res: Resource) -> None:
    v = res.values
    key = rd.first(res, "prefix_list_id", "its prefix list")
    if key is None:
        v.fail("has no prefix_list_id", "an aws_ec2_managed_prefix_list_entry names its list")
    listed = rd.inv.prefix_list(key, v.where)
    listed.entries = listed.entries or []
    listed.entries.append((v.need_text("cidr"), _text(res.value("description")) or ""))


HANDLERS = {
    "aws_ec2_managed_prefix_list": read_prefix_list, "aws_ec2_managed_prefix_list_entry": read_prefix_list_entry,
    "aws_network_acl": read_network_acl, "aws_default_network_acl": read_network_acl,
    "aws_network_acl_rule": read_network_acl_rule, "aws_network_acl_association": read_network_acl_association,
}
