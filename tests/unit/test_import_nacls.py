"""Importing network ACLs and prefix lists: AWS CLI JSON (describe-network-acls, describe-managed-prefix-lists,
get-managed-prefix-list-entries) and Terraform (aws_network_acl*, aws_default_network_acl,
aws_ec2_managed_prefix_list*): entries in rule order without the `*` rules, the default NACL as `default`,
associations, lists without entries named with every rule using them, duplicates merged, conflicts named."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.importers import ImportSourceError, import_aws, import_terraform
from emulator.model import NACL_DENY

VPC, PUB, PRIV = "vpc-0a1b2c3d4e5f60718", "subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"
SG, PL, AWS_PL = "sg-0aaaaaaaaaaaaaaa1", "pl-0aaaaaaaaaaaaaaa1", "pl-63a5400b"


def write(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def aws_files(tmp_path: Path) -> list[Path]:
    subnets = {"Subnets": [{"SubnetId": PUB, "VpcId": VPC, "CidrBlock": "10.0.1.0/24"},
                           {"SubnetId": PRIV, "VpcId": VPC, "CidrBlock": "10.0.2.0/24"}]}
    sgs = {"SecurityGroups": [{"GroupId": SG, "GroupName": "web", "VpcId": VPC, "IpPermissionsEgress": [],
                               "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                                  "PrefixListIds": [{"PrefixListId": PL, "Description": "office"},
                                                                    {"PrefixListId": AWS_PL}]}]}]}
    star = [{"RuleNumber": 32767, "Protocol": "-1", "Egress": e, "RuleAction": "deny", "CidrBlock": "0.0.0.0/0"}
            for e in (True, False)]
    nacls = {"NetworkAcls": [
        {"NetworkAclId": "acl-0aaaaaaaaaaaaaaa1", "VpcId": VPC, "IsDefault": True,
         "Associations": [{"SubnetId": PUB}], "Entries": star + [
             {"RuleNumber": 100, "Protocol": "-1", "Egress": e, "RuleAction": "allow", "CidrBlock": "0.0.0.0/0"}
             for e in (True, False)]},
        {"NetworkAclId": "acl-0aaaaaaaaaaaaaaa2", "VpcId": VPC, "Tags": [{"Key": "Name", "Value": "Private NACL"}],
         "Associations": [{"SubnetId": PRIV}, {"SubnetId": "subnet-0ffffffffffffffff"}], "Entries": [*star, {"RuleNumber": 110, "Protocol": "6", "Egress": False, "RuleAction": "allow", "CidrBlock": "10.0.1.0/24", "PortRange": {"From": 1024, "To": 65535}}, {"RuleNumber": 90, "Protocol": "-1", "Egress": False, "RuleAction": "deny", "CidrBlock": "198.51.100.0/24"}, {"RuleNumber": 120, "Protocol": "1", "Egress": False, "RuleAction": "allow", "CidrBlock": "0.0.0.0/0", "IcmpTypeCode": {"Type": 8, "Code": -1}}, {"RuleNumber": 100, "Protocol": "58", "Egress": True, "RuleAction": "allow", "Ipv6CidrBlock": "::/0", "IcmpTypeCode": {"Type": -1, "Code": -1}}]},
        {"NetworkAclId": "acl-0bbbbbbbbbbbbbbb1", "VpcId": "vpc-0ffffffffffffffff", "Entries": star}]}
    lists = {"PrefixLists": [{"PrefixListId": PL, "PrefixListName": "office", "MaxEntries": 4,
                              "AddressFamily": "IPv4", "OwnerId": "123456789012"},
                             {"PrefixListId": AWS_PL, "PrefixListName": "com.amazonaws.us-east-1.s3",
                              "MaxEntries": 1, "AddressFamily": "IPv4", "OwnerId": "AWS"}]}
    return [write(tmp_path, n, d) for n, d in (("subnets.json", subnets), ("sgs.json", sgs), ("nacls.json", nacls),
                                                ("pls.json", lists))]


def test_aws_nacls_and_prefix_lists(tmp_path: Path) -> None:
    entries = write(tmp_path, "entries.json", {"Entries": [{"Cidr": "203.0.113.0/24", "Description": "hq"}]})
    result = import_aws(files=aws_files(tmp_path), prefix_list_entries={PL: entries})
    t = result.loaded.topology
    default, private = t.network_acls
    assert (default.name, default.id) == ("default", "acl-0aaaaaaaaaaaaaaa1")
    assert (private.name, private.subnets) == ("private-nacl", (t.subnets[1].name,))
    assert [(e.rule_number, e.action) for e in private.ingress] == [(90, NACL_DENY), (110, "allow"), (120, "allow")]
    assert private.ingress[2].icmp_type == 8 and str(private.egress[0].cidr) == "::/0"
    assert t.nacl_for(t.subnets[0].name) is default
    [office] = t.prefix_lists
    assert (office.id, office.name, office.max_entries, office.entries[0].description) == (PL, "office", 4, "hq")
    assert [r.prefix_list for r in t.sg("web").ingress] == [PL]
    skipped = "\n".join(result.skipped)
    assert f"prefix list {AWS_PL} (AWS-managed) not carried over: prefix list {AWS_PL} needs its CIDRs" in skipped
    assert f"web: ingress tcp 22 from {AWS_PL}: not carried over: prefix list {AWS_PL} needs its CIDRs" in skipped
    assert "acl-0bbbbbbbbbbbbbbb1 is in vpc-0ffffffffffffffff" in skipped          # another VPC: named
    assert "subnet-0ffffffffffffffff is not carried over" in skipped


def test_aws_rules_using_a_list_without_entries_are_named_never_dropped(tmp_path: Path) -> None:
    result = import_aws(files=aws_files(tmp_path))
    assert result.loaded.topology.prefix_lists == () and result.loaded.topology.sg("web").ingress == ()
    assert sum(f"from {PL}: not carried over" in line for line in result.skipped) == 1
    assert sum(f"from {AWS_PL}: not carried over" in line for line in result.skipped) == 1


def test_aws_nacl_quota_raised_to_fit(tmp_path: Path) -> None:
    many = {"NetworkAcls": [{"NetworkAclId": "acl-0aaaaaaaaaaaaaaa3", "VpcId": VPC, "Entries": [
        {"RuleNumber": n, "Protocol": "6", "Egress": False, "RuleAction": "allow", "CidrBlock": f"10.{n}.0.0/16",
         "PortRange": {"From": 22, "To": 22}} for n in range(1, 25)]}]}
    result = import_aws(files=[write(tmp_path, "many.json", many)])
    assert result.loaded.topology.options.quotas.rules_per_nacl == 25
    assert any("rules_per_nacl" in note for note in result.notes)


def resource(address: str, values: dict) -> dict:
    kind, name = address.split(".")
    return {"address": address, "mode": "managed", "type": kind, "name": name, "values": values}


def state(tmp_path: Path, *resources: dict) -> Path:
    doc = {"format_version": "1.0", "values": {"root_module": {"resources": [
        resource("aws_vpc.main", {"id": VPC, "cidr_block": "10.0.0.0/16"}),
        resource("aws_subnet.pub", {"id": PUB, "vpc_id": VPC, "cidr_block": "10.0.1.0/24"}),
        resource("aws_subnet.priv", {"id": PRIV, "vpc_id": VPC, "cidr_block": "10.0.2.0/24"}),
        *resources]}}}
    return write(tmp_path, "state.json", doc)


def rule(number: int, action: str = "allow", port: int = 22, **extra: object) -> dict:
    return {"rule_no": number, "action": action, "protocol": "tcp", "from_port": port, "to_port": port,
            "cidr_block": "10.0.0.0/16", "ipv6_cidr_block": "", "icmp_type": 0, "icmp_code": 0, **extra}


def test_terraform_nacls_rules_associations_and_prefix_lists(tmp_path: Path) -> None:
    path = state(
        tmp_path,
        resource("aws_default_network_acl.default", {"id": "acl-0aaaaaaaaaaaaaaa1", "vpc_id": VPC,
                                                     "default_network_acl_id": "acl-0aaaaaaaaaaaaaaa1",
                                                     "ingress": [rule(100, port=0) | {"protocol": "-1"}],
                                                     "egress": [rule(100, port=0) | {"protocol": "-1"}]}),
        resource("aws_network_acl.private", {"id": "acl-0aaaaaaaaaaaaaaa2", "vpc_id": VPC, "subnet_ids": [],
                                             "tags": {"Name": "private"}, "ingress": [rule(100)], "egress": []}),
        resource("aws_network_acl_rule.out", {"id": "nacl-1", "network_acl_id": "acl-0aaaaaaaaaaaaaaa2",
                                              "rule_number": 100, "egress": True, "protocol": "6",
                                              "rule_action": "allow", "cidr_block": "0.0.0.0/0",
                                              "from_port": 1024, "to_port": 65535}),
        resource("aws_network_acl_rule.same", {"id": "nacl-2", "network_acl_id": "acl-0aaaaaaaaaaaaaaa2",
                                               "rule_number": 100, "egress": False, "protocol": "tcp",
                                               "rule_action": "allow", "cidr_block": "10.0.0.0/16",
                                               "from_port": 22, "to_port": 22}),
        resource("aws_network_acl_association.priv", {"id": "aclassoc-1", "network_acl_id": "acl-0aaaaaaaaaaaaaaa2",
                                                      "subnet_id": PRIV}),
        resource("aws_ec2_managed_prefix_list.office", {"id": PL, "name": "office", "address_family": "IPv4",
                                                        "max_entries": 3, "entry": [{"cidr": "203.0.113.0/24",
                                                                                     "description": "hq"}]}),
        resource("aws_ec2_managed_prefix_list_entry.home", {"id": "e1", "prefix_list_id": PL,
                                                            "cidr": "192.0.2.0/24", "description": "home"}),
        resource("aws_security_group.web", {"id": SG, "name": "web", "vpc_id": VPC, "egress": [], "ingress": [
            {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": [], "prefix_list_ids": [PL],
             "description": "ssh"}]}),
    )
    result = import_terraform(path)
    t = result.loaded.topology
    default, private = t.network_acls
    assert default.name == "default" and private.name == "private" and private.subnets == (t.subnets[1].name,)
    assert [(e.rule_number, str(e.ports)) for e in private.ingress] == [(100, "22")]
    assert [(e.rule_number, str(e.ports), str(e.cidr)) for e in private.egress] == [(100, "1024-65535", "0.0.0.0/0")]
    assert any("rule 100 repeats" in note and "merged" in note for note in result.notes)
    [office] = t.prefix_lists
    assert [str(c) for c in office.cidrs] == ["203.0.113.0/24", "192.0.2.0/24"] and office.max_entries == 3
    assert t.sg("web").ingress[0].prefix_list == PL
    assert not any("aws_network_acl" in line or "prefix_list" in line for line in result.skipped), result.skipped


def test_terraform_conflicting_rules_are_named_or_refused_when_strict(tmp_path: Path) -> None:
    path = state(
        tmp_path,
        resource("aws_network_acl.private", {"id": "acl-0aaaaaaaaaaaaaaa2", "vpc_id": VPC, "subnet_ids": [PRIV],
                                             "ingress": [rule(100)], "egress": []}),
        resource("aws_network_acl_rule.clash", {"id": "nacl-1", "network_acl_id": "acl-0aaaaaaaaaaaaaaa2",
                                                "rule_number": 100, "egress": False, "protocol": "tcp",
                                                "rule_action": "deny", "cidr_block": "10.0.0.0/16",
                                                "from_port": 22, "to_port": 22}),
    )
    result = import_terraform(path)
    clash = [line for line in result.skipped if "conflicts with" in line]
    assert len(clash) == 1 and "ingress[0]" in clash[0] and "rule 100" in clash[0]
    assert result.loaded.topology.network_acls[1].ingress[0].action == "allow"
    t = result.loaded.topology
    assert t.nacl_for(t.subnets[1].name).id == "acl-0aaaaaaaaaaaaaaa2"
    with pytest.raises(ImportSourceError, match="conflicts with"):
        import_terraform(path, strict=True)

