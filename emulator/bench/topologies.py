"""The topologies the benchmark brings up (plain dicts, parsed like a user's file)."""
from __future__ import annotations


def pair_topology(name: str, offload: bool) -> dict:
    """Two instances whose SG admits all TCP and UDP from itself: every flow is tracked (the
    source is an SG reference, not 0.0.0.0/0), so offload applies to TCP."""
    return {
        "name": name,
        "vpc": {"cidr": "10.0.0.0/16"},
        "subnets": [{"name": "bench", "cidr": "10.0.1.0/24"}],
        "security_groups": [{"name": "bench-sg",
                             "ingress": [{"protocol": "tcp", "ports": "0-65535", "group": "bench-sg"},
                                         {"protocol": "udp", "ports": "0-65535", "group": "bench-sg"}]}],
        "instances": [{"name": n, "subnet": "bench", "security_groups": ["bench-sg"]} for n in ("a", "b")],
        "options": {"offload": offload},
    }


def fleet_topology(name: str, count: int) -> dict:
    return {"name": name, "vpc": {"cidr": "10.0.0.0/16"},
            "subnets": [{"name": "fleet", "cidr": "10.0.0.0/20"}],
            "instances": [{"name": f"n{i}", "subnet": "fleet"} for i in range(1, count + 1)]}


def scale_topology(name: str, count: int, services: bool) -> dict:
    """`count` instances in one subnet, all in the VPC's default SG (all traffic from itself):
    every packet between two of them needs the engine (offload off), and every instance with
    `services` runs a real sshd, as a fleet of servers would."""
    return {"name": name, "vpc": {"cidr": "10.0.0.0/16"},
            "subnets": [{"name": "fleet", "cidr": "10.0.0.0/20"}],
            "instances": [{"name": f"n{i}", "subnet": "fleet", **({"services": [{"type": "ssh"}]} if services else {})}
                          for i in range(1, count + 1)],
            "options": {"offload": False}}
