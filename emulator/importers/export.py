"""A topology's SGs as `aws ec2 describe-security-groups` JSON, so imports can be checked by round trip."""
from __future__ import annotations

from emulator.ids import nacl_association_id_for, subnet_id_for, vpc_id_for

from ..model import (
    DEFAULT_NACL,
    ICMP_PROTOCOLS,
    PORTED_PROTOCOLS,
    PROTO_ALL,
    Direction,
    NaclEntry,
    NetworkAcl,
    PrefixList,
    Rule,
    SecurityGroup,
    Topology,
    protocol_name,
)


def describe_security_groups(topology: Topology, owner_id: str | None = None) -> dict:
    """{"SecurityGroups": [...]} in the shape and field order the AWS CLI prints; OwnerId is the lab's
    account (`options.account_id`, which an import sets from the input's OwnerId)."""
    vpc = topology.vpc.id or vpc_id_for(topology.name)
    owner_id = owner_id or topology.options.account_id
    return {"SecurityGroups": [_group(g, owner_id, vpc) for g in topology.security_groups]}


def _group(g: SecurityGroup, owner_id: str, vpc: str) -> dict:
    return {"Description": g.description, "GroupName": g.name, "IpPermissions": _permissions(g.ingress, owner_id),
            "OwnerId": owner_id, "GroupId": g.id, "IpPermissionsEgress": _permissions(g.egress, owner_id),
            "VpcId": vpc}


def _permissions(rules: tuple[Rule, ...], owner_id: str) -> list[dict]:
    """Rules with the same protocol and ports share one IpPermission, as AWS groups them."""
    permissions: dict[tuple, dict] = {}
    for r in rules:
        key = (r.protocol, r.ports, r.icmp_type, r.icmp_code)
        if key not in permissions:
            permissions[key] = _permission(r)
        p = permissions[key]
        described = {"Description": r.description} if r.description else {}
        if r.prefix_list is not None:
            p["PrefixListIds"].append({**described, "PrefixListId": r.prefix_list})
        elif r.group is not None:
            p["UserIdGroupPairs"].append({**described, "GroupId": r.group, "UserId": owner_id})
        elif r.cidr is not None and r.cidr.version == 6:
            p["Ipv6Ranges"].append({"CidrIpv6": str(r.cidr), **described})
        elif r.cidr is not None:
            p["IpRanges"].append({"CidrIp": str(r.cidr), **described})
    return list(permissions.values())


def _permission(r: Rule) -> dict:
    if r.protocol == PROTO_ALL:
        protocol = "-1"
    else:
        name = protocol_name(r.protocol)
        protocol = name if name in ("tcp", "udp", "icmp", "icmpv6") else str(r.protocol)
    ports: dict[str, int] = {}
    if r.protocol in PORTED_PROTOCOLS and r.ports is not None:
        ports = {"FromPort": r.ports.low, "ToPort": r.ports.high}
    elif r.protocol in ICMP_PROTOCOLS:
        ports = {"FromPort": r.icmp_type, "ToPort": r.icmp_code}
    return {**({"FromPort": ports["FromPort"]} if ports else {}), "IpProtocol": protocol, "IpRanges": [],
            "Ipv6Ranges": [], "PrefixListIds": [], **({"ToPort": ports["ToPort"]} if ports else {}),
            "UserIdGroupPairs": []}


IPV4_ANY_RULE, IPV6_ANY_RULE = 32767, 32768      # how DescribeNetworkAcls shows the two `*` rules


def entry_json(entry: NaclEntry) -> dict[str, object]:
    """One entry as describe-network-acls shows it."""
    out: dict[str, object] = {"RuleNumber": entry.rule_number, "Egress": entry.direction is Direction.EGRESS,
                              "RuleAction": entry.action, "Protocol": str(entry.protocol),
                              ("CidrBlock" if entry.cidr.version == 4 else "Ipv6CidrBlock"): str(entry.cidr)}
    if entry.ports is not None:
        out["PortRange"] = {"From": entry.ports.low, "To": entry.ports.high}
    if entry.protocol in (1, 58):
        out["IcmpTypeCode"] = {"Type": entry.icmp_type, "Code": entry.icmp_code}
    return out


def nacl_json(nacl: NetworkAcl, subnets: list[str], default: bool, dual_stack: bool) -> dict[str, object]:
    """A NACL as describe-network-acls shows it, the `*` rules included (32767, and 32768 for IPv6)."""
    entries = [entry_json(e) for e in (*nacl.ingress, *nacl.egress)]
    for egress in (False, True):
        entries.append({"RuleNumber": IPV4_ANY_RULE, "Egress": egress, "RuleAction": "deny", "Protocol": "-1",
                        "CidrBlock": "0.0.0.0/0"})
        if dual_stack:
            entries.append({"RuleNumber": IPV6_ANY_RULE, "Egress": egress, "RuleAction": "deny",
                            "Protocol": "-1", "Ipv6CidrBlock": "::/0"})
    return {"NetworkAclId": nacl.id, "Name": nacl.name, "IsDefault": default, "Entries": entries,
            "Associations": [{"SubnetId": s, "NetworkAclId": nacl.id,
                              "NetworkAclAssociationId": nacl_association_id_for(nacl.id, s)} for s in subnets]}


def describe_network_acls(topology: Topology) -> dict:
    """{"NetworkAcls": [...]} as describe-network-acls prints it, the `*` entries included; every subnet
    is associated with exactly one NACL (SubnetIds as the lab's flow logs name them)."""
    vpc = topology.vpc.id or vpc_id_for(topology.name)
    out = []
    for nacl in topology.network_acls:
        subnets = [subnet_id_for(topology.name, s.name) for s in topology.subnets
                   if (found := topology.nacl_for(s.name)) is not None and found.id == nacl.id]
        described = nacl_json(nacl, subnets, nacl.name == DEFAULT_NACL, topology.vpc.dual_stack)
        described.pop("Name")
        out.append({**described, "Tags": [{"Key": "Name", "Value": nacl.name}], "VpcId": vpc})
    return {"NetworkAcls": out}


def describe_managed_prefix_lists(topology: Topology, owner_id: str | None = None) -> dict:
    """{"PrefixLists": [...]} as describe-managed-prefix-lists prints it (entries are another call)."""
    owner_id = owner_id or topology.options.account_id
    return {"PrefixLists": [{"PrefixListId": pl.id, "AddressFamily": f"IPv{pl.family}", "State": "create-complete",
                             "PrefixListName": pl.name, "MaxEntries": pl.max_entries, "Version": 1, "Tags": [],
                             "OwnerId": owner_id} for pl in topology.prefix_lists]}


def get_managed_prefix_list_entries(pl: PrefixList) -> dict:
    """{"Entries": [...]} as get-managed-prefix-list-entries prints it for one list."""
    return {"Entries": [{"Cidr": str(e.cidr), **({"Description": e.description} if e.description else {})}
                        for e in pl.entries]}
