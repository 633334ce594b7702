"""Renderings of a running lab's live data (connection tables, counters, live explain) for the CLI.

Input is what the engine answers over the control socket (plain JSON); no logic beyond layout.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from rich import box
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text


def _end(address: str, port: int | None) -> str:
    if port is None:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _idle(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds:.0f}s"


def entry_line(eni: str, e: dict) -> str:
    """One entry like a `conntrack -L` line, from the ENI's point of view."""
    arrow = "->" if e["initiator"] == "egress" else "<-"
    started = "instance" if e["initiator"] == "egress" else "peer"
    what = "tracked" if e["tracked"] else "untracked"
    icmp = f" id {e['icmp_id']}" if e.get("icmp_id") is not None else ""
    return (f"{eni}: {e['proto']} {_end(e['local'], e['local_port'])} {arrow} {_end(e['remote'], e['remote_port'])}"
            f"{icmp} {e['state']} {what} (opened by the {started}), idle timeout in {_idle(e['idle_left'])}, "
            f"out {e['packets_out']} pkts/{e['bytes_out']} B, in {e['packets_in']} pkts/{e['bytes_in']} B")


def conntrack_table(tables: dict[str, list[dict]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title_justify="left",
                  title=f"{sum(map(len, tables.values()))} flow(s) on {len(tables)} ENI(s)")
    for column in ("eni", "proto", "local", "dir", "remote", "tracked", "state", "idle left",
                   "pkts out/in", "bytes out/in"):
        table.add_column(column, justify="right" if column.startswith(("pkts", "bytes", "idle")) else "left")
    for eni, entries in tables.items():
        for e in sorted(entries, key=lambda e: (e["proto"], e["remote"], e["remote_port"] or 0)):
            table.add_row(eni, e["proto"], escape(_end(e["local"], e["local_port"])),
                          "out" if e["initiator"] == "egress" else "in", escape(_end(e["remote"], e["remote_port"])),
                          "yes" if e["tracked"] else "[yellow]no[/]", e["state"], _idle(e["idle_left"]),
                          f"{e['packets_out']}/{e['packets_in']}", f"{e['bytes_out']}/{e['bytes_in']}")
    return table


def matching_entries(tables: dict[str, list[dict]], proto: str, port: int,
                     peers: dict[str, set[str]]) -> Iterator[str]:
    """Live entries of a probe's flow: on each ENI, the entries whose far end is one of the other
    side's addresses (`peers`: eni -> addresses) and whose service port is `port` (tcp/udp)."""
    for eni, entries in tables.items():
        far = peers.get(eni, set())
        for e in entries:
            if not e["proto"].startswith(proto) or e["remote"] not in far:
                continue
            if proto in ("tcp", "udp") and port not in (e["local_port"], e["remote_port"]):
                continue
            yield entry_line(eni, e)


def _rate(counters: dict, previous: dict, key: str, seconds: float) -> float:
    return (counters[key] - previous.get(key, 0)) / seconds if seconds > 0 else 0.0


def watch_view(lab: str, now: dict, before: dict | None, seconds: float) -> Group:
    """Per-ENI accepts/drops with rates since the previous sample, and the latest drops."""
    table = Table(box=box.SIMPLE_HEAD, title_justify="left",
                  title=f"lab {lab}: {datetime.fromtimestamp(now['time']).strftime('%H:%M:%S')} (Ctrl-C exits)")
    for column in ("eni", "accepted", "acc/s", "dropped", "drop/s", "tracked", "untracked", "allowance exceeded"):
        table.add_column(column, justify="left" if column == "eni" else "right")
    for eni, data in now["enis"].items():
        counters = data["counters"]
        previous = (before or {}).get("enis", {}).get(eni, {}).get("counters", counters)
        accepted, dropped = (_rate(counters, previous, k, seconds) for k in ("accepted", "dropped"))
        table.add_row(eni, str(counters["accepted"]), f"{accepted:.1f}", str(counters["dropped"]),
                      f"[red]{dropped:.1f}[/]" if dropped else "0.0", str(data["tracked"]),
                      str(data["untracked"]), str(counters.get("conntrack_allowance_exceeded", 0)))
    drops = Text()
    for d in reversed(now["recent_drops"][-10:]):
        when = datetime.fromtimestamp(d["time"]).strftime("%H:%M:%S")
        ports = d["proto"] in ("tcp", "udp")
        src = _end(d["src"], d["sport"] if ports else None)
        dst = _end(d["dst"], d["dport"] if ports else None)
        drops.append(f"{when} {d['eni']} {d['direction']}: {d['proto']} {src} -> {dst} {d['reason']}\n")
    return Group(table, Text("recent drops:", style="bold"), drops or Text("(none)", style="dim"))

