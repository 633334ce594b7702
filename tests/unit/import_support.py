"""Shared by the importer tests: an SG's rules as text, with SG ids shown as names."""
from __future__ import annotations

from emulator.model import Direction, Topology


def described(topology: Topology, sg: str, direction: Direction) -> set[str]:
    out = set()
    for rule in topology.sg(sg).rules(direction):
        text = rule.describe()
        for group in topology.security_groups:
            text = text.replace(group.id, group.name)
        out.add(text)
    return out
