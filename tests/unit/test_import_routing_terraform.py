"""Importing route tables, routes and gateways from Terraform (plan and state): aws_route_table (inline
routes), aws_route, aws_route_table_association, aws_main_route_table_association,
aws_default_route_table, aws_nat_gateway (Elastic IP through allocation_id), aws_internet_gateway,
aws_egress_only_internet_gateway; unknown-after-apply values resolved through references or reported,
never guessed; the lab section is the one `import aws` builds."""
from __future__ import annotations

import json
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator.cli import cli
from emulator.importers import ImportSourceError, import_terraform
from emulator.routes import route_from

DATA = Path(__file__).resolve().parents[1] / "data" / "terraform"
THREE_TIER = DATA / "three-tier-nat-plan.json"
VPC, PUB, PRIV = "vpc-0a1b2c3d4e5f60718", "subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"
RTB_PUB, RTB_PRIV, RTB_MAIN = "rtb-0aaaaaaaaaaaaaaa1", "rtb-0aaaaaaaaaaaaaaa2", "rtb-0aaaaaaaaaaaaaaa3"
NAT, EIP = "nat-0aaaaaaaaaaaaaaa1", "eipalloc-0aaaaaaaaaaaaaaa1"
INTERNET = ip_address("203.0.113.9")


def tables(result) -> dict[str, dict]:
    return {t["name"]: t for t in result.data.get("route_tables", [])}


# --- a plan of the three-tier pattern (tests/data/terraform/three-tier-nat-plan.json) ---------------

def test_three_tier_plan_carries_its_tables_nat_gateway_and_main_table() -> None:
    result = import_terraform(THREE_TIER)
    [nat] = result.data["nat_gateways"]
    assert (nat["name"], nat["subnet"]) == ("shop-nat", "public") and "id" not in nat
    assert ip_address(nat["public_ip"]) in ip_network("198.51.100.128/25")     # TEST-NET-2 placeholders
    assert any(f"its Elastic IP (aws_eip.nat) is known only after apply; the lab gives the NAT gateway "
               f"{nat['public_ip']}" in n for n in result.notes)
    got = tables(result)
    assert got["public"] == {"name": "public", "subnets": ["public"],
                             "routes": [{"destination": "0.0.0.0/0", "target": "igw"}]}
    assert got["app"] == {"name": "app", "subnets": ["app"], "routes": [
        {"destination": "0.0.0.0/0", "target": "shop-nat"},          # aws_route, nat_gateway_id from the reference
        {"destination": "172.31.0.0/16", "target": "blackhole"},     # to the private NAT gateway
        {"destination": "192.168.0.0/16", "target": "blackhole"}]}   # to a peering connection
    assert got["main"] == {"name": "main", "routes": []}             # aws_default_route_table: emptied by Terraform
    t = result.loaded.topology
    assert route_from(t, "app", INTERNET).target == "shop-nat"
    assert route_from(t, "public", INTERNET).target == "igw"
    assert route_from(t, "data", INTERNET).target is None            # the main table: local route only
    assert result.loaded.warnings == ()


def test_three_tier_plan_names_what_a_lab_cannot_follow() -> None:
    result = import_terraform(THREE_TIER)
    assert any("aws_nat_gateway.office not carried over: it is a private NAT gateway (connectivity type private"
               in s for s in result.skipped)
    assert any("route 172.31.0.0/16 -> aws_nat_gateway.office became blackhole: that NAT gateway is not carried "
               "over" in n for n in result.notes)
    assert any("route 192.168.0.0/16 -> VPC peering connection pcx-0a1b2c3d4e5f60718 became blackhole" in n
               for n in result.notes)
    assert not any("no main route table" in n for n in result.notes)


def test_the_imported_file_validates_with_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "lab.yaml"
    imported = CliRunner().invoke(cli, ["import", "terraform", str(THREE_TIER), "-o", str(out)])
    assert imported.exit_code == 0, imported.output
    assert "target: shop-nat" in out.read_text()
    checked = CliRunner().invoke(cli, ["validate", str(out)])
    assert checked.exit_code == 0, checked.output


# --- a state: every value known ---------------------------------------------------------------

def resource(address: str, values: dict) -> dict:
    kind, name = address.split(".")[:2]
    return {"address": address, "mode": "managed", "type": kind, "name": name.split("[")[0], "values": values}


def route(**target: str) -> dict:
    empty = dict.fromkeys(("cidr_block", "ipv6_cidr_block", "destination_prefix_list_id", "gateway_id",
                           "nat_gateway_id", "egress_only_gateway_id", "transit_gateway_id", "vpc_endpoint_id",
                           "vpc_peering_connection_id", "network_interface_id", "local_gateway_id",
                           "carrier_gateway_id", "core_network_arn"), "")
    return {**empty, **target}


def write_state(tmp_path: Path, *resources: dict, name: str = "state.json") -> Path:
    doc = {"format_version": "1.0", "values": {"root_module": {"resources": [
        resource("aws_vpc.main", {"id": VPC, "cidr_block": "10.0.0.0/16", "ipv6_cidr_block": "2600:1f18:1::/56",
                                  "main_route_table_id": RTB_MAIN, "default_route_table_id": RTB_MAIN}),
        resource("aws_subnet.pub", {"id": PUB, "vpc_id": VPC, "cidr_block": "10.0.1.0/24",
                                    "ipv6_cidr_block": "2600:1f18:1:1::/64", "tags": {"Name": "pub"}}),
        resource("aws_subnet.priv", {"id": PRIV, "vpc_id": VPC, "cidr_block": "10.0.2.0/24",
                                     "ipv6_cidr_block": "2600:1f18:1:2::/64", "tags": {"Name": "priv"}}),
        *resources]}}}
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


GATEWAYS = (resource("aws_internet_gateway.gw", {"id": "igw-0aaaaaaaaaaaaaaa1", "vpc_id": VPC}),
            resource("aws_egress_only_internet_gateway.v6", {"id": "eigw-0aaaaaaaaaaaaaaa1", "vpc_id": VPC}),
            resource("aws_eip.nat", {"id": EIP, "allocation_id": EIP, "public_ip": "198.51.100.50", "domain": "vpc"}),
            resource("aws_nat_gateway.nat", {"id": NAT, "subnet_id": PUB, "allocation_id": EIP,
                                             "connectivity_type": "public", "private_ip": "10.0.1.200",
                                             "public_ip": "198.51.100.50", "tags": {"Name": "nat-a"}}))


def test_state_inline_routes_associations_and_every_target(tmp_path: Path) -> None:
    path = write_state(
        tmp_path, *GATEWAYS,
        resource("aws_route_table.pub", {"id": RTB_PUB, "vpc_id": VPC, "tags": {"Name": "public"}, "route": [
            route(cidr_block="0.0.0.0/0", gateway_id="igw-0aaaaaaaaaaaaaaa1"),
            route(ipv6_cidr_block="::/0", gateway_id="igw-0aaaaaaaaaaaaaaa1")]}),
        resource("aws_route_table.priv", {"id": RTB_PRIV, "vpc_id": VPC, "route": [
            route(cidr_block="0.0.0.0/0", nat_gateway_id=NAT),
            route(ipv6_cidr_block="::/0", egress_only_gateway_id="eigw-0aaaaaaaaaaaaaaa1"),
            route(cidr_block="10.50.0.0/16", transit_gateway_id="tgw-0aaaaaaaaaaaaaaa1"),
            route(cidr_block="10.60.0.0/16", vpc_endpoint_id="vpce-0aaaaaaaaaaaaaaa1"),
            route(cidr_block="10.70.0.0/16", network_interface_id="eni-0aaaaaaaaaaaaaaa1"),
            route(cidr_block="10.0.0.0/16", gateway_id="local")]}),
        resource("aws_route_table_association.pub", {"id": "rtbassoc-1", "route_table_id": RTB_PUB,
                                                     "subnet_id": PUB}),
        resource("aws_route_table_association.priv", {"id": "rtbassoc-2", "route_table_id": RTB_PRIV,
                                                      "subnet_id": PRIV}))
    result = import_terraform(path)
    assert result.data["nat_gateways"] == [{"name": "nat-a", "id": NAT, "subnet": "pub", "private_ip": "10.0.1.200",
                                            "public_ip": "198.51.100.50"}]
    got = tables(result)
    assert got["public"] == {"name": "public", "id": RTB_PUB, "subnets": ["pub"], "routes": [
        {"destination": "0.0.0.0/0", "target": "igw"}, {"destination": "::/0", "target": "igw"}]}
    assert got["priv"]["id"] == RTB_PRIV and got["priv"]["subnets"] == ["priv"]
    assert got["priv"]["routes"] == [
        {"destination": "0.0.0.0/0", "target": "nat-a"}, {"destination": "::/0", "target": "eigw"},
        {"destination": "10.50.0.0/16", "target": "blackhole"}, {"destination": "10.60.0.0/16", "target": "blackhole"},
        {"destination": "10.70.0.0/16", "target": "blackhole"}]               # the local route is implicit
    notes = "\n".join(result.notes)
    for real in ("transit gateway tgw-0aaaaaaaaaaaaaaa1", "VPC endpoint vpce-0aaaaaaaaaaaaaaa1",
                 "network interface eni-0aaaaaaaaaaaaaaa1"):
        assert f"-> {real} became blackhole: a lab does not emulate it" in notes
    t = result.loaded.topology
    assert route_from(t, "priv", ip_address("2001:db8::1")).target == "eigw"
    assert route_from(t, "priv", ip_address("10.50.1.1")).target == "blackhole"
    assert "no main route table" in notes       # none declared: the lab's default (public) main stays


def test_state_main_association_and_routes_on_the_vpcs_main_table(tmp_path: Path) -> None:
    path = write_state(
        tmp_path, *GATEWAYS,
        resource("aws_default_route_table.default", {"id": RTB_MAIN, "default_route_table_id": RTB_MAIN,
                                                     "vpc_id": VPC, "route": []}),
        resource("aws_route.main_out", {"id": "r-1", "route_table_id": RTB_MAIN, "destination_cidr_block": "0.0.0.0/0",
                                        "gateway_id": "igw-0aaaaaaaaaaaaaaa1"}),
        resource("aws_route_table.priv", {"id": RTB_PRIV, "vpc_id": VPC, "route": [
            route(cidr_block="0.0.0.0/0", nat_gateway_id=NAT)]}),
        resource("aws_main_route_table_association.main", {"id": "rtbassoc-m", "vpc_id": VPC,
                                                           "route_table_id": RTB_PRIV}))
    result = import_terraform(path)
    got = tables(result)
    assert got["main"] == {"name": "main", "id": RTB_PRIV, "routes": [{"destination": "0.0.0.0/0", "target": "nat-a"}]}
    assert got["default"] == {"name": "default", "id": RTB_MAIN, "routes": [{"destination": "0.0.0.0/0",
                                                                             "target": "igw"}]}
    assert any(f"makes {RTB_PRIV} the main route table: {RTB_MAIN} is an ordinary one" in n for n in result.notes)
    t = result.loaded.topology
    assert route_from(t, "priv", INTERNET).target == "nat-a" and route_from(t, "pub", INTERNET).target == "nat-a"
    assert any("no IPv4 route to the internet gateway" in w for w in result.loaded.warnings)   # as AWS accepts it


def test_state_route_to_the_vpcs_main_route_table_id_defines_main(tmp_path: Path) -> None:
    path = write_state(tmp_path, *GATEWAYS, resource("aws_route.out", {
        "id": "r-1", "route_table_id": RTB_MAIN, "destination_cidr_block": "0.0.0.0/0", "nat_gateway_id": NAT}))
    got = tables(import_terraform(path))
    assert got == {"main": {"name": "main", "id": RTB_MAIN, "routes": [{"destination": "0.0.0.0/0",
                                                                        "target": "nat-a"}]}}


def test_private_nat_gateway_is_not_carried_and_its_routes_blackhole(tmp_path: Path) -> None:
    path = write_state(
        tmp_path,
        resource("aws_nat_gateway.office", {"id": NAT, "subnet_id": PRIV, "connectivity_type": "private",
                                            "private_ip": "10.0.2.50"}),
        resource("aws_route_table.priv", {"id": RTB_PRIV, "vpc_id": VPC, "route": [
            route(cidr_block="172.16.0.0/12", nat_gateway_id=NAT)]}))
    result = import_terraform(path)
    assert "nat_gateways" not in result.data
    assert tables(result)["priv"]["routes"] == [{"destination": "172.16.0.0/12", "target": "blackhole"}]
    assert any(f"NAT gateway {NAT} not carried over: it is a private NAT gateway" in s for s in result.skipped)


def test_public_nat_gateway_without_an_elastic_ip_is_named(tmp_path: Path) -> None:
    path = write_state(tmp_path, resource("aws_nat_gateway.nat", {"id": NAT, "subnet_id": PUB}))
    result = import_terraform(path)
    assert "nat_gateways" not in result.data
    assert any(f"NAT gateway {NAT} not carried over: it has no Elastic IP (allocation_id)" in s for s in result.skipped)


def test_duplicates_merge_and_conflicts_are_named_or_refused(tmp_path: Path) -> None:
    table = resource("aws_route_table.pub", {"id": RTB_PUB, "vpc_id": VPC, "route": [
        route(cidr_block="0.0.0.0/0", gateway_id="igw-0aaaaaaaaaaaaaaa1")]})
    same = resource("aws_route.same", {"id": "r-1", "route_table_id": RTB_PUB, "destination_cidr_block": "0.0.0.0/0",
                                       "gateway_id": "igw-0aaaaaaaaaaaaaaa1"})
    merged = import_terraform(write_state(tmp_path, table, same))
    assert tables(merged)["pub"]["routes"] == [{"destination": "0.0.0.0/0", "target": "igw"}]
    assert any("repeats" in n and "merged" in n for n in merged.notes)
    other = resource("aws_route.other", {"id": "r-2", "route_table_id": RTB_PUB, "destination_cidr_block": "0.0.0.0/0",
                                         "egress_only_gateway_id": "", "vpc_peering_connection_id": "pcx-01234567"})
    path = write_state(tmp_path, table, other, name="conflict.json")
    kept = import_terraform(path)
    assert tables(kept)["pub"]["routes"] == [{"destination": "0.0.0.0/0", "target": "igw"}]
    assert any("route 0.0.0.0/0 -> blackhole conflicts with" in s and "resources[3]" in s for s in kept.skipped)
    with pytest.raises(ImportSourceError, match="conflicts with .*keep one of them"):
        import_terraform(path, strict=True)


def test_a_subnet_in_two_tables_keeps_the_first_and_an_edge_association_is_named(tmp_path: Path) -> None:
    path = write_state(
        tmp_path, *GATEWAYS,
        resource("aws_route_table.a", {"id": RTB_PUB, "vpc_id": VPC, "route": []}),
        resource("aws_route_table.b", {"id": RTB_PRIV, "vpc_id": VPC, "route": []}),
        resource("aws_route_table_association.a", {"id": "x1", "route_table_id": RTB_PUB, "subnet_id": PRIV}),
        resource("aws_route_table_association.b", {"id": "x2", "route_table_id": RTB_PRIV, "subnet_id": PRIV}),
        resource("aws_route_table_association.edge", {"id": "x3", "route_table_id": RTB_PRIV,
                                                      "gateway_id": "igw-0aaaaaaaaaaaaaaa1"}))
    result = import_terraform(path)
    assert tables(result)["a"]["subnets"] == ["priv"] and "subnets" not in tables(result)["b"]
    assert any(f"subnet {PRIV} is already associated at" in s for s in result.skipped)
    assert any("aws_route_table_association.edge not carried over: a gateway (edge) route table" in s
               for s in result.skipped)


# --- a plan: values known only after apply ------------------------------------------------------

def plan(tmp_path: Path, entries: list[tuple[str, dict, dict, dict]]) -> Path:
    """(address, values, after_unknown, configuration expressions) -> a `terraform show -json` plan."""
    def kind_name(address: str) -> tuple[str, str]:
        kind, name = address.split(".")[:2]
        return kind, name.split("[")[0]
    doc = {
        "format_version": "1.2",
        "planned_values": {"root_module": {"resources": [
            {"address": a, "mode": "managed", "type": kind_name(a)[0], "name": kind_name(a)[1], "values": v}
            for a, v, _, _ in entries]}},
        "resource_changes": [{"address": a, "change": {"actions": ["create"], "after_unknown": u}}
                             for a, _, u, _ in entries],
        "configuration": {"root_module": {"resources": list({kind_name(a): {
            "address": ".".join(kind_name(a)), "mode": "managed", "type": kind_name(a)[0], "name": kind_name(a)[1],
            "expressions": e} for a, _, _, e in entries}.values()), "variables": {"nat_id": {}}}},
    }
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    return path


def ref(*names: str) -> dict:
    return {"references": list(names)}


BASE = [("aws_vpc.main", {"cidr_block": "10.0.0.0/16"}, {"id": True}, {"cidr_block": {"constant_value": "10.0.0.0/16"}}),
        *[(f"aws_subnet.priv[{n}]", {"cidr_block": f"10.0.{n + 1}.0/24", "tags": {"Name": f"priv-{n}"}}, {"id": True, "vpc_id": True},
           {"vpc_id": ref("aws_vpc.main.id", "aws_vpc.main")}) for n in range(2)],
        *[(f"aws_subnet.pub[{n}]", {"cidr_block": f"10.0.{n + 101}.0/24", "tags": {"Name": f"pub-{n}"}}, {"id": True, "vpc_id": True},
           {"vpc_id": ref("aws_vpc.main.id", "aws_vpc.main")}) for n in range(2)]]
TABLE_UNKNOWN = {"id": True, "vpc_id": True, "route": True}
ROUTE_UNKNOWN = {"id": True, "route_table_id": True, "nat_gateway_id": True, "gateway_id": True, "instance_id": True,
                 "network_interface_id": True, "egress_only_gateway_id": True}


def test_plan_count_index_references_name_the_referrers_own_instance(tmp_path: Path) -> None:
    """terraform-aws-modules/vpc's pattern: one private table, route and NAT gateway per AZ."""
    entries = [*BASE, *[entry for n in range(2) for entry in (
        (f"aws_eip.nat[{n}]", {"domain": "vpc"}, {"id": True, "public_ip": True}, {}),
        (f"aws_nat_gateway.this[{n}]", {}, {"id": True, "subnet_id": True, "allocation_id": True},
         {"subnet_id": ref("aws_subnet.pub", "count.index"), "allocation_id": ref("aws_eip.nat", "count.index")}),
        (f"aws_route_table.private[{n}]", {}, TABLE_UNKNOWN, {"vpc_id": ref("aws_vpc.main.id", "aws_vpc.main")}),
        (f"aws_route.private_nat[{n}]", {"destination_cidr_block": "0.0.0.0/0"}, ROUTE_UNKNOWN,
         {"destination_cidr_block": {"constant_value": "0.0.0.0/0"},
          "nat_gateway_id": ref("aws_nat_gateway.this", "count.index"),
          "route_table_id": ref("aws_route_table.private", "count.index")}),
        (f"aws_route_table_association.private[{n}]", {}, {"id": True, "route_table_id": True, "subnet_id": True},
         {"route_table_id": ref("aws_route_table.private", "var.single_nat_gateway", "count.index"),
          "subnet_id": ref("aws_subnet.priv", "count.index")}))]]
    result = import_terraform(plan(tmp_path, entries))
    nats = {n["name"]: n for n in result.data["nat_gateways"]}
    assert {n: v["subnet"] for n, v in nats.items()} == {"nat-this-0": "pub-0", "nat-this-1": "pub-1"}
    assert nats["nat-this-0"]["public_ip"] != nats["nat-this-1"]["public_ip"]
    got = tables(result)
    assert got["private-0"] == {"name": "private-0", "subnets": ["priv-0"],
                                "routes": [{"destination": "0.0.0.0/0", "target": "nat-this-0"}]}
    assert got["private-1"] == {"name": "private-1", "subnets": ["priv-1"],
                                "routes": [{"destination": "0.0.0.0/0", "target": "nat-this-1"}]}
    assert result.skipped == ()


def test_plan_values_from_outside_the_document_are_reported_never_guessed(tmp_path: Path) -> None:
    entries = [*BASE,
               ("aws_route_table.private", {}, TABLE_UNKNOWN, {"vpc_id": ref("aws_vpc.main.id", "aws_vpc.main")}),
               ("aws_route.out", {"destination_cidr_block": "0.0.0.0/0"}, ROUTE_UNKNOWN,
                {"route_table_id": ref("aws_route_table.private.id", "aws_route_table.private"),
                 "nat_gateway_id": ref("var.nat_id")}),
               ("aws_route_table_association.lost", {}, {"id": True, "route_table_id": True, "subnet_id": True},
                {"route_table_id": ref("var.table_id"), "subnet_id": ref("aws_subnet.priv", "count.index")}),
               ("aws_route_table_association.either", {}, {"id": True, "route_table_id": True, "subnet_id": True},
                {"route_table_id": ref("aws_route_table.private.id", "aws_route_table.private"),
                 "subnet_id": ref("aws_subnet.priv")})]
    result = import_terraform(plan(tmp_path, entries))
    assert tables(result)["private"]["routes"] == [{"destination": "0.0.0.0/0", "target": "blackhole"}]
    skipped = "\n".join(result.skipped)
    assert ("route 0.0.0.0/0: its target is not carried over (nat_gateway_id is known only after apply and comes "
            "from var.nat_id, which this document does not hold): it became blackhole") in skipped
    assert ("aws_route_table_association.lost not carried over: route_table_id is known only after apply and comes "
            "from var.table_id") in skipped
    assert ("aws_route_table_association.either not carried over: subnet_id is known only after apply and "
            "references aws_subnet.priv[0], aws_subnet.priv[1]: which one depends on values") in skipped
    assert "subnets" not in tables(result)["private"]


def test_plan_whole_route_attribute_and_an_unknown_allocation(tmp_path: Path) -> None:
    """`route = [{...}]` written as an attribute: its expression's references resolve each route's target."""
    entries = [*BASE,
               ("aws_internet_gateway.gw", {}, {"id": True, "vpc_id": True}, {}),
               ("aws_nat_gateway.nat", {"connectivity_type": "public"}, {"id": True, "allocation_id": True},
                {"subnet_id": {"constant_value": "subnet-0fffffffffffffff1"}, "allocation_id": ref("local.eip_id")}),
               ("aws_route_table.public", {"route": [route(cidr_block="0.0.0.0/0")]},
                {**TABLE_UNKNOWN, "route": [{"gateway_id": True}]},
                {"route": ref("aws_internet_gateway.gw.id", "aws_internet_gateway.gw")})]
    result = import_terraform(plan(tmp_path, entries))
    assert tables(result)["public"]["routes"] == [{"destination": "0.0.0.0/0", "target": "igw"}]
    # The NAT gateway's subnet is not one of the lab's: named, with why
    assert any("aws_nat_gateway.nat not carried over: a lab runs public NAT gateways" in s for s in result.skipped)


def test_a_route_to_a_prefix_list_is_one_route_per_entry_and_a_cidr_route_wins(tmp_path: Path) -> None:
    pl = "pl-0aaaaaaaaaaaaaaa1"
    path = write_state(
        tmp_path, *GATEWAYS,
        resource("aws_ec2_managed_prefix_list.office", {"id": pl, "name": "office", "address_family": "IPv4",
                                                        "max_entries": 2, "entry": [
                                                            {"cidr": "203.0.113.128/25", "description": "hq"},
                                                            {"cidr": "192.0.2.0/24", "description": "home"}]}),
        resource("aws_route_table.priv", {"id": RTB_PRIV, "vpc_id": VPC, "route": [
            route(destination_prefix_list_id=pl, nat_gateway_id=NAT),
            route(cidr_block="192.0.2.0/24", gateway_id="igw-0aaaaaaaaaaaaaaa1"),
            route(destination_prefix_list_id="pl-0bbbbbbbbbbbbbbb1", gateway_id="igw-0aaaaaaaaaaaaaaa1")]}))
    result = import_terraform(path)
    assert tables(result)["priv"]["routes"] == [{"destination": "192.0.2.0/24", "target": "igw"},
                                                {"destination": "203.0.113.128/25", "target": "nat-a"}]
    assert any("entry 192.0.2.0/24: the CIDR route at" in n and "wins" in n for n in result.notes)
    assert any("route to prefix list pl-0bbbbbbbbbbbbbbb1 not carried over: its entries are not in the inputs" in s
               for s in result.skipped)


def test_counted_instances_land_in_their_own_counted_subnet(tmp_path: Path) -> None:
    """rd.ref follows count.index too: app[1] is in priv[1], not in the first subnet the reference names."""
    entries = [*BASE, *[(f"aws_instance.app[{n}]", {"ami": "ami-0abcdef1234567890"}, {"id": True, "subnet_id": True},
                         {"subnet_id": ref("aws_subnet.priv", "count.index")}) for n in range(2)]]
    result = import_terraform(plan(tmp_path, entries))
    assert [i["subnet"] for i in result.data["instances"]] == ["priv-0", "priv-1"]


def test_plan_gateway_references_become_igw_eigw_or_a_named_blackhole(tmp_path: Path) -> None:
    on_table = ref("aws_route_table.private.id", "aws_route_table.private")
    entries = [*BASE,
               ("aws_internet_gateway.gw", {}, {"id": True, "vpc_id": True}, {}),
               ("aws_egress_only_internet_gateway.v6", {}, {"id": True, "vpc_id": True}, {}),
               ("aws_vpn_gateway.office", {}, {"id": True, "vpc_id": True}, {}),
               ("aws_route_table.private", {}, TABLE_UNKNOWN, {"vpc_id": ref("aws_vpc.main.id", "aws_vpc.main")}),
               ("aws_route.v6", {"destination_ipv6_cidr_block": "::/0"}, ROUTE_UNKNOWN,
                {"route_table_id": on_table, "egress_only_gateway_id": ref("aws_egress_only_internet_gateway.v6.id",
                                                                           "aws_egress_only_internet_gateway.v6")}),
               ("aws_route.web", {"destination_cidr_block": "198.51.100.0/24"}, ROUTE_UNKNOWN,
                {"route_table_id": on_table, "gateway_id": ref("aws_internet_gateway.gw.id", "aws_internet_gateway.gw")}),
               ("aws_route.vpn", {"destination_cidr_block": "172.16.0.0/12"}, ROUTE_UNKNOWN,
                {"route_table_id": on_table, "gateway_id": ref("aws_vpn_gateway.office.id", "aws_vpn_gateway.office")})]
    result = import_terraform(plan(tmp_path, entries))
    assert tables(result)["private"]["routes"] == [{"destination": "::/0", "target": "eigw"},
                                                   {"destination": "198.51.100.0/24", "target": "igw"},
                                                   {"destination": "172.16.0.0/12", "target": "blackhole"}]
    assert any("route 172.16.0.0/12 -> virtual private gateway aws_vpn_gateway.office became blackhole" in n
               for n in result.notes)
    assert any("aws_egress_only_internet_gateway.v6: routes to it become eigw" in n for n in result.notes)
