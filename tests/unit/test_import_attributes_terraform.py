"""What known, null, empty, unknown-and-configured and unknown-but-not-configured mean for every
Terraform attribute the importer reads; one row per attribute and case."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.importers import import_terraform
from emulator.model import Direction

from .import_support import described

UNKNOWN = object()        # after_unknown: true, with `expression` (or none) in the configuration


def plan(tmp_path: Path, *resources: tuple[str, str, dict, dict, dict]):
    """resources: (type, name, values, after_unknown, expressions)."""
    planned, changes, config = [], [], []
    for kind, name, values, unknown, expressions in resources:
        address = f"{kind}.{name}"
        planned.append({"address": address, "mode": "managed", "type": kind, "name": name, "values": values})
        changes.append({"address": address, "change": {"actions": ["create"], "after_unknown": unknown}})
        config.append({"address": address, "mode": "managed", "type": kind, "name": name, "expressions": expressions})
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"format_version": "1.2", "planned_values": {"root_module": {"resources": planned}},
                                "resource_changes": changes, "configuration": {"root_module": {"resources": config}}}))
    return import_terraform(path)


def vpc() -> tuple:
    return ("aws_vpc", "main", {"cidr_block": "10.9.0.0/16"}, {"id": True}, {})


def subnet() -> tuple:
    return ("aws_subnet", "a", {"cidr_block": "10.9.1.0/24"}, {"id": True, "vpc_id": True},
            {"vpc_id": {"references": ["aws_vpc.main.id", "aws_vpc.main"]}})


def sg(values: dict, unknown: dict | None = None, expressions: dict | None = None) -> tuple:
    return ("aws_security_group", "web", {"name": "web", "ingress": [], "egress": [], **values},
            {"id": True, **(unknown or {})}, expressions or {})


def block(**fields) -> dict:
    return {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_blocks": [], "ipv6_cidr_blocks": [],
            "prefix_list_ids": [], "security_groups": [], "self": False, "description": "", **fields}


# --- aws_security_group ------------------------------------------------------------------------

@pytest.mark.parametrize("values, unknown, expressions, vpc_id, noted", [
    ({"vpc_id": "vpc-0a1b2c3d"}, {}, {}, "vpc-0a1b2c3d", None),                          # known
    ({"vpc_id": None}, {}, {}, None, "names no VPC"),                                    # null: default VPC
    ({"vpc_id": ""}, {}, {}, None, "names no VPC"),
    ({}, {"vpc_id": True}, {}, None, "names no VPC"),                                    # computed: default VPC
    ({}, {"vpc_id": True}, {"vpc_id": {"references": ["aws_vpc.main.id", "aws_vpc.main"]}}, None, None),  # resolved
    ({}, {"vpc_id": True}, {"vpc_id": {"references": ["var.vpc_id"]}}, None, "comes from var.vpc_id"),
])
def test_group_vpc_id(tmp_path, values, unknown, expressions, vpc_id, noted):
    result = plan(tmp_path, vpc(), sg(values, unknown, expressions))
    if vpc_id is not None:
        assert result.loaded.topology.vpc.id == vpc_id
    else:                                       # the VPC of the plan (an address) or the default one: no id known
        assert result.loaded.topology.vpc.id != "vpc-0a1b2c3d"
    assert [g.name for g in result.loaded.topology.security_groups] == ["default", "web"]
    assert result.skipped == ()
    if noted:
        assert any(noted in n for n in result.notes), result.notes


@pytest.mark.parametrize("values, unknown, name", [
    ({"name": "web"}, {}, "web"), ({"name": None, "name_prefix": "web-"}, {}, "web"),
    ({"name": "", "name_prefix": None}, {}, "web"), ({"name": None}, {"name": True}, "web"),
])
def test_group_name(tmp_path, values, unknown, name):
    result = plan(tmp_path, ("aws_security_group", "web", {"ingress": [], "egress": [], **values},
                             {"id": True, **unknown}, {}))
    assert [g.name for g in result.loaded.topology.security_groups] == ["default", name]


@pytest.mark.parametrize("direction", ["ingress", "egress"])
@pytest.mark.parametrize("value, unknown, expressions, reported", [
    ([], False, {}, False), (None, False, {}, False),                 # none
    (None, True, {}, False),                                          # computed, not configured: none
    (None, True, {"{d}": {"references": ["var.rules"]}}, True),       # configured, known after apply
])
def test_inline_rule_lists(tmp_path, direction, value, unknown, expressions, reported):
    exprs = {k.format(d=direction): v for k, v in expressions.items()}
    result = plan(tmp_path, sg({direction: value}, {direction: True} if unknown else {}, exprs))
    assert getattr(result.loaded.topology.sg("web"), direction) == ()
    assert [f"its {direction} rules are known only after apply" in s for s in result.skipped] == \
        ([True] if reported else [])


@pytest.mark.parametrize("fields, unknown, expressions, carried, reported", [
    ({"cidr_blocks": ["10.0.0.0/8"]}, {}, {}, {"ingress tcp 22 from 10.0.0.0/8"}, None),
    ({"cidr_blocks": None}, {}, {}, set(), None),
    ({"cidr_blocks": ["10.0.0.0/8"], "ipv6_cidr_blocks": None}, {}, {}, {"ingress tcp 22 from 10.0.0.0/8"}, None),
    ({"self": True}, {}, {}, {"ingress tcp 22 from web"}, None),
    ({"self": None, "cidr_blocks": ["10.0.0.0/8"]}, {}, {}, {"ingress tcp 22 from 10.0.0.0/8"}, None),
    ({"security_groups": ["sg-0123456789abcdef0"]}, {}, {}, set(), "sg-0123456789abcdef0 is not in the imported"),
    ({"prefix_list_ids": ["pl-12345678"]}, {}, {}, set(), "prefix list pl-12345678 needs its CIDRs"),
    ({"cidr_blocks": []}, {"cidr_blocks": True}, {"cidr_blocks": {"references": ["aws_vpc.main.cidr_block",
                                                                                  "aws_vpc.main"]}},
     {"ingress tcp 22 from 10.9.0.0/16"}, None),                     # taken from the attribute it references
    ({"cidr_blocks": []}, {"cidr_blocks": True}, {"cidr_blocks": {"references": ["var.cidrs"]}}, set(),
     "cidr_blocks is known only after apply"),
    ({"cidr_blocks": ["10.0.0.0/8"]}, {"security_groups": True}, {}, {"ingress tcp 22 from 10.0.0.0/8"}, None),
    ({"protocol": "tcp", "from_port": 443, "to_port": 22, "cidr_blocks": ["10.0.0.0/8"]}, {}, {}, set(),
     "tcp ports 443-22 are not a port range"),
])
def test_inline_rule_fields(tmp_path, fields, unknown, expressions, carried, reported):
    result = plan(tmp_path, vpc(), sg({"ingress": [block(**fields)]}, {"ingress": [unknown]},
                                      {"ingress": [expressions]} if expressions else {}))
    assert described(result.loaded.topology, "web", Direction.INGRESS) == carried
    assert [reported in s for s in result.skipped] == ([True] if reported else [])


# --- rule resources ------------------------------------------------------------------------------

def group_rule(values: dict, unknown: dict, expressions: dict) -> tuple:
    return ("aws_security_group_rule", "r", {"type": "ingress", "protocol": "tcp", "from_port": 22, "to_port": 22,
                                             "cidr_blocks": ["10.0.0.0/8"], **values}, unknown, expressions)


@pytest.mark.parametrize("values, unknown, expressions, carried, reported", [
    ({"security_group_id": "sg-0123456789abcdef0"}, {}, {}, None, "is not in the inputs, only rules added to it"),
    ({}, {"security_group_id": True}, {"security_group_id": {"references": ["aws_security_group.web.id",
                                                                             "aws_security_group.web"]}},
     {"ingress tcp 22 from 10.0.0.0/8"}, None),
    ({"security_group_id": None}, {}, {}, set(), "security_group_id is not set"),
    ({"security_group_id": "sg-0123456789abcdef0", "type": None}, {}, {}, None, "type is None"),
    ({"security_group_id": "sg-0123456789abcdef0", "source_security_group_id": None}, {"source_security_group_id": True},
     {}, None, "is not in the inputs, only rules added to it"),         # computed peer: not a missing rule
])
def test_aws_security_group_rule(tmp_path, values, unknown, expressions, carried, reported):
    result = plan(tmp_path, sg({}), group_rule(values, unknown, expressions))
    if carried is not None:
        assert described(result.loaded.topology, "web", Direction.INGRESS) == carried
    assert [reported in s for s in result.skipped] == ([True] if reported else [])
    assert not any("source_security_group_id" in s for s in result.skipped)


@pytest.mark.parametrize("values, unknown, expressions, carried, reported", [
    ({"cidr_ipv4": "10.0.0.0/8", "ip_protocol": "tcp", "from_port": 22, "to_port": 22}, {}, {},
     {"ingress tcp 22 from 10.0.0.0/8"}, None),
    ({"cidr_ipv4": "", "cidr_ipv6": "::/0", "ip_protocol": "-1", "from_port": None, "to_port": None}, {}, {},
     {"ingress all from ::/0"}, None),
    ({"ip_protocol": "tcp", "from_port": 22, "to_port": 22}, {"referenced_security_group_id": True},
     {"referenced_security_group_id": {"references": ["aws_security_group.web.id", "aws_security_group.web"]}},
     {"ingress tcp 22 from web"}, None),
    ({"ip_protocol": "tcp", "from_port": 22, "to_port": 22}, {"cidr_ipv4": True},
     {"cidr_ipv4": {"references": ["var.cidr"]}}, set(), "cidr_ipv4 is known only after apply"),
    ({"ip_protocol": "tcp", "from_port": 22, "to_port": 22}, {}, {}, set(), "has none of cidr_ipv4"),
])
def test_vpc_security_group_ingress_rule(tmp_path, values, unknown, expressions, carried, reported):
    rule = ("aws_vpc_security_group_ingress_rule", "r", {"security_group_id": None, **values},
            {"security_group_id": True, **unknown},
            {"security_group_id": {"references": ["aws_security_group.web.id", "aws_security_group.web"]},
             **expressions})
    result = plan(tmp_path, sg({}), rule)
    assert described(result.loaded.topology, "web", Direction.INGRESS) == carried
    assert [reported in s for s in result.skipped] == ([True] if reported else [])


# --- aws_instance --------------------------------------------------------------------------------

def instance(values: dict, unknown: dict, expressions: dict) -> tuple:
    return ("aws_instance", "app", {"tags": {"Name": "app"}, "vpc_security_group_ids": ["sg-placeholder"], **values},
            {"id": True, **unknown}, expressions)


@pytest.mark.parametrize("values, unknown, expressions, check", [
    ({"subnet_id": None}, {}, {}, lambda i, t: i.subnet == t.subnets[0].name),
    ({}, {"subnet_id": True}, {}, lambda i, t: i.subnet == t.subnets[0].name),          # default subnet
    ({}, {"subnet_id": True}, {"subnet_id": {"references": ["aws_subnet.a.id", "aws_subnet.a"]}},
     lambda i, t: i.subnet == "aws-subnet-a"),
    ({"private_ip": None}, {}, {}, lambda i, t: i.private_ip is not None),
    ({"private_ip": ""}, {}, {}, lambda i, t: i.private_ip is not None),
    ({}, {"private_ip": True}, {}, lambda i, t: i.private_ip is not None),
    ({"public_ip": ""}, {}, {}, lambda i, t: i.public_ip is None),
    ({"associate_public_ip_address": True}, {"public_ip": True}, {}, lambda i, t: i.public_ip is not None),
    ({"associate_public_ip_address": False}, {"public_ip": True}, {}, lambda i, t: i.public_ip is None),
    ({"vpc_security_group_ids": []}, {}, {}, lambda i, t: [t.sg(g).name for g in i.security_groups] == ["default"]),
    ({"vpc_security_group_ids": None}, {}, {}, lambda i, t: [t.sg(g).name for g in i.security_groups] == ["default"]),
    ({"vpc_security_group_ids": None}, {"vpc_security_group_ids": True},
     {"vpc_security_group_ids": {"references": ["aws_security_group.web.id", "aws_security_group.web"]}},
     lambda i, t: [t.sg(g).name for g in i.security_groups] == ["web"]),
])
def test_instance_attributes(tmp_path, values, unknown, expressions, check):
    result = plan(tmp_path, vpc(), subnet(), sg({"vpc_id": None}, {"vpc_id": True},
                                                {"vpc_id": {"references": ["aws_vpc.main.id", "aws_vpc.main"]}}),
                  instance(values, unknown, expressions))
    t = result.loaded.topology
    [lab_instance] = t.instances
    assert check(lab_instance, t)


# --- aws_vpc, aws_subnet, aws_default_security_group ---------------------------------------------

@pytest.mark.parametrize("values, unknown, expressions, vpc_block, noted", [
    ({"cidr_block": "10.9.0.0/16"}, {}, {}, "10.9.0.0/16", None),
    ({}, {"cidr_block": True}, {"ipv4_ipam_pool_id": {"constant_value": "ipam-pool-1"}}, "10.9.1.0/24",
     "cidr_block is known only after apply (IPAM)"),                    # the block from the subnets
    ({"cidr_block": None}, {}, {}, "10.9.1.0/24", "smallest block covering the subnets"),
])
def test_vpc_cidr_block(tmp_path, values, unknown, expressions, vpc_block, noted):
    result = plan(tmp_path, ("aws_vpc", "main", values, {"id": True, **unknown}, expressions), subnet())
    assert str(result.loaded.topology.vpc.cidr) == vpc_block
    if noted:
        assert any(noted in n for n in result.notes), result.notes


@pytest.mark.parametrize("values, unknown, expressions", [
    ({"cidr_block": None}, {}, {}),
    ({}, {"cidr_block": True}, {"cidr_block": {"references": ["var.block"]}}),
])
def test_subnet_without_a_known_block_is_guessed_from_its_instances(tmp_path, values, unknown, expressions):
    result = plan(tmp_path, vpc(), ("aws_subnet", "a", values, {"id": True, **unknown}, expressions),
                  instance({"private_ip": "10.9.7.20"}, {"subnet_id": True},
                           {"subnet_id": {"references": ["aws_subnet.a.id", "aws_subnet.a"]}}))
    assert [str(s.cidr) for s in result.loaded.topology.subnets] == ["10.9.7.0/24"]
    assert any("guessed 10.9.7.0/24 from its instances" in n for n in result.notes)


@pytest.mark.parametrize("values, unknown, carried", [
    ({"ingress": [], "egress": []}, {}, ()),                            # Terraform removes the default rules
    ({}, {"ingress": True, "egress": True}, ()),                        # computed, not configured: the same
    ({"ingress": [block(self=True, protocol="-1", from_port=0, to_port=0)], "egress": []}, {},
     ("ingress all from default",)),
])
def test_aws_default_security_group(tmp_path, values, unknown, carried):
    result = plan(tmp_path, vpc(), ("aws_default_security_group", "d", {"vpc_id": None, **values},
                                    {"id": True, "vpc_id": True, **unknown},
                                    {"vpc_id": {"references": ["aws_vpc.main.id", "aws_vpc.main"]}}))
    default = result.loaded.topology.sg("default")
    assert (tuple(sorted(described(result.loaded.topology, "default", Direction.INGRESS))), default.egress) == \
        (carried, ())
    assert result.skipped == ()


def test_load_balancers_databases_and_functions_are_nodes_with_their_groups(tmp_path):
    web_ref = {"references": ["aws_security_group.web.id", "aws_security_group.web"]}
    result = plan(tmp_path, vpc(), subnet(), sg({"vpc_id": None}, {"vpc_id": True},
                                                {"vpc_id": {"references": ["aws_vpc.main.id", "aws_vpc.main"]}}),
                  ("aws_lb", "front", {"security_groups": None, "subnets": None, "tags": {"Name": "front"}},
                   {"security_groups": True, "subnets": True},
                   {"security_groups": web_ref, "subnets": {"references": ["aws_subnet.a.id", "aws_subnet.a"]}}),
                  ("aws_db_instance", "db", {"vpc_security_group_ids": None}, {"vpc_security_group_ids": True},
                   {"vpc_security_group_ids": web_ref}),
                  ("aws_lambda_function", "fn", {"vpc_config": [{"security_group_ids": None, "subnet_ids": None}]},
                   {"vpc_config": [{"security_group_ids": True, "subnet_ids": True}]},
                   {"vpc_config": [{"security_group_ids": web_ref}]}),
                  ("aws_launch_template", "lt", {"vpc_security_group_ids": None}, {"vpc_security_group_ids": True},
                   {"vpc_security_group_ids": web_ref}))
    t = result.loaded.topology
    assert [(i.name, i.subnet, [t.sg(g).name for g in i.security_groups]) for i in t.instances] == [
        ("front", "aws-subnet-a", ["web"]), ("aws-db-instance-db", "aws-subnet-a", ["web"]),
        ("aws-lambda-function-fn", "aws-subnet-a", ["web"])]
    assert [s.split(": ", 2)[2] for s in result.skipped] == [
        "aws_launch_template.lt not carried over: a template: the instances launched from it are not in the plan "
        "(import describe-instances output once they run)"]


@pytest.mark.parametrize("eip", [
    ("aws_eip", "ip", {"public_ip": "198.51.100.77"}, {"instance": True},
     {"instance": {"references": ["aws_instance.app.id", "aws_instance.app"]}}),
    ("aws_eip_association", "ip", {"public_ip": "198.51.100.77"}, {"instance_id": True},
     {"instance_id": {"references": ["aws_instance.app.id", "aws_instance.app"]}}),
])
def test_an_elastic_ip_is_its_instances_public_ip(tmp_path, eip):
    result = plan(tmp_path, vpc(), subnet(), instance({"public_ip": "198.51.100.5"}, {}, {}), eip,
                  ("aws_eip", "nat", {"domain": "vpc"}, {"public_ip": True}, {}))        # a NAT gateway's: nothing
    [app] = result.loaded.topology.instances
    assert str(app.public_ip) == "198.51.100.77"
