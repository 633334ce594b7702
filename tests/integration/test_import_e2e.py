"""Import real AWS and Terraform output, bring the lab up, and probe it with real connections.

No services run in imported labs, so an allowed SYN meets a closed port ("refused") and a blocked
one is silently dropped ("timeout"): exactly what the imported rules decide."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.importers import import_aws, import_terraform
from emulator.lab import lifecycle as lab
from emulator.model import Topology
from emulator.testing.probe import probe
from emulator.topology import parse

DATA = Path(__file__).resolve().parents[1] / "data"
TIMEOUT = 1.0


def observe(topology: Topology, cases: list[tuple[str, str, int, bool]]) -> list[str]:
    """Bring the lab up, probe every (src, dst, port, ipv6) case over TCP, always tear down."""
    lab.up(topology)
    try:
        return [probe(topology.name, src, dst, port, "tcp", TIMEOUT, ipv6) for src, dst, port, ipv6 in cases]
    finally:
        lab.down(topology.name)


def test_imported_aws_describe_output_enforces_its_rules() -> None:
    aws = DATA / "aws"
    result = import_aws([aws / "describe-security-groups.json"], aws / "describe-instances.json",
                        aws / "describe-subnets.json", aws / "describe-vpcs.json", lab_name="it-import-aws")
    db = "i-0a1b2c3d4e5f60003"
    cases = [("you", "alb-node-1", 80, False),      # alb-sg: 80 from 0.0.0.0/0
             ("you", "alb-node-1", 22, False),      # nothing allows 22
             ("you", "alb-node-1", 80, True),       # 80 from ::/0 over IPv6
             ("alb-node-1", "app", 8080, False),    # alb-sg egress 8080 -> app-sg; app-sg 8080 from alb-sg
             ("alb-node-1", db, 3306, False),       # alb-sg has no egress 3306
             ("app", db, 3306, False),              # app-sg egress 3306 -> db-sg; db-sg 3306 from app-sg
             ("app", db, 5432, False)]              # the rule from a missing SG was not carried over
    assert observe(result.loaded.topology, cases) == [
        "refused", "timeout", "refused", "refused", "timeout", "refused", "timeout"]


def test_imported_terraform_plan_enforces_its_rules() -> None:
    result = import_terraform(DATA / "terraform" / "plan.json", lab_name="it-import-tf")
    cases = [("you", "web-1", 443, False),          # inline ingress 443 from 0.0.0.0/0
             ("you", "web-1", 22, False),           # 22 from 203.0.113.0/24: you is 203.0.113.10
             ("you", "web-1", 8080, False),
             ("web-1", "db", 5432, False),          # rule resource in a module, source via var.web_sg_id
             ("web-1", "db", 22, False)]
    assert observe(result.loaded.topology, cases) == ["refused", "refused", "timeout", "refused", "timeout"]


CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} is absent")
def test_a_real_accounts_files_enforce_their_rules() -> None:
    """cloudmapper's demo account, unchanged: Bastion allows 22 from 1.1.1.1/32 only (an internet host at
    that address is added); Internal web allows 8000 from Bastion and Public web, not from itself."""
    demo = sorted((CORPUS / "aws").glob("cloudmapper-demo-ec2-describe-*.json"))
    result = import_aws(files=demo, lab_name="it-import-real")
    data = {**result.data, "internet": [*result.data["internet"], {"name": "office", "ip": "1.1.1.1"}]}
    topology = parse(data, "cloudmapper demo", "it-import-real").topology
    cases = [("office", "bastion", 22, False),      # 22 from 1.1.1.1/32
             ("you", "bastion", 22, False),         # you (203.0.113.10) is not an office
             ("bastion", "web1", 8000, False),      # Internal web: 8000 from Bastion
             ("web1", "web2", 8000, False),         # ... but not from Internal web itself
             ("bastion", "web1", 22, False)]
    assert observe(topology, cases) == ["refused", "timeout", "refused", "timeout", "timeout"]


def test_imported_terraform_nat_gateway_carries_a_private_instance_out() -> None:
    """The three-tier plan (route tables, aws_route to an aws_nat_gateway with an aws_eip): app, in the
    private subnet, reaches an internet host, whose listener sees the NAT gateway's Elastic IP; nothing
    reaches app from the internet; data's subnet (the emptied main table) has no way out."""
    from .test_routing import peer_seen

    result = import_terraform(DATA / "terraform" / "three-tier-nat-plan.json", lab_name="it-import-tfnat")
    topology = result.loaded.topology
    [nat] = result.data["nat_gateways"]
    you = result.data["internet"][0]["ip"]
    app = next(str(i.private_ip) for i in topology.instances if i.name == "app")
    lab.up(topology)
    try:
        assert peer_seen(topology.name, "you", "app", you) == ("hello", nat["public_ip"])
        assert probe(topology.name, "you", app, 22, "tcp", TIMEOUT) == "timeout"     # app-sg allows 22 from 0/0
        assert probe(topology.name, "you", nat["public_ip"], 443, "tcp", TIMEOUT) == "timeout"
        assert probe(topology.name, "data", you, 443, "tcp", TIMEOUT) == "timeout"   # no route
        assert probe(topology.name, "you", "web", 443, "tcp", TIMEOUT) == "refused"  # public: igw route, 443 open
    finally:
        lab.down(topology.name)
