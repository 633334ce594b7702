"""`sgemu`: one function per verb, each a thin shell over topology, plan, explain and the lab."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click
from rich.console import Console

from . import __version__
from .errors import EmulatorError, TopologyError
from .render import warnings_text
from .topology import Loaded, load

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _load(path: str) -> Loaded:
    loaded = load(path)
    for line in warnings_text(loaded.warnings):
        err_console.print(line, style="yellow")
    return loaded


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sgemu")
def cli() -> None:
    """Live, packet-level emulator of AWS EC2 Security Groups."""


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a topology file (no root needed)."""
    loaded = _load(file)
    t = loaded.topology
    console.print(f"{file}: valid: lab {t.name!r}, {len(t.subnets)} subnets, "
                  f"{len(t.security_groups)} security groups, {len(t.instances)} instances, "
                  f"{len(t.internet)} internet hosts")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
def plan(file: str) -> None:
    """Print the namespaces, addresses, queues and hook rules `up` would create (no root needed)."""
    from .plan import build_plan
    click.echo(build_plan(_load(file).topology).render())


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.argument("src")
@click.argument("dst")
@click.option("--port", "-p", type=int, default=0, help="Destination port (tcp/udp).")
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]), default="tcp", show_default=True)
@click.option("-6", "--ipv6", is_flag=True, help="Use IPv6 addresses.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(file: str, src: str, dst: str, port: int, proto: str, ipv6: bool, as_json: bool) -> None:
    """Explain SRC -> DST hop by hop: each ENI's verdict and the outcome (no root needed)."""
    from .explain import explain as explain_flow
    from .render import explanation_text
    result = explain_flow(_load(file).topology, src, dst, port, proto, ipv6)
    if as_json:
        click.echo(json.dumps(asdict(result), default=str))
    else:
        for line in explanation_text(result):
            console.print(line)


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


if __name__ == "__main__":
    main()
