"""Port-range arithmetic, and what a network ACL lets through as ranges: the static counterpart of the
engine's per-packet first-match walk (emulator/engine/nacl.py), for pictures that must say which
ports really get through without trying them one by one.

AWS (https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html): rules are evaluated in
ascending rule-number order, the first rule that matches the traffic decides, and traffic no rule
matches meets the final `*` deny. So walking the rules in order and, per rule, keeping (allow) or
dropping (deny) the still-undecided part of the wanted ranges is exact.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

from .model import (
    ICMP_PROTOCOLS,
    NACL_ALLOW,
    PORTED_PROTOCOLS,
    PROTO_ALL,
    PROTO_ICMPV6,
    Direction,
    NaclEntry,
    NetworkAcl,
)

Ranges = tuple[tuple[int, int], ...]
FULL: Ranges = ((0, 65535),)
ICMP_ALL: Ranges = ((0, 255),)
# Protocols other than tcp, udp and icmp(v6) that no rule names: only `all` (-1) NACL rules match them.
OTHER_PROTOCOLS = 256


def merge(ranges: list[tuple[int, int]] | Ranges) -> Ranges:
    out: list[tuple[int, int]] = []
    for low, high in sorted(ranges):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return tuple(out)


def intersect(a: Ranges, b: Ranges) -> Ranges:
    return merge([(max(x[0], y[0]), min(x[1], y[1])) for x in a for y in b if max(x[0], y[0]) <= min(x[1], y[1])])


def subtract(a: Ranges, b: Ranges) -> Ranges:
    """The part of `a` outside `b`."""
    out: list[tuple[int, int]] = []
    for low, high in a:
        for cut_low, cut_high in merge(b):
            if cut_high < low or cut_low > high:
                continue
            if cut_low > low:
                out.append((low, cut_low - 1))
            low = cut_high + 1
            if low > high:
                break
        if low <= high:
            out.append((low, high))
    return merge(out)


def covers(ranges: Ranges, value: int) -> bool:
    return any(low <= value <= high for low, high in ranges)


def _entry_span(entry: NaclEntry, proto: int) -> Ranges | None:
    """What of `proto`'s space (ports, ICMP types, or all of it) the entry matches; None: not this
    protocol. ICMP is judged for code 0 (echo and its reply, the packets `explain` sends)."""
    if entry.protocol == PROTO_ALL:
        return FULL
    if entry.protocol != proto:
        return None
    if proto in PORTED_PROTOCOLS:
        return ((entry.ports.low, entry.ports.high),) if entry.ports is not None else FULL
    if proto in ICMP_PROTOCOLS and not (proto == PROTO_ICMPV6 and entry.cidr.version == 4):
        if entry.icmp_code not in (-1, 0):
            return None
        return FULL if entry.icmp_type == -1 else ((entry.icmp_type, entry.icmp_type),)
    return FULL


def nacl_passes(nacl: NetworkAcl, direction: Direction, proto: int, remote: IPv4Address | IPv6Address,
                wanted: Ranges) -> Ranges:
    """The part of `wanted` (destination ports, ICMP types, or FULL for a protocol without either)
    that NACL lets through in `direction` (seen from its subnet) for `proto` packets to or from
    `remote`: first match by rule number, then the `*` deny."""
    left: Ranges = wanted
    allowed: list[tuple[int, int]] = []
    for entry in sorted(nacl.entries(direction), key=lambda e: e.rule_number):
        if entry.cidr.version != remote.version or remote not in entry.cidr:
            continue
        span = _entry_span(entry, proto)
        if span is None:
            continue
        if entry.action == NACL_ALLOW:
            allowed.extend(intersect(left, span))
        left = subtract(left, span)
        if not left:
            break
    return merge(allowed)


__all__ = ["FULL", "ICMP_ALL", "OTHER_PROTOCOLS", "Ranges", "covers", "intersect", "merge", "nacl_passes", "subtract"]
