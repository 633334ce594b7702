"""`sgemu import terraform`: plans (unknown values, references through modules) and states."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator.cli import cli
from emulator.importers import ImportSourceError, import_terraform
from emulator.importers.export import describe_security_groups
from emulator.model import Direction
from emulator.topology import load

from .import_support import described

DATA = Path(__file__).parent.parent / "data" / "terraform"


@pytest.fixture(scope="module")
def state():
    return import_terraform(DATA / "state.json", "shop")


@pytest.fixture(scope="module")
def plan():
    return import_terraform(DATA / "plan.json", "staging")


def test_state_resources_of_root_and_child_modules(state):
    t = state.loaded.topology
    assert str(t.vpc.cidr) == "10.40.0.0/16"
    assert [(s.name, str(s.cidr)) for s in t.subnets] == [("public", "10.40.1.0/24"), ("app", "10.40.2.0/24"),
                                                          ("data", "10.40.3.0/24")]
    assert [(i.name, i.subnet, str(i.private_ip), [t.sg(g).name for g in i.security_groups]) for i in t.instances] == [
        ("alb", "public", "10.40.1.10", ["alb-sg"]), ("app-server", "app", "10.40.2.10", ["app-sg"]),
        ("i-0c0ffee0c0ffee043", "data", "10.40.3.10", ["db-sg"])]
    assert str(t.instance("alb").public_ip) == "198.51.100.40"


def test_state_rules_from_inline_blocks_and_every_rule_resource(state):
    t = state.loaded.topology
    assert t.sg("alb-sg").id == "sg-0c0ffee0c0ffee021"
    assert described(t, "alb-sg", Direction.INGRESS) == {"ingress tcp 443 from 0.0.0.0/0", "ingress tcp 443 from ::/0",
                                                         "ingress tcp 80 from 0.0.0.0/0"}
    assert described(t, "app-sg", Direction.INGRESS) == {"ingress tcp 8080 from alb-sg",   # inline + rule resource
                                                         "ingress all from app-sg"}        # self = true
    assert described(t, "db-sg", Direction.INGRESS) == {"ingress tcp 5432 from app-sg",
                                                        "ingress icmp 3/4 from 10.40.0.0/16"}
    assert t.sg("db-sg").egress == ()
    assert any("tcp 8080 from sg-0c0ffee0c0ffee021 repeats a permission; merged" in n for n in state.notes)


def test_state_lists_prefix_lists_and_cross_account_references(state):
    assert len(state.skipped) == 2
    assert "values.root_module.resources[6].values: app-sg: egress tcp 443 to pl-6da54004" in state.skipped[0]
    assert ("child_modules[0].resources[1].values.ingress[1]: db-sg: ingress tcp 5432 from "
            "444455556666/sg-0badc0ffee0000001: not carried over") in state.skipped[1]


def test_plan_resolves_unknown_references_through_configuration_and_module_variables(plan):
    t = plan.loaded.topology
    assert described(t, "web-sg", Direction.INGRESS) == {"ingress tcp 443 from 0.0.0.0/0",
                                                         "ingress tcp 22 from 203.0.113.0/24",
                                                         "ingress tcp 80 from 0.0.0.0/0"}   # security_group_id unknown
    assert described(t, "db", Direction.INGRESS) == {"ingress tcp 5432 from web-sg"}     # via var.web_sg_id
    web, db = t.instances
    assert (web.name, web.subnet, str(web.private_ip), [t.sg(g).name for g in web.security_groups]) == (
        "web-1", "public", "10.30.1.10", ["web-sg"])
    assert (db.name, db.subnet, str(db.private_ip), db.public_ip) == ("db", "db", "10.30.3.4", None)


@pytest.mark.parametrize("needle", [
    "aws_security_group_rule.web_to_nat: egress udp 514: cidr_blocks is known only after apply",
])
def test_plan_lists_what_only_apply_knows(plan, needle):
    assert any(needle in s for s in plan.skipped)


@pytest.mark.parametrize("needle", [
    "module.db.aws_instance.this: private_ip is known only after apply; the lab assigns the next free address",
    "aws_instance.web: public_ip is known only after apply; the lab gives it 198.51.100.129",
    "module.db.aws_security_group.this: name is known only after apply; the lab calls it db",
    "web-sg: its id is not known yet",
])
def test_plan_explains_unknown_values(plan, needle):
    assert any(needle in n for n in plan.notes), "\n".join(plan.notes)


def test_not_terraform_json(tmp_path):
    path = tmp_path / "tf.json"
    path.write_text(json.dumps({"format_version": "1.0"}))
    with pytest.raises(ImportSourceError, match=r"tf.json: has neither planned_values \(a plan\) nor values \(a state\); give the output of `terraform show -json"):
        import_terraform(path)
    # Terraform leaves out `values` when none is known yet: every attribute is unknown, nothing is refused.
    path.write_text(json.dumps({"values": {"root_module": {"resources": [{"address": "aws_vpc.x", "type": "aws_vpc"}]}}}))
    assert str(import_terraform(path).loaded.topology.vpc.cidr) == "10.0.0.0/16"


def test_cli_import_terraform(tmp_path):
    out = tmp_path / "staging.yaml"
    run = CliRunner().invoke(cli, ["import", "terraform", str(DATA / "plan.json"), "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert "warning: plan.json: planned_values.root_module.resources[4]" in run.output
    assert out.read_text().startswith(f"# Imported by: sgemu import terraform {DATA / 'plan.json'}\n")
    assert load(out).topology.name == "staging"


@pytest.mark.parametrize("groups", [None, []])
def test_instance_without_security_groups_gets_the_default_sg(tmp_path, groups):
    doc = json.loads((DATA / "state.json").read_text())
    module = doc["values"]["root_module"]
    instance = next(r for r in module["resources"] if r["type"] == "aws_instance")
    if groups is None:
        instance["values"].pop("vpc_security_group_ids", None)
    else:
        instance["values"]["vpc_security_group_ids"] = groups
    instance["values"].pop("security_groups", None)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    result = import_terraform(path, "bare")
    name = next(i.name for i in result.loaded.topology.instances
                if i.private_ip.exploded == instance["values"]["private_ip"])
    inst = result.loaded.topology.instance(name)
    assert [result.loaded.topology.sg(g).name for g in inst.security_groups] == ["default"]
    assert any("default SG" in n for n in result.notes)


def test_cli_strict_refuses_what_the_default_imports_without(tmp_path):
    doc = json.loads((DATA / "state.json").read_text())
    group = next(r for r in doc["values"]["root_module"]["resources"] if r["type"] == "aws_security_group")
    group["values"]["ingress"][0]["from_port"] = 9000              # 9000-443: AWS refuses the range
    path = tmp_path / "state.json"
    path.write_text(json.dumps(doc))
    run = CliRunner().invoke(cli, ["import", "terraform", str(path), "-o", str(tmp_path / "ok.yaml")])
    assert run.exit_code == 0 and "ports 9000-443 are not a port range" in run.output
    strict = CliRunner().invoke(cli, ["import", "terraform", str(path), "--strict"])
    assert strict.exit_code == 1 and "ports 9000-443 are not a port range" in str(strict.exception)


def test_opentofu_plan_reads_like_terraform():
    t = import_terraform(DATA / "opentofu-plan.json").loaded.topology
    assert described(t, "lb", Direction.INGRESS) == {"ingress tcp 443 from 0.0.0.0/0"}
    assert described(t, "web", Direction.INGRESS) == {"ingress tcp 8080 from lb"}    # referenced group unknown
    assert described(t, "web", Direction.EGRESS) == {"egress all to 0.0.0.0/0"}
    assert t.sg("lb").egress == ()            # no egress blocks: Terraform removed AWS's default rule
    [web] = t.instances
    assert (web.name, web.subnet, str(web.private_ip), [t.sg(g).name for g in web.security_groups]) == (
        "web-1", "public", "10.50.1.20", ["web"])


def test_references_through_module_outputs_resolve_to_the_groups_of_the_plan():
    result = import_terraform(DATA / "module-outputs-plan.json")
    t = result.loaded.topology
    assert described(t, "shared", Direction.INGRESS) == {"ingress tcp 443 from 10.70.0.0/16",   # module in a module
                                                         "ingress tcp 22 from 203.0.113.0/24"}   # via module.net.sg_id
    assert described(t, "app-a", Direction.INGRESS) == {"ingress tcp 8080 from app-b"}          # module.app["b"]
    assert [t.sg(g).name for g in t.instance("node").security_groups] == ["shared", "app-a"]
    assert result.skipped == ()
    assert not any("references no resource" in n or "does not hold" in n for n in result.notes)


def test_several_vpcs_take_only_the_chosen_one_and_report_the_others_objects():
    path = DATA / "two-vpcs-plan.json"
    with pytest.raises(ImportSourceError, match="span 2 VPCs: aws_vpc.prod .*choose one with --vpc"):
        import_terraform(path, strict=True)
    dev = import_terraform(path, vpc="aws_vpc.dev")           # its subnet's block is known only after apply
    t = dev.loaded.topology
    assert [g.name for g in t.security_groups] == ["default", "dev_app"]
    assert [(i.name, [t.sg(g).name for g in i.security_groups]) for i in t.instances] == [("app", ["dev_app"])]
    for name in ("aws_security_group.prod_db (prod_db)", "subnet aws_subnet.prod_a", "instance aws_instance.db"):
        assert any(f"{name} is in aws_vpc.prod, not aws_vpc.dev: not carried over" in s for s in dev.skipped), name
    prod = import_terraform(path, vpc="aws_vpc.prod")
    assert [g.name for g in prod.loaded.topology.security_groups] == ["default", "prod_db"]
    assert any("prod_db: ingress tcp 5432 from aws_security_group.dev_app: not carried over: "
               "aws_security_group.dev_app is in aws_vpc.dev, another VPC" in s for s in prod.skipped)


def test_a_plan_that_knows_almost_nothing_says_exactly_what_it_left_out():
    result = import_terraform(DATA / "after-unknown-plan.json")
    assert [s.split(": ", 2)[2] for s in result.skipped] == [
        "aws_security_group.core: ingress tcp 443: cidr_blocks is known only after apply: those peers are not "
        "carried over (import the state after apply)",
        "aws_security_group.core: its egress rules are known only after apply: not carried over (import the "
        "state after apply)",
        "aws_security_group_rule.core_from_peer: ingress tcp 5432: source_security_group_id is known only after "
        "apply and comes from var.peer_sg_id, which this document does not hold: that peer is not carried over"]
    assert described(result.loaded.topology, "core", Direction.INGRESS) == {"ingress tcp 22 from core"}   # self
    assert any("core_from_peer: the plan knows none of its values" in n for n in result.notes)


@pytest.mark.parametrize("edit, unknown, expression, needle", [
    # source_security_group_id unknown but not configured (the rule uses cidr_blocks): not a missing rule
    ({"cidr_blocks": ["10.0.0.0/8"]}, {"source_security_group_id": True}, {}, None),
    ({"self": True}, {"source_security_group_id": True}, {}, None),
    # configured and unknown, resolving to nothing in the plan: named
    ({}, {"source_security_group_id": True}, {"source_security_group_id": {"references": ["var.x"]}},
     "source_security_group_id is known only after apply and comes from var.x"),
])
def test_an_unknown_attribute_matters_only_when_the_configuration_sets_it(tmp_path, edit, unknown, expression,
                                                                           needle):
    doc = {"format_version": "1.2", "planned_values": {"root_module": {"resources": [
        {"address": "aws_security_group_rule.r", "mode": "managed", "type": "aws_security_group_rule", "name": "r",
         "values": {"type": "ingress", "protocol": "tcp", "from_port": 22, "to_port": 22,
                    "security_group_id": "sg-0123456789abcdef0", "cidr_blocks": None, "self": False, **edit}}]}},
        "resource_changes": [{"address": "aws_security_group_rule.r", "change": {"after_unknown": unknown}}],
        "configuration": {"root_module": {"resources": [{"address": "aws_security_group_rule.r",
                                                         "expressions": expression}]}}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    result = import_terraform(path)
    reported = [s for s in result.skipped if "aws_security_group_rule.r" in s]
    assert [needle in s for s in reported] == ([True] if needle else [])


@pytest.mark.parametrize("peer", [{"cidr_blocks": ["10.0.0.0/8"]}, {"self": True}])
def test_an_unknown_source_group_is_not_missing_when_another_peer_is_set_even_without_configuration(tmp_path, peer):
    doc = {"format_version": "0.1", "planned_values": {"root_module": {"resources": [
        {"address": "aws_security_group_rule.r", "mode": "managed", "type": "aws_security_group_rule", "name": "r",
         "values": {"type": "ingress", "protocol": "tcp", "from_port": 22, "to_port": 22, "self": False,
                    "security_group_id": "sg-0123456789abcdef0", **peer}}]}},
        "resource_changes": [{"address": "aws_security_group_rule.r",
                              "change": {"after_unknown": {"source_security_group_id": True}}}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    result = import_terraform(path)
    assert not any("source_security_group_id" in s for s in result.skipped)
    assert len(result.loaded.topology.sg("sg-0123456789abcdef0").ingress) == 1


def test_data_sources_give_subnets_but_a_group_data_source_is_not_a_group_without_rules(tmp_path):
    doc = {"format_version": "1.2", "planned_values": {"root_module": {"resources": [
        {"address": "aws_instance.app", "mode": "managed", "type": "aws_instance", "name": "app",
         "values": {"subnet_id": "subnet-0a1b2c3d", "vpc_security_group_ids": ["sg-0123456789abcdef0"]}}]}},
        "prior_state": {"values": {"root_module": {"resources": [
            {"address": "data.aws_subnet.a", "mode": "data", "type": "aws_subnet", "name": "a",
             "values": {"id": "subnet-0a1b2c3d", "cidr_block": "10.8.1.0/24", "vpc_id": "vpc-0a1b2c3d"}},
            {"address": "data.aws_security_group.shared", "mode": "data", "type": "aws_security_group",
             "name": "shared", "values": {"id": "sg-0123456789abcdef0", "name": "shared",
                                          "vpc_id": "vpc-0a1b2c3d"}}]}}}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    result = import_terraform(path)
    t = result.loaded.topology
    assert [(s.name, str(s.cidr)) for s in t.subnets] == [("subnet-0a1b2c3d", "10.8.1.0/24")]
    assert any("sg-0123456789abcdef0" in s and "its rules are not in the inputs" in s for s in result.skipped)


def test_the_states_account_is_kept_for_exports(tmp_path):
    text = (DATA / "state.json").read_text().replace('"owner_id": "123456789012"', '"owner_id": "210987654321"')
    path = tmp_path / "state.json"
    path.write_text(text)
    exported = describe_security_groups(import_terraform(path).loaded.topology)
    assert {g["OwnerId"] for g in exported["SecurityGroups"]} == {"210987654321"}
