"""`sgemu import aws`: the documented AWS CLI shapes, awkward cases, and nothing dropped silently."""
from __future__ import annotations

import json
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator.cli import cli
from emulator.importers import ImportSourceError, import_aws, write
from emulator.model import PROTO_ALL, Direction
from emulator.topology import load

from .import_support import described as permissions

DATA = Path(__file__).parent.parent / "data" / "aws"
SGS = DATA / "describe-security-groups.json"
RULES = DATA / "describe-security-group-rules.json"
INSTANCES = DATA / "describe-instances.json"
SUBNETS = DATA / "describe-subnets.json"
VPCS = DATA / "describe-vpcs.json"


@pytest.fixture(scope="module")
def full():
    return import_aws([SGS], INSTANCES, SUBNETS, VPCS, lab_name="shop")


def write_json(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def one_group(ingress: list[dict], egress: list[dict] | None = None, **extra) -> dict:
    return {"SecurityGroups": [{"GroupId": "sg-0123456789abcdef0", "GroupName": "web", "OwnerId": "111122223333",
                                "VpcId": "vpc-01", "IpPermissions": ingress, "IpPermissionsEgress": egress or [],
                                **extra}]}


def test_vpc_and_subnets_come_from_describe_vpcs_and_subnets(full):
    t = full.loaded.topology
    assert (t.name, str(t.vpc.cidr), str(t.vpc.ipv6_cidr)) == ("shop", "10.20.0.0/16", "2600:1f18:1234:5600::/56")
    assert [(s.name, str(s.cidr), s.ipv6_cidr and str(s.ipv6_cidr)) for s in t.subnets] == [
        ("public-a-us-east-1a", "10.20.1.0/24", "2600:1f18:1234:5601::/64"),
        ("private-a", "10.20.2.0/24", None),
        ("subnet-0aa11bb22cc33dd03", "10.20.3.0/24", None)]


def test_instances_are_placed_with_their_addresses_and_all_their_groups(full):
    t = full.loaded.topology
    alb, app, db = t.instances
    assert (alb.name, alb.subnet, str(alb.private_ip), str(alb.public_ip), str(alb.ipv6)) == (
        "alb-node-1", "public-a-us-east-1a", "10.20.1.10", "198.51.100.20", "2600:1f18:1234:5601::10")
    assert [t.sg(g).name for g in app.security_groups] == ["app-sg", "monitoring - ops"]
    assert (db.name, str(db.private_ip)) == ("i-0a1b2c3d4e5f60003", "10.20.3.10")  # no Name tag: the id
    assert [h.name for h in t.internet] == ["you"] and str(t.internet[0].ip) == "203.0.113.10"


def test_groups_keep_their_ids_names_and_rules(full):
    t = full.loaded.topology
    assert t.sg("alb-sg").id == "sg-0a1b2c3d4e5f60001"
    assert permissions(t, "alb-sg", Direction.INGRESS) == {
        "ingress tcp 80 from 0.0.0.0/0", "ingress tcp 80 from ::/0", "ingress tcp 443 from 0.0.0.0/0"}
    assert permissions(t, "alb-sg", Direction.EGRESS) == {"egress tcp 8080 to app-sg"}
    assert permissions(t, "app-sg", Direction.INGRESS) == {"ingress tcp 8080 from alb-sg",
                                                           "ingress icmp 8/-1 from 10.20.0.0/16"}
    assert t.sg("db-sg").egress == ()                       # IpPermissionsEgress [] stays "no outbound"
    default = t.sg("default")
    assert default.id == "sg-0d5e6f7a8b9c0d1e2" and default.ingress[0].group == default.id


def test_awkward_protocols_esp_icmpv6_all_and_port_ranges(full):
    ops = full.loaded.topology.sg("monitoring - ops")
    assert {(r.protocol, str(r.ports) if r.ports else None, str(r.cidr)) for r in ops.ingress} == {
        (6, "9100-9110", "10.20.0.0/16"), (50, None, "198.51.100.0/24"), (58, None, "::/0")}
    assert [(r.protocol, str(r.cidr)) for r in ops.egress] == [(PROTO_ALL, "0.0.0.0/0")]


@pytest.mark.parametrize("needle", [
    "SecurityGroups[2].IpPermissions[1].UserIdGroupPairs[0]: app-sg: ingress tcp 22 from "
    "444455556666/sg-0bb11cc22dd33ee44: not carried over: it references sg-0bb11cc22dd33ee44 of account 444455556666",
    "SecurityGroups[2].IpPermissionsEgress[1].PrefixListIds[0]: app-sg: egress tcp 443 to pl-63a5400a: not carried "
    "over: prefix list pl-63a5400a needs its CIDRs: run `aws ec2 get-managed-prefix-list-entries",
    "SecurityGroups[3].IpPermissions[1].UserIdGroupPairs[0]: db-sg: ingress tcp 5432 from sg-0fedcba9876543210: "
    "not carried over: sg-0fedcba9876543210 is not in the imported security groups",
    "SecurityGroups[4].IpPermissions[3].UserIdGroupPairs[0]: monitoring - ops: ingress udp 161 from "
    "sg-0123abcd4567ef890: not carried over: it references sg-0123abcd4567ef890 in peered VPC vpc-0feedface0000beef "
    "(pcx-0a0b0c0d0e0f01234)",
    "Reservations[1].Instances[2]: instance i-0a1b2c3d4e5f60004 is terminated",
    "Reservations[1].Instances[0].NetworkInterfaces[0]: instance i-0a1b2c3d4e5f60002: secondary interface "
    "eni-0a1b2c3d4e5f60099",
    "Reservations[1].Instances[0].NetworkInterfaces[1].PrivateIpAddresses[1]: instance i-0a1b2c3d4e5f60002: "
    "secondary private IP 10.20.2.11",
])
def test_what_cannot_be_carried_is_listed_with_its_json_path(full, needle):
    assert sum(needle in s for s in full.skipped) == 1, "\n".join(full.skipped)


def test_every_rule_is_either_carried_or_listed(full):
    source = json.loads(SGS.read_text())["SecurityGroups"]
    peers = sum(len(p.get(k, [])) for g in source for f in ("IpPermissions", "IpPermissionsEgress")
                for p in g[f] for k in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"))
    carried = sum(len(g.ingress) + len(g.egress) for g in full.loaded.topology.security_groups)
    listed = sum("not carried over: " in s and "SecurityGroups[" in s for s in full.skipped)
    assert carried + listed == peers == 19


def test_unsafe_group_name_is_renamed_and_the_mapping_recorded(full):
    assert any("GroupName 'monitoring & ops' is named 'monitoring - ops'" in n for n in full.notes)
    assert any("(Name 'ALB node #1') is named alb-node-1" in n for n in full.notes)


def test_written_file_lists_what_was_not_carried_and_loads_to_the_same_topology(full, tmp_path):
    out = tmp_path / "shop.yaml"
    write(full, out, "sgemu import aws --security-groups sgs.json")
    text = out.read_text()
    assert text.startswith("# Imported by: sgemu import aws --security-groups sgs.json\n")
    header = text.split("\n\n", 1)[0]
    assert "# NOT carried over (7):" in header and "pl-63a5400a" in header and "you (203.0.113.10" in header
    loaded = load(out)
    assert loaded.topology.security_groups == full.loaded.topology.security_groups
    assert loaded.topology.instances == full.loaded.topology.instances


def test_without_instance_data_each_group_gets_an_instance_reachable_from_you():
    result = import_aws([SGS], vpcs=VPCS)
    t = result.loaded.topology
    assert [(i.name, [t.sg(g).name for g in i.security_groups]) for i in t.instances] == [
        ("default", ["default"]), ("alb-sg", ["alb-sg"]), ("app-sg", ["app-sg"]), ("db-sg", ["db-sg"]),
        ("monitoring-ops", ["monitoring - ops"])]
    assert all(i.public_ip in ip_network("198.51.100.0/24") for i in t.instances)
    assert [s.name for s in t.subnets] == ["imported"] and str(t.vpc.cidr) == "10.20.0.0/16"
    assert any("one instance per security group (5)" in n for n in result.notes)


def test_security_group_rules_shape_gives_the_same_permissions():
    by_groups = import_aws([SGS], INSTANCES, SUBNETS, VPCS).loaded.topology
    by_rules = import_aws([RULES], INSTANCES, SUBNETS, VPCS)
    t = by_rules.loaded.topology
    for name in ("alb-sg", "app-sg", "db-sg"):        # names from the instances' Groups
        for direction in Direction:
            assert permissions(t, name, direction) == permissions(by_groups, name, direction)
    assert any("sgr" not in s and "pl-63a5400a" in s and "SecurityGroupRules[4]" in s for s in by_rules.skipped)
    assert any("sg-0a1b2c3d4e5f60004" in s and "rules are not in the inputs" in s for s in by_rules.skipped)


def test_both_shapes_together_merge_duplicates():
    result = import_aws([SGS, RULES], INSTANCES, SUBNETS, VPCS)
    assert len(result.loaded.topology.sg("alb-sg").ingress) == 3
    assert any("repeats a permission; merged" in n for n in result.notes)


def test_subnet_blocks_are_guessed_from_instances_without_describe_subnets():
    result = import_aws([SGS], INSTANCES)
    t = result.loaded.topology
    assert [str(s.cidr) for s in t.subnets] == ["10.20.1.0/24", "10.20.2.0/24", "10.20.3.0/24"]
    assert str(t.vpc.cidr) == "10.20.0.0/22"                          # the smallest cover
    assert t.instance("alb-node-1").ipv6 is None
    assert any("IPv6 address 2600:1f18:1234:5601::10 not carried over" in s for s in result.skipped)
    assert any("guessed 10.20.1.0/24" in n for n in result.notes)


@pytest.mark.parametrize("permission, expected", [
    ({"IpProtocol": "-1", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
     "ingress all from 10.0.0.0/8"),                                   # ports ignored for -1
    ({"IpProtocol": "6", "FromPort": 0, "ToPort": 65535, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
     "ingress tcp 0-65535 from 10.0.0.0/8"),
    ({"IpProtocol": "icmp", "FromPort": 3, "ToPort": 4, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "ingress icmp 3/4 from 0.0.0.0/0"),                               # type/code in From/ToPort
    ({"IpProtocol": "icmpv6", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}, "ingress icmpv6 -1/-1 from ::/0"),
    ({"IpProtocol": "47", "IpRanges": [{"CidrIp": "192.0.2.0/24"}]}, "ingress 47 from 192.0.2.0/24"),
])
def test_protocol_encodings(tmp_path, permission, expected):
    path = write_json(tmp_path, "sgs.json", one_group([permission]))
    [rule] = import_aws([path]).loaded.topology.sg("web").ingress
    assert rule.describe() == expected


@pytest.mark.parametrize("permission, message", [
    ({"IpProtocol": "tcp", "FromPort": "eighty", "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "sgs.json: SecurityGroups[0].IpPermissions[0].FromPort: expected an integer"),
    ({"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "sgs.json: SecurityGroups[0].IpPermissions[0].IpRanges[0]: tcp ports 90-80 are not a port range"),
    ({"IpProtocol": "icmp", "FromPort": -1, "ToPort": 4, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
     "ICMP type -1 code 4 is not valid"),
    ({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0/8"}]},
     "sgs.json: SecurityGroups[0].IpPermissions[0].IpRanges[0]: '10.0.0/8' is not a CIDR"),
    ({"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"Description": "x"}]},
     "sgs.json: SecurityGroups[0].IpPermissions[0].IpRanges[0]: has no CidrIp"),
    ({"IpProtocol": "gre", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}, "'gre' is not a protocol"),
])
def test_malformed_input_names_file_and_json_path(tmp_path, permission, message):
    path = write_json(tmp_path, "sgs.json", one_group([permission, {
        "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]))
    with pytest.raises(ImportSourceError) as info:
        import_aws([path], strict=True)                     # all or nothing
    assert message in str(info.value)
    result = import_aws([path])                             # default: the rest, the bad item named
    assert permissions(result.loaded.topology, "web", Direction.INGRESS) == {"ingress tcp 22 from 10.0.0.0/8"}
    [skipped] = result.skipped
    assert message in skipped and skipped.endswith("not carried over")


def test_not_json_and_wrong_shape(tmp_path):
    bad = tmp_path / "sgs.json"
    bad.write_text('{"SecurityGroups": [')
    with pytest.raises(ImportSourceError, match=r"sgs.json:1:\d+: not valid JSON"):
        import_aws([bad])
    with pytest.raises(ImportSourceError, match=r"sgs.json: holds Foo, not the output of an `aws ec2 describe-"):
        import_aws([write_json(tmp_path, "sgs.json", {"Foo": []})])
    with pytest.raises(ImportSourceError, match=r"sgs.json: SecurityGroups: expected a list, got an object"):
        import_aws([write_json(tmp_path, "sgs.json", {"SecurityGroups": {}})])


def test_a_file_is_read_for_what_it_holds_whichever_option_names_it(tmp_path):
    result = import_aws([SUBNETS], SGS)          # swapped: each file is recognised by its top-level key
    assert {s.name for s in result.loaded.topology.subnets} >= {"private-a"}
    assert result.loaded.topology.sg("alb-sg").id == "sg-0a1b2c3d4e5f60001"


def test_several_vpcs_need_a_choice_in_strict_mode_and_the_rest_is_listed(tmp_path):
    data = one_group([])
    data["SecurityGroups"].append({**data["SecurityGroups"][0], "GroupId": "sg-0fffffffffffffff0",
                                   "GroupName": "other", "VpcId": "vpc-02"})
    data["SecurityGroups"].append({**data["SecurityGroups"][0], "GroupId": "sg-0eeeeeeeeeeeeeee0",
                                   "GroupName": "other2", "VpcId": "vpc-02"})
    path = write_json(tmp_path, "sgs.json", data)
    with pytest.raises(ImportSourceError, match=r"span 2 VPCs: .*choose one with --vpc"):
        import_aws([path], strict=True)
    largest = import_aws([path])                 # default: the VPC with the most objects, the rest listed
    assert [g.name for g in largest.loaded.topology.security_groups] == ["default", "other", "other2"]
    assert any("span 2 VPCs: vpc-02 (2 objects), vpc-01 (1 object); imported vpc-02" in n for n in largest.notes)
    result = import_aws([path], vpc="vpc-01")
    assert [g.name for g in result.loaded.topology.security_groups] == ["default", "web"]
    assert any("security group sg-0fffffffffffffff0 (other) is in vpc-02, not vpc-01" in s for s in result.skipped)


def test_group_attached_to_an_instance_but_missing_is_created_empty_and_listed(tmp_path):
    instances = {"Reservations": [{"Instances": [{
        "InstanceId": "i-0123456789abcdef0", "PrivateIpAddress": "10.0.1.10", "SubnetId": "subnet-01",
        "VpcId": "vpc-01", "SecurityGroups": [{"GroupId": "sg-0aaaaaaaaaaaaaaa0", "GroupName": "ghost"}]}]}]}
    result = import_aws([write_json(tmp_path, "sgs.json", one_group([]))],
                        write_json(tmp_path, "instances.json", instances))
    ghost = result.loaded.topology.sg("ghost")
    assert (ghost.id, ghost.ingress, ghost.egress) == ("sg-0aaaaaaaaaaaaaaa0", (), ())
    assert any("sg-0aaaaaaaaaaaaaaa0 (ghost) is attached there but its rules are not in the inputs" in s
               for s in result.skipped)
    assert result.loaded.topology.instance("i-0123456789abcdef0").private_ip == ip_address("10.0.1.10")


def test_more_rules_than_the_default_quota_raise_it_with_a_note(tmp_path):
    ranges = [{"CidrIp": f"10.{n}.0.0/16"} for n in range(70)]
    result = import_aws([write_json(tmp_path, "sgs.json", one_group(
        [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": ranges}]))])
    assert result.loaded.topology.options.quotas.rules_per_sg == 70
    assert any("options.quotas {'rules_per_sg': 70}" in n for n in result.notes)


def test_cli_writes_the_file_and_warns_about_what_was_not_carried(tmp_path):
    out = tmp_path / "shop.yaml"
    run = CliRunner().invoke(cli, ["import", "aws", "--security-groups", str(SGS), "--instances", str(INSTANCES),
                                   "--subnets", str(SUBNETS), "--vpcs", str(VPCS), "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert "warning: describe-security-groups.json: SecurityGroups[2].IpPermissionsEgress[1]" in run.output
    assert "7 item(s) not carried over" in run.output
    assert load(out).topology.name == "shop"


def test_cli_takes_any_describe_output_as_files_and_strict_refuses_a_bad_item(tmp_path):
    bad = write_json(tmp_path, "sgs.json", one_group([
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]))
    out = tmp_path / "web.yaml"
    run = CliRunner().invoke(cli, ["import", "aws", str(bad), "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert "tcp ports 90-80 are not a port range" in run.output and "1 item(s) not carried over" in run.output
    assert permissions(load(out).topology, "web", Direction.INGRESS) == {"ingress tcp 22 from 10.0.0.0/8"}
    strict = CliRunner().invoke(cli, ["import", "aws", str(bad), "--strict", "-o", str(tmp_path / "no.yaml")])
    assert strict.exit_code == 1 and "tcp ports 90-80 are not a port range" in str(strict.exception)
    assert not (tmp_path / "no.yaml").exists()
    none = CliRunner().invoke(cli, ["import", "aws"])
    assert none.exit_code == 2 and "give at least one file" in none.output


@pytest.mark.parametrize("encoding, bom", [("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                          ("utf-8", b"\xef\xbb\xbf"), ("utf-8", b"")])
def test_output_saved_by_powershell_reads_like_the_original(tmp_path, encoding, bom):
    saved = tmp_path / "sgs.json"
    saved.write_bytes(bom + SGS.read_text(encoding="utf-8").replace("\n", "\r\n").encode(encoding))
    assert import_aws([saved]).data == import_aws([SGS]).data
    assert import_aws([DATA / "describe-security-groups.utf16.json"]).data == import_aws([SGS]).data


def test_text_in_no_encoding_is_refused_with_the_place(tmp_path):
    bad = tmp_path / "sgs.json"
    bad.write_bytes(b'{"SecurityGroups": ["\xff\xfe\xfd"]}')
    with pytest.raises(ImportSourceError, match=r"sgs.json: byte 21 is not UTF-8 text"):
        import_aws([bad])


def test_network_interfaces_of_other_services_are_nodes_and_instances_are_not_doubled(tmp_path):
    def eni(eni_id: str, ip: str, **extra) -> dict:
        return {"NetworkInterfaceId": eni_id, "SubnetId": "subnet-0aa11bb22cc33dd02", "VpcId": "vpc-0a1b2c3d4e5f60718",
                "PrivateIpAddress": ip, "Status": "in-use", "Groups": [{"GroupId": "sg-0fedcba9876543210",
                                                                        "GroupName": "rds"}], **extra}
    enis = write_json(tmp_path, "enis.json", {"NetworkInterfaces": [
        eni("eni-0000000000000000a", "10.20.2.50", Description="RDSNetworkInterface", RequesterManaged=True),
        eni("eni-0000000000000000b", "10.20.2.10", Attachment={"InstanceId": "i-0a1b2c3d4e5f60002", "DeviceIndex": 0}),
        eni("eni-0000000000000000c", "10.20.2.60", Attachment={"InstanceId": "i-0a1b2c3d4e5f60002", "DeviceIndex": 1}),
        eni("eni-0000000000000000d", "10.20.2.70", Status="available")]})
    result = import_aws([SGS], INSTANCES, SUBNETS, VPCS, files=[enis])
    t = result.loaded.topology
    rds = t.instance("rdsnetworkinterface")
    assert (str(rds.private_ip), [t.sg(g).name for g in rds.security_groups]) == ("10.20.2.50", ["rds"])
    assert sum(str(i.private_ip) == "10.20.2.10" for i in t.instances) == 1                 # the instance, once
    assert any("eni-0000000000000000c: secondary interface of instance i-0a1b2c3d4e5f60002" in s for s in result.skipped)
    assert any("eni-0000000000000000d is available (attached to nothing)" in s for s in result.skipped)
