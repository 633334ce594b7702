"""Importing route tables and NAT gateways from AWS CLI JSON: the main table becomes `main`, subnets
follow their associations, igw/eigw/NAT targets carry over, anything a lab cannot model becomes a
blackhole with a note naming the real target, and the result validates and routes."""
from __future__ import annotations

import json
from ipaddress import ip_address
from pathlib import Path

from click.testing import CliRunner

from emulator.cli import cli
from emulator.importers import import_aws
from emulator.routes import route_from

VPC = "vpc-0a1b2c3d4e5f60718"
DOCS = {
    "vpcs.json": {"Vpcs": [{"VpcId": VPC, "CidrBlock": "10.0.0.0/16"}]},
    "subnets.json": {"Subnets": [
        {"SubnetId": "subnet-0000000000000000a", "VpcId": VPC, "CidrBlock": "10.0.1.0/24",
         "Tags": [{"Key": "Name", "Value": "public"}]},
        {"SubnetId": "subnet-0000000000000000b", "VpcId": VPC, "CidrBlock": "10.0.2.0/24",
         "Tags": [{"Key": "Name", "Value": "private"}]}]},
    "sgs.json": {"SecurityGroups": [{"GroupId": "sg-0123456789abcdef0", "GroupName": "app", "VpcId": VPC,
                                     "IpPermissions": [], "IpPermissionsEgress": [
                                         {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]},
    "nat.json": {"NatGateways": [{"NatGatewayId": "nat-0aaaaaaaaaaaaaaaa", "SubnetId": "subnet-0000000000000000a",
                                  "VpcId": VPC, "State": "available", "ConnectivityType": "public",
                                  "NatGatewayAddresses": [{"PrivateIp": "10.0.1.200",
                                                           "PublicIp": "198.51.100.50"}]}]},
    "rt.json": {"RouteTables": [
        {"RouteTableId": "rtb-0000000000000000a", "VpcId": VPC, "Associations": [{"Main": True}],
         "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"},
                    {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-0bbbbbbbbbbbbbbbb",
                     "State": "active"}]},
        {"RouteTableId": "rtb-0000000000000000b", "VpcId": VPC,
         "Associations": [{"Main": False, "SubnetId": "subnet-0000000000000000b"}],
         "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local", "State": "active"},
                    {"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-0aaaaaaaaaaaaaaaa",
                     "State": "active"},
                    {"DestinationCidrBlock": "192.168.0.0/16", "VpcPeeringConnectionId": "pcx-0ccc", "State": "active"},
                    {"DestinationIpv6CidrBlock": "::/0", "EgressOnlyInternetGatewayId": "eigw-0ddd",
                     "State": "active"}]}]},
}


def write(tmp_path: Path) -> list[str]:
    paths = []
    for name, doc in DOCS.items():
        (tmp_path / name).write_text(json.dumps(doc))
        paths.append(str(tmp_path / name))
    return paths


def test_route_tables_and_nat_gateways_are_imported(tmp_path: Path) -> None:
    result = import_aws(files=write(tmp_path))
    data = result.data
    assert data["nat_gateways"] == [{"name": "nat-0aaaaaaaaaaaaaaaa", "id": "nat-0aaaaaaaaaaaaaaaa",
                                     "subnet": "public", "private_ip": "10.0.1.200", "public_ip": "198.51.100.50"}]
    tables = {t["name"]: t for t in data["route_tables"]}
    assert tables["main"]["routes"] == [{"destination": "0.0.0.0/0", "target": "igw"}]
    assert tables["rtb-0000000000000000b"] == {
        "name": "rtb-0000000000000000b", "id": "rtb-0000000000000000b", "subnets": ["private"],
        "routes": [{"destination": "0.0.0.0/0", "target": "nat-0aaaaaaaaaaaaaaaa"},
                   {"destination": "192.168.0.0/16", "target": "blackhole"},
                   {"destination": "::/0", "target": "eigw"}]}
    assert any("route 192.168.0.0/16 -> VPC peering connection pcx-0ccc became blackhole" in n for n in result.notes)
    topology = result.loaded.topology
    assert route_from(topology, "private", ip_address("203.0.113.9")).target == "nat-0aaaaaaaaaaaaaaaa"
    assert route_from(topology, "public", ip_address("203.0.113.9")).target == "igw"


def test_a_route_to_a_nat_gateway_not_given_becomes_blackhole(tmp_path: Path) -> None:
    paths = [p for p in write(tmp_path) if not p.endswith("nat.json")]
    result = import_aws(files=paths)
    tables = {t["name"]: t for t in result.data["route_tables"]}
    assert tables["rtb-0000000000000000b"]["routes"][0] == {"destination": "0.0.0.0/0", "target": "blackhole"}
    assert any("give describe-nat-gateways output" in n for n in result.notes)


def test_the_cli_flags_name_the_routing_files(tmp_path: Path) -> None:
    paths = dict(zip(DOCS, write(tmp_path)))
    out = tmp_path / "lab.yaml"
    result = CliRunner().invoke(cli, ["import", "aws", paths["sgs.json"], "--subnets", paths["subnets.json"],
                                      "--vpcs", paths["vpcs.json"], "--route-tables", paths["rt.json"],
                                      "--nat-gateways", paths["nat.json"], "-o", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "nat_gateways:" in text and "target: nat-0aaaaaaaaaaaaaaaa" in text


def test_a_private_nat_gateway_and_an_edge_association_are_named(tmp_path: Path) -> None:
    nat = {"NatGatewayId": "nat-0bbbbbbbbbbbbbbbb", "SubnetId": "subnet-0000000000000000b", "VpcId": VPC,
           "State": "available", "ConnectivityType": "private", "NatGatewayAddresses": [{"PrivateIp": "10.0.2.99"}]}
    edge = {"RouteTableId": "rtb-0000000000000000c", "VpcId": VPC, "Routes": [],
            "Associations": [{"Main": False, "GatewayId": "igw-0bbbbbbbbbbbbbbbb"}]}
    (tmp_path / "more.json").write_text(json.dumps({"NatGateways": [nat]}))
    (tmp_path / "edge.json").write_text(json.dumps({"RouteTables": [edge]}))
    result = import_aws(files=[*write(tmp_path), str(tmp_path / "more.json"), str(tmp_path / "edge.json")])
    assert [n["id"] for n in result.data["nat_gateways"]] == ["nat-0aaaaaaaaaaaaaaaa"]
    assert any("nat-0bbbbbbbbbbbbbbbb not carried over: it is a private NAT gateway" in s for s in result.skipped)
    assert any("its association with igw-0bbbbbbbbbbbbbbbb not carried over: a gateway (edge) route table" in s
               for s in result.skipped)
