"""`sgemu`: the command line. One module per family of verbs, each verb flags plus one call into the core.

Verb modules are imported only when their verb runs (click's documented lazy-group pattern), so
`sgemu validate` never pays for rich tables, pyroute2 or the engine.
"""
from __future__ import annotations

import importlib
import sys

import click

from emulator import __version__
from emulator.errors import EmulatorError, TopologyError

from .options import err_console

# verb -> "module:attribute" under emulator.cli
VERBS = {
    "validate": "offline:validate", "plan": "offline:plan", "explain": "offline:explain",
    "graph": "offline:graph", "export": "offline:export", "import": "importing:import_",
    "up": "lifecycle:up", "down": "lifecycle:down", "status": "lifecycle:status", "exec": "lifecycle:exec_",
    "demo": "lifecycle:demo", "doctor": "lifecycle:doctor",
    "probe": "probing:probe", "matrix": "probing:matrix",
    "sg": "live:sg", "instance": "live:instance", "conntrack": "live:conntrack",
    "flowlogs": "live:flowlogs", "watch": "live:watch",
    "nacl": "network:nacl", "prefix-list": "network:prefix_list", "route": "routing:route",
    "ui": "web:ui",
}


class LazyGroup(click.Group):
    """Knows its verbs by name and imports a verb's module only when that verb is asked for."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # click's own signature is untyped here
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy[cmd_name].split(":")
        command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        assert isinstance(command, click.Command), f"{module}:{attribute} is not a click command"
        return command


@click.group(cls=LazyGroup, lazy=VERBS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sgemu")
def cli() -> None:
    """Live, packet-level emulator of AWS EC2 Security Groups."""


def main() -> None:
    """Entry point: user errors become one line on stderr and a non-zero exit, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("sgemu: interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except TopologyError as exc:
        for problem in exc.problems:
            err_console.print(f"error: {problem}", style="red")
        sys.exit(exc.exit_code)
    except EmulatorError as exc:
        err_console.print(f"sgemu: {exc}", style="red")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("sgemu: interrupted")
        sys.exit(130)
