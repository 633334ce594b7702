"""`sgemu import aws`: the unchanged JSON of `aws ec2 describe-security-groups` (or
`describe-security-group-rules`), `describe-instances`, `describe-subnets` and `describe-vpcs`.

Each file is recognised by its top-level key (as the CLI prints it), so any file may be given in any
order; kinds listed in `not_carried.AWS_KINDS` are read only to name what is left out.

What absent, null and empty mean (AWS prints every member it has; absent and null are the same):
- GroupId, SubnetId, VpcId of a VPC, InstanceId, CidrIp/CidrIpv6 of a range, IpProtocol: required;
  without them the item (group, permission, range, subnet, instance) is left out and named.
- VpcId of a group absent: an EC2-Classic group (a network of its own, like another VPC), whose
  outbound traffic is not filtered (AWS's default egress is carried). IpPermissions absent: no inbound
  rules. IpPermissionsEgress absent on a VPC group: its outbound rules are unknown (reported; imported
  with none). [] always means none.
- FromPort/ToPort absent: all ports (protocol -1 and numbers) or all ICMP types/codes; tcp/udp need them.
- GroupName, Description, OwnerId, Name tag: optional; empty is the same as absent.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping

from .aws_routing import read_gateways, read_nat_gateways, read_route_tables
from .aws_vpc_path import read_network_acls, read_prefix_list_entries, read_prefix_lists
from .build import ImportResult, build
from .inventory import ImportedInstance, ImportedRule, ImportedSubnet, ImportedVpc, Inventory, Permission
from .json_source import JsonValue, read_json
from .not_carried import AWS_KINDS

GONE_STATES = ("shutting-down", "terminated")
CLASSIC = "EC2-Classic"        # the network of groups and instances without a VpcId


def import_aws(security_groups: Iterable[str | os.PathLike] = (), instances: str | os.PathLike | None = None,
               subnets: str | os.PathLike | None = None, vpcs: str | os.PathLike | None = None,
               lab_name: str = "imported", vpc: str | None = None, strict: bool = False,
               files: Iterable[str | os.PathLike] = (),
               prefix_list_entries: Mapping[str, str | os.PathLike] | None = None) -> ImportResult:
    """A validated topology of one VPC from AWS CLI JSON files (rules of several files are merged).
    `prefix_list_entries`: list id -> get-managed-prefix-list-entries output (which names no list)."""
    inv = Inventory(strict=strict)
    for key, path in (prefix_list_entries or {}).items():
        entries = read_json(path)
        inv.sources.append(entries.source)
        read_prefix_list_entries(key, entries, inv)
    paths = [*security_groups, *(p for p in (vpcs, subnets, instances) if p is not None), *files]
    docs = [read_json(p) for p in paths]
    order = list(READERS)
    for doc, key in sorted(((d, document_kind(d)) for d in docs), key=lambda dk: order.index(dk[1])
                           if dk[1] in order else len(order)):
        inv.sources.append(doc.source)
        if key in READERS:
            READERS[key](doc, inv)
        else:
            _not_carried(doc, key, inv)
    return build(inv, lab_name, vpc)


def document_kind(doc: JsonValue) -> str:
    """The top-level key that says which describe-* command printed the file."""
    for key in (*READERS, *AWS_KINDS):
        if doc.has(key):
            return key
    found = ", ".join(sorted(doc.value)) if isinstance(doc.value, dict) else "no object"
    doc.fail(f"holds {found or 'an empty object'}, not the output of an `aws ec2 describe-*` command sgemu reads",
             "give describe-security-groups (or describe-security-group-rules), describe-instances, "
             "describe-subnets or describe-vpcs output")


def _not_carried(doc: JsonValue, key: str, inv: Inventory) -> None:
    what, id_field, why = AWS_KINDS[key]
    for item in doc.items(key):
        name = item.value.get(id_field) if isinstance(item.value, dict) else None
        inv.skipped.append(f"{item.where}: {what} {name or ''}".rstrip() + f" not carried over: {why}")


def read_security_groups(doc: JsonValue, inv: Inventory) -> None:
    for g in doc.items("SecurityGroups"):
        with inv.item("this security group"):
            _group(g, inv)


def _group(g: JsonValue, inv: Inventory) -> None:
    vpc = g.text("VpcId") or CLASSIC
    group = inv.group(g.need_text("GroupId"), g.text("GroupName") or None, g.where, vpc)
    group.has_rules, group.where = True, g.where
    group.description = g.text("Description", "") or ""
    group.owner = g.text("OwnerId") or None
    if vpc == CLASSIC and not g.items("IpPermissionsEgress"):
        group.default_egress = True
        inv.notes.append(f"{g.where}: {group.key} has no VpcId (EC2-Classic), where outbound traffic is not "
                         "filtered: it gets AWS's default egress (all traffic out)")
    elif not g.has("IpPermissionsEgress"):
        inv.skipped.append(f"{g.where}: {group.key}: IpPermissionsEgress is absent (AWS prints it for every VPC "
                           "group, [] when there are none): its egress rules are not known; imported with none")
    for field, direction, rules in (("IpPermissions", "ingress", group.ingress),
                                    ("IpPermissionsEgress", "egress", group.egress)):
        for permission in g.items(field):
            with inv.item("this permission"):
                rules.extend(_permission(permission, direction, group.owner, group.vpc, inv))


def _permission(p: JsonValue, direction: str, owner: str | None, vpc: str | None,
                inv: Inventory) -> list[ImportedRule]:
    """One IpPermission: a rule per peer (IpRanges, Ipv6Ranges, UserIdGroupPairs, PrefixListIds)."""
    base = Permission(direction, _protocol(p.need("IpProtocol")), p.integer("FromPort"), p.integer("ToPort"))
    rules: list[ImportedRule] = []
    for field, key in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")):
        for peer in p.items(field):
            with inv.item("this range"):
                rules.append(ImportedRule(*base, where=peer.where, cidr=peer.need_text(key),
                                          description=peer.text("Description", "") or ""))
    for peer in p.items("PrefixListIds"):
        with inv.item("this prefix list"):
            rules.append(_prefix_list(base, peer, peer.need_text("PrefixListId")))
    for peer in p.items("UserIdGroupPairs"):
        with inv.item("this group pair"):
            rules.append(_reference(base, peer, peer.need_text("GroupId"), peer.text("UserId") or None, owner,
                                    peer.text("VpcId") or None, vpc, peer.text("VpcPeeringConnectionId") or None))
    return rules


def _protocol(value: JsonValue) -> str:
    if isinstance(value.value, bool) or not isinstance(value.value, (str, int)):
        value.fail(f"expected a protocol, got {value.value!r}", "AWS prints tcp, udp, icmp, icmpv6, -1 or a number")
    return str(value.value)


def _prefix_list(base: Permission, peer: JsonValue, prefix_list: str) -> ImportedRule:
    """A prefix-list peer: carried when the list's entries are in the inputs, else named (build)."""
    return ImportedRule(*base, where=peer.where, prefix_list=prefix_list,
                        description=peer.text("Description", "") or "")


def _reference(base: Permission, peer: JsonValue, group: str, user: str | None, owner: str | None,
               peer_vpc: str | None, vpc: str | None, peering: str | None) -> ImportedRule:
    why = None
    if user is not None and owner is not None and user != owner:
        why = (f"it references {group} of account {user} (cross-account); a lab holds one account's VPC: "
               "allow that group's CIDRs instead")
    elif peering is not None or (peer_vpc is not None and vpc is not None and peer_vpc != vpc):
        why = (f"it references {group} in peered VPC {peer_vpc or '?'} ({peering or 'peering'}); a lab is one "
               "VPC: allow the peer's CIDR instead")
    shown = f"{user}/{group}" if why and user and user != owner else group
    return ImportedRule(*base, where=peer.where, group=shown if why else group,
                        description=peer.text("Description", "") or "", not_carried=why)


def read_group_rules(doc: JsonValue, inv: Inventory) -> None:
    for r in doc.items("SecurityGroupRules"):
        with inv.item("this rule"):
            _group_rule(r, inv)


def _group_rule(r: JsonValue, inv: Inventory) -> None:
    """One SecurityGroupRule (describe-security-group-rules): exactly one peer."""
    egress = r.get("IsEgress")
    direction = "egress" if egress is not None and egress.value is True else "ingress"
    base = Permission(direction, _protocol(r.need("IpProtocol")), r.integer("FromPort"), r.integer("ToPort"))
    description = r.text("Description", "") or ""
    if r.text("CidrIpv4") or r.text("CidrIpv6"):
        rule = ImportedRule(*base, where=r.where, cidr=r.text("CidrIpv4") or r.text("CidrIpv6"),
                            description=description)
    elif r.text("PrefixListId"):
        rule = _prefix_list(base, r, r.need_text("PrefixListId"))
    elif r.has("ReferencedGroupInfo"):
        ref = r.need("ReferencedGroupInfo")
        rule = _reference(base, ref, ref.need_text("GroupId"), ref.text("UserId") or None,
                          r.text("GroupOwnerId") or None, ref.text("VpcId") or None, None,
                          ref.text("VpcPeeringConnectionId") or None)
    else:
        r.fail("has none of CidrIpv4, CidrIpv6, PrefixListId, ReferencedGroupInfo",
               "AWS prints exactly one of them for every rule")
    group = inv.group(r.need_text("GroupId"), None, r.where)
    group.has_rules = True
    group.owner = group.owner or r.text("GroupOwnerId") or None
    (group.egress if direction == "egress" else group.ingress).append(rule)


def read_vpcs(doc: JsonValue, inv: Inventory) -> None:
    for v in doc.items("Vpcs"):
        with inv.item("this VPC"):
            key = v.need_text("VpcId")
            primary = v.text("CidrBlock") or None
            extra = tuple(c for a in v.items("CidrBlockAssociationSet")
                          if _associated(a, "CidrBlockState") and (c := a.text("CidrBlock")) and c != primary)
            ipv6 = next((a.text("Ipv6CidrBlock") for a in v.items("Ipv6CidrBlockAssociationSet")
                         if _associated(a, "Ipv6CidrBlockState") and a.text("Ipv6CidrBlock")), None)
            inv.vpcs[key] = ImportedVpc(key, primary, v.where, ipv6, extra)


def read_subnets(doc: JsonValue, inv: Inventory) -> None:
    for s in doc.items("Subnets"):
        with inv.item("this subnet"):
            key = s.need_text("SubnetId")
            ipv6 = next((a.text("Ipv6CidrBlock") for a in s.items("Ipv6CidrBlockAssociationSet")
                         if _associated(a, "Ipv6CidrBlockState") and a.text("Ipv6CidrBlock")), None)
            inv.subnets[key] = ImportedSubnet(key, s.where, s.text("VpcId") or None, s.text("CidrBlock") or None,
                                              ipv6, s.tags().get("Name") or None)


def _associated(association: JsonValue, state_field: str) -> bool:
    state = association.get(state_field)
    return state is None or state.text("State") in (None, "associated")


def read_instances(doc: JsonValue, inv: Inventory) -> None:
    for reservation in doc.items("Reservations"):
        for i in reservation.items("Instances"):
            with inv.item("this instance"):
                instance = _instance(i, reservation, inv)
                if instance is not None:
                    inv.instances.append(instance)


def _instance(i: JsonValue, reservation: JsonValue, inv: Inventory) -> ImportedInstance | None:
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
    private_ip = source.text("PrivateIpAddress") or i.text("PrivateIpAddress") or None
    if eni is not None:
        for extra in eni.items("PrivateIpAddresses"):
            address = extra.text("PrivateIpAddress")
            if address and address != private_ip:
                inv.skipped.append(f"{extra.where}: instance {key}: secondary private IP {address} not carried over")
    association = eni.get("Association") if eni is not None else None
    public_ip = (association.text("PublicIp") if association is not None else None) or i.text("PublicIpAddress")
    listed = [a.text("Ipv6Address") for a in (eni.items("Ipv6Addresses") if eni is not None else [])]
    ipv6s = [a for a in listed if a] or [a for a in (i.text("Ipv6Address"),) if a]
    for more in ipv6s[1:]:
        inv.skipped.append(f"{eni.where if eni else i.where}: instance {key}: IPv6 address {more} not carried "
                           "over (one IPv6 address per instance)")
    # EC2-Classic instances list their groups only on the reservation.
    groups = (source.items("Groups") if eni is not None else i.items("SecurityGroups")) or reservation.items("Groups")
    vpc = i.text("VpcId") or (eni.text("VpcId") if eni is not None else None) or None
    keys = tuple(inv.group(g.need_text("GroupId"), g.text("GroupName") or None, g.where, vpc).key
                 for g in groups)
    return ImportedInstance(key, i.where, i.tags().get("Name") or None, vpc,
                            source.text("SubnetId") or i.text("SubnetId") or None,
                            private_ip, public_ip or None, ipv6s[0] if ipv6s else None, keys)


def read_network_interfaces(doc: JsonValue, inv: Inventory) -> None:
    """describe-network-interfaces: every interface in use is a node with its groups and addresses; an
    instance's primary one is that instance (skipped when describe-instances gave it), the interfaces
    of load balancers, databases, functions and endpoints are nodes of their own."""
    known = {i.key for i in inv.instances}
    for e in doc.items("NetworkInterfaces"):
        with inv.item("this network interface"):
            eni = _interface(e, inv, known)
            if eni is not None:
                inv.instances.append(eni)


def _interface(e: JsonValue, inv: Inventory, known: set[str]) -> ImportedInstance | None:
    key = e.need_text("NetworkInterfaceId")
    attachment = e.get("Attachment")
    instance = attachment.text("InstanceId") if attachment is not None else None
    if e.text("Status") not in (None, "in-use") and instance is None:
        inv.skipped.append(f"{e.where}: network interface {key} is {e.text('Status')} (attached to nothing): "
                           "not carried over")
        return None
    if instance is not None and _device_index(e) != 0:
        inv.skipped.append(f"{e.where}: network interface {key}: secondary interface of instance {instance}: not "
                           "carried over (a lab instance has one interface, the primary)")
        return None
    if instance is not None and instance in known:
        return None                                  # describe-instances carried it already
    private_ip = e.text("PrivateIpAddress") or None
    for extra in e.items("PrivateIpAddresses"):
        address = extra.text("PrivateIpAddress")
        if address and address != private_ip:
            inv.skipped.append(f"{extra.where}: network interface {key}: secondary private IP {address} not "
                               "carried over")
    association = e.get("Association")
    ipv6s = [a for a in (x.text("Ipv6Address") for x in e.items("Ipv6Addresses")) if a]
    for more in ipv6s[1:]:
        inv.skipped.append(f"{e.where}: network interface {key}: IPv6 address {more} not carried over (one IPv6 "
                           "address per node)")
    vpc = e.text("VpcId") or None
    groups = tuple(inv.group(g.need_text("GroupId"), g.text("GroupName") or None, g.where, vpc).key
                   for g in e.items("Groups"))
    described = e.text("Description") or e.text("InterfaceType") or None
    name = e.tags("TagSet").get("Name") or (None if instance else described)
    if instance is None:
        inv.notes.append(f"{e.where}: network interface {key} ({described or 'no description'}) belongs to no "
                         "instance (a load balancer, database, function or endpoint): it is a node of its own, "
                         "with its security groups")
    return ImportedInstance(instance or key, e.where, name, vpc, e.text("SubnetId") or None, private_ip,
                            (association.text("PublicIp") if association is not None else None) or None,
                            ipv6s[0] if ipv6s else None, groups)


def _device_index(eni: JsonValue) -> int:
    attachment = eni.get("Attachment")
    index = attachment.integer("DeviceIndex") if attachment is not None else None
    return index if index is not None else 0


# Top-level key -> reader, in reading order (groups before the instances that name them).
READERS: dict[str, Callable[[JsonValue, Inventory], None]] = {
    "SecurityGroups": read_security_groups, "SecurityGroupRules": read_group_rules, "Vpcs": read_vpcs,
    "Subnets": read_subnets, "Reservations": read_instances, "NetworkInterfaces": read_network_interfaces,
    "RouteTables": read_route_tables, "NatGateways": read_nat_gateways, "InternetGateways": read_gateways,
    "EgressOnlyInternetGateways": read_gateways,
    "NetworkAcls": read_network_acls, "PrefixLists": read_prefix_lists,
}
