"""Port-range arithmetic, and the static first-match walk over NACL rules checked against the engine's
per-packet decision (emulator/engine/nacl.py) on generated NACLs."""
from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_network

import pytest

from emulator.engine.nacl import NaclTable
from emulator.engine.packet import Packet
from emulator.engine.verdict import ACCEPT
from emulator.model import (
    NACL_ALLOW,
    NACL_DENY,
    PROTO_ALL,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    Direction,
    NaclEntry,
    NetworkAcl,
    PortRange,
)
from emulator.portranges import FULL, ICMP_ALL, covers, intersect, merge, nacl_passes, subtract

WEB = IPv4Address("10.0.1.10")


def acl(*entries: NaclEntry, direction: Direction = Direction.INGRESS) -> NetworkAcl:
    ingress = entries if direction is Direction.INGRESS else ()
    egress = entries if direction is Direction.EGRESS else ()
    return NetworkAcl("n", "acl-1", (), ingress, egress)


def rule(number: int, action: str, proto: int, cidr: str, ports: tuple[int, int] | None = None,
         icmp_type: int = -1, icmp_code: int = -1) -> NaclEntry:
    return NaclEntry(number, Direction.INGRESS, action, proto, ip_network(cidr),
                     PortRange(*ports) if ports else None, icmp_type, icmp_code)


def test_range_arithmetic():
    assert merge([(5, 9), (1, 3), (4, 4), (20, 30)]) == ((1, 9), (20, 30))
    assert intersect(((1, 100), (200, 300)), ((50, 250),)) == ((50, 100), (200, 250))
    assert subtract(((1, 100),), ((10, 20), (30, 40))) == ((1, 9), (21, 29), (41, 100))
    assert subtract(((1, 100),), ((0, 65535),)) == ()
    assert subtract(((80, 80), (443, 443)), ((443, 443),)) == ((80, 80),)
    assert subtract(FULL, ()) == FULL
    assert covers(((1024, 65535),), 40000) and not covers(((1024, 32767),), 40000)


def test_first_match_wins_in_rule_number_order_whatever_the_listed_order():
    deny_then_allow = acl(rule(200, NACL_ALLOW, PROTO_TCP, "0.0.0.0/0"),
                          rule(100, NACL_DENY, PROTO_TCP, "0.0.0.0/0", (22, 22)))
    assert nacl_passes(deny_then_allow, Direction.INGRESS, PROTO_TCP, WEB, ((1, 1024),)) == ((1, 21), (23, 1024))
    # a later deny cannot take back what an earlier allow decided
    allow_then_deny = acl(rule(100, NACL_ALLOW, PROTO_TCP, "0.0.0.0/0", (80, 80)),
                          rule(110, NACL_DENY, PROTO_ALL, "0.0.0.0/0"))
    assert nacl_passes(allow_then_deny, Direction.INGRESS, PROTO_TCP, WEB, FULL) == ((80, 80),)


def test_the_star_rule_denies_what_no_rule_matches_and_cidrs_and_directions_count():
    nacl = acl(rule(100, NACL_ALLOW, PROTO_TCP, "10.0.2.0/24", (1024, 65535)))
    assert nacl_passes(nacl, Direction.INGRESS, PROTO_TCP, WEB, FULL) == ()                # 10.0.1.10: no match
    assert nacl_passes(nacl, Direction.INGRESS, PROTO_TCP, IPv4Address("10.0.2.5"), FULL) == ((1024, 65535),)
    assert nacl_passes(nacl, Direction.INGRESS, PROTO_UDP, IPv4Address("10.0.2.5"), FULL) == ()
    assert nacl_passes(nacl, Direction.EGRESS, PROTO_TCP, IPv4Address("10.0.2.5"), FULL) == ()   # no egress rules
    assert nacl_passes(nacl, Direction.INGRESS, PROTO_TCP, IPv6Address("fd00::1"), FULL) == ()   # IPv4 rules only


def test_icmp_types_and_codes_and_other_protocols():
    nacl = acl(rule(90, NACL_DENY, PROTO_ICMP, "0.0.0.0/0", icmp_type=3, icmp_code=4),
               rule(100, NACL_ALLOW, PROTO_ICMP, "0.0.0.0/0", icmp_type=8),
               rule(110, NACL_ALLOW, 47, "0.0.0.0/0"))
    # judged for code 0: the rule for code 4 decides nothing about type 3 code 0
    assert nacl_passes(nacl, Direction.INGRESS, PROTO_ICMP, WEB, ICMP_ALL) == ((8, 8),)
    assert nacl_passes(nacl, Direction.INGRESS, 47, WEB, FULL) == FULL
    assert nacl_passes(nacl, Direction.INGRESS, 50, WEB, FULL) == ()


def _random_entries(rng: random.Random, direction: Direction) -> tuple[NaclEntry, ...]:
    cidrs = ["0.0.0.0/0", "10.0.0.0/16", "10.0.1.0/24", "10.0.2.0/24", "10.0.1.10/32", "203.0.113.0/24"]
    edges = [1, 22, 80, 443, 1023, 1024, 8080, 32768, 40000, 65535]
    entries = []
    for number in rng.sample(range(1, 300), rng.randint(0, 7)):
        proto = rng.choice([PROTO_TCP, PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ALL, 47])
        ports, icmp_type, icmp_code = None, -1, -1
        if proto in (PROTO_TCP, PROTO_UDP) and rng.random() < 0.8:
            low, high = sorted(rng.choice(edges) + rng.randint(-1, 1) for _ in range(2))
            ports = PortRange(max(low, 0), min(high, 65535))
        elif proto == PROTO_ICMP and rng.random() < 0.6:
            icmp_type = rng.choice([0, 3, 8])
            icmp_code = rng.choice([-1, -1, 0, 1])
        entries.append(NaclEntry(number, direction, rng.choice([NACL_ALLOW, NACL_DENY]), proto,
                                 IPv4Network(rng.choice(cidrs)), ports, icmp_type, icmp_code))
    return tuple(entries)


@pytest.mark.parametrize("seed", range(60))
def test_static_ranges_agree_with_the_engine_packet_by_packet(seed: int):
    """Every sampled port (and ICMP type at code 0) is in nacl_passes' ranges exactly when the engine's
    table accepts such a packet: the range walk is the engine's first match, not an approximation."""
    rng = random.Random(seed)
    direction = rng.choice(list(Direction))
    entries = _random_entries(rng, direction)
    nacl = acl(*entries, direction=direction)
    table = NaclTable(nacl, direction, 4)
    for remote in (WEB, IPv4Address("10.0.2.10"), IPv4Address("203.0.113.10")):
        for proto in (PROTO_TCP, PROTO_UDP):
            passed = nacl_passes(nacl, direction, proto, remote, FULL)
            for port in {0, 1, 21, 22, 23, 79, 80, 81, 443, 1023, 1024, 1025, 8080, 32767, 32768, 40000, 65535,
                         rng.randint(1, 65535)}:
                packet = Packet.build(4, remote, WEB, proto, 40000, port)
                engine = table.match(packet, int(remote)).action == ACCEPT
                assert covers(passed, port) == engine, (entries, remote, proto, port)
        passed = nacl_passes(nacl, direction, PROTO_ICMP, remote, ICMP_ALL)
        for kind in (0, 3, 8, 11):
            packet = Packet.build(4, remote, WEB, PROTO_ICMP, icmp_type=kind, icmp_code=0)
            assert covers(passed, kind) == (table.match(packet, int(remote)).action == ACCEPT), (entries, kind)
        packet = Packet.build(4, remote, WEB, 47)
        assert (nacl_passes(nacl, direction, 47, remote, FULL) == FULL) == \
            (table.match(packet, int(remote)).action == ACCEPT)
