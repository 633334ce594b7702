"""One ENI's connection table: flow keys, entries, table-driven states and idle timeouts.

Keys are normalised from the ENI's point of view: (version, proto, local addr, local port,
remote addr, remote port), local being the instance side. An entry remembers which direction
started it; a packet in the other direction is a reply.

Rules of this file (after h11's _state.py): everything that changes an entry's state lives here
(`TCP_TRANSITIONS`, the UDP stream rule, `advance`, `reopens`); this file knows nothing of rules,
security groups or verdicts. firewall.py decides whether a packet may pass, then calls `advance`.
"""
from __future__ import annotations

from collections.abc import Iterator

from emulator.model import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, Direction, Rule

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet

# TCP states (Linux names), then the states of the other protocols.
SYN_SENT = "SYN_SENT"
SYN_RECV = "SYN_RECV"
ESTABLISHED = "ESTABLISHED"
FIN_WAIT = "FIN_WAIT"
CLOSE_WAIT = "CLOSE_WAIT"
LAST_ACK = "LAST_ACK"
TIME_WAIT = "TIME_WAIT"
CLOSE = "CLOSE"
UDP_SINGLE = "UDP_SINGLE"      # one direction, or a single request/response
UDP_STREAM = "UDP_STREAM"      # more than one request/response exchange
ICMP = "ICMP"
OTHER = "OTHER"                # any other protocol: addresses + protocol only
TCP_STATES = (SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE)

# The ConntrackTimeouts field that bounds the idle time in each state.
STATE_TIMEOUTS = {
    SYN_SENT: "tcp_syn_sent", SYN_RECV: "tcp_syn_recv", ESTABLISHED: "tcp_established",
    FIN_WAIT: "tcp_fin_wait", CLOSE_WAIT: "tcp_close_wait", LAST_ACK: "tcp_last_ack",
    TIME_WAIT: "tcp_time_wait", CLOSE: "tcp_close", UDP_SINGLE: "udp", UDP_STREAM: "udp_stream",
    ICMP: "icmp", OTHER: "other",
}

# TCP events, from the flags byte.
EV_SYN, EV_SYNACK, EV_FIN, EV_ACK, EV_RST, EV_NONE = "SYN", "SYNACK", "FIN", "ACK", "RST", "NONE"


def tcp_event(flags: int) -> str:
    if flags & TCP_RST:
        return EV_RST
    if flags & TCP_SYN:
        return EV_SYNACK if flags & TCP_ACK else EV_SYN
    if flags & TCP_FIN:
        return EV_FIN
    return EV_ACK if flags & TCP_ACK else EV_NONE


# (state, event, from the initiator?) -> next state. Pairs not listed keep the state.
TCP_TRANSITIONS: dict[tuple[str, str, bool], str] = {
    (SYN_SENT, EV_SYNACK, False): SYN_RECV,
    (SYN_RECV, EV_ACK, True): ESTABLISHED,
    (SYN_RECV, EV_FIN, True): FIN_WAIT,
    (SYN_RECV, EV_FIN, False): CLOSE_WAIT,
    (ESTABLISHED, EV_FIN, True): FIN_WAIT,
    (ESTABLISHED, EV_FIN, False): CLOSE_WAIT,
    (FIN_WAIT, EV_FIN, False): LAST_ACK,
    (CLOSE_WAIT, EV_FIN, True): LAST_ACK,
    (LAST_ACK, EV_ACK, True): TIME_WAIT,
    (LAST_ACK, EV_ACK, False): TIME_WAIT,
    **{(state, EV_RST, side): CLOSE for state in TCP_STATES for side in (True, False)},
}


# The same table by (state, from the initiator?, flags byte): one index per packet, no event object.
_TCP_NEXT: dict[str, tuple[tuple[str, ...], ...]] = {
    state: tuple(tuple(TCP_TRANSITIONS.get((state, tcp_event(flags), side), state) for flags in range(256))
                 for side in (False, True))
    for state in TCP_STATES}

UDP_STREAM_AFTER = 3          # direction changes: response, request, response (two exchanges: a stream)
# A bare SYN on an entry in one of these states is a new connection reusing the ports.
REOPENING_STATES = (CLOSE, TIME_WAIT)


def initial_state(packet: Packet) -> str:
    """The state of a new entry; a mid-stream packet (no SYN) starts ESTABLISHED ([CHOICE] 2.3)."""
    proto = packet.proto
    if proto == PROTO_TCP:
        event = tcp_event(packet.tcp_flags)
        return SYN_SENT if event == EV_SYN else CLOSE if event == EV_RST else ESTABLISHED
    if proto == PROTO_UDP:
        return UDP_SINGLE
    if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
        return ICMP
    return OTHER


# ICMP echo/query messages: (proto << 8 | type) -> (query kind, is the request).
_ICMP_QUERIES = {
    **{PROTO_ICMP << 8 | t: (request, t == request)
       for request, reply in ((8, 0), (13, 14), (15, 16), (17, 18)) for t in (request, reply)},
    PROTO_ICMPV6 << 8 | 128: (128, True),
    PROTO_ICMPV6 << 8 | 129: (128, False),
}


def flow_key(packet: Packet, is_egress: bool) -> tuple[int, int, int, int, int, int]:
    """The packet's flow from the ENI's point of view.

    ICMP queries use (identifier, kind*2 + "the instance asked") as ports, so a reply finds its
    request but a timestamp request never rides on an echo flow; other ICMP messages use
    0x10000|type<<8|code (beyond any identifier); other protocols have no ports.
    """
    proto = packet.proto
    if is_egress:
        local, local_port, remote, remote_port = packet.src, packet.sport, packet.dst, packet.dport
    else:
        local, local_port, remote, remote_port = packet.dst, packet.dport, packet.src, packet.sport
    if proto == PROTO_TCP or proto == PROTO_UDP:
        return (packet.version, proto, local, local_port, remote, remote_port)
    if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
        query = _ICMP_QUERIES.get(proto << 8 | packet.icmp_type)
        if query is not None:
            kind, is_request = query
            return (packet.version, proto, local, packet.icmp_id, remote, kind << 1 | (is_request == is_egress))
        return (packet.version, proto, local,
                0x10000 | (packet.icmp_type & 0xFF) << 8 | (packet.icmp_code & 0xFF), remote, 0)
    return (packet.version, proto, local, 0, remote, 0)


class ConntrackEntry:
    """One flow of one ENI. Ports are the key's (ICMP: encoded identifier/kind, see flow_key)."""

    __slots__ = (
        "bytes_egress",
        "bytes_ingress",
        "expires",
        "first_seen",
        "initiator",
        "key",
        "last_egress",
        "last_seen",
        "local_addr",
        "local_port",
        "packets_egress",
        "packets_ingress",
        "proto",
        "remote_addr",
        "remote_port",
        "rule",
        "sg_id",
        "state",
        "tracked",
        "turns",
        "version",
    )

    def __init__(self, key: tuple[int, int, int, int, int, int], initiator: Direction, tracked: bool,
                 state: str, now: float, rule: Rule | None, sg_id: str | None):
        self.key = key
        self.version, self.proto, self.local_addr, self.local_port, self.remote_addr, self.remote_port = key
        self.initiator = initiator
        self.tracked = tracked
        self.state = state
        self.first_seen = now
        self.last_seen = now
        self.expires = now
        self.packets_egress = self.bytes_egress = self.packets_ingress = self.bytes_ingress = 0
        self.turns = 0                                    # UDP direction changes
        self.last_egress = initiator is Direction.EGRESS  # direction of the latest packet
        self.rule = rule                                  # the rule that opened the flow
        self.sg_id = sg_id

    def __repr__(self) -> str:
        return (f"<ConntrackEntry {self.key} {self.state} {'tracked' if self.tracked else 'untracked'} "
                f"by {self.initiator.value} expires={self.expires}>")


class ConntrackTable:
    """Entries by key, plus counts per (version, proto, local, remote) for non-initial fragments."""

    def __init__(self) -> None:
        self._entries: dict[tuple[int, int, int, int, int, int], ConntrackEntry] = {}
        self._pairs: dict[tuple[int, int, int, int], int] = {}
        self.tracked = 0
        self.untracked = 0

    def __iter__(self) -> Iterator[ConntrackEntry]:
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[int, int, int, int, int, int], now: float) -> ConntrackEntry | None:
        """The live entry for `key`; an expired one is removed and counts as absent."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= now:
            self.remove(entry)
            return None
        return entry

    def has_pair(self, version: int, proto: int, local: int, remote: int) -> bool:
        """Whether any entry (until the next sweep) joins these addresses with this protocol."""
        return (version, proto, local, remote) in self._pairs

    def add(self, entry: ConntrackEntry) -> None:
        self._entries[entry.key] = entry
        pair = (entry.version, entry.proto, entry.local_addr, entry.remote_addr)
        self._pairs[pair] = self._pairs.get(pair, 0) + 1
        if entry.tracked:
            self.tracked += 1
        else:
            self.untracked += 1

    def remove(self, entry: ConntrackEntry) -> None:
        del self._entries[entry.key]
        pair = (entry.version, entry.proto, entry.local_addr, entry.remote_addr)
        left = self._pairs[pair] - 1
        if left:
            self._pairs[pair] = left
        else:
            del self._pairs[pair]
        if entry.tracked:
            self.tracked -= 1
        else:
            self.untracked -= 1

    def expire(self, now: float) -> int:
        """Remove idle entries; return how many."""
        expired = [e for e in self._entries.values() if e.expires <= now]
        for entry in expired:
            self.remove(entry)
        return len(expired)


def reopens(entry: ConntrackEntry, flags: int) -> bool:
    """A bare SYN on a closed or closing TCP entry starts a new connection on the same ports."""
    return entry.proto == PROTO_TCP and entry.state in REOPENING_STATES and \
        flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN


def advance(entry: ConntrackEntry, flags: int, length: int, is_egress: bool, from_initiator: bool, now: float,
            timeouts: dict[str, int]) -> None:
    """Count a packet the firewall let through, move the state machine, push the idle deadline
    (`timeouts`: seconds per state)."""
    entry.last_seen = now
    if is_egress:
        entry.packets_egress += 1
        entry.bytes_egress += length
    else:
        entry.packets_ingress += 1
        entry.bytes_ingress += length
    proto = entry.proto
    if proto == PROTO_TCP:
        state = entry.state
        entry.state = _TCP_NEXT[state][from_initiator][flags & 0xFF]
    elif proto == PROTO_UDP and entry.last_egress is not is_egress:
        entry.last_egress = is_egress
        entry.turns += 1
        if entry.turns >= UDP_STREAM_AFTER:
            entry.state = UDP_STREAM
    entry.expires = now + timeouts[entry.state]


def advance_bulk(entry: ConntrackEntry, egress: tuple[int, int], ingress: tuple[int, int], now: float,
                 timeouts: dict[str, int]) -> None:
    """Count traffic the kernel passed for an offloaded flow, as (packets, bytes) per direction,
    in an unknown order. It holds no SYN/FIN/RST (the fast path never carries them), so a TCP
    state stays; a UDP flow takes the fewest direction changes the counts allow. Nothing
    counted: nothing changes (the idle deadline keeps running)."""
    if not egress[0] and not ingress[0]:
        return
    entry.packets_egress += egress[0]
    entry.bytes_egress += egress[1]
    entry.packets_ingress += ingress[0]
    entry.bytes_ingress += ingress[1]
    entry.last_seen = now
    if entry.proto == PROTO_UDP and (ingress if entry.last_egress else egress)[0]:
        entry.last_egress = not entry.last_egress
        entry.turns += 1
        if entry.turns >= UDP_STREAM_AFTER:
            entry.state = UDP_STREAM
    entry.expires = now + timeouts[entry.state]
