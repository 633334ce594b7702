"""Read a running lab's current state through its engine: the live topology and open flows."""
from __future__ import annotations

from emulator.control.client import request
from emulator.model import Instance, Topology
from emulator.render.live import matching_entries
from emulator.topology import parse


def live_topology(lab: str) -> Topology:
    """The running lab's current topology, as its engine has it (after live changes)."""
    return parse(request(lab, "export"), f"lab {lab}", lab).topology


def live_entries(lab: str, topology: Topology, src: str, dst: str, proto: str, port: int) -> list[str]:
    """The connection-table lines of SRC's and DST's ENIs that belong to flows between the two."""
    nodes = {n: node for n in (src, dst) if (node := topology.node(n)) is not None}
    addresses = {n: {str(a) for a in (*node.addresses, getattr(node, "public_ip", None)) if a is not None}
                 for n, node in nodes.items()}
    lines: list[str] = []
    for here, there in ((src, dst), (dst, src)):
        if isinstance(nodes[here], Instance):
            tables = request(lab, "conntrack", instance=here)
            lines += matching_entries(tables, proto, port, {here: addresses[there]})
    return lines
