"""Verbs that try real connections: probe, matrix."""
from __future__ import annotations

import json
import sys

import click
from rich.markup import escape

from emulator.errors import EmulatorError

from .options import PROTOCOLS, console, err_console, json_option, lab_option, load_file, port_option, proto_option


@click.command()
@lab_option()
@click.argument("src")
@click.argument("dst")
@port_option
@proto_option
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=2.0, show_default=True,
              help="Seconds to wait (0.1-600).")
@click.option("-6", "--ipv6", is_flag=True, help="Address DST by its IPv6 address.")
def probe(name: str | None, src: str, dst: str, port: int, proto: str, timeout: float, ipv6: bool) -> None:
    """A real attempt from inside SRC: prints open, refused, timeout or reply."""
    from emulator.lab.lifecycle import resolve_lab
    from emulator.model import Outcome
    from emulator.testing.probe import probe as attempt
    outcome = attempt(resolve_lab(name), src, dst, port, proto, timeout, ipv6)
    click.echo(outcome)
    sys.exit(Outcome(outcome).exit_status)


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a comma-separated list like 22,80,443") from None
    if not ports or not all(0 < p < 65536 for p in ports):
        raise click.BadParameter(f"{text!r}: ports must be 1-65535")
    return ports


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--static", is_flag=True, help="Predict from FILE alone, no lab, no root.")
@lab_option("Running lab (default: the only one).")
@click.option("--ports", default="22,80,443,3306", show_default=True, help="Comma-separated ports.")
@click.option("--proto", type=PROTOCOLS, default="tcp", show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=1.5, show_default=True,
              help="Seconds per probe.")
@json_option
@click.option("--expect", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON of expected outcomes; any difference exits 1.")
@click.option("--sample", type=click.IntRange(1), default=None,
              help="Check N cells drawn at random (plus every --expect cell) instead of all; "
                   "a matrix of more than 5000 cells is sampled (1000) unless this says how many.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which random sample (reproducible).")
def matrix(file: str | None, static: bool, name: str | None, ports: str, proto: str, timeout: float,
           as_json: bool, expect: str | None, sample: int | None, seed: int) -> None:
    """Reachability matrix: predicted by the engine and, for a running lab, observed by real probes."""
    from emulator import matrix as mx
    wanted = (0,) if proto == "icmp" else _ports(ports)
    expected = mx.read_expected(expect) if expect else {}
    if static:
        if file is None:
            raise click.UsageError("--static needs a topology FILE")
        topology, lab_name = load_file(file).topology, None
    else:
        if file is not None:
            raise click.UsageError("FILE is for --static; a running lab is chosen with --lab")
        from emulator.lab import state
        from emulator.lab.lifecycle import resolve_lab
        lab_name = resolve_lab(name)
        topology = state.load_topology(lab_name)
    total = mx.cell_count(topology, wanted)
    if sample is None and total > mx.FULL_MATRIX_MAX:
        sample = mx.AUTO_SAMPLE
    chosen = None
    if sample is not None:
        chosen = list(dict.fromkeys([*expected, *mx.sample_cells(topology, wanted, sample, seed)]))
        err_console.print(f"sampled {len(chosen)} of {total} cells (seed {seed}); "
                          "--sample N and --seed S choose another sample")
    if lab_name is None:
        cells = mx.predict(topology, wanted, proto) if chosen is None else mx.predict_cells(topology, chosen, proto)
    else:
        from emulator.testing.probe import observed_cells, observed_matrix
        topology, cells = observed_matrix(lab_name, wanted, proto, timeout) if chosen is None else \
            observed_cells(lab_name, chosen, proto, timeout)
    problems = mx.against_expected(cells, expected) if expected else []
    bugs = mx.mismatches(cells)
    if as_json:
        click.echo(json.dumps(mx.as_json(topology.name, proto, wanted, cells)))
    else:
        which = "predicted" if lab_name is None else "observed"
        lines = mx.grid(cells, which, [i.name for i in topology.instances]) if chosen is None else \
            mx.listing(cells, which)
        for line in lines:
            console.print(escape(line))
        for cell in bugs:
            console.print(f"[red bold]BUG[/]: {escape(cell.label)} predicted {cell.predicted}, observed "
                          f"{cell.observed}; reproduce: sgemu probe --lab {lab_name} {cell.src} {cell.dst} "
                          f"--port {cell.port} --proto {proto}")
        for line in problems:
            console.print(f"[red]unexpected[/]: {escape(line)}")
    if bugs:
        raise EmulatorError(f"{len(bugs)} probe(s) disagree with the engine's prediction: an emulator bug")
    if problems:
        raise EmulatorError(f"{len(problems)} cell(s) differ from {expect}")
