"""`sgemu import aws`: the unchanged JSON of `aws ec2 describe-security-groups` (or
`describe-security-group-rules`), `describe-instances`, `describe-subnets` and `describe-vpcs`."""
from __future__ import annotations

import os
from collections.abc import Iterable

from .build import ImportResult, build
from .inventory import ImportedInstance, ImportedRule, ImportedSubnet, ImportedVpc, Inventory
from .json_source import JsonValue, read_json

SHAPE_SGS = "give the output of `aws ec2 describe-security-groups` or `describe-security-group-rules`"
GONE_STATES = ("shutting-down", "terminated")


def import_aws(security_groups: Iterable[str | os.PathLike], instances: str | os.PathLike | None = None,
               subnets: str | os.PathLike | None = None, vpcs: str | os.PathLike | None = None,
               lab_name: str = "imported", vpc: str | None = None) -> ImportResult:
    """A validated topology of one VPC from AWS CLI JSON files (rules of several files are merged)."""
    inv = Inventory()
    for path in security_groups:
        read_security_groups(read_json(path), inv)
    if vpcs is not None:
        read_vpcs(read_json(vpcs), inv)
    if subnets is not None:
        read_subnets(read_json(subnets), inv)
    if instances is not None:
        read_instances(read_json(instances), inv)
    return build(inv, lab_name, vpc)


def read_security_groups(doc: JsonValue, inv: Inventory) -> None:
    inv.sources.append(doc.source)
    if doc.has("SecurityGroups"):
        for g in doc.items("SecurityGroups"):
            _group(g, inv)
    elif doc.has("SecurityGroupRules"):
        for r in doc.items("SecurityGroupRules"):
            _group_rule(r, inv)
    else:
        doc.fail("has neither SecurityGroups nor SecurityGroupRules", SHAPE_SGS)


def _group(g: JsonValue, inv: Inventory) -> None:
    group = inv.group(g.need_text("GroupId"), g.text("GroupName"), g.where,
                      g.text("VpcId"))
    group.has_rules, group.where = True, g.where
    group.description = g.text("Description", "") or ""
    owner = g.text("OwnerId")
    for field, direction, rules in (("IpPermissions", "ingress", group.ingress),
                                    ("IpPermissionsEgress", "egress", group.egress)):
        for permission in g.items(field):
            rules.extend(_permission(permission, direction, owner, group.vpc))


def _permission(p: JsonValue, direction: str, owner: str | None, vpc: str | None) -> list[ImportedRule]:
    """One IpPermission: a rule per peer (IpRanges, Ipv6Ranges, UserIdGroupPairs, PrefixListIds)."""
    base = dict(direction=direction, protocol=str(p.need("IpProtocol").value),
                from_port=p.integer("FromPort"), to_port=p.integer("ToPort"))
    rules = []
    for field, key in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")):
        for peer in p.items(field):
            rules.append(ImportedRule(**base, where=peer.where, cidr=peer.need_text(key),
                                      description=peer.text("Description", "") or ""))
    for peer in p.items("PrefixListIds"):
        rules.append(_prefix_list(base, peer, peer.text("PrefixListId") or "pl-?"))
    for peer in p.items("UserIdGroupPairs"):
        rules.append(_reference(base, peer, peer.need_text("GroupId"),
                                peer.text("UserId"), owner, peer.text("VpcId"), vpc,
                                peer.text("VpcPeeringConnectionId")))
    return rules


def _prefix_list(base: dict, peer: JsonValue, prefix_list: str) -> ImportedRule:
    return ImportedRule(**base, where=peer.where, group=prefix_list,
                        description=peer.text("Description", "") or "",
                        not_carried=f"prefix list {prefix_list} needs its CIDRs: run `aws ec2 "
                                    f"get-managed-prefix-list-entries --prefix-list-id {prefix_list}` and add "
                                    "one rule per CIDR")


def _reference(base: dict, peer: JsonValue, group: str, user: str | None, owner: str | None,
               peer_vpc: str | None, vpc: str | None, peering: str | None) -> ImportedRule:
    why = None
    if user is not None and owner is not None and user != owner:
        why = (f"it references {group} of account {user} (cross-account); a lab holds one account's VPC: "
               "allow that group's CIDRs instead")
    elif peering is not None or (peer_vpc is not None and vpc is not None and peer_vpc != vpc):
        why = (f"it references {group} in peered VPC {peer_vpc or '?'} ({peering or 'peering'}); a lab is one "
               "VPC: allow the peer's CIDR instead")
    shown = f"{user}/{group}" if why and user and user != owner else group
    return ImportedRule(**base, where=peer.where, group=shown if why else group,
                        description=peer.text("Description", "") or "", not_carried=why)


def _group_rule(r: JsonValue, inv: Inventory) -> None:
    """One SecurityGroupRule (describe-security-group-rules): exactly one peer."""
    group = inv.group(r.need_text("GroupId"), None, r.where)
    group.has_rules = True
    egress = r.get("IsEgress")
    direction = "egress" if egress is not None and egress.value is True else "ingress"
    base = dict(direction=direction, protocol=str(r.need("IpProtocol").value),
                from_port=r.integer("FromPort"), to_port=r.integer("ToPort"))
    description = r.text("Description", "") or ""
    if r.has("CidrIpv4") or r.has("CidrIpv6"):
        rule = ImportedRule(**base, where=r.where, cidr=r.text("CidrIpv4") or r.text("CidrIpv6"),
                            description=description)
    elif r.has("PrefixListId"):
        rule = _prefix_list(base, r, r.text("PrefixListId") or "pl-?")
    elif r.has("ReferencedGroupInfo"):
        ref = r.need("ReferencedGroupInfo")
        rule = _reference(base, ref, ref.need_text("GroupId"), ref.text("UserId"),
                          r.text("GroupOwnerId"), ref.text("VpcId"), None, ref.text("VpcPeeringConnectionId"))
    else:
        r.fail("has none of CidrIpv4, CidrIpv6, PrefixListId, ReferencedGroupInfo", SHAPE_SGS)
    (group.egress if direction == "egress" else group.ingress).append(rule)


def read_vpcs(doc: JsonValue, inv: Inventory) -> None:
    inv.sources.append(doc.source)
    if not doc.has("Vpcs"):
        doc.fail("has no Vpcs", "give the output of `aws ec2 describe-vpcs`")
    for v in doc.items("Vpcs"):
        key = v.need_text("VpcId")
        primary = v.text("CidrBlock")
        extra = tuple(c for a in v.items("CidrBlockAssociationSet")
                      if _associated(a, "CidrBlockState") and (c := a.text("CidrBlock")) and c != primary)
        ipv6 = next((a.text("Ipv6CidrBlock") for a in v.items("Ipv6CidrBlockAssociationSet")
                     if _associated(a, "Ipv6CidrBlockState") and a.has("Ipv6CidrBlock")), None)
        inv.vpcs[key] = ImportedVpc(key, primary, v.where, ipv6, extra)


def read_subnets(doc: JsonValue, inv: Inventory) -> None:
    inv.sources.append(doc.source)
    if not doc.has("Subnets"):
        doc.fail("has no Subnets", "give the output of `aws ec2 describe-subnets`")
    for s in doc.items("Subnets"):
        key = s.need_text("SubnetId")
        ipv6 = next((a.text("Ipv6CidrBlock") for a in s.items("Ipv6CidrBlockAssociationSet")
                     if _associated(a, "Ipv6CidrBlockState") and a.has("Ipv6CidrBlock")), None)
        inv.subnets[key] = ImportedSubnet(key, s.where, s.text("VpcId"), s.need_text("CidrBlock"), ipv6,
                                          s.tags().get("Name"))


def _associated(association: JsonValue, state_field: str) -> bool:
    state = association.get(state_field)
    return state is None or state.text("State") in (None, "associated")


def read_instances(doc: JsonValue, inv: Inventory) -> None:
    inv.sources.append(doc.source)
    if not doc.has("Reservations"):
        doc.fail("has no Reservations", "give the output of `aws ec2 describe-instances`")
    for reservation in doc.items("Reservations"):
        for i in reservation.items("Instances"):
            instance = _instance(i, inv)
            if instance is not None:
                inv.instances.append(instance)


def _instance(i: JsonValue, inv: Inventory) -> ImportedInstance | None:
    key = i.need_text("InstanceId")
    state = i.get("State")
    if state is not None and state.text("Name") in GONE_STATES:
        inv.skipped.append(f"{i.where}: instance {key} is {state.text('Name')}: not carried over")
        return None
    enis = sorted(i.items("NetworkInterfaces"), key=lambda e: _device_index(e))
    eni = enis[0] if enis else None
    for other in enis[1:]:
        inv.skipped.append(f"{other.where}: instance {key}: secondary interface {other.text('NetworkInterfaceId')} "
                           "not carried over (a lab instance has one interface, the primary)")
    source = eni if eni is not None else i
    private_ip = source.text("PrivateIpAddress") or i.text("PrivateIpAddress")
    if eni is not None:
        for extra in eni.items("PrivateIpAddresses"):
            address = extra.text("PrivateIpAddress")
            if address and address != private_ip:
                inv.skipped.append(f"{extra.where}: instance {key}: secondary private IP {address} not carried over")
    association = eni.get("Association") if eni is not None else None
    public_ip = (association.text("PublicIp") if association is not None else None) or i.text("PublicIpAddress")
    ipv6s = [a.text("Ipv6Address") for a in (eni.items("Ipv6Addresses") if eni is not None else [])]
    ipv6s = [a for a in ipv6s if a] or ([i.text("Ipv6Address")] if i.has("Ipv6Address") else [])
    for extra in ipv6s[1:]:
        inv.skipped.append(f"{eni.where if eni else i.where}: instance {key}: IPv6 address {extra} not carried "
                           "over (one IPv6 address per instance)")
    groups = source.items("Groups") if eni is not None else i.items("SecurityGroups")
    vpc = i.text("VpcId") or (eni.text("VpcId") if eni is not None else None)
    keys = tuple(inv.group(g.need_text("GroupId"), g.text("GroupName"), g.where, vpc).key
                 for g in groups)
    return ImportedInstance(key, i.where, i.tags().get("Name"), vpc, source.text("SubnetId") or i.text("SubnetId"),
                            private_ip, public_ip, ipv6s[0] if ipv6s else None, keys)


def _device_index(eni: JsonValue) -> int:
    attachment = eni.get("Attachment")
    index = attachment.integer("DeviceIndex") if attachment is not None else None
    return index if index is not None else 0
