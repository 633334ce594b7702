"""The engine memory probe: RSS of a fresh process whose engine holds N tracked flows.

    python -m emulator.bench.memory FLOWS      # prints one JSON line
"""
from __future__ import annotations

import json
import sys
from ipaddress import IPv4Address

from emulator.bench.topologies import pair_topology
from emulator.engine.firewall import ACCEPT, build_firewalls
from emulator.engine.packet import TCP_SYN, Packet
from emulator.model import Direction
from emulator.topology import parse


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def memory(flows: int) -> dict:
    """RSS of an engine holding `flows` tracked TCP flows on one ENI (SYNs it accepted)."""
    topology = parse(pair_topology("bench-mem", offload=True), "bench").topology
    _, firewalls = build_firewalls(topology)
    firewall = firewalls["a"]
    src = int(topology.instance("a").private_ip)
    base = int(IPv4Address("198.18.0.0"))
    before = _rss_kb()
    for n in range(flows):
        packet = Packet(4, src, base + n // 50_000, 6, 1024 + n % 50_000, 443, TCP_SYN, length=60)
        if firewall.decide(packet, Direction.EGRESS, 0.0).action != ACCEPT:
            raise RuntimeError(f"flow {n} was not accepted: the probe is wrong")
    after = _rss_kb()
    return {"flows": len(firewall.table), "tracked": firewall.table.tracked,
            "rss_mb": after / 1024, "added_mb": (after - before) / 1024}



if __name__ == "__main__":
    print(json.dumps(memory(int(sys.argv[1]))), flush=True)
