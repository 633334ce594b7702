"""Network tests for the three-tier security groups, with sgemu's pytest plugin.

Run as root:  pytest examples/test_three_tier.py
"""
from pathlib import Path

import pytest

TOPOLOGY = Path(__file__).resolve().parent.parent / "topologies" / "three-tier.yaml"


@pytest.fixture
def lab(sg_lab):
    return sg_lab(TOPOLOGY)


def test_only_the_load_balancer_faces_the_internet(lab):
    assert lab.probe("you", "alb", 80) == "open"
    assert lab.probe("you", "alb", 22) == "timeout"       # sshd runs, the SG drops it


def test_database_answers_only_the_app_tier(lab):
    lab.assert_matrix({
        "app -> db:3306": "open",
        "alb -> db:3306": "timeout",
        "stranger -> db:3306": "timeout",
        "db -> app:8080": "timeout",                       # db has no outbound rules
    })


def test_real_clients(lab):
    banner = lab.exec("app", "nc", "-N", "-w", "2", "db", "3306")
    assert banner.stdout.startswith("db tcp 3306 ready")


def test_opening_a_port_at_runtime(lab):
    assert lab.probe("stranger", "alb", 8443) == "timeout"
    lab.authorize_ingress("alb-sg", "tcp", 8443, cidr="198.51.100.7/32")
    assert lab.probe("stranger", "alb", 8443) == "refused"   # allowed now; nothing listens
    lab.revoke_ingress("alb-sg", "tcp", 8443, cidr="198.51.100.7/32")
    assert lab.probe("stranger", "alb", 8443) == "timeout"
