"""Every AWS-shaped id sgemu makes, in one place: the same file always yields the same ids.

Each is the resource's prefix and 17 hex digits of sha256 of what identifies it (AWS ids have 17).
Other parts of the VPC path (acl-, pl-, rtb-, nat-, igw-) add their generators here, never elsewhere.
"""
from __future__ import annotations

import hashlib

from emulator.model import Rule


def _hex17(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:17]


def sg_id_for(name: str) -> str:
    """The id of an SG declared without one: "sg-" + 17 hex digits of sha256(name)."""
    return "sg-" + _hex17(name)


def vpc_id_for(lab: str) -> str:
    """The id of a VPC declared without one: "vpc-" + 17 hex digits of sha256(lab name)."""
    return "vpc-" + _hex17(lab)


def nacl_id_for(name: str) -> str:
    """The id of a network ACL declared without one: "acl-" + 17 hex digits of sha256(name)."""
    return "acl-" + _hex17(f"nacl/{name}")


def nacl_association_id_for(nacl_id: str, subnet: str) -> str:
    """A NetworkAclAssociationId: "aclassoc-" + 8 hex digits of the pair."""
    return "aclassoc-" + _hex17(f"{nacl_id}/{subnet}")[:8]


def prefix_list_id_for(name: str) -> str:
    """The id of a prefix list declared without one: "pl-" + 17 hex digits of sha256(name)."""
    return "pl-" + _hex17(f"prefix-list/{name}")


def rule_id_for(sg_id: str, rule: Rule) -> str:
    """"sgr-" + 17 hex digits of the permission (what AWS compares for duplicates), not its description."""
    permission = "|".join(str(part) for part in (
        sg_id, rule.direction.value, rule.protocol, rule.ports or "", rule.icmp_type, rule.icmp_code,
        rule.cidr or "", rule.group or "", *((rule.prefix_list,) if rule.prefix_list else ())))
    return "sgr-" + _hex17(permission)


def eni_id_for(lab: str, instance: str) -> str:
    return "eni-" + _hex17(f"{lab}/{instance}/eni")


def instance_id_for(lab: str, instance: str) -> str:
    return "i-" + _hex17(f"{lab}/{instance}")


def subnet_id_for(lab: str, subnet: str) -> str:
    return "subnet-" + _hex17(f"{lab}/{subnet}")


# EC2's IP-based hostnames in us-east-1 (the region the flow logs use). "EC2 instance hostnames, DNS
# names, and domains" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-naming.html): the
# private name is ip-<private IPv4 with dashes>.ec2.internal, the public one
# ec2-<public IPv4 with dashes>.compute-1.amazonaws.com.
PRIVATE_DOMAIN = "ec2.internal"
PUBLIC_DOMAIN = "compute-1.amazonaws.com"


def private_dns_name(address: object) -> str:
    return f"ip-{str(address).replace('.', '-')}.{PRIVATE_DOMAIN}"


def public_dns_name(address: object) -> str:
    return f"ec2-{str(address).replace('.', '-')}.{PUBLIC_DOMAIN}"


def resource_id_for(prefix: str, lab_or_vpc: str, name: str) -> str:
    """The id of a route table, NAT gateway or gateway declared without one: prefix + "-" + 17 hex
    digits of sha256(owner/name), stable per lab (rtb-, nat-, igw-, eigw-)."""
    return f"{prefix}-" + _hex17(f"{lab_or_vpc}/{prefix}/{name}")
