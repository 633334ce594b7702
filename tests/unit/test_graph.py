"""`sgemu graph`: arrows carry exactly what both src's egress and dst's ingress allow."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from emulator.cli import cli
from emulator.graph import Flow, flows, to_dot, to_mermaid
from emulator.topology import load, parse

TOPOLOGIES = Path(__file__).parent.parent.parent / "topologies"


def lab(groups: list[dict], instances: list[dict], dual: bool = False) -> object:
    data = {"name": "g", "vpc": {"cidr": "10.0.0.0/16", **({"ipv6_cidr": "fd00:10::/56"} if dual else {})},
            "subnets": [{"name": "a", "cidr": "10.0.1.0/24", **({"ipv6_cidr": "fd00:10:0:1::/64"} if dual else {})}],
            "security_groups": groups, "instances": instances,
            "internet": [{"name": "you", "ip": "203.0.113.10", **({"ipv6": "2001:db8:ff::10"} if dual else {})}]}
    return parse(data, "test").topology


def test_three_tier_arrows():
    assert flows(load(TOPOLOGIES / "three-tier.yaml").topology) == [
        Flow("you", "alb", "tcp 80, 443"), Flow("stranger", "alb", "tcp 80, 443"),
        Flow("alb", "app", "tcp 8080"), Flow("app", "db", "tcp 3306")]


def test_ports_are_the_intersection_of_egress_and_ingress():
    t = lab([{"name": "client", "egress": [{"protocol": "tcp", "ports": "1-100", "cidr": "10.0.0.0/16"},
                                           {"protocol": "udp", "ports": 53, "group": "server"}]},
             {"name": "server", "ingress": [{"protocol": "tcp", "ports": "80-200", "group": "client"},
                                            {"protocol": "udp", "ports": "50-60", "cidr": "10.0.1.0/24"},
                                            {"protocol": "icmp", "icmp_type": 8, "cidr": "0.0.0.0/0"}]}],
            [{"name": "c", "subnet": "a", "security_groups": ["client"]},
             {"name": "s", "subnet": "a", "security_groups": ["server"]}])
    assert flows(t) == [Flow("c", "s", "tcp 80-100, udp 53")]    # icmp: client's egress does not allow it


def test_all_traffic_only_when_both_sides_allow_everything():
    t = lab([{"name": "open", "ingress": [{"protocol": "all", "cidr": "10.0.0.0/16"}]},
             {"name": "ssh", "ingress": [{"protocol": "tcp", "ports": 22, "group": "open"}]}],
            [{"name": "x", "subnet": "a", "security_groups": ["open"]},
             {"name": "y", "subnet": "a", "security_groups": ["open"]},
             {"name": "z", "subnet": "a", "security_groups": ["ssh"]}])
    assert flows(t) == [Flow("x", "y", "all traffic"), Flow("x", "z", "tcp 22"),
                        Flow("y", "x", "all traffic"), Flow("y", "z", "tcp 22"),
                        Flow("z", "x", "all traffic"), Flow("z", "y", "all traffic")]


def test_internet_reaches_only_public_or_ipv6_addresses_and_families_are_labelled():
    t = lab([{"name": "web", "ingress": [{"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0"},
                                         {"protocol": "tcp", "ports": 443, "cidr": "::/0"},
                                         {"protocol": "icmpv6", "cidr": "::/0"}]}],
            [{"name": "public", "subnet": "a", "public_ip": "198.51.100.10", "ipv6": "fd00:10:0:1::10",
              "security_groups": ["web"]},
             {"name": "private", "subnet": "a", "security_groups": ["web"]},
             {"name": "v6only", "subnet": "a", "ipv6": "fd00:10:0:1::11", "security_groups": ["web"]}], dual=True)
    assert [f for f in flows(t) if f.src == "you"] == [
        Flow("you", "public", "tcp 80 | IPv6: tcp 443, icmpv6"), Flow("you", "v6only", "IPv6: tcp 443, icmpv6")]


def test_dot_draws_subnets_as_clusters_and_flows_as_labelled_edges():
    dot = to_dot(load(TOPOLOGIES / "three-tier.yaml").topology)
    assert 'subgraph cluster_subnet_0 {\n      label="public 10.0.1.0/24"' in dot
    assert '"alb" [shape=box, label="alb\\n10.0.1.10 / 198.51.100.10\\nalb-sg"];' in dot
    assert '"you" [shape=ellipse, label="you\\n203.0.113.10"];' in dot
    assert '"alb" -> "app" [label="tcp 8080"];' in dot


def test_mermaid_for_readmes():
    text = to_mermaid(load(TOPOLOGIES / "three-tier.yaml").topology)
    assert text.startswith("flowchart LR\n")
    assert '      n2["alb<br/>10.0.1.10 / 198.51.100.10<br/>alb-sg"]' in text
    assert '  n2 -->|"tcp 8080"| n3' in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot is not installed")
def test_cli_draws_an_svg(tmp_path):
    out = tmp_path / "lab.svg"
    run = CliRunner().invoke(cli, ["graph", str(TOPOLOGIES / "three-tier.yaml"), "-o", str(out)])
    assert run.exit_code == 0, run.output
    svg = out.read_text()
    assert "<svg" in svg and "tcp 8080" in svg


def test_without_dot_pictures_say_how_to_install_and_text_formats_still_work(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    runner = CliRunner()
    run = runner.invoke(cli, ["graph", str(TOPOLOGIES / "three-tier.yaml"), "-o", str(tmp_path / "lab.png")])
    assert run.exit_code != 0 and "apt-get install graphviz" in str(run.exception)
    run = runner.invoke(cli, ["graph", str(TOPOLOGIES / "three-tier.yaml"), "--format", "mermaid"])
    assert run.exit_code == 0 and run.output.startswith("flowchart LR")
    run = runner.invoke(cli, ["graph", str(TOPOLOGIES / "three-tier.yaml"), "-o", str(tmp_path / "lab.dot")])
    assert run.exit_code == 0 and (tmp_path / "lab.dot").read_text().startswith('digraph "three-tier"')
