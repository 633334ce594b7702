"""conntrack.py alone, as h11 tests its state machine: drive entries with `advance` and check the
whole state after each step, with no rules, no firewall and no packets (the firewall-level
lifecycles stay in test_conntrack.py as the end-to-end specification)."""
from __future__ import annotations

import pytest

from emulator.engine.conntrack import (
    CLOSE,
    CLOSE_WAIT,
    ESTABLISHED,
    FIN_WAIT,
    LAST_ACK,
    STATE_TIMEOUTS,
    SYN_RECV,
    SYN_SENT,
    TCP_TRANSITIONS,
    TIME_WAIT,
    UDP_SINGLE,
    UDP_STREAM,
    UDP_STREAM_AFTER,
    ConntrackEntry,
    advance,
    reopens,
    tcp_event,
)
from emulator.engine.packet import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN
from emulator.model import PROTO_TCP, PROTO_UDP, ConntrackTimeouts, Direction

TIMEOUTS = {state: getattr(ConntrackTimeouts(), name) for state, name in STATE_TIMEOUTS.items()}
SYN, SYNACK, ACK, FIN, RST = TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST | TCP_ACK


def tcp_entry(state: str = SYN_SENT) -> ConntrackEntry:
    return ConntrackEntry((4, PROTO_TCP, 1, 40000, 2, 443), Direction.EGRESS, True, state, 0.0, None, None)


def udp_entry() -> ConntrackEntry:
    return ConntrackEntry((4, PROTO_UDP, 1, 40000, 2, 53), Direction.EGRESS, True, UDP_SINGLE, 0.0, None, None)


@pytest.mark.parametrize(("flags", "event"), [
    (SYN, "SYN"), (SYNACK, "SYNACK"), (ACK, "ACK"), (FIN, "FIN"), (TCP_FIN, "FIN"), (RST, "RST"),
    (TCP_RST | TCP_SYN, "RST"), (TCP_PSH | TCP_ACK, "ACK"), (0, "NONE")])
def test_tcp_event_from_flags(flags: int, event: str) -> None:
    assert tcp_event(flags) == event


@pytest.mark.parametrize(("start", "event", "from_initiator"), sorted(TCP_TRANSITIONS))
def test_every_listed_transition_is_what_advance_does(start: str, event: str, from_initiator: bool) -> None:
    flags = {"SYN": SYN, "SYNACK": SYNACK, "ACK": ACK, "FIN": FIN, "RST": RST, "NONE": 0}[event]
    entry = tcp_entry(start)
    advance(entry, flags, 60, True, from_initiator, 10.0, TIMEOUTS)
    assert entry.state == TCP_TRANSITIONS[(start, event, from_initiator)]
    assert entry.expires == 10.0 + TIMEOUTS[entry.state]


@pytest.mark.parametrize("start", [SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT, CLOSE])
@pytest.mark.parametrize("event", ["SYN", "SYNACK", "ACK", "FIN", "RST", "NONE"])
@pytest.mark.parametrize("from_initiator", [True, False])
def test_unlisted_pairs_keep_the_state(start: str, event: str, from_initiator: bool) -> None:
    if (start, event, from_initiator) in TCP_TRANSITIONS:
        return
    flags = {"SYN": SYN, "SYNACK": SYNACK, "ACK": ACK, "FIN": FIN, "RST": RST, "NONE": 0}[event]
    entry = tcp_entry(start)
    advance(entry, flags, 60, False, from_initiator, 1.0, TIMEOUTS)
    assert entry.state == start


def test_a_whole_connection_step_by_step() -> None:
    entry = tcp_entry()
    steps = [(SYN, True, SYN_SENT), (SYNACK, False, SYN_RECV), (ACK, True, ESTABLISHED), (ACK, False, ESTABLISHED),
             (FIN, True, FIN_WAIT), (FIN, False, LAST_ACK), (ACK, True, TIME_WAIT)]
    for n, (flags, from_initiator, state) in enumerate(steps, 1):
        advance(entry, flags, 100, from_initiator, from_initiator, float(n), TIMEOUTS)
        assert (entry.state, entry.last_seen, entry.expires) == (state, float(n), n + TIMEOUTS[state]), n
    assert (entry.packets_egress, entry.packets_ingress) == (4, 3)
    assert (entry.bytes_egress, entry.bytes_ingress) == (400, 300)


def test_udp_becomes_a_stream_after_the_named_number_of_turns() -> None:
    entry = udp_entry()
    directions = [True, False, True, False]
    states = []
    for n, egress in enumerate(directions):
        advance(entry, 0, 50, egress, egress, float(n), TIMEOUTS)
        states.append(entry.state)
    # the first packet changes no direction; each later change is a turn
    assert states.index(UDP_STREAM) == UDP_STREAM_AFTER
    assert states[:UDP_STREAM_AFTER] == [UDP_SINGLE] * UDP_STREAM_AFTER
    assert entry.expires == 3.0 + TIMEOUTS[UDP_STREAM]


def test_udp_in_one_direction_stays_single() -> None:
    entry = udp_entry()
    for n in range(10):
        advance(entry, 0, 50, True, True, float(n), TIMEOUTS)
    assert entry.state == UDP_SINGLE and entry.turns == 0


@pytest.mark.parametrize(("state", "flags", "reopened"), [
    (CLOSE, SYN, True), (TIME_WAIT, SYN, True), (ESTABLISHED, SYN, False), (TIME_WAIT, SYNACK, False),
    (CLOSE, ACK, False), (TIME_WAIT, TCP_SYN | TCP_RST, False)])
def test_a_bare_syn_reopens_only_a_closed_or_closing_entry(state: str, flags: int, reopened: bool) -> None:
    assert reopens(tcp_entry(state), flags) is reopened


def test_udp_entries_never_reopen() -> None:
    assert not reopens(udp_entry(), SYN)


def test_the_state_diagram_in_the_docs_is_drawn_from_this_table() -> None:
    from pathlib import Path

    from emulator.render.states import tcp_states_markdown
    doc = Path(__file__).resolve().parents[3] / "docs" / "tcp-states.md"
    assert doc.read_text() == tcp_states_markdown(), "regenerate: python -m emulator.render.states > docs/tcp-states.md"
