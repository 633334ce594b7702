"""Human renderings (rich markup) of the CLI's results: tables, explanations, next-step hints."""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from rich import box
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from emulator.explain import Explanation, Hop


OUTCOME_STYLE = {"open": "green", "reply": "green", "refused": "yellow", "timeout": "red"}


def warnings_text(warnings: Iterable[str]) -> Iterator[str]:
    for w in warnings:
        yield f"warning: {escape(w)}"


def _named(text: str, groups: Iterable[tuple[str, str]]) -> str:
    """SG ids replaced by 'name (id)' so a reader sees which group is meant."""
    for sg_id, name in groups:
        text = text.replace(sg_id, f"{name} ({sg_id})")
    return text


def _hop(hop: Hop, groups: tuple[tuple[str, str], ...], width: int) -> str:
    where = escape(hop.where).ljust(width)
    if hop.verdict is None:
        return f"  {where} {escape(hop.packet)}  {escape(hop.note)}"
    style = "green" if hop.verdict.accepted else "red"
    text = _named(hop.verdict.describe(), groups)
    return (f"  {where} {escape(hop.packet)}\n"
            f"  {'':<{width}} [{style}]{hop.verdict.reason}[/{style}] {escape(text)}")


def explanation_text(e: Explanation) -> Iterator[str]:
    what = f"{e.proto} {e.port}" if e.proto in ("tcp", "udp") else e.proto
    yield f"[bold]{escape(e.src)} -> {escape(e.dst)} {what}[/bold]"
    width = max((len(h.where) for h in (*e.request, *e.reply)), default=0)
    width = max(18, width)          # one column for every hop's place, however long its name
    if e.request:
        yield "request:"
        yield from (_hop(h, e.groups, width) for h in e.request)
    if e.reply:
        yield "answer:"
        yield from (_hop(h, e.groups, width) for h in e.reply)
    for note in e.notes:
        yield f"note: {escape(note)}"
    style = OUTCOME_STYLE[e.outcome]
    yield f"outcome: [{style}]{e.outcome}[/{style}] ({escape(_named(e.why, e.groups))})"


def restarts_text(engine) -> str:
    """`restarted 2 times (last: killed by SIGKILL)`, or "" for an engine never restarted."""
    if not engine.restarts and not engine.last_reason:
        return ""
    times = "once" if engine.restarts == 1 else f"{engine.restarts} times"
    return f"restarted {times} (last: {escape(engine.last_reason or '?')})"


def engine_health(engine) -> str:
    """One line on the engine (`engine` is lab.EngineStatus): up, restarting, or down and why."""
    restarts = restarts_text(engine)
    if engine.alive:
        return (f"engine up (pid {engine.pid}), {engine.counters.get('accepted', 0)} accepted, "
                f"{engine.counters.get('dropped', 0)} dropped" + (f", {restarts}" if restarts else ""))
    if engine.closed_because:
        return (f"[red bold]engine DOWN[/], the supervisor gave up: {escape(engine.closed_because)}; "
                "traffic is blocked (fail closed); `sgemu down`, then `sgemu up` again")
    if engine.supervisor in ("watching", "restarting", "starting"):
        return ("[red bold]engine DOWN[/], restarting: traffic is blocked (fail closed) until it is back"
                + (f"; {restarts}" if restarts else ""))
    return "[red bold]engine DOWN[/]: traffic is blocked (fail closed); `sgemu down`, then `sgemu up` again"


def lab_table(status) -> Table:
    """A running lab's nodes: addresses and SGs (`status` is lab.LabStatus)."""
    health = engine_health(status.engine)
    table = Table(title=f"lab {status.lab}: {health}; hooks via {status.frontend}; {status.offload_text}",
                  title_justify="left",
                  box=box.SIMPLE_HEAD)
    for column in ("node", "kind", "private IP", "public IP", "IPv6", "security groups"):
        table.add_column(column)
    for n in status.nodes:
        table.add_row(n.name, n.kind, n.private_ip or "", n.public_ip or "", n.ipv6 or "",
                      ", ".join(n.security_groups))
    return table


def try_commands(status) -> Iterator[str]:
    """A few commands worth running against the lab just built."""
    instances = [n for n in status.nodes if n.kind == "instance"]
    outside = [n for n in status.nodes if n.kind == "internet"]
    public = [n for n in instances if n.public_ip]
    src = outside[0].name if outside and public else (instances[0].name if instances else None)
    dst = (public or instances[1:] or instances)[0].name if instances else None
    lab = f"--lab {status.lab}"
    ports = list(next(n.tcp_ports for n in instances if n.name == dst)) if dst else []
    port = ports[0] if ports else 80
    yield "try:"
    yield f"  sgemu status {lab}"
    if src and dst and src != dst:
        yield f"  sgemu probe {lab} {src} {dst} --port {port}"
        yield f"  sgemu explain {lab} {src} {dst} --port {port}"
    if instances:
        yield f"  sgemu exec {lab} {instances[0].name} -- ip -br addr"
    yield f"  sgemu matrix {lab} --ports {','.join(str(p) for p in sorted({22, 80, 443, *ports}))}"
    yield f"  sgemu down {lab}"
