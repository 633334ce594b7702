"""Shared by the topology tests: a small valid document and helpers to break it one field at a time."""
from __future__ import annotations

import copy
import re

import pytest

from emulator.errors import TopologyError
from emulator.topology import Loaded, parse

SOURCE = "t.yaml"
DELETE = object()
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def base_doc() -> dict:
    """Dual-stack VPC, two SGs (one referencing the other), two instances, one internet host."""
    return {
        "name": "t",
        "vpc": {"cidr": "10.0.0.0/16", "ipv6_cidr": "fd00:10::/56"},
        "subnets": [
            {"name": "public", "cidr": "10.0.1.0/24", "ipv6_cidr": "fd00:10:0:1::/64"},
            {"name": "private", "cidr": "10.0.2.0/24"},
        ],
        "security_groups": [
            {"name": "web-sg", "ingress": [{"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0"}]},
            {"name": "app-sg", "ingress": [{"protocol": "tcp", "ports": 8080, "group": "web-sg"}], "egress": []},
        ],
        "instances": [
            {"name": "web", "subnet": "public", "public_ip": "198.51.100.10", "security_groups": ["web-sg"],
             "services": [{"type": "http", "port": 80}]},
            {"name": "app", "subnet": "private", "security_groups": ["app-sg"]},
        ],
        "internet": [{"name": "you", "ip": "203.0.113.10", "ipv6": "2001:db8::10"}],
    }


def edit(doc: dict, edits: dict[str, object]) -> dict:
    """A copy of doc with each dotted path (`security_groups[0].ingress[0].ports`) set, or removed with DELETE."""
    doc = copy.deepcopy(doc)
    for path, value in edits.items():
        steps = [name if name else int(index) for name, index in _STEP.findall(path)]
        parent = doc
        for step in steps[:-1]:
            parent = parent[step]
        if value is DELETE:
            del parent[steps[-1]]
        elif isinstance(steps[-1], int) and steps[-1] == len(parent):
            parent.append(copy.deepcopy(value))
        else:
            parent[steps[-1]] = copy.deepcopy(value)
    return doc


def load_doc(doc: object) -> Loaded:
    return parse(doc, SOURCE, "t")


def problems_of(doc: object) -> list[str]:
    with pytest.raises(TopologyError) as caught:
        load_doc(doc)
    return caught.value.problems


def assert_problem(doc: object, path: str, fragment: str) -> str:
    """The document is rejected with a problem at exactly `path` mentioning `fragment`; returns it."""
    found = problems_of(doc)
    prefix = f"{SOURCE}: {path}: "
    match = [p for p in found if p.startswith(prefix) and fragment in p]
    assert match, f"no problem at {path!r} with {fragment!r} in:\n" + "\n".join(found)
    assert "; " in match[0][len(prefix):], f"no 'what is allowed' part: {match[0]}"
    return match[0]
