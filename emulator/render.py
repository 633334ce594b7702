"""Human renderings (rich markup) of the CLI's results; no logic of their own."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from rich.markup import escape

if TYPE_CHECKING:
    from .explain import Explanation, Hop


OUTCOME_STYLE = {"open": "green", "reply": "green", "refused": "yellow", "timeout": "red"}


def warnings_text(warnings: Iterable[str]) -> Iterator[str]:
    for w in warnings:
        yield f"warning: {escape(w)}"


def _named(text: str, groups: Iterable[tuple[str, str]]) -> str:
    """SG ids replaced by 'name (id)' so a reader sees which group is meant."""
    for sg_id, name in groups:
        text = text.replace(sg_id, f"{name} ({sg_id})")
    return text


def _hop(hop: "Hop", groups: tuple[tuple[str, str], ...]) -> str:
    if hop.verdict is None:
        return f"  {hop.where:<18} {escape(hop.packet)}  {escape(hop.note)}"
    style = "green" if hop.verdict.accepted else "red"
    text = _named(hop.verdict.describe(), groups)
    return (f"  {escape(hop.where):<18} {escape(hop.packet)}\n"
            f"  {'':<18} [{style}]{hop.verdict.reason}[/{style}] {escape(text)}")


def explanation_text(e: "Explanation") -> Iterator[str]:
    what = f"{e.proto} {e.port}" if e.proto in ("tcp", "udp") else e.proto
    yield f"[bold]{escape(e.src)} -> {escape(e.dst)} {what}[/bold]"
    if e.request:
        yield "request:"
        yield from (_hop(h, e.groups) for h in e.request)
    if e.reply:
        yield "answer:"
        yield from (_hop(h, e.groups) for h in e.reply)
    for note in e.notes:
        yield f"note: {escape(note)}"
    style = OUTCOME_STYLE[e.outcome]
    yield f"outcome: [{style}]{e.outcome}[/{style}] ({escape(_named(e.why, e.groups))})"
