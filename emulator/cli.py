"""`sgemu`: one function per verb, each a thin shell over topology, plan, explain and the lab."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace

import click
from rich.console import Console
from rich.markup import escape

from . import __version__
from .errors import EmulatorError, TopologyError
from .render import OUTCOME_STYLE, warnings_text
from .topology import Loaded, load

# Piped output (scripts, CI logs) gets wide tables instead of truncated cells.
console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
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
    counts = ", ".join(_count(n, what) for n, what in (
        (len(t.subnets), "subnet"), (len(t.security_groups), "security group"),
        (len(t.instances), "instance"), (len(t.internet), "internet host")))
    console.print(f"{file}: valid: lab {t.name!r}, {counts}")


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
def plan(file: str) -> None:
    """Print the namespaces, addresses, queues and hook rules `up` would create (no root needed)."""
    from .plan import build_plan
    click.echo(build_plan(_load(file).topology).render())


@cli.command()
@click.argument("where", metavar="[FILE] SRC DST", nargs=-1, required=True)
@click.option("--lab", "name", help="A running lab instead of FILE: its current SGs plus the live table entries.")
@click.option("--port", "-p", type=int, default=0, help="Destination port (tcp/udp).")
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]), default="tcp", show_default=True)
@click.option("-6", "--ipv6", is_flag=True, help="Use IPv6 addresses.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(where: tuple[str, ...], name: str | None, port: int, proto: str, ipv6: bool, as_json: bool) -> None:
    """Explain SRC -> DST hop by hop: each ENI's verdict and the outcome (FILE: no root needed;
    --lab: the running lab's current rules and its open flows)."""
    from .explain import explain as explain_flow
    from .render import explanation_text
    if len(where) != (2 if name else 3):
        raise click.UsageError("give FILE SRC DST, or --lab NAME SRC DST")
    lab_name = _live(name) if name else None
    topology = _live_topology(lab_name) if lab_name else _load(where[0]).topology
    src, dst = where[-2:]
    result = explain_flow(topology, src, dst, port, proto, ipv6)
    live = _live_entries(lab_name, topology, result.src, result.dst, proto, port) if lab_name else []
    if as_json:
        from .explain import explanation_json
        click.echo(json.dumps({**explanation_json(result), **({"live": live} if lab_name else {})}, default=str))
        return
    for line in explanation_text(result):
        console.print(line)
    if lab_name:
        console.print("live connection table:" if live else "live connection table: no open flow")
        for line in live:
            console.print(f"  {escape(line)}")


def _live_topology(lab_name: str):
    """The running lab's current topology, as its engine has it (after live changes)."""
    from .topology import parse
    return parse(_ask(lab_name, "export"), f"lab {lab_name}", lab_name).topology


def _live_entries(lab_name: str, topology, src: str, dst: str, proto: str, port: int) -> list[str]:
    from .live_view import matching_entries
    from .model import Instance
    nodes = {n: topology.node(n) for n in (src, dst)}
    addresses = {n: {str(a) for a in (*node.addresses, getattr(node, "public_ip", None)) if a is not None}
                 for n, node in nodes.items()}
    lines: list[str] = []
    for here, there in ((src, dst), (dst, src)):
        if isinstance(nodes[here], Instance):
            tables = _ask(lab_name, "conntrack", instance=here)
            lines += matching_entries(tables, proto, port, {here: addresses[there]})
    return lines


@cli.command()
def demo() -> None:
    """Live demo (root): the built-in three-tier lab, real curl/ssh/nc on every hop, then tear-down."""
    from .lab import demo as live_demo

    topology = _load(str(live_demo.DEFAULT_TOPOLOGY)).topology
    console.print(f"[bold]sgemu demo[/bold]: {live_demo.DEFAULT_TOPOLOGY.name} "
                  "(internet -> alb 80/443 -> app 8080 -> db 3306)")

    def show(step, command, seen, predicted, why) -> None:
        style = OUTCOME_STYLE[seen.outcome]
        agree = "" if seen.outcome == predicted else f"  [red bold]engine predicted {predicted}: a bug[/]"
        console.print(f"\n[bold]{escape(step.title)}[/bold]: {escape(step.story)}")
        console.print(f"  $ sgemu exec {step.src} -- {escape(command)}")
        console.print(f"  [{style}]{seen.outcome}[/{style}] after {seen.seconds:.2f}s"
                      f" ({escape(seen.detail)}){agree}")
        console.print(f"  why: {escape(why)}")

    bad = live_demo.run(topology, show, lambda msg: console.print(f"[dim]{escape(msg)}[/dim]"))
    if bad:
        raise EmulatorError(f"{bad} real outcome(s) differed from the engine's prediction")
    console.print("\n[green]every real outcome matched the engine's prediction[/green]")


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--detach", is_flag=True, help="Return once every hook is served; tear down with `sgemu down`.")
@click.option("--no-offload", is_flag=True,
              help="Every packet through the engine: no kernel fast path for established flows.")
def up(file: str, detach: bool, no_offload: bool) -> None:
    """Build the lab and enforce its SGs (root). In the foreground until Ctrl-C, then tears down."""
    from .lab import lab
    topology = _load(file).topology
    if no_offload:
        topology = replace(topology, options=replace(topology.options, offload=False))
    status = lab.up(topology, progress=lambda msg: err_console.print(f"[dim]{escape(msg)}[/dim]"))
    from .render import lab_table, try_commands
    console.print(lab_table(status))
    for line in try_commands(status):
        console.print(escape(line))
    if not detach:
        console.print("[bold]lab is up; Ctrl-C tears it down[/bold]")
        try:
            lab.wait_foreground(status.lab)
        except KeyboardInterrupt:      # the way a foreground lab is meant to end: torn down, exit 0
            pass
        console.print(f"lab {status.lab} is down")


@cli.command()
@click.option("--lab", "name", help="Lab to tear down (default: the only running lab).")
@click.option("--all", "everything", is_flag=True, help="Tear down every running lab.")
def down(name: str | None, everything: bool) -> None:
    """Tear a lab down from its recorded state (root); idempotent."""
    from .lab import lab
    if everything:
        labs = lab.running_labs()
    elif name:
        labs = [name]
    else:   # the only running lab; none running is fine (idempotent), several need --lab
        labs = [lab.resolve_lab(None)] if len(lab.running_labs()) > 1 else lab.running_labs()
    if not labs:
        console.print("no lab is running; nothing to tear down")
    for one in labs:
        for skipped in lab.down(one):
            err_console.print(f"left alone: {skipped}", style="yellow")
        console.print(f"lab {one} is down")


@cli.command()
@click.option("--lab", "name", help="Lab (default: every running lab).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(name: str | None, as_json: bool) -> None:
    """Labs, instances, addresses, SGs and engine health."""
    from .lab import lab
    running = lab.running_labs()
    if name is not None and name not in running:      # an answer, not a failure (CONTRACT: exit 0)
        err_console.print(f"no lab named {name!r} is running" + (f" (running: {', '.join(running)})" if running else ""))
        running = []
    statuses = [lab.status(one) for one in ([name] if name in running else running)]
    if as_json:
        click.echo(json.dumps([asdict(s) for s in statuses], default=str))
    else:
        from .render import lab_table
        for one in statuses:
            console.print(lab_table(one))
        if not statuses:
            console.print("no lab is running")


@cli.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("--lab", "name", help="Lab (default: the only running lab).")
@click.argument("node")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(name: str | None, node: str, argv: tuple[str, ...]) -> None:
    """Run a command inside an instance or internet host: sgemu exec NODE -- CMD [ARG...]."""
    import os
    from .lab import lab
    command = lab.exec_argv(lab.resolve_lab(name), node, list(argv), own_hostname=True)
    os.execvp(command[0], command)


@cli.command()
@click.option("--lab", "name", help="Lab (default: the only running lab).")
@click.argument("src")
@click.argument("dst")
@click.option("--port", "-p", type=int, default=0, help="Destination port (tcp/udp).")
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]), default="tcp", show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=2.0, show_default=True,
              help="Seconds to wait (0.1-600).")
@click.option("-6", "--ipv6", is_flag=True, help="Address DST by its IPv6 address.")
def probe(name: str | None, src: str, dst: str, port: int, proto: str, timeout: float, ipv6: bool) -> None:
    """A real attempt from inside SRC: prints open, refused, timeout or reply."""
    from .lab import lab
    from .lab.probe import EXIT_STATUS, probe as attempt
    outcome = attempt(lab.resolve_lab(name), src, dst, port, proto, timeout, ipv6)
    click.echo(outcome)
    sys.exit(EXIT_STATUS[outcome])


@cli.command()
def doctor() -> None:
    """Check this machine: root, tools, kernel NFQUEUE, a working iptables front end, leftovers."""
    from .lab.doctor import checks
    failed = False
    for check in checks():
        mark = "[green]ok[/]  " if check.ok else ("[red]FAIL[/]" if check.required else "[yellow]warn[/]")
        failed |= check.required and not check.ok
        console.print(f"{mark} {check.name:<22} {escape(check.detail)}")
    if failed:
        raise EmulatorError("some required checks failed (see above)")


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a comma-separated list like 22,80,443") from None
    if not ports or not all(0 < p < 65536 for p in ports):
        raise click.BadParameter(f"{text!r}: ports must be 1-65535")
    return ports


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--static", is_flag=True, help="Predict from FILE alone, no lab, no root.")
@click.option("--lab", "name", help="Running lab (default: the only one).")
@click.option("--ports", default="22,80,443,3306", show_default=True, help="Comma-separated ports.")
@click.option("--proto", type=click.Choice(["tcp", "udp", "icmp"]), default="tcp", show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=1.5, show_default=True,
              help="Seconds per probe.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--expect", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON of expected outcomes; any difference exits 1.")
def matrix(file: str | None, static: bool, name: str | None, ports: str, proto: str, timeout: float,
           as_json: bool, expect: str | None) -> None:
    """Reachability matrix: predicted by the engine and, for a running lab, observed by real probes."""
    import yaml

    from . import matrix as mx
    wanted = (0,) if proto == "icmp" else _ports(ports)
    if static:
        if file is None:
            raise click.UsageError("--static needs a topology FILE")
        topology, lab_name = _load(file).topology, None
    else:
        if file is not None:
            raise click.UsageError("FILE is for --static; a running lab is chosen with --lab")
        from .lab import lab, state
        from .lab.observe import observer
        lab_name = lab.resolve_lab(name)
        topology = state.load_topology(lab_name)
    cells = mx.predict(topology, wanted, proto)
    if lab_name is not None:
        cells = mx.observe_all(cells, proto, observer(lab_name, timeout))
    problems: list[str] = []
    if expect:
        with open(expect) as f:
            problems = mx.against_expected(cells, mx.parse_expected(yaml.safe_load(f), expect))
    bugs = mx.mismatches(cells)
    if as_json:
        click.echo(json.dumps(mx.as_json(topology.name, proto, wanted, cells)))
    else:
        for line in mx.grid(cells, "predicted" if lab_name is None else "observed",
                            [i.name for i in topology.instances]):
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


def _imported(result, output: str | None, command: list[str]) -> None:
    """Write (or print) an imported topology; what could not be carried over goes to stderr."""
    import shlex
    from .importers import render, write
    for line in (*result.skipped, *result.loaded.warnings):
        err_console.print(f"warning: {escape(line)}", style="yellow")
    if output is None:
        click.echo(render(result, shlex.join(command)), nl=False)
        return
    write(result, output, shlex.join(command))
    t = result.loaded.topology
    err_console.print(f"wrote {output}: {len(t.subnets)} subnets, {len(t.security_groups)} security groups, "
                      f"{len(t.instances)} instances; {len(result.skipped)} item(s) not carried over "
                      "(listed at the top of the file)")


def _lab_name(output: str | None) -> str:
    from .topology.loader import default_name
    return default_name(output) if output else "imported"


@cli.group(name="import")
def import_() -> None:
    """Turn real AWS configurations into topology files (no root needed)."""


@import_.command(name="aws")
@click.option("--security-groups", "security_groups", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="`aws ec2 describe-security-groups` or `describe-security-group-rules` JSON (repeatable).")
@click.option("--instances", type=click.Path(dir_okay=False), help="`aws ec2 describe-instances` JSON.")
@click.option("--subnets", type=click.Path(dir_okay=False), help="`aws ec2 describe-subnets` JSON.")
@click.option("--vpcs", type=click.Path(dir_okay=False), help="`aws ec2 describe-vpcs` JSON.")
@click.option("--vpc", "vpc_id", help="The VPC to import when the inputs span several.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Topology file to write (default: stdout).")
def import_aws_(security_groups: tuple[str, ...], instances: str | None, subnets: str | None, vpcs: str | None,
                vpc_id: str | None, output: str | None) -> None:
    """Import AWS CLI JSON (security groups, instances, subnets, VPCs) as a topology."""
    from .importers import import_aws
    result = import_aws(security_groups, instances, subnets, vpcs, _lab_name(output), vpc_id)
    command = ["sgemu", "import", "aws", *(a for f in security_groups for a in ("--security-groups", f))]
    for flag, value in (("--instances", instances), ("--subnets", subnets), ("--vpcs", vpcs), ("--vpc", vpc_id)):
        command += [flag, value] if value else []
    _imported(result, output, command)


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--lab", "name", help="Export a running lab's current topology (after live changes) instead of FILE.")
@click.option("--format", "fmt", type=click.Choice(["aws", "yaml"]), default="aws", show_default=True,
              help="aws: describe-security-groups JSON; yaml: the topology file, normalised.")
def export(file: str | None, name: str | None, fmt: str) -> None:
    """Print a topology's security groups as AWS JSON (or the topology as YAML)."""
    if file is not None and name is not None:
        raise click.UsageError("give a topology FILE or --lab NAME, not both")
    # Without FILE: the running lab (--lab may be left out when exactly one runs, as everywhere).
    topology = _load(file).topology if file is not None else _live_topology(_live(name))
    if fmt == "aws":
        from .importers.export import describe_security_groups
        click.echo(json.dumps(describe_security_groups(topology), indent=4))
    else:
        import yaml
        from .topology import dump
        click.echo(yaml.safe_dump(dump(topology), sort_keys=False, default_flow_style=None, width=120), nl=False)


GRAPH_SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid",
                  ".md": "mermaid"}


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="lab.svg, lab.png, lab.pdf, lab.dot or lab.mmd.")
@click.option("--format", "fmt", type=click.Choice(["svg", "png", "pdf", "dot", "mermaid"]),
              help="Default: from the -o suffix, else dot text on stdout.")
def graph(file: str, output: str | None, fmt: str | None) -> None:
    """Draw the lab: subnets, instances with their SGs, internet hosts, arrows for allowed flows."""
    from pathlib import Path
    from . import graph as drawing
    topology = _load(file).topology
    fmt = fmt or (GRAPH_SUFFIXES.get(Path(output).suffix.lower(), "svg") if output else "dot")
    if fmt in ("dot", "mermaid"):
        text = drawing.to_dot(topology) if fmt == "dot" else drawing.to_mermaid(topology)
        if output is None:
            click.echo(text, nl=False)
        else:
            Path(output).write_text(text, encoding="utf-8")
        return
    from .lab.graphviz import render
    picture = render(drawing.to_dot(topology), fmt)
    if output is None:
        click.get_binary_stream("stdout").write(picture)
    else:
        Path(output).write_bytes(picture)
        err_console.print(f"wrote {output}")


@import_.command(name="terraform")
@click.argument("plan_or_state", type=click.Path(dir_okay=False))
@click.option("--vpc", "vpc_id", help="The VPC (id or resource address) when the configuration has several.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Topology file to write (default: stdout).")
def import_terraform_(plan_or_state: str, vpc_id: str | None, output: str | None) -> None:
    """Import `terraform show -json` output (a plan or a state) as a topology."""
    from .importers import import_terraform
    result = import_terraform(plan_or_state, _lab_name(output), vpc_id)
    _imported(result, output, ["sgemu", "import", "terraform", plan_or_state, *(["--vpc", vpc_id] if vpc_id else [])])


def _live(name: str | None) -> str:
    """The running lab a live verb talks to."""
    from .lab import lab
    return lab.resolve_lab(name)


def _ask(lab_name: str, op: str, **args: object):
    from .lab.control import request
    return request(lab_name, op, **args)


@cli.group()
def sg() -> None:
    """Change a running lab's security groups, like the EC2 API (root)."""


def _sg_verb(action: str, direction: str) -> click.Command:
    @click.command(name=f"{action}-{direction}")
    @click.option("--lab", "name", help="Lab (default: the only running lab).")
    @click.argument("group_ref", metavar="SG")
    @click.option("--protocol", required=True, help="tcp, udp, icmp, icmpv6, all, -1 or 0-255.")
    @click.option("--port", help="N or N-M (tcp/udp).")
    @click.option("--icmp-type", type=int, help="ICMP type (-1 = all).")
    @click.option("--icmp-code", type=int, help="ICMP code (-1 = all).")
    @click.option("--cidr", help="Peer CIDR (IPv4 or IPv6).")
    @click.option("--group", "peer_group", help="Peer security group (name or id).")
    @click.option("--description", help="Rule description.")
    def verb(name: str | None, group_ref: str, protocol: str, port: str | None, icmp_type: int | None,
             icmp_code: int | None, cidr: str | None, peer_group: str | None, description: str | None) -> None:
        from .lab.live import permission
        rule = permission(protocol, port, icmp_type, icmp_code, cidr, peer_group, description)
        result = _ask(_live(name), "authorize" if action == "authorize" else "revoke", sg=group_ref,
                      direction=direction, rules=[rule])
        for line in result["warnings"]:
            err_console.print(f"warning: {escape(line)}", style="yellow")
        done = "authorized" if action == "authorize" else "revoked"
        for rule_id, what in zip(result["rules"], result["described"]):
            console.print(f"{rule_id} {done} in {result['sg']}: {escape(what)}")

    verb.help = (f"{'Allow' if action == 'authorize' else 'Remove'} an {direction} rule of SG in a running lab "
                 f"({'open flows unaffected' if action == 'authorize' else 'tracked flows continue until idle; untracked flows are cut'}).")
    return verb


for _action in ("authorize", "revoke"):
    for _direction in ("ingress", "egress"):
        sg.add_command(_sg_verb(_action, _direction))


@cli.group()
def instance() -> None:
    """Change a running lab's instances: their SGs and idle timeouts (root)."""


@instance.command(name="set-sgs")
@click.option("--lab", "name", help="Lab (default: the only running lab).")
@click.argument("instance_name", metavar="INSTANCE")
@click.argument("groups", metavar="SG...", nargs=-1, required=True)
def set_sgs(name: str | None, instance_name: str, groups: tuple[str, ...]) -> None:
    """Replace the instance's SGs (like ModifyInstanceAttribute --groups); new flows see them at once."""
    result = _ask(_live(name), "set_sgs", instance=instance_name, groups=list(groups))
    console.print(f"{result['instance']}: {' '.join(result['groups'])}")


@instance.command(name="set-conntrack")
@click.option("--lab", "name", help="Lab (default: the only running lab).")
@click.argument("instance_name", metavar="INSTANCE")
@click.option("--tcp-established", type=int, help="Idle seconds of established TCP (60-432000).")
@click.option("--udp", type=int, help="Idle seconds of one-way or single request/response UDP (30-60).")
@click.option("--udp-stream", type=int, help="Idle seconds of UDP streams (60-180).")
def set_conntrack(name: str | None, instance_name: str, tcp_established: int | None, udp: int | None,
                  udp_stream: int | None) -> None:
    """Set the ENI's idle timeouts (ConnectionTrackingSpecification); open flows take them at their next packet."""
    result = _ask(_live(name), "set_conntrack", instance=instance_name, tcp_established=tcp_established,
                  udp=udp, udp_stream=udp_stream)
    console.print(f"{result['instance']}: tcp_established {result['tcp_established']} s, udp {result['udp']} s, "
                  f"udp_stream {result['udp_stream']} s")


@cli.command()
@click.option("--lab", "name", help="Lab (default: the only running lab).")
@click.argument("instance_name", metavar="[INSTANCE]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def conntrack(name: str | None, instance_name: str | None, as_json: bool) -> None:
    """Each ENI's connection table, like `conntrack -L` (root)."""
    tables = _ask(_live(name), "conntrack", instance=instance_name)
    if as_json:
        click.echo(json.dumps(tables))
        return
    from .live_view import conntrack_table
    console.print(conntrack_table(tables))


@cli.command()
@click.option("--lab", "name", help="Lab (default: the only running lab).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing records as intervals close.")
@click.option("--format", "fields", help="Custom fields, e.g. '${version} ${interface-id} ${tcp-flags} "
              "${flow-direction} ${reject-reason}' (default: the version-2 format).")
def flowlogs(name: str | None, follow: bool, fields: str | None) -> None:
    """VPC Flow Log records of a running lab, one per line, no header (root)."""
    import time
    from .engine.flowlog import DEFAULT_FORMAT, parse_format, render
    try:
        chosen = parse_format(fields) if fields else DEFAULT_FORMAT
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--format") from None
    from .lab import lab
    running = lab.running_labs()
    if not running or (name is not None and name not in running):   # nothing to log (CONTRACT: exit 0)
        err_console.print(f"no lab named {name!r} is running" if name else "no lab is running")
        return
    lab_name = _live(name)
    answer = _ask(lab_name, "flowlogs", since=0, current=not follow)
    for record in (*answer["records"], *answer["current"]):
        click.echo(render(record, chosen))
    seen = answer["next"]
    while follow:
        time.sleep(1.0)
        answer = _ask(lab_name, "flowlogs", since=seen, current=False)
        for record in answer["records"]:
            click.echo(render(record, chosen))
        seen = answer["next"]


@cli.command()
@click.option("--lab", "name", help="Lab (default: the only running lab).")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between refreshes.")
def watch(name: str | None, interval: float) -> None:
    """Live view of accepts and drops per ENI, refreshed in place; Ctrl-C exits (root)."""
    import time
    from rich.live import Live
    from .live_view import watch_view
    lab_name = _live(name)
    before, then = None, time.monotonic()

    def frames():
        nonlocal before, then
        while True:
            now, at = _ask(lab_name, "counters"), time.monotonic()
            yield watch_view(lab_name, now, before, at - then)
            before, then = now, at
            time.sleep(interval)

    try:
        if not console.is_terminal:      # piped or logged: one snapshot after another
            for frame in frames():
                console.print(frame)
        with Live(console=console, auto_refresh=False, screen=False) as live:
            for frame in frames():
                live.update(frame, refresh=True)
    except KeyboardInterrupt:
        pass


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
