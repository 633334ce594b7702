"""What several verbs share: the consoles, the common options, loading a file, asking a running lab."""
from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from emulator.topology import Loaded, load

F = TypeVar("F", bound=Callable[..., Any])

# Piped output (scripts, CI logs) gets wide tables instead of truncated cells.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

PROTOCOLS = click.Choice(["tcp", "udp", "icmp"])


def lab_option(help: str = "Lab (default: the only running lab).") -> Callable[[F], F]:
    return click.option("--lab", "name", metavar="NAME", help=help)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
proto_option = click.option("--proto", type=PROTOCOLS, default="tcp", show_default=True)
port_option = click.option("--port", "-p", type=int, default=0, help="Destination port (tcp/udp).")


def load_file(path: str) -> Loaded:
    """A topology file, its warnings shown on stderr."""
    from emulator.render.text import warnings_text
    loaded = load(path)
    for line in warnings_text(loaded.warnings):
        err_console.print(line, style="yellow")
    return loaded


def live(name: str | None) -> str:
    """The running lab a live verb talks to (`--lab` may be left out when exactly one runs)."""
    from emulator.lab.lifecycle import resolve_lab
    return resolve_lab(name)


def ask(lab_name: str, op: str, **args: Any) -> Any:
    """One request to the lab's engine; the result is the operation's JSON."""
    from emulator.control.client import request
    return request(lab_name, op, **args)


def count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"
