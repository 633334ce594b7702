"""`sgemu export --format aws`: describe-security-groups JSON that imports back to the same groups."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from emulator.cli import cli
from emulator.importers import import_aws
from emulator.importers.export import (
    describe_managed_prefix_lists,
    describe_network_acls,
    describe_security_groups,
    get_managed_prefix_list_entries,
)
from emulator.topology import load

ROOT = Path(__file__).parent.parent.parent
TOPOLOGIES = sorted((ROOT / "topologies").glob("*.yaml"))
THREE_TIER = ROOT / "topologies" / "three-tier.yaml"
AWS_DATA = Path(__file__).parent.parent / "data" / "aws"


def test_three_tier_in_the_aws_shape():
    groups = {g["GroupName"]: g for g in describe_security_groups(load(THREE_TIER).topology)["SecurityGroups"]}
    alb, app = groups["alb-sg"], groups["app-sg"]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"], p["IpRanges"]) for p in alb["IpPermissions"]] == [
        ("tcp", 80, 80, [{"CidrIp": "0.0.0.0/0", "Description": "HTTP"}]),
        ("tcp", 443, 443, [{"CidrIp": "0.0.0.0/0", "Description": "HTTPS"}])]
    assert app["IpPermissions"][0]["UserIdGroupPairs"] == [{"GroupId": alb["GroupId"], "UserId": "123456789012"}]
    assert groups["db-sg"]["IpPermissionsEgress"] == []
    default = groups["default"]["IpPermissionsEgress"]
    assert default == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [],
                        "PrefixListIds": [], "UserIdGroupPairs": []}]


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.stem)
def test_round_trip_through_import_keeps_every_group(tmp_path, path):
    topology = load(path).topology
    exported = tmp_path / "sgs.json"
    exported.write_text(json.dumps(describe_security_groups(topology)))
    lists = tmp_path / "prefix-lists.json"
    lists.write_text(json.dumps(describe_managed_prefix_lists(topology)))
    entries = {}
    for pl in topology.prefix_lists:            # get-managed-prefix-list-entries, one file per list
        entries[pl.id] = tmp_path / f"{pl.id}.json"
        entries[pl.id].write_text(json.dumps(get_managed_prefix_list_entries(pl)))
    nacls = tmp_path / "nacls.json"
    nacls.write_text(json.dumps(describe_network_acls(topology)))
    again = import_aws([exported], files=[lists, nacls], prefix_list_entries=entries).loaded.topology
    assert again.security_groups == topology.security_groups
    assert again.prefix_lists == topology.prefix_lists
    # NACLs keep their ids and entries (their subnets need describe-subnets output, not exported here)
    assert [(n.id, n.ingress, n.egress) for n in again.network_acls] == \
        [(n.id, n.ingress, n.egress) for n in topology.network_acls]


def test_round_trip_of_an_awkward_import(tmp_path):
    first = import_aws([AWS_DATA / "describe-security-groups.json"], vpcs=AWS_DATA / "describe-vpcs.json")
    exported = tmp_path / "sgs.json"
    exported.write_text(json.dumps(describe_security_groups(first.loaded.topology)))
    again = import_aws([exported], vpcs=AWS_DATA / "describe-vpcs.json").loaded.topology
    assert again.security_groups == first.loaded.topology.security_groups
    assert again.vpc.id == first.loaded.topology.vpc.id == "vpc-0a1b2c3d4e5f60718"   # VpcId survives
    twice = describe_security_groups(again)["SecurityGroups"]
    assert {g["VpcId"] for g in twice} == {g["VpcId"] for g in json.loads(exported.read_text())["SecurityGroups"]}


def test_icmp_type_and_code_travel_in_from_and_to_port(tmp_path):
    topo = tmp_path / "t.yaml"
    topo.write_text(yaml.safe_dump({"vpc": {"cidr": "10.0.0.0/16"}, "subnets": [{"name": "a", "cidr": "10.0.1.0/24"}],
                                    "security_groups": [{"name": "p", "ingress": [
                                        {"protocol": "icmp", "icmp_type": 3, "icmp_code": 4, "cidr": "0.0.0.0/0"},
                                        {"protocol": 47, "cidr": "192.0.2.0/24"}]}]}))
    [group] = [g for g in describe_security_groups(load(topo).topology)["SecurityGroups"] if g["GroupName"] == "p"]
    icmp, gre = group["IpPermissions"]
    assert (icmp["IpProtocol"], icmp["FromPort"], icmp["ToPort"]) == ("icmp", 3, 4)
    assert gre["IpProtocol"] == "47" and "FromPort" not in gre


def test_cli_export_aws_and_yaml():
    runner = CliRunner()
    run = runner.invoke(cli, ["export", "--format", "aws", str(THREE_TIER)])
    assert run.exit_code == 0, run.output
    assert {g["GroupName"] for g in json.loads(run.output)["SecurityGroups"]} == {"default", "alb-sg", "app-sg",
                                                                                   "db-sg"}
    run = runner.invoke(cli, ["export", "--format", "yaml", str(THREE_TIER)])
    assert run.exit_code == 0 and yaml.safe_load(run.output)["name"] == "three-tier"
    assert runner.invoke(cli, ["export", "--format", "aws", "--lab", "no-such-lab"]).exit_code != 0
