"""What network ACLs cost per packet, measured in-process (no root), as the queue handler composes a
trip between two subnets: the SG alone (the baseline: no NACL state at all), the same lab with AWS's
default NACL (allow-all, short-circuited: what every lab without NACLs pays), and custom NACLs of 2, 19
and 39 rules per direction whose LAST rule allows the packet (the worst case of a first-match scan).

    python -m emulator.bench.nacl_cost      # prints one JSON line, ratios against the baseline

Packets of an ESTABLISHED tracked flow (what most packets are), each leg decided like the handler does
(`boundary` None when the gate is open for the family, else the gate). Each figure is the best of
REPEATS interleaved runs of BATCH packets after a warm-up, in ns of this process's CPU time per packet.
"""
from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable

from emulator.engine.firewall import ACCEPT, EniFirewall, build_firewalls
from emulator.engine.nacl import SubnetGate, enter, leave
from emulator.engine.naclstate import NaclState
from emulator.engine.packet import TCP_ACK, TCP_SYN, Packet
from emulator.engine.verdict import Verdict
from emulator.model import Direction
from emulator.topology import parse

NACL_RULES = (1, 18, 38)        # + the final allow: 2, 19 and 39 entries (+ `*`: the quota), the last deciding
BATCH = 20_000
REPEATS = 15
A, B, PORT, CLIENT_PORT = "10.0.1.10", "10.0.2.10", 8080, 40000


def lab(rules: int | None) -> dict:
    """a in subnet one, b in subnet two; `rules` deny rules (never matching) before an allow-all in
    b's NACL both ways, or None for no network_acls at all (the default NACL)."""
    data: dict = {
        "name": "nacl-bench", "vpc": {"cidr": "10.0.0.0/16"},
        "subnets": [{"name": "one", "cidr": "10.0.1.0/24"}, {"name": "two", "cidr": "10.0.2.0/24"}],
        "security_groups": [{"name": "g", "ingress": [{"protocol": "tcp", "ports": PORT, "cidr": "10.0.1.0/24"}]}],
        "instances": [{"name": "a", "subnet": "one", "private_ip": A, "security_groups": ["g"]},
                      {"name": "b", "subnet": "two", "private_ip": B, "security_groups": ["g"]}],
        "options": {"quotas": {"rules_per_nacl": 40}},
    }
    if rules is not None:
        entries = [{"rule": n, "action": "deny", "protocol": "udp", "ports": n, "cidr": "192.0.2.0/24"}
                   for n in range(1, rules + 1)]
        allow = {"rule": rules + 1, "action": "allow", "protocol": "tcp", "ports": "0-65535", "cidr": "10.0.0.0/16"}
        data["network_acls"] = [{"name": "guard", "subnets": ["two"], "ingress": [*entries, allow],
                                 "egress": [*entries, allow]}]
    return data


def trip(rules: int | None, with_nacls: bool) -> Callable[[], int]:
    """One established packet a -> b, decided as the queue handler does; returns accepted packets."""
    topology = parse(lab(rules), "bench").topology
    _, firewalls = build_firewalls(topology)
    a, b = firewalls["a"], firewalls["b"]
    nacls = NaclState(topology)
    ga, gb = nacls.gate("one"), nacls.gate("two")
    syn = Packet.build(4, A, B, 6, CLIENT_PORT, PORT, tcp_flags=TCP_SYN)
    synack = Packet.build(4, B, A, 6, PORT, CLIENT_PORT, tcp_flags=TCP_SYN | TCP_ACK)
    ack = Packet.build(4, A, B, 6, CLIENT_PORT, PORT, tcp_flags=TCP_ACK, length=1400)
    for p, src, dst in ((syn, a, b), (synack, b, a), (ack, a, b)):
        assert _decide(src, dst, ga, gb, p, 1.0, with_nacls).action == ACCEPT

    def run() -> int:
        accepted = 0
        for _ in range(BATCH):
            accepted += _decide(a, b, ga, gb, ack, 2.0, with_nacls).action == ACCEPT
        return accepted
    return run


def _decide(src: EniFirewall, dst: EniFirewall, out: SubnetGate, into: SubnetGate, packet: Packet, now: float,
            with_nacls: bool) -> Verdict:
    """The handler's composition: open gates are skipped with one tuple lookup, others checked."""
    if not with_nacls:
        verdict = src.decide(packet, Direction.EGRESS, now)
        return dst.decide(packet, Direction.INGRESS, now) if verdict.action == ACCEPT else verdict
    version = packet.version
    leaving = None if out.open_out[version] or into is out else out
    verdict = src.decide(packet, Direction.EGRESS, now) if leaving is None else leave(src, packet, now, leaving)
    if verdict.action != ACCEPT:
        return verdict
    entering = None if into is out or into.open_in[version] else into
    return dst.decide(packet, Direction.INGRESS, now) if entering is None else enter(dst, packet, now, entering)


def interleaved_best_ns(runs: dict[str, Callable[[], int]]) -> dict[str, float]:
    """Each run's best ns per packet over REPEATS rounds, the runs interleaved in every round so that
    load from elsewhere on the machine hits them alike."""
    for run in runs.values():
        run()
    best = dict.fromkeys(runs, float("inf"))
    gc.disable()
    try:
        for _ in range(REPEATS):
            for name, run in runs.items():
                start = time.process_time_ns()
                assert run() == BATCH
                best[name] = min(best[name], (time.process_time_ns() - start) / BATCH)
    finally:
        gc.enable()
    return best


def main() -> None:
    runs = {"sg_only": trip(None, with_nacls=False), "default_nacl": trip(None, with_nacls=True)}
    for rules in NACL_RULES:
        runs[f"nacl_{rules + 1}_rules"] = trip(rules, with_nacls=True)
    points = interleaved_best_ns(runs)
    base = points["sg_only"]
    print(json.dumps({"ns_per_packet": {k: round(v) for k, v in points.items()},
                      "ratio_to_sg_only": {k: round(v / base, 3) for k, v in points.items()}}))


if __name__ == "__main__":
    main()
