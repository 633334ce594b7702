"""The engine's decisions as a feed for live viewers (`sgemu ui`): cheap, bounded, and off unless read.

While no viewer reads, `active` is False and the packet path pays one attribute test. A read turns the
feed on for `LEASE` seconds (every read renews it), so a closed browser tab costs nothing after that.

While on, each decided packet is counted in the open window, keyed by ENI, direction, addresses, the
service port and the reason: the client's ephemeral port is folded away (the lower port of a TCP/UDP
packet names the service), so a thousand connections from one client to one service are one record and
a busy lab cannot grow the window past `MAX_KEYS` (packets of further keys are counted, not kept).
A read closes the open window into a ring of the last `KEPT_WINDOWS` windows, each numbered; readers
pass the number they saw last (a cursor, like flow logs) and get what came after it.
"""
from __future__ import annotations

from collections import deque
from ipaddress import IPv4Address, IPv6Address

from emulator.engine.packet import Packet
from emulator.engine.verdict import ACCEPT, INFRASTRUCTURE, Verdict
from emulator.model import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, protocol_name

LEASE = 10.0                 # seconds the feed stays on after a read
MAX_KEYS = 2000              # records per window; beyond that packets are only counted
KEPT_WINDOWS = 64            # closed windows kept for readers (a reader polling twice a second: 30 s)


def _address(version: int, value: int) -> str:
    return str(IPv4Address(value) if version == 4 else IPv6Address(value))


class DecisionFeed:
    """Per-window aggregation of decided packets. Times are the engine's clock; `wall_offset` turns
    them into unix seconds for readers."""

    def __init__(self, wall_offset: float, lease: float = LEASE, max_keys: int = MAX_KEYS,
                 kept: int = KEPT_WINDOWS):
        self.active = False
        self._wall_offset = wall_offset
        self._lease = lease
        self._max_keys = max_keys
        self._until = 0.0
        self._open: dict[tuple, list] = {}
        self._opened = 0.0
        self._overflow = 0
        self._windows: deque[tuple[int, dict[str, object]]] = deque(maxlen=kept)
        self._seq = 0

    def record(self, eni: str, packet: Packet, egress: bool, verdict: Verdict, now: float) -> None:
        """One decided packet (the queue handler calls this only while `active`). Lean: one key, one
        lookup, three updates; the verdict (rule, text) is the first one of its key in the window."""
        reason = verdict.reason
        if reason == INFRASTRUCTURE:
            return
        proto = packet.proto
        if proto == PROTO_TCP or proto == PROTO_UDP:
            sport, dport = packet.sport, packet.dport
            if dport <= sport:
                key = (eni, egress, packet.version, proto, packet.src, packet.dst, dport, True, reason)
            else:
                key = (eni, egress, packet.version, proto, packet.src, packet.dst, sport, False, reason)
        else:
            key = (eni, egress, packet.version, proto, packet.src, packet.dst,
                   packet.icmp_type if proto == PROTO_ICMP or proto == PROTO_ICMPV6 else 0, True, reason)
        entry = self._open.get(key)
        if entry is not None:
            entry[0] += 1
            entry[1] += packet.length
            entry[3] = now
        elif len(self._open) < self._max_keys:
            self._open[key] = [1, packet.length, now, now, verdict]
        else:
            self._overflow += 1

    def expire(self, now: float) -> None:
        """Once a second: turn off (and forget) when no viewer has read within the lease."""
        if self.active and now > self._until:
            self.active = False
            self._open = {}
            self._overflow = 0
            self._windows.clear()

    def _close(self, now: float) -> None:
        if not self._open and not self._overflow:
            return
        self._seq += 1
        self._windows.append((self._seq, {
            "seq": self._seq, "start": round(self._opened + self._wall_offset, 3),
            "end": round(now + self._wall_offset, 3), "overflow_packets": self._overflow,
            "records": [self._render(key, entry) for key, entry in self._open.items()]}))
        self._open = {}
        self._overflow = 0
        self._opened = now

    def _render(self, key: tuple, entry: list) -> dict[str, object]:
        eni, egress, version, proto, src, dst, service, to_service, reason = key
        packets, size, first, last, verdict = entry
        ported = proto == PROTO_TCP or proto == PROTO_UDP
        rule = verdict.rule
        return {
            "eni": eni, "direction": "egress" if egress else "ingress", "family": version,
            "proto": protocol_name(proto), "src": _address(version, src), "dst": _address(version, dst),
            # the service's port on its side; None for the folded ephemeral side
            "sport": service if ported and not to_service else None,
            "dport": service if ported and to_service else None,
            "icmp_type": service if proto == PROTO_ICMP or proto == PROTO_ICMPV6 else None,
            "action": verdict.action, "accepted": verdict.action == ACCEPT, "reason": reason,
            "sg": verdict.sg_id, "rule": rule.describe() if rule is not None else None,
            "rule_id": getattr(rule, "rule_id", None), "tracked": verdict.tracked,
            "verdict": verdict.describe(), "packets": packets, "bytes": size,
            "first": round(first + self._wall_offset, 3), "last": round(last + self._wall_offset, 3),
        }

    def op_decisions(self, now: float, since: int = 0) -> dict[str, object]:
        """Control operation `decisions`: the windows after `since`, closing the open one first.
        `missed` says the reader fell behind the ring (or the feed was off) and lost windows."""
        if not self.active:
            self.active = True
            self._opened = now
        self._until = now + self._lease
        self._close(now)
        oldest = self._windows[0][0] if self._windows else self._seq + 1
        windows = [w for seq, w in self._windows if seq > since]
        return {"windows": windows, "next": self._seq, "missed": since > 0 and since + 1 < oldest,
                "time": round(now + self._wall_offset, 3)}
