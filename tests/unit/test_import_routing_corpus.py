"""Real Terraform plans with route tables and NAT gateways (`../shared/corpus/terraform`, skipped when
absent): what each really declares (read from the JSON) is in the lab, or named with the reason."""
from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest

from emulator.importers import import_terraform
from emulator.routes import route_from

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "terraform"
INTERNET = ip_address("203.0.113.9")


def imported(name: str):
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return import_terraform(path)


def by_cidr(result) -> dict[str, str]:
    """lab subnet name by CIDR"""
    return {s["cidr"]: s["name"] for s in result.data["subnets"]}


def table_of(result, subnet: str) -> dict:
    return next(t for t in result.data["route_tables"] if subnet in t.get("subnets", []))


def test_vpc_module_three_nat_gateways_one_per_az() -> None:
    """terraform-aws-modules/vpc with enable_nat_gateway: a NAT gateway per public subnet, a private table
    per AZ whose 0.0.0.0/0 goes to the NAT gateway of the same AZ (count.index), one public table."""
    result = imported("tfcompliance-issue-158-vpc-module-nat-plan.json")
    subnets = by_cidr(result)
    nats = {n["name"]: n for n in result.data["nat_gateways"]}
    assert sorted(n["subnet"] for n in nats.values()) == sorted(subnets[f"10.0.{i}.0/24"] for i in (101, 102, 103))
    assert len({n["public_ip"] for n in nats.values()}) == 3
    assert len(result.data["route_tables"]) == 4
    t = result.loaded.topology
    for private, public in ((1, 101), (2, 102), (3, 103)):
        table = table_of(result, subnets[f"10.0.{private}.0/24"])
        [out] = table["routes"]
        assert out["destination"] == "0.0.0.0/0" and nats[out["target"]]["subnet"] == subnets[f"10.0.{public}.0/24"]
        assert route_from(t, subnets[f"10.0.{private}.0/24"], INTERNET).target == out["target"]
    public = table_of(result, subnets["10.0.101.0/24"])
    assert public["subnets"] == [subnets[f"10.0.{i}.0/24"] for i in (101, 102, 103)]
    assert public["routes"] == [{"destination": "0.0.0.0/0", "target": "igw"}]
    assert any("declare no main route table" in n for n in result.notes)
    assert sum("its Elastic IP" in n and "known only after apply" in n for n in result.notes) == 3


def test_ecs_simple_private_table_routes_to_a_nat_gateway_the_lab_cannot_place() -> None:
    """All four subnets are written 10.0.0.1/16, so one is carried; the NAT gateway sits in
    aws_subnet.public[0], which is not: named, and the private table's 0.0.0.0/0 becomes blackhole."""
    result = imported("terraview-ecs-simple-plan.json")
    assert "nat_gateways" not in result.data
    assert any("aws_nat_gateway.this not carried over" in s for s in result.skipped)
    tables = {t["name"]: t for t in result.data["route_tables"]}
    [private] = [t for t in tables.values() if t.get("subnets")]
    assert private["routes"] == [{"destination": "0.0.0.0/0", "target": "blackhole"}]
    assert any("-> aws_nat_gateway.this became blackhole" in n for n in result.notes)
    assert [{"destination": "0.0.0.0/0", "target": "igw"}] in [t["routes"] for t in tables.values()]


@pytest.mark.parametrize(("name", "cidrs", "table_id"), [
    ("atlantis-workshop-tfplan.json", ["10.0.1.0/24"], "rtb-31c4667bdc986d29f"),
    ("nyaras-devsecops-tfplan.json", ["10.1.1.0/24"], None),
    ("checkov-terragoat-two-vpcs-plan.json", ["172.16.10.0/24", "172.16.11.0/24"], None),
])
def test_public_route_table_to_the_internet_gateway(name: str, cidrs: list[str], table_id: str | None) -> None:
    result = imported(name)
    subnets = by_cidr(result)
    [table] = result.data["route_tables"]
    assert table["subnets"] == [subnets[c] for c in cidrs]
    assert table["routes"] == [{"destination": "0.0.0.0/0", "target": "igw"}]
    assert table.get("id") == table_id
    assert "nat_gateways" not in result.data


def test_routes_of_cloud_control_tables_are_named() -> None:
    """aws_route resources whose route_table_id is an awscc_ec2_route_table: the table is not read, so
    each route is named with it."""
    result = imported("s2svpn-for-each-modules-plan.json")
    assert "route_tables" not in result.data
    assert sum("aws_route.private_to_tgw" in s and "awscc_ec2_route_table.private" in s for s in result.skipped) == 2


@pytest.mark.parametrize("name", ["tfcompliance-issue-158-vpc-module-nat-plan.json", "terraview-ecs-simple-plan.json",
                                  "checkov-terragoat-two-vpcs-plan.json"])
def test_the_imported_file_validates(name: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from emulator.cli import cli

    imported(name)                                           # skips when the corpus is absent
    out = tmp_path / "lab.yaml"
    runner = CliRunner()
    assert runner.invoke(cli, ["import", "terraform", str(CORPUS / name), "-o", str(out)]).exit_code == 0
    checked = runner.invoke(cli, ["validate", str(out)])
    assert checked.exit_code == 0 and "valid" in checked.output, checked.output
