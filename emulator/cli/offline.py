"""Verbs that need no lab and no root: validate, plan, explain, graph, export."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.markup import escape

from .options import console, count, err_console, json_option, lab_option, live, load_file, port_option, proto_option

GRAPH_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
                  ".md": "mermaid"}


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check a topology file (no root needed)."""
    t = load_file(file).topology
    counts = ", ".join(count(n, what) for n, what in (
        (len(t.subnets), "subnet"), (len(t.security_groups), "security group"),
        (len(t.instances), "instance"), (len(t.internet), "internet host")))
    console.print(f"{file}: valid: lab {t.name!r}, {counts}")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def plan(file: str) -> None:
    """Print the namespaces, addresses, queues and hook rules `up` would create (no root needed)."""
    from emulator.plan import build_plan
    click.echo(build_plan(load_file(file).topology).render())


@click.command()
@click.argument("where", metavar="[FILE] SRC DST", nargs=-1, required=True)
@lab_option("A running lab instead of FILE: its current SGs plus the live table entries.")
@port_option
@proto_option
@click.option("-6", "--ipv6", is_flag=True, help="Use IPv6 addresses.")
@json_option
def explain(where: tuple[str, ...], name: str | None, port: int, proto: str, ipv6: bool, as_json: bool) -> None:
    """Explain SRC -> DST hop by hop: each ENI's verdict and the outcome (FILE: no root needed;
    --lab: the running lab's current rules and its open flows)."""
    from emulator.explain import explain as explain_flow
    from emulator.explain.result import explanation_json
    from emulator.render.text import explanation_text
    if len(where) != (2 if name else 3):
        raise click.UsageError("give FILE SRC DST, or --lab NAME SRC DST")
    live_lines: list[str] = []
    if name:
        from emulator.testing.live_state import live_entries, live_topology
        lab_name = live(name)
        topology = live_topology(lab_name)
    else:
        topology = load_file(where[0]).topology
    src, dst = where[-2:]
    result = explain_flow(topology, src, dst, port, proto, ipv6)
    if name:
        live_lines = live_entries(lab_name, topology, result.src, result.dst, proto, port)
    if as_json:
        click.echo(json.dumps({**explanation_json(result), **({"live": live_lines} if name else {})}, default=str))
        return
    for line in explanation_text(result):
        console.print(line)
    if name:
        console.print("live connection table:" if live_lines else "live connection table: no open flow")
        for line in live_lines:
            console.print(f"  {escape(line)}")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="lab.svg, lab.png, lab.pdf, lab.dot or lab.mmd.")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot", "mermaid"]),
              help="Default: from the -o suffix, else dot text on stdout.")
def graph(file: str, output: str | None, fmt: str | None) -> None:
    """Draw the lab: subnets, instances with their SGs, internet hosts, arrows for allowed flows."""
    from emulator import graph as drawing
    topology = load_file(file).topology
    fmt = fmt or (GRAPH_SUFFIXES.get(Path(output).suffix.lower(), "svg") if output else "dot")
    if fmt in ("dot", "mermaid"):
        text = drawing.to_dot(topology) if fmt == "dot" else drawing.to_mermaid(topology)
        if output is None:
            click.echo(text, nl=False)
        else:
            Path(output).write_text(text, encoding="utf-8")
        return
    from emulator.render.graphviz import render as draw
    picture = draw(drawing.to_dot(topology), fmt)
    if output is None:
        sys.stdout.buffer.write(picture)
    else:
        Path(output).write_bytes(picture)
        err_console.print(f"wrote {output}")


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@lab_option("Export a running lab's current topology (after live changes) instead of FILE.")
@click.option("--format", "fmt", type=click.Choice(["aws", "yaml"]), default="aws", show_default=True,
              help="aws: describe-security-groups JSON; yaml: the topology file, normalised.")
@click.option("--describe", "kind", type=click.Choice(["security-groups", "network-acls", "managed-prefix-lists"]),
              default="security-groups", show_default=True, help="Which describe-* output --format aws prints.")
@click.option("--prefix-list-entries", "entries_of", metavar="PL",
              help="Print get-managed-prefix-list-entries JSON of this prefix list (name or pl- id).")
def export(file: str | None, name: str | None, fmt: str, kind: str, entries_of: str | None) -> None:
    """Print a topology's security groups (or NACLs, prefix lists) as AWS JSON, or the topology as YAML."""
    if file is not None and name is not None:
        raise click.UsageError("give a topology FILE or --lab NAME, not both")
    if file is not None:
        topology = load_file(file).topology
    else:   # the running lab (--lab may be left out when exactly one runs, as everywhere)
        from emulator.testing.live_state import live_topology
        topology = live_topology(live(name))
    if fmt == "aws":
        from emulator.importers import export as aws
        if entries_of is not None:
            listed = topology.find_prefix_list(entries_of)
            if listed is None:
                raise click.BadParameter(f"no prefix list {entries_of!r} (have: "
                                         f"{', '.join(p.name for p in topology.prefix_lists) or 'none'})",
                                         param_hint="--prefix-list-entries")
            click.echo(json.dumps(aws.get_managed_prefix_list_entries(listed), indent=4))
            return
        describe = {"security-groups": aws.describe_security_groups, "network-acls": aws.describe_network_acls,
                    "managed-prefix-lists": aws.describe_managed_prefix_lists}[kind]
        click.echo(json.dumps(describe(topology), indent=4))
    else:
        import yaml

        from emulator.topology import dump
        click.echo(yaml.safe_dump(dump(topology), sort_keys=False, default_flow_style=None, width=120), nl=False)
