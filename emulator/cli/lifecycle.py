"""Verbs that build, inspect and tear down labs (root): up, down, status, exec, demo, doctor."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, replace

import click
from rich.markup import escape

from emulator.errors import EmulatorError

from .options import console, err_console, json_option, lab_option, load_file


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--name", "lab_name", metavar="NAME",
              help="Run the file under this lab name ([a-z0-9-], 1-16 chars), e.g. a second copy of it.")
@click.option("--detach", is_flag=True, help="Return once every hook is served; tear down with `sgemu down`.")
@click.option("--no-offload", is_flag=True,
              help="Every packet through the engine: no kernel fast path for established flows.")
def up(file: str, lab_name: str | None, detach: bool, no_offload: bool) -> None:
    """Build the lab and enforce its SGs (root). In the foreground until Ctrl-C, then tears down."""
    from emulator.lab import lifecycle
    from emulator.render.text import lab_table, try_commands
    from emulator.topology.parser import renamed
    topology = load_file(file).topology
    if lab_name is not None:
        topology = renamed(topology, lab_name, "--name")
    if no_offload:
        topology = replace(topology, options=replace(topology.options, offload=False))
    status = lifecycle.up(topology, progress=lambda msg: err_console.print(f"[dim]{escape(msg)}[/dim]"))
    console.print(lab_table(status))
    for line in try_commands(status):
        console.print(escape(line))
    if not detach:
        console.print("[bold]lab is up; Ctrl-C tears it down[/bold]")
        try:
            lifecycle.wait_foreground(status.lab)
        except KeyboardInterrupt:      # the way a foreground lab is meant to end: torn down, exit 0
            pass
        console.print(f"lab {status.lab} is down")


@click.command()
@lab_option("Lab to tear down (default: the only running lab).")
@click.option("--all", "everything", is_flag=True, help="Tear down every running lab.")
def down(name: str | None, everything: bool) -> None:
    """Tear a lab down from its recorded state (root); idempotent."""
    from emulator.lab import lifecycle
    running = lifecycle.running_labs()
    if everything:
        labs = running
    elif name:
        labs = [name]
    else:   # the only running lab; none running is fine (idempotent), several need --lab
        labs = [lifecycle.resolve_lab(None)] if len(running) > 1 else running
    if not labs:
        console.print("no lab is running; nothing to tear down")
    for one in labs:
        for skipped in lifecycle.down(one):
            err_console.print(f"left alone: {skipped}", style="yellow")
        console.print(f"lab {one} is down")


@click.command()
@lab_option("Lab (default: every running lab).")
@json_option
def status(name: str | None, as_json: bool) -> None:
    """Labs, instances, addresses, SGs and engine health."""
    from emulator.lab import lifecycle
    running = lifecycle.running_labs()
    if name is not None and name not in running:      # an answer, not a failure (CONTRACT: exit 0)
        others = f" (running: {', '.join(running)})" if running else ""
        err_console.print(f"no lab named {name!r} is running{others}")
        running = []
    statuses = [lifecycle.status(one) for one in ([name] if name in running else running)]
    if as_json:
        click.echo(json.dumps([asdict(s) for s in statuses], default=str))
        return
    from emulator.render.text import lab_table
    for one in statuses:
        console.print(lab_table(one))
    if not statuses:
        console.print("no lab is running")


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@lab_option()
@click.argument("node")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(name: str | None, node: str, argv: tuple[str, ...]) -> None:
    """Run a command inside an instance or internet host: sgemu exec NODE -- CMD [ARG...]."""
    from emulator.lab import lifecycle
    command = lifecycle.exec_argv(lifecycle.resolve_lab(name), node, list(argv), own_hostname=True)
    os.execvp(command[0], command)


@click.command()
def demo() -> None:
    """Live demo (root): the built-in three-tier and classic-ports labs, real curl/ssh/nc on every hop."""
    from emulator.render.text import OUTCOME_STYLE
    from emulator.testing import demo as live_demo

    def show(step: live_demo.Attempt, command: str, seen: live_demo.Observed, predicted: str, why: str) -> None:
        style = OUTCOME_STYLE[seen.outcome]
        agree = "" if seen.outcome == predicted else f"  [red bold]engine predicted {predicted}: a bug[/]"
        console.print(f"\n[bold]{escape(step.title)}[/bold]: {escape(step.story)}")
        console.print(f"  $ sgemu exec {step.src} -- {escape(command)}")
        console.print(f"  [{style}]{seen.outcome}[/{style}] after {seen.seconds:.2f}s"
                      f" ({escape(seen.detail)}){agree}")
        console.print(f"  why: {escape(why)}")

    bad = 0
    for path, steps, summary in live_demo.ACTS:
        console.print(f"\n[bold]sgemu demo[/bold]: {path.name} ({escape(summary)})")
        bad += live_demo.run(load_file(str(path)).topology, show,
                             lambda msg: console.print(f"[dim]{escape(msg)}[/dim]"), steps)
    if bad:
        raise EmulatorError(f"{bad} real outcome(s) differed from the engine's prediction")
    console.print("\n[green]every real outcome matched the engine's prediction[/green]")


@click.command()
def doctor() -> None:
    """Check this machine: root, tools, kernel NFQUEUE, a working iptables front end, leftovers."""
    from emulator.lab.doctor import checks
    failed = False
    for check in checks():
        mark = "[green]ok[/]  " if check.ok else ("[red]FAIL[/]" if check.required else "[yellow]warn[/]")
        failed |= check.required and not check.ok
        console.print(f"{mark} {check.name:<24} {escape(check.detail)}")
    if failed:
        raise EmulatorError("some required checks failed (see above)")
