"""load(): the shipped topologies, file and YAML errors, default names, and the dump/parse round trip."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emulator.errors import TopologyError
from emulator.model import PROTO_ALL, PortRange
from emulator.topology import dump, load, parse, sg_id_for

from .test_topology_support import base_doc, load_doc

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
SHIPPED = sorted(TOPOLOGIES.glob("*.yaml"))


def problems_loading(path: Path) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load(path)
    return caught.value.problems


def test_the_five_shipped_topologies_exist():
    assert {p.stem for p in SHIPPED} >= {"three-tier", "web-server", "private-app", "database", "ssh-bastion"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_topology_loads_cleanly_and_is_a_runnable_lab(path):
    loaded = load(path)
    t = loaded.topology
    assert loaded.warnings == ()
    assert t.name == path.stem and t.source == str(path)
    assert t.instances and any(i.services for i in t.instances)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_topology_round_trips_through_yaml(path):
    t = load(path).topology
    text = yaml.safe_dump(dump(t), sort_keys=False)
    assert parse(yaml.safe_load(text), t.source, "unused").topology == t


def test_base_document_round_trips_with_options_and_overrides():
    doc = base_doc()
    doc["security_groups"][0]["id"] = "sg-0123abcd"
    doc["security_groups"][0]["ingress"].append({"protocol": 47, "cidr": "192.0.2.0/24", "description": "gre"})
    doc["security_groups"].append({"name": "default", "ingress": [{"protocol": "icmp", "icmp_type": 8,
                                                                   "cidr": "0.0.0.0/0"}]})
    doc["instances"][0]["conntrack"] = {"udp": 60}
    doc["instances"][0]["ipv6"] = "fd00:10:0:1::10"
    doc["options"] = {"related_icmp": False, "timeouts": {"icmp": 9}, "quotas": {"sgs_per_eni": 6}}
    t = load_doc(doc).topology
    assert parse(dump(t), t.source, "unused").topology == t


def test_dump_leaves_out_what_parse_recreates():
    out = dump(load_doc(base_doc()).topology)
    assert [g["name"] for g in out["security_groups"]] == ["web-sg", "app-sg"]
    assert "egress" not in out["security_groups"][0] and out["security_groups"][1]["egress"] == []
    assert "id" not in out["security_groups"][0] and "options" not in out
    assert out["instances"][1] == {"name": "app", "subnet": "private", "private_ip": "10.0.2.4",
                                   "security_groups": ["app-sg"]}


def test_three_tier_is_the_seed_scenario():
    t = load(TOPOLOGIES / "three-tier.yaml").topology
    alb, app, db = (t.sg(n) for n in ("alb-sg", "app-sg", "db-sg"))
    assert [(r.ports, str(r.cidr)) for r in alb.ingress] == [(PortRange(80, 80), "0.0.0.0/0"),
                                                             (PortRange(443, 443), "0.0.0.0/0")]
    assert [(r.ports, r.group) for r in alb.egress] == [(PortRange(8080, 8080), app.id)]
    assert [(r.ports, r.group) for r in app.ingress] == [(PortRange(8080, 8080), alb.id)]
    assert [(r.ports, r.group) for r in app.egress] == [(PortRange(3306, 3306), db.id)]
    assert [(r.ports, r.group) for r in db.ingress] == [(PortRange(3306, 3306), app.id)] and db.egress == ()
    assert str(t.instance("alb").public_ip) == "198.51.100.10"
    assert {h.name: str(h.ip) for h in t.internet} == {"you": "203.0.113.10", "stranger": "198.51.100.7"}
    assert [s.cidr.exploded for s in t.subnets] == ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]


def test_web_server_is_dual_stack_with_default_egress():
    t = load(TOPOLOGIES / "web-server.yaml").topology
    web = t.sg("web-sg")
    assert t.vpc.dual_stack and t.instance("web").ipv6 is not None
    assert [(r.protocol, str(r.cidr)) for r in web.egress] == [(PROTO_ALL, "0.0.0.0/0"), (PROTO_ALL, "::/0")]
    assert t.instance("web").listens(6, 8080)
    assert not any(r.ports is not None and 8080 in r.ports for r in web.ingress)   # listening, not allowed


# --- files and YAML ---

def test_yaml_syntax_error_is_one_problem_with_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nvpc:\n  cidr: [10.0.0.0/16\nsubnets: []\n")
    found = problems_loading(bad)
    assert len(found) == 1 and found[0].startswith(f"{bad}:4:8: expected ',' or ']'") and "; fix the YAML" in found[0]


def test_duplicate_yaml_keys_are_errors(tmp_path):
    dup = tmp_path / "dup.yaml"
    dup.write_text("vpc: {cidr: 10.0.0.0/16}\nsubnets: []\nvpc: {cidr: 10.1.0.0/16}\n")
    assert problems_loading(dup) == [f"{dup}:3:1: duplicate key 'vpc'; fix the YAML "
                                     "(indentation, a missing colon or quote)"]


@pytest.mark.parametrize("make", ["missing", "directory", "binary", "empty"])
def test_unreadable_or_empty_files_are_topology_errors(tmp_path, make):
    path = tmp_path / "lab.yaml"
    if make == "directory":
        path.mkdir()
    elif make == "binary":
        path.write_bytes(b"\xff\xfe\x00bad")
    elif make == "empty":
        path.write_text("# nothing yet\n")
    found = problems_loading(path)
    assert len(found) == 1 and found[0].startswith(f"{path}: ")


@pytest.mark.parametrize("stem,expected", [("My Lab_v2", "my-lab-v2"), ("a-very-long-file-name-here", "a-very-long-file"),
                                           ("three-tier", "three-tier")])
def test_lab_name_defaults_to_the_file_stem(tmp_path, stem, expected):
    path = tmp_path / f"{stem}.yaml"
    doc = base_doc()
    del doc["name"]
    path.write_text(yaml.safe_dump(doc))
    assert load(path).topology.name == expected


def test_problems_name_the_file_as_given(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text("vpc: {cidr: 10.0.0.0/8}\nsubnets: [{name: a, cidr: 10.0.0.0/24}]\n")
    assert problems_loading(path) == [f"{path}: vpc.cidr: /8 is not a valid block size; "
                                      "AWS allows /16 to /28, e.g. 10.0.1.0/24"]


def test_load_accepts_str_and_pathlike():
    path = TOPOLOGIES / "three-tier.yaml"
    assert load(str(path)).topology == load(path).topology
    assert load(path).topology.sg("alb-sg").id == sg_id_for("alb-sg")
