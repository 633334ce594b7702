"""The engine's TCP state machine drawn from its own table (as h11 draws its state diagrams), so the
picture in docs/tcp-states.md can never drift from `engine.conntrack.TCP_TRANSITIONS`."""
from __future__ import annotations

from emulator.engine.conntrack import CLOSE, EV_RST, REOPENING_STATES, SYN_SENT, TCP_TRANSITIONS


def tcp_mermaid() -> str:
    """A Mermaid state diagram: one arrow per (state, event) pair, labelled with who sends it."""
    lines = ["stateDiagram-v2", f"    [*] --> {SYN_SENT}: SYN (initiator)"]
    arrows: dict[tuple[str, str], list[str]] = {}
    for (state, event, from_initiator), target in TCP_TRANSITIONS.items():
        if event == EV_RST:
            continue                          # drawn once below: any state, either side
        side = "initiator" if from_initiator else "responder"
        arrows.setdefault((state, target), []).append(f"{event} ({side})")
    lines += [f"    {state} --> {target}: {', '.join(labels)}" for (state, target), labels in arrows.items()]
    lines.append(f"    note right of {CLOSE}: RST from either side, in any state, leads here")
    lines += [f"    {state} --> {SYN_SENT}: bare SYN (ports reused: a new connection)" for state in REOPENING_STATES]
    return "\n".join(lines) + "\n"


def tcp_states_markdown() -> str:
    return ("# The engine's TCP connection tracking\n\n"
            "Generated from `emulator/engine/conntrack.py` by `python -m emulator.render.states`;\n"
            "a unit test fails when the table and this picture disagree. Each ENI keeps one entry per\n"
            "flow; an entry's state decides its idle timeout (`STATE_TIMEOUTS`).\n\n"
            "```mermaid\n" + tcp_mermaid() + "```\n")


if __name__ == "__main__":
    print(tcp_states_markdown(), end="")
