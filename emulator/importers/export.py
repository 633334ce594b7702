"""A topology's SGs as `aws ec2 describe-security-groups` JSON, so imports can be checked by round trip."""
from __future__ import annotations

from emulator.ids import vpc_id_for

from ..model import ICMP_PROTOCOLS, PORTED_PROTOCOLS, PROTO_ALL, Rule, SecurityGroup, Topology, protocol_name


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
