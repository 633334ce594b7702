"""Verbs that talk to a running lab's engine (root): sg, instance, conntrack, flowlogs, watch."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator

import click
from rich.console import RenderableType
from rich.markup import escape

from .options import ask, console, err_console, json_option, lab_option, live


@click.group()
def sg() -> None:
    """Change a running lab's security groups, like the EC2 API (root)."""


def _sg_verb(action: str, direction: str) -> click.Command:
    @click.command(name=f"{action}-{direction}")
    @lab_option()
    @click.argument("group_ref", metavar="SG")
    @click.option("--protocol", required=True, help="tcp, udp, icmp, icmpv6, all, -1 or 0-255.")
    @click.option("--port", help="N or N-M (tcp/udp).")
    @click.option("--icmp-type", type=int, help="ICMP type (-1 = all).")
    @click.option("--icmp-code", type=int, help="ICMP code (-1 = all).")
    @click.option("--cidr", help="Peer CIDR (IPv4 or IPv6).")
    @click.option("--group", "peer_group", help="Peer security group (name or id).")
    @click.option("--prefix-list", "prefix_list", help="Peer prefix list (name or pl- id).")
    @click.option("--description", help="Rule description.")
    def verb(name: str | None, group_ref: str, protocol: str, port: str | None, icmp_type: int | None,
             icmp_code: int | None, cidr: str | None, peer_group: str | None, prefix_list: str | None,
             description: str | None) -> None:
        from emulator.control.api import permission
        rule = permission(protocol, port, icmp_type, icmp_code, cidr, peer_group, description, prefix_list)
        result = ask(live(name), action, sg=group_ref, direction=direction, rules=[rule])
        for line in result["warnings"]:
            err_console.print(f"warning: {escape(line)}", style="yellow")
        done = "authorized" if action == "authorize" else "revoked"
        for rule_id, what in zip(result["rules"], result["described"]):
            console.print(f"{rule_id} {done} in {result['sg']}: {escape(what)}")

    effect = "open flows unaffected" if action == "authorize" else \
        "tracked flows continue until idle; untracked flows are cut"
    verb.help = f"{'Allow' if action == 'authorize' else 'Remove'} an {direction} rule of SG in a running lab " \
                f"({effect})."
    return verb


for _action in ("authorize", "revoke"):
    for _direction in ("ingress", "egress"):
        sg.add_command(_sg_verb(_action, _direction))


@click.group()
def instance() -> None:
    """Change a running lab's instances: their SGs and idle timeouts (root)."""


@instance.command(name="set-sgs")
@lab_option()
@click.argument("instance_name", metavar="INSTANCE")
@click.argument("groups", metavar="SG...", nargs=-1, required=True)
def set_sgs(name: str | None, instance_name: str, groups: tuple[str, ...]) -> None:
    """Replace the instance's SGs (like ModifyInstanceAttribute --groups); new flows see them at once."""
    result = ask(live(name), "set_sgs", instance=instance_name, groups=list(groups))
    console.print(f"{result['instance']}: {' '.join(result['groups'])}")


@instance.command(name="set-conntrack")
@lab_option()
@click.argument("instance_name", metavar="INSTANCE")
@click.option("--tcp-established", type=int, help="Idle seconds of established TCP (60-432000).")
@click.option("--udp", type=int, help="Idle seconds of one-way or single request/response UDP (30-60).")
@click.option("--udp-stream", type=int, help="Idle seconds of UDP streams (60-180).")
def set_conntrack(name: str | None, instance_name: str, tcp_established: int | None, udp: int | None,
                  udp_stream: int | None) -> None:
    """Set the ENI's idle timeouts (ConnectionTrackingSpecification); open flows take them at their next packet."""
    result = ask(live(name), "set_conntrack", instance=instance_name, tcp_established=tcp_established,
                 udp=udp, udp_stream=udp_stream)
    console.print(f"{result['instance']}: tcp_established {result['tcp_established']} s, udp {result['udp']} s, "
                  f"udp_stream {result['udp_stream']} s")


@click.command()
@lab_option()
@click.argument("instance_name", metavar="[INSTANCE]", required=False)
@json_option
def conntrack(name: str | None, instance_name: str | None, as_json: bool) -> None:
    """Each ENI's connection table, like `conntrack -L` (root)."""
    tables = ask(live(name), "conntrack", instance=instance_name)
    if as_json:
        click.echo(json.dumps(tables))
        return
    from emulator.render.live import conntrack_table
    console.print(conntrack_table(tables))


@click.command()
@lab_option()
@click.option("--follow", "-f", is_flag=True, help="Keep printing records as intervals close.")
@click.option("--format", "fields", help="Custom fields, e.g. '${version} ${interface-id} ${tcp-flags} "
              "${flow-direction} ${reject-reason}' (default: the version-2 format).")
def flowlogs(name: str | None, follow: bool, fields: str | None) -> None:
    """VPC Flow Log records of a running lab, one per line, no header (root)."""
    from emulator.engine.flowlog import DEFAULT_FORMAT, parse_format, render
    from emulator.errors import FlowLogFormatError
    from emulator.lab.lifecycle import running_labs
    try:
        chosen = parse_format(fields) if fields else DEFAULT_FORMAT
    except FlowLogFormatError as exc:
        raise click.BadParameter(str(exc), param_hint="--format") from None
    running = running_labs()
    if not running or (name is not None and name not in running):   # nothing to log (CONTRACT: exit 0)
        err_console.print(f"no lab named {name!r} is running" if name else "no lab is running")
        return
    lab_name = live(name)
    answer = ask(lab_name, "flowlogs", since=0, current=not follow)
    for record in (*answer["records"], *answer["current"]):
        click.echo(render(record, chosen))
    seen = answer["next"]
    while follow:
        time.sleep(1.0)
        answer = ask(lab_name, "flowlogs", since=seen, current=False)
        for record in answer["records"]:
            click.echo(render(record, chosen))
        seen = answer["next"]


@click.command()
@lab_option()
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between refreshes.")
def watch(name: str | None, interval: float) -> None:
    """Live view of accepts and drops per ENI, refreshed in place; Ctrl-C exits (root)."""
    from rich.live import Live

    from emulator.render.live import watch_view
    lab_name = live(name)

    def frames() -> Iterator[RenderableType]:
        before, then = None, time.monotonic()
        while True:
            now, at = ask(lab_name, "counters"), time.monotonic()
            yield watch_view(lab_name, now, before, at - then)
            before, then = now, at
            time.sleep(interval)

    try:
        if not console.is_terminal:      # piped or logged: one snapshot after another
            for frame in frames():
                console.print(frame)
        with Live(console=console, auto_refresh=False, screen=False) as live_view:
            for frame in frames():
                live_view.update(frame, refresh=True)
    except KeyboardInterrupt:
        pass
