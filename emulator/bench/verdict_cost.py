"""Verdict cost as the work grows, measured in-process (no root): the engine's decision for one
packet against rules per SG, SGs per ENI, tracked flows per ENI and ENIs per lab.

    python -m emulator.bench.verdict_cost      # prints one JSON line

Two kinds of packet are timed at each point: a NEW flow (a SYN on fresh ports, matched by the
last rule of the last SG, so a rule scan goes the whole way: the worst case) and a packet of an
ESTABLISHED flow (what most packets are). Each figure is the best of REPEATS runs of BATCH
packets after a warm-up, in ns of this process's CPU time per packet, from `EniFirewall.decide`
with packets already parsed. Ratios are against the smallest point of the same run.
"""
from __future__ import annotations

import gc
import json
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address

from emulator.engine.firewall import ACCEPT, EniFirewall, build_firewalls
from emulator.engine.packet import TCP_ACK, TCP_SYN, Packet
from emulator.model import Direction
from emulator.topology import parse

RULES_PER_SG = (1, 60, 1000)
SGS_PER_ENI = (1, 5, 16)
FLOWS_PER_ENI = (1_000, 100_000)
ENIS_PER_LAB = (2, 100, 500)
BATCH = 5_000
REPEATS = 7
CLIENT_NET = int(IPv4Address("198.18.0.0"))
BASE_PORT = 10_000          # rule n opens port BASE_PORT + n: the last rule is the one that matches


def lab(rules_per_sg: int = 1, sgs_per_eni: int = 1, enis: int = 2) -> dict:
    """`enis` instances, each in `sgs_per_eni` SGs of `rules_per_sg` ingress rules: one port per
    rule from a /24 of clients (tracked), plus a rule admitting the lab's own members."""
    per_sg = max(1, rules_per_sg - 1)
    members: list[dict[str, object]] = [{"protocol": "tcp", "ports": 22, "group": "g0"}] if rules_per_sg > 1 else []
    groups = [{"name": f"g{g}", "ingress": [*(members if g == 0 else []),
                                            *({"protocol": "tcp", "ports": BASE_PORT + g * per_sg + n,
                                               "cidr": "198.18.0.0/24"} for n in range(per_sg))]}
              for g in range(sgs_per_eni)]
    return {"name": "bench-cost", "vpc": {"cidr": "10.0.0.0/16"},
            "subnets": [{"name": "s", "cidr": "10.0.0.0/20"}],
            "security_groups": groups,
            "instances": [{"name": f"n{i}", "subnet": "s", "security_groups": [g["name"] for g in groups]}
                          for i in range(enis)],
            "options": {"quotas": {"rules_per_sg": max(60, rules_per_sg),
                                   "sgs_per_eni": max(1, min(sgs_per_eni, 1000 // max(60, rules_per_sg)))},
                        "conntrack_allowance": 1_000_000}}


def _firewall(topology: dict) -> tuple[EniFirewall, int, int]:
    """The first ENI's firewall, its address and the port its last rule opens."""
    parsed = parse(topology, "bench").topology
    _, firewalls = build_firewalls(parsed)
    firewall = firewalls["n0"]
    last = parsed.security_groups[-1].ingress[-1]
    assert last.ports is not None
    return firewall, int(firewall.instance.private_ip), last.ports.low


def _best(run: Callable[[], None]) -> float:
    """ns per packet: the best of REPEATS runs of BATCH packets after one warm-up run, in CPU
    time of this process (other processes on a shared machine do not count)."""
    run()
    times = []
    gc.collect()
    gc.disable()            # as timeit does: a collection mid-run measures the heap, not the verdict
    try:
        for _ in range(REPEATS):
            start = time.process_time_ns()
            run()
            times.append((time.process_time_ns() - start) / BATCH)
    finally:
        gc.enable()
    return min(times)


def cost(topology: dict, flows: int = 0) -> dict[str, float]:
    """ns per verdict for new flows and for established ones, with `flows` flows already open."""
    firewall, me, port = _firewall(topology)
    ingress = Direction.INGRESS
    opened = [Packet(4, CLIENT_NET + 1 + n // 50_000, me, 6, 1024 + n % 50_000, port, TCP_SYN, length=60)
              for n in range(max(flows, BATCH))]
    for packet in opened[:max(flows, 1)]:
        if firewall.decide(packet, ingress, 0.0).action != ACCEPT:
            raise RuntimeError("the cost probe's packet was dropped: the probe is wrong")
    established = [Packet(4, p.src, me, 6, p.sport, port, TCP_ACK, length=1500) for p in opened[:BATCH]]
    for packet in established[:BATCH]:
        firewall.decide(packet, ingress, 0.0)
    counter = iter(range(10**9))

    def new_flows() -> None:
        base = next(counter) * BATCH
        for n in range(BATCH):       # fresh ports every run: each packet opens a flow
            firewall.decide(Packet(4, CLIENT_NET + 200, me, 6, (base + n) % 60_000 + 1024, port, TCP_SYN,
                                   length=60), ingress, 1.0)

    def existing() -> None:
        for packet in established:
            firewall.decide(packet, ingress, 1.0)

    # Creating the packet objects is timed for new flows: subtract it.
    def packets_only() -> None:
        for n in range(BATCH):
            Packet(4, CLIENT_NET + 200, me, 6, n, port, TCP_SYN, length=60)

    return {"new_ns": _best(new_flows) - _best(packets_only), "established_ns": _best(existing)}


def measure(progress: Callable[[str], None] = lambda message: None) -> dict:
    def series(name: str, points: tuple[int, ...], build: Callable[[int], tuple[dict, int]]) -> dict:
        progress(f"verdict cost against {name}: {', '.join(map(str, points))}")
        return {str(p): cost(*build(p)) for p in points}

    result = {
        "rules_per_sg": series("rules per SG", RULES_PER_SG, lambda n: (lab(rules_per_sg=n), 0)),
        "sgs_per_eni": series("SGs per ENI", SGS_PER_ENI, lambda n: (lab(rules_per_sg=2, sgs_per_eni=n), 0)),
        "flows_per_eni": series("tracked flows per ENI", FLOWS_PER_ENI, lambda n: (lab(), n)),
        "enis_per_lab": series("ENIs per lab", ENIS_PER_LAB, lambda n: (lab(enis=n), 0)),
    }
    for data in result.values():
        first = next(iter(data.values()))
        for point in data.values():
            point["new_ratio"] = round(point["new_ns"] / first["new_ns"], 3)
            point["established_ratio"] = round(point["established_ns"] / first["established_ns"], 3)
            point["new_ns"] = round(point["new_ns"], 1)
            point["established_ns"] = round(point["established_ns"], 1)
    return result


def worst_ratio(series: dict) -> float:
    """The largest cost ratio of a series, over both kinds of packet."""
    return max(max(p["new_ratio"], p["established_ratio"]) for p in series.values())


if __name__ == "__main__":
    print(json.dumps(measure(lambda message: print(message, file=sys.stderr))), flush=True)
