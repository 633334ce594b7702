"""What absent, null, empty and (Terraform) unknown mean for every attribute the importers read: one
row per attribute and case, each checking the imported lab and what was reported."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.importers import ImportSourceError, import_aws
from emulator.importers.export import describe_security_groups
from emulator.model import Direction

from .import_support import described

ABSENT = object()
SG = "sg-0123456789abcdef0"


def group(**fields) -> dict:
    base = {"GroupId": SG, "GroupName": "web", "Description": "web", "OwnerId": "111122223333",
            "VpcId": "vpc-0a1b2c3d", "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                                         "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
            "IpPermissionsEgress": []}
    for key, value in fields.items():
        if value is ABSENT:
            base.pop(key)
        else:
            base[key] = value
    return base


def aws(tmp_path: Path, groups: list[dict], instances: list[dict] | None = None, subnets: list[dict] | None = None,
        strict: bool = False):
    paths = [tmp_path / "sgs.json"]
    paths[0].write_text(json.dumps({"SecurityGroups": groups}))
    for name, key, items in (("instances.json", "Reservations", instances), ("subnets.json", "Subnets", subnets)):
        if items is not None:
            (tmp_path / name).write_text(json.dumps({key: [{"Instances": items}] if key == "Reservations" else items}))
            paths.append(tmp_path / name)
    return import_aws(files=paths, strict=strict)


def only_group(result) -> str:
    return next(g.name for g in result.loaded.topology.security_groups if g.name != "default" or g.id == SG)


# --- describe-security-groups: the group --------------------------------------------------------

@pytest.mark.parametrize("value", [ABSENT, None, ""])
def test_vpc_id_missing_means_an_ec2_classic_group_with_unfiltered_egress(tmp_path, value):
    result = aws(tmp_path, [group(VpcId=value)])
    t = result.loaded.topology
    assert described(t, "web", Direction.EGRESS) == {"egress all to 0.0.0.0/0"}
    assert any("has no VpcId (EC2-Classic)" in n for n in result.notes) and result.skipped == ()


def test_vpc_id_given_is_the_labs_vpc_id(tmp_path):
    assert aws(tmp_path, [group(VpcId="vpc-0a1b2c3d")]).loaded.topology.vpc.id == "vpc-0a1b2c3d"


@pytest.mark.parametrize("value", [ABSENT, None, ""])
def test_group_name_missing_means_a_name_from_the_id(tmp_path, value):
    result = aws(tmp_path, [group(GroupName=value)])
    assert result.loaded.topology.sg(SG).name == "sg_0123456789abcdef0" and result.skipped == ()


@pytest.mark.parametrize("value", [ABSENT, None, ""])
def test_group_id_missing_leaves_the_group_out_and_names_it_or_refuses_when_strict(tmp_path, value):
    result = aws(tmp_path, [group(GroupId=value), group(GroupId="sg-0fedcba9876543210", GroupName="db")])
    assert [g.name for g in result.loaded.topology.security_groups] == ["default", "db"]
    [skipped] = result.skipped
    assert skipped.startswith("sgs.json: SecurityGroups[0]: ") and "this security group not carried over" in skipped
    with pytest.raises(ImportSourceError, match=r"sgs.json: SecurityGroups\[0\]: (has no GroupId|GroupId is empty)"):
        aws(tmp_path, [group(GroupId=value)], strict=True)


@pytest.mark.parametrize("value, description", [(ABSENT, ""), (None, ""), ("", ""), ("web tier", "web tier")])
def test_description(tmp_path, value, description):
    assert aws(tmp_path, [group(Description=value)]).loaded.topology.sg("web").description == description


@pytest.mark.parametrize("value, owner", [(ABSENT, "123456789012"), (None, "123456789012"), ("", "123456789012"),
                                          ("444455556666", "444455556666"), ("OwnerId", "123456789012")])
def test_owner_id_is_kept_when_it_is_an_account(tmp_path, value, owner):
    exported = describe_security_groups(aws(tmp_path, [group(OwnerId=value)]).loaded.topology)
    assert {g["OwnerId"] for g in exported["SecurityGroups"]} == {owner}


@pytest.mark.parametrize("value", [ABSENT, None, []])
def test_no_ip_permissions_means_no_inbound_rules(tmp_path, value):
    result = aws(tmp_path, [group(IpPermissions=value)])
    assert result.loaded.topology.sg("web").ingress == () and result.skipped == ()


@pytest.mark.parametrize("value, reported", [(ABSENT, True), (None, True), ([], False)])
def test_egress_absent_on_a_vpc_group_is_unknown_and_reported_while_empty_means_none(tmp_path, value, reported):
    result = aws(tmp_path, [group(IpPermissionsEgress=value)])
    assert result.loaded.topology.sg("web").egress == ()
    assert [("IpPermissionsEgress is absent" in s) for s in result.skipped] == ([True] if reported else [])


# --- describe-security-groups: one permission ---------------------------------------------------

def rule(tmp_path: Path, permission: dict, owner: str = "111122223333"):
    result = aws(tmp_path, [group(IpPermissions=[permission], OwnerId=owner),
                            group(GroupId="sg-0fedcba9876543210", GroupName="db", OwnerId=owner)])
    return described(result.loaded.topology, "web", Direction.INGRESS), result.skipped


@pytest.mark.parametrize("permission, carried, reported", [
    ({"IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, set(), "has no IpProtocol"),
    ({"IpProtocol": None, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, set(), "has no IpProtocol"),
    ({"IpProtocol": "", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, set(), "'' is not a protocol"),
    ({"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, set(), "tcp ports None-None are not a port range"),
    ({"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, {"ingress all from 10.0.0.0/8"}, None),
    ({"IpProtocol": "icmp", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, {"ingress icmp -1/-1 from 10.0.0.0/8"}, None),
    ({"IpProtocol": "icmp", "FromPort": 8, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}, {"ingress icmp 8/-1 from 10.0.0.0/8"},
     None),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}, set(), None),                    # no peer: allows nothing
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": None, "Ipv6Ranges": [],
      "UserIdGroupPairs": None, "PrefixListIds": []}, set(), None),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{}]}, set(), "has no CidrIp"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": ""}]}, set(), "CidrIp is empty"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": None}]},
     {"ingress tcp 22 from 10.0.0.0/8"}, None),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"UserId": "111122223333"}]}, set(),
     "has no GroupId"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": "sg-0fedcba9876543210"}]},
     {"ingress tcp 22 from db"}, None),                                                   # no UserId: same account
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "UserIdGroupPairs": [{"GroupId": "sg-0fedcba9876543210", "UserId": "111122223333"}]}, {"ingress tcp 22 from db"},
     None),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
      "UserIdGroupPairs": [{"GroupId": "sg-0fedcba9876543210", "UserId": "999988887777"}]}, set(), "cross-account"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [{"PrefixListId": "pl-12345678"}]}, set(),
     "prefix list pl-12345678 needs its CIDRs"),
    ({"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [{}]}, set(), "has no PrefixListId"),
])
def test_permission_fields(tmp_path, permission, carried, reported):
    rules, skipped = rule(tmp_path, permission)
    assert rules == carried
    assert [reported in s for s in skipped] == ([True] if reported else [])


# --- describe-subnets and describe-instances ----------------------------------------------------

def subnet(**fields) -> dict:
    base = {"SubnetId": "subnet-0a1b2c3d", "VpcId": "vpc-0a1b2c3d", "CidrBlock": "10.1.1.0/24",
            "Tags": [{"Key": "Name", "Value": "app"}]}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ABSENT}


def instance(**fields) -> dict:
    base = {"InstanceId": "i-0a1b2c3d4e5f60001", "State": {"Name": "running"}, "SubnetId": "subnet-0a1b2c3d",
            "VpcId": "vpc-0a1b2c3d", "PrivateIpAddress": "10.1.1.10", "PublicIpAddress": "198.51.100.5",
            "SecurityGroups": [{"GroupId": SG, "GroupName": "web"}], "Tags": [{"Key": "Name", "Value": "app-1"}]}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ABSENT}


@pytest.mark.parametrize("value", [ABSENT, None, ""])
def test_subnet_without_a_block_is_guessed_from_its_instances(tmp_path, value):
    result = aws(tmp_path, [group()], [instance()], [subnet(CidrBlock=value)])
    assert [str(s.cidr) for s in result.loaded.topology.subnets] == ["10.1.1.0/24"]
    assert any("guessed 10.1.1.0/24 from its instances" in n for n in result.notes)


@pytest.mark.parametrize("value, name", [(ABSENT, "subnet-0a1b2c3d"), ([], "subnet-0a1b2c3d"),
                                         ([{"Key": "Name", "Value": ""}], "subnet-0a1b2c3d")])
def test_subnet_without_a_name_tag_is_named_by_its_id(tmp_path, value, name):
    assert aws(tmp_path, [group()], None, [subnet(Tags=value)]).loaded.topology.subnets[0].name == name


@pytest.mark.parametrize("field, value, check", [
    ("PrivateIpAddress", ABSENT, lambda i: str(i.private_ip) == "10.1.1.4"),          # the next free address
    ("PrivateIpAddress", "", lambda i: str(i.private_ip) == "10.1.1.4"),
    ("PrivateIpAddress", "10.1.1.1", lambda i: str(i.private_ip) == "10.1.1.4"),      # reserved by AWS: reported
    ("PublicIpAddress", ABSENT, lambda i: i.public_ip is None),
    ("PublicIpAddress", "", lambda i: i.public_ip is None),
    ("PublicIpAddress", "10.1.1.50", lambda i: i.public_ip is None),                  # inside the VPC: reported
    ("SecurityGroups", [], lambda i: i.security_groups == ("sg-default",) or len(i.security_groups) == 1),
    ("Tags", ABSENT, lambda i: i.name == "i-0a1b2c3d4e5f60001"),
    ("State", ABSENT, lambda i: i.name == "app-1"),
])
def test_instance_fields(tmp_path, field, value, check):
    result = aws(tmp_path, [group()], [instance(**{field: value})], [subnet()])
    [lab_instance] = result.loaded.topology.instances
    assert check(lab_instance)
    expect_report = value in ("10.1.1.1", "10.1.1.50")
    assert any(str(value) in s for s in result.skipped) == expect_report


@pytest.mark.parametrize("state", ["terminated", "shutting-down"])
def test_gone_instances_are_named(tmp_path, state):
    result = aws(tmp_path, [group()], [instance(State={"Name": state})], [subnet()])
    assert any(f"is {state}: not carried over" in s for s in result.skipped)


@pytest.mark.parametrize("field, value, message", [
    ("PrivateIpAddress", "10.1.1.1", "app-1: private IP 10.1.1.1 is reserved by AWS"),
    ("PrivateIpAddress", "10.2.0.9", "app-1: private IP 10.2.0.9 is outside its subnet 10.1.1.0/24"),
    ("PublicIpAddress", "127.0.0.1", "app-1: public IP 127.0.0.1 is a loopback address"),
])
def test_an_address_the_lab_cannot_give_refuses_a_strict_import(tmp_path, field, value, message):
    with pytest.raises(ImportSourceError, match=r"instances.json: Reservations\[0\].Instances\[0\]: " + message):
        aws(tmp_path, [group()], [instance(**{field: value})], [subnet()], strict=True)
    assert any(message in s for s in aws(tmp_path, [group()], [instance(**{field: value})], [subnet()]).skipped)
