"""`sgemu import terraform`: plans (unknown values, references through modules) and states."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator.cli import cli
from emulator.importers import ImportSourceError, import_terraform
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
