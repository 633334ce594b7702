"""EniFirewall: one ENI's stateful SG decision, packet by packet (sans-IO: time is an argument).

Order of a decision: infrastructure traffic, the source/destination check, non-initial fragments,
ICMP errors (never own an entry), then the flow's entry: tracked flows pass whatever the rules say
now; untracked flows are re-checked against the current rules; a packet without an entry needs a
rule and opens a flow.
"""
from __future__ import annotations

from emulator.model import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    ConntrackTimeouts,
    Direction,
    Instance,
    Options,
    Topology,
)

from .conntrack import (
    OTHER,
    REOPENING_STATES,
    STATE_TIMEOUTS,
    ConntrackEntry,
    ConntrackTable,
    advance,
    advance_bulk,
    flow_key,
    initial_state,
    reopens,
)
from .infrastructure import is_infrastructure
from .packet import ICMP_ERROR_TYPES, ICMPV6_ERROR_TYPES, Packet
from .rules import CompiledRules
from .sgstate import SecurityGroupState
from .verdict import (
    ACCEPT,
    CONNTRACK_ALLOWANCE_EXCEEDED,
    DROP,
    ENI_SG_RULES_MISMATCH,
    ENI_SOURCE_DEST_CHECK_RESTRICTION,
    FRAGMENT,
    FRAGMENT_OF_FLOW,
    INFRASTRUCTURE,
    MALFORMED,
    OTHER_PROTO_600S_WINDOW,
    REASONS,
    RELATED_ICMP,
    TRACKED_FLOW,
    TRACKED_RESPONSE,
    UNTRACKED_RULE_REVOKED,
    Verdict,
)

__all__ = [
    "ACCEPT",
    "DROP",
    "ConntrackEntry",
    "ConntrackTable",
    "EniFirewall",
    "SecurityGroupState",
    "Verdict",
    "build_firewalls",
]

# Untracked flows use no allowance; past this many per ENI they pass without an entry.
UNTRACKED_CAP = 250_000

_ACCEPT_INFRASTRUCTURE = Verdict(ACCEPT, INFRASTRUCTURE)
_ACCEPT_TRACKED_FLOW = Verdict(ACCEPT, TRACKED_FLOW, tracked=True)
_ACCEPT_TRACKED_RESPONSE = Verdict(ACCEPT, TRACKED_RESPONSE, tracked=True)
_ACCEPT_OTHER_WINDOW = Verdict(ACCEPT, OTHER_PROTO_600S_WINDOW, tracked=True)
_ACCEPT_RELATED = Verdict(ACCEPT, RELATED_ICMP)
_ACCEPT_FRAGMENT = Verdict(ACCEPT, FRAGMENT_OF_FLOW)
_DROP_MISMATCH = Verdict(DROP, ENI_SG_RULES_MISMATCH)
_DROP_REVOKED = Verdict(DROP, UNTRACKED_RULE_REVOKED, tracked=False)
_DROP_FRAGMENT = Verdict(DROP, FRAGMENT)
_DROP_MALFORMED = Verdict(DROP, MALFORMED)
_DROP_SOURCE_DEST = Verdict(DROP, ENI_SOURCE_DEST_CHECK_RESTRICTION)

_EGRESS = Direction.EGRESS


class EniFirewall:
    """The SGs of one instance's ENI with its own connection table. Verdicts are shared objects:
    treat them as immutable."""

    def __init__(self, instance: Instance, state: SecurityGroupState, options: Options):
        self.instance = instance
        self._state = state
        self._allowance = options.conntrack_allowance
        self._related_icmp = options.related_icmp
        self._dns = int(state.vpc.dns_ip)
        # EC2's source/destination check: an ENI only sends from and receives for its own
        # addresses, so a spoofed source can never borrow another instance's SG membership.
        self._own = {version: frozenset(int(a) for a in instance.addresses if a.version == version)
                     for version in (4, 6)}
        self.table = ConntrackTable()
        self.counters: dict[str, int] = dict.fromkeys(
            ("accepted", "dropped", "malformed", "conntrack_allowance_exceeded", *REASONS), 0)
        self._rules: CompiledRules | None = None
        self._rules_version = -1
        self._timeouts: dict[str, int] = {}
        self.set_timeouts(instance.conntrack)

    @property
    def rules(self) -> CompiledRules:
        """The ENI's current rules, recompiled when the shared state has changed."""
        if self._rules_version != self._state.version or self._rules is None:
            self._rules_version = self._state.version
            self._rules = CompiledRules(self._state.groups_of(self.instance.name),
                                        self._state.member_addresses, self._state.prefix_entries)
        return self._rules

    def set_timeouts(self, timeouts: ConntrackTimeouts) -> None:
        """New idle timeouts; open entries take them at their next packet."""
        self._timeouts = {state: getattr(timeouts, name) for state, name in STATE_TIMEOUTS.items()}

    def expire(self, now: float) -> int:
        return self.table.expire(now)

    def account(self, key: tuple[int, int, int, int, int, int], out_packets: int, out_bytes: int,
                in_packets: int, in_bytes: int, now: float) -> float | None:
        """Traffic of an offloaded flow that the kernel passed; returns the entry's idle deadline
        after it, or None when the entry is gone or expired (the flow must come back)."""
        entry = self.table.get(key, now)
        if entry is None:
            return None
        advance_bulk(entry, (out_packets, out_bytes), (in_packets, in_bytes), now, self._timeouts)
        return entry.expires

    def malformed(self) -> Verdict:
        """Count and drop a packet that packet.parse rejected."""
        self.counters["malformed"] += 1
        return self._count(_DROP_MALFORMED)

    def _count(self, verdict: Verdict) -> Verdict:
        counters = self.counters
        counters["accepted" if verdict.action == ACCEPT else "dropped"] += 1
        counters[verdict.reason] += 1
        return verdict

    def decide(self, packet: Packet, direction: Direction, now: float) -> Verdict:
        """ACCEPT or DROP for `packet` crossing this ENI in `direction` at time `now`."""
        version = packet.version
        if version != 4 and version != 6:
            return self.malformed()
        is_egress = direction is _EGRESS
        proto = packet.proto
        if is_infrastructure(packet, proto, self._dns):
            return self._count(_ACCEPT_INFRASTRUCTURE)
        if (packet.src if is_egress else packet.dst) not in self._own[version]:
            return self._count(_DROP_SOURCE_DEST)
        if packet.fragment_offset:
            return self._count(self._fragment(packet, self.rules, is_egress))
        if (proto == PROTO_ICMP and packet.icmp_type in ICMP_ERROR_TYPES) or (
                proto == PROTO_ICMPV6 and packet.icmp_type in ICMPV6_ERROR_TYPES):
            return self._count(self._icmp_error(packet, self.rules, is_egress, now))
        key = flow_key(packet, is_egress)
        entry = self.table.get(key, now)
        if entry is not None:
            if entry.state in REOPENING_STATES and reopens(entry, packet.tcp_flags):
                self.table.remove(entry)       # a new connection reusing the ports
            else:
                return self._count(self._existing(entry, packet, direction, is_egress, now))
        return self._count(self._new_flow(key, packet, self.rules, direction, is_egress, now))

    def _existing(self, entry: ConntrackEntry, packet: Packet, direction: Direction, is_egress: bool,
                  now: float) -> Verdict:
        from_initiator = entry.initiator is direction
        if entry.tracked:
            if from_initiator:
                verdict = _ACCEPT_TRACKED_FLOW
            else:
                verdict = _ACCEPT_OTHER_WINDOW if entry.state == OTHER else _ACCEPT_TRACKED_RESPONSE
        else:
            # Untracked: only the current rules of this packet's direction let it through.
            hit = self.rules.match(packet, is_egress)
            if hit is None:
                return _DROP_REVOKED
            verdict = hit.accept_untracked
        advance(entry, packet.tcp_flags, packet.length, is_egress, from_initiator, now, self._timeouts)
        return verdict

    def _new_flow(self, key: tuple[int, int, int, int, int, int], packet: Packet, rules: CompiledRules,
                  direction: Direction, is_egress: bool, now: float) -> Verdict:
        hit = rules.match(packet, is_egress)
        if hit is None:
            return _DROP_MISMATCH
        proto = packet.proto
        # Untracked: TCP/UDP allowed by a /0 rule, with the other direction open to all (section 2.2).
        tracked = not ((proto == PROTO_TCP or proto == PROTO_UDP) and hit.open
                       and rules.all_open(not is_egress, packet.version, proto))
        table = self.table
        if tracked:
            if table.tracked >= self._allowance:
                self.counters["conntrack_allowance_exceeded"] += 1
                return Verdict(DROP, CONNTRACK_ALLOWANCE_EXCEEDED, hit.rule, hit.sg_id, True)
        elif table.untracked >= UNTRACKED_CAP:
            return hit.accept_untracked
        entry = ConntrackEntry(key, direction, tracked, initial_state(packet), now, hit.rule, hit.sg_id)
        table.add(entry)
        advance(entry, packet.tcp_flags, packet.length, is_egress, True, now, self._timeouts)
        return hit.accept_tracked if tracked else hit.accept_untracked

    def _icmp_error(self, packet: Packet, rules: CompiledRules, is_egress: bool, now: float) -> Verdict:
        """A rule may allow it; otherwise it passes only when it is about a flow of this ENI."""
        hit = rules.match(packet, is_egress)
        if hit is not None:
            return hit.accept_flowless
        inner = packet.inner
        # The embedded packet went the other way through this ENI.
        if inner is not None and self._related_icmp and \
                self.table.get(flow_key(inner, not is_egress), now) is not None:
            return _ACCEPT_RELATED
        return _DROP_MISMATCH

    def _fragment(self, packet: Packet, rules: CompiledRules, is_egress: bool) -> Verdict:
        """Non-initial fragments carry no ports: a flow between the same hosts or an all-ports rule."""
        local, remote = (packet.src, packet.dst) if is_egress else (packet.dst, packet.src)
        if self.table.has_pair(packet.version, packet.proto, local, remote):
            return _ACCEPT_FRAGMENT
        hit = rules.match_all_ports(packet, is_egress)
        return hit.accept_flowless if hit is not None else _DROP_FRAGMENT


def build_firewalls(topology: Topology) -> tuple[SecurityGroupState, dict[str, EniFirewall]]:
    """The lab's shared SG state and one firewall per instance name."""
    state = SecurityGroupState(topology)
    return state, {i.name: EniFirewall(i, state, topology.options) for i in topology.instances}
