"""The union of an ENI's SG rules, compiled for the hot path.

Each rule becomes int tuples (network, mask, a_lo, a_hi, b_lo, b_hi, members, hit) in lists
per (direction, address family, protocol); TCP/UDP lists are also indexed by destination port,
so a packet meets only the rules that open its port. (a, b) is (destination port, 0) for TCP/UDP,
(type, code) for ICMP, (0, 0) otherwise; ranges are inclusive. An SG-reference rule carries
the member addresses of that family instead of a network; a prefix-list rule becomes one tuple per
entry of that family (all sharing the rule's hit). Lists put /0 rules first, so the
first match is a /0 one whenever any /0 rule matches (that decides trackedness).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from emulator.model import ICMP_PROTOCOLS, PORTED_PROTOCOLS, PROTO_ALL, Direction, Rule, SecurityGroup

from .packet import Packet
from .verdict import ACCEPT, RULE_MATCH, UNTRACKED_ALLOWED_BY_RULE, Verdict

_FULL = (0, 0xFFFF)

RuleTuple = tuple[int, int, int, int, int, int, "frozenset[int] | None", "RuleHit"]
MemberLookup = Callable[[str, int], frozenset[int]]
# prefix list id, family -> (network, mask) of each current entry
PrefixLookup = Callable[[str, int], tuple[tuple[int, int], ...]]


def _no_prefix_lists(pl_id: str, version: int) -> tuple[tuple[int, int], ...]:
    return ()


class RuleHit:
    """A rule that can match, with the SG that holds it and the verdicts it gives (shared,
    so the hot path allocates none)."""

    __slots__ = ("accept_flowless", "accept_tracked", "accept_untracked", "open", "rule", "sg_id")

    def __init__(self, rule: Rule, sg_id: str, open_cidr: bool):
        self.rule = rule
        self.sg_id = sg_id
        self.open = open_cidr          # CIDR is 0.0.0.0/0 or ::/0
        self.accept_tracked = Verdict(ACCEPT, RULE_MATCH, rule, sg_id, True)
        self.accept_untracked = Verdict(ACCEPT, UNTRACKED_ALLOWED_BY_RULE, rule, sg_id, False)
        # ICMP errors and non-initial fragments: allowed, but they belong to no entry
        self.accept_flowless = Verdict(ACCEPT, RULE_MATCH, rule, sg_id, None)


def _ranges(rule: Rule) -> tuple[int, int, int, int]:
    if rule.protocol in PORTED_PROTOCOLS:
        ports = (rule.ports.low, rule.ports.high) if rule.ports is not None else _FULL
        return (*ports, *_FULL)
    if rule.protocol in ICMP_PROTOCOLS:
        kind = _FULL if rule.icmp_type == -1 else (rule.icmp_type, rule.icmp_type)
        code = _FULL if rule.icmp_code == -1 else (rule.icmp_code, rule.icmp_code)
        return (*kind, *code)
    return (*_FULL, *_FULL)          # protocol -1 and every other protocol ignore ports


def _is_all_ports(rule: Rule) -> bool:
    return _ranges(rule) == (*_FULL, *_FULL)


class CompiledRules:
    """All rules of a set of SGs, by [egress?][family] then protocol."""

    def __init__(self, groups: Iterable[SecurityGroup], members: MemberLookup,
                 prefix_lists: PrefixLookup = _no_prefix_lists):
        # [is_egress][version] -> (by protocol, protocol -1 rules only)
        self._lists: tuple[dict[int, tuple[dict[int, list[RuleTuple]], list[RuleTuple]]], ...] = ({}, {})
        # [is_egress][version] -> TCP/UDP -> (rules per destination port, rules for other ports)
        self._ports: tuple[dict[int, dict[int, PortIndex]], ...] = ({}, {})
        # [is_egress][version] -> protocols (TCP/UDP) that a /0 rule opens on all ports
        self._all_open: tuple[dict[int, frozenset[int]], ...] = ({}, {})
        groups = tuple(groups)
        for is_egress, direction in ((False, Direction.INGRESS), (True, Direction.EGRESS)):
            for version in (4, 6):
                entries = [entry for group in groups for rule in group.rules(direction)
                           for entry in _compile(rule, group.id, version, members, prefix_lists)]
                entries.sort(key=lambda e: not e[7].open)      # stable: /0 first, else file order
                wildcard = [e for e in entries if e[7].rule.protocol == PROTO_ALL]
                by_proto: dict[int, list[RuleTuple]] = {}
                for entry in entries:
                    protocol = entry[7].rule.protocol
                    if protocol != PROTO_ALL and protocol not in by_proto:
                        by_proto[protocol] = [e for e in entries
                                              if e[7].rule.protocol in (protocol, PROTO_ALL)]
                self._lists[is_egress][version] = (by_proto, wildcard)
                self._ports[is_egress][version] = {proto: _port_index(rules) for proto, rules in by_proto.items()
                                                   if proto in PORTED_PROTOCOLS}
                self._all_open[is_egress][version] = frozenset(
                    p for p in PORTED_PROTOCOLS
                    if any(e[7].open and e[7].rule.protocol in (p, PROTO_ALL) and _is_all_ports(e[7].rule)
                           for e in entries))

    def match(self, packet: Packet, is_egress: bool) -> RuleHit | None:
        """The rule allowing `packet` in that direction (a /0 one if any), or None."""
        proto = packet.proto
        if proto in PORTED_PROTOCOLS:
            a, b = packet.dport, 0
            index = self._ports[is_egress][packet.version].get(proto)
            # Only the rules that open this port (no rule of the protocol: the protocol -1 ones).
            rules = self._lists[is_egress][packet.version][1] if index is None else index[0].get(a, index[1])
        else:
            by_proto, wildcard = self._lists[is_egress][packet.version]
            rules = by_proto.get(proto, wildcard)
            if proto in ICMP_PROTOCOLS:
                a, b = packet.icmp_type & 0xFFFF, packet.icmp_code & 0xFFFF
            else:
                a = b = 0
        if not rules:
            return None
        remote = packet.dst if is_egress else packet.src
        for net, mask, a_lo, a_hi, b_lo, b_hi, members, hit in rules:
            if a_lo <= a <= a_hi and b_lo <= b <= b_hi and (
                    remote & mask == net if members is None else remote in members):
                return hit
        return None

    def match_all_ports(self, packet: Packet, is_egress: bool) -> RuleHit | None:
        """A rule allowing the packet's protocol on every port/type (for non-initial fragments)."""
        by_proto, wildcard = self._lists[is_egress][packet.version]
        remote = packet.dst if is_egress else packet.src
        for net, mask, a_lo, a_hi, b_lo, b_hi, members, hit in by_proto.get(packet.proto, wildcard):
            if (a_lo, a_hi, b_lo, b_hi) == (*_FULL, *_FULL) and (
                    remote & mask == net if members is None else remote in members):
                return hit
        return None

    def all_open(self, is_egress: bool, version: int, proto: int) -> bool:
        """Whether a /0 rule of that family allows every port of `proto` in that direction."""
        return proto in self._all_open[is_egress][version]


# A rule opening at most this many ports is indexed under each of them; wider ones are scanned.
NARROW_PORTS = 64
# (destination port -> the rules that may match it, in list order; rules for any other port)
PortIndex = tuple[dict[int, list[RuleTuple]], list[RuleTuple]]


def _port_index(rules: list[RuleTuple]) -> PortIndex:
    """So a packet meets only the rules that open its port (1000 one-port rules: one, not 1000),
    keeping the list's order (/0 first) among them, which keeps the first match the same."""
    by_port: dict[int, list[RuleTuple]] = {
        port: [] for r in rules if r[3] - r[2] < NARROW_PORTS for port in range(r[2], r[3] + 1)}
    wide: list[RuleTuple] = []
    for rule in rules:
        low, high = rule[2], rule[3]
        if high - low < NARROW_PORTS:
            for port in range(low, high + 1):
                by_port[port].append(rule)
        else:
            wide.append(rule)
            for port, bucket in by_port.items():
                if low <= port <= high:
                    bucket.append(rule)
    return by_port, wide


def _compile(rule: Rule, sg_id: str, version: int, members: MemberLookup,
             prefix_lists: PrefixLookup) -> list[RuleTuple]:
    ranges = _ranges(rule)
    if rule.prefix_list is not None:
        # Never "open": a prefix-list rule is not a 0.0.0.0/0 rule, so its flows are tracked.
        shared = RuleHit(rule, sg_id, False)
        return [(net, mask, *ranges, None, shared) for net, mask in prefix_lists(rule.prefix_list, version)]
    if rule.cidr is not None:
        if rule.cidr.version != version:
            return []                  # a 0.0.0.0/0 rule never matches IPv6, and vice versa
        hit = RuleHit(rule, sg_id, rule.cidr.prefixlen == 0)
        return [(int(rule.cidr.network_address), int(rule.cidr.netmask), *ranges, None, hit)]
    if rule.group is None:
        return []
    return [(0, 0, *ranges, members(rule.group, version), RuleHit(rule, sg_id, False))]
