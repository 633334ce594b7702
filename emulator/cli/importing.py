"""`sgemu import aws|terraform`: real AWS configurations as topology files (no root needed)."""
from __future__ import annotations

import shlex

import click
from rich.markup import escape

from emulator.importers.build import ImportResult

from .options import err_console


def _imported(result: ImportResult, output: str | None, command: list[str]) -> None:
    """Write (or print) an imported topology; what could not be carried over goes to stderr."""
    from emulator.importers import render, write
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
    from emulator.topology.loader import default_name
    return default_name(output) if output else "imported"


@click.group(name="import")
def import_() -> None:
    """Turn real AWS configurations into topology files (no root needed)."""


STRICT_HELP = ("Refuse the whole input when one item is malformed or AWS would refuse it, or when it spans "
               "several VPCs and --vpc is not given (default: import the rest and name each item left out).")


@import_.command(name="aws")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--security-groups", "security_groups", multiple=True, type=click.Path(dir_okay=False),
              help="`aws ec2 describe-security-groups` or `describe-security-group-rules` JSON (repeatable).")
@click.option("--instances", type=click.Path(dir_okay=False), help="`aws ec2 describe-instances` JSON.")
@click.option("--subnets", type=click.Path(dir_okay=False), help="`aws ec2 describe-subnets` JSON.")
@click.option("--vpcs", type=click.Path(dir_okay=False), help="`aws ec2 describe-vpcs` JSON.")
@click.option("--route-tables", "routing", multiple=True, type=click.Path(dir_okay=False),
              help="`aws ec2 describe-route-tables` JSON (so are --nat-gateways, --internet-gateways and "
                   "--egress-only-internet-gateways: their outputs).")
@click.option("--nat-gateways", "routing", multiple=True, type=click.Path(dir_okay=False), hidden=True)
@click.option("--internet-gateways", "routing", multiple=True, type=click.Path(dir_okay=False), hidden=True)
@click.option("--egress-only-internet-gateways", "routing", multiple=True, type=click.Path(dir_okay=False),
              hidden=True)
@click.option("--network-acls", "network_acls", type=click.Path(dir_okay=False),
              help="`aws ec2 describe-network-acls` JSON.")
@click.option("--prefix-lists", "prefix_lists", type=click.Path(dir_okay=False),
              help="`aws ec2 describe-managed-prefix-lists` JSON.")
@click.option("--prefix-list-entries", "prefix_list_entries", multiple=True, metavar="PL_ID=FILE",
              help="`aws ec2 get-managed-prefix-list-entries --prefix-list-id PL_ID` JSON (repeatable).")
@click.option("--vpc", "vpc_id", help="The VPC to import when the inputs span several (default: the largest).")
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Topology file to write (default: stdout).")
def import_aws_(files: tuple[str, ...], security_groups: tuple[str, ...], instances: str | None,
                subnets: str | None, vpcs: str | None, routing: tuple[str, ...], network_acls: str | None,
                prefix_lists: str | None, prefix_list_entries: tuple[str, ...], vpc_id: str | None, strict: bool,
                output: str | None) -> None:
    """Import AWS CLI JSON as a topology. FILES are any `aws ec2 describe-*` outputs, each recognised by its
    top-level key (the options name them the same way); network interfaces of other services become nodes;
    route tables and NAT gateways become the lab's (unmodelled targets: blackhole, with a note); network ACLs
    and prefix lists (with their entries, given per list) are carried over."""
    from emulator.importers import import_aws
    files = (*files, *routing)
    if not (files or security_groups or instances or subnets or vpcs or network_acls or prefix_lists
            or prefix_list_entries):
        raise click.UsageError("give at least one file: FILES or --security-groups/--instances/--subnets/--vpcs")
    entries: dict[str, str] = {}
    for given in prefix_list_entries:
        key, sep, path = given.partition("=")
        if not sep or not key.startswith("pl-") or not path:
            raise click.BadParameter(f"{given!r}: write PL_ID=FILE, e.g. pl-0a1b2c3d4e5f60718=entries.json",
                                     param_hint="--prefix-list-entries")
        entries[key] = path
    more = tuple(p for p in (network_acls, prefix_lists) if p)
    result = import_aws(security_groups, instances, subnets, vpcs, _lab_name(output), vpc_id, strict,
                        (*files, *more), entries)
    command = ["sgemu", "import", "aws", *files, *(a for f in security_groups for a in ("--security-groups", f))]
    for flag, value in (("--instances", instances), ("--subnets", subnets), ("--vpcs", vpcs),
                        ("--network-acls", network_acls), ("--prefix-lists", prefix_lists), ("--vpc", vpc_id)):
        command += [flag, value] if value else []
    command += [a for given in prefix_list_entries for a in ("--prefix-list-entries", given)]
    _imported(result, output, command + (["--strict"] if strict else []))


@import_.command(name="terraform")
@click.argument("plan_or_state", type=click.Path(dir_okay=False))
@click.option("--vpc", "vpc_id", help="The VPC (id or resource address) when the configuration has several "
              "(default: the largest).")
@click.option("--strict", is_flag=True, help=STRICT_HELP)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Topology file to write (default: stdout).")
def import_terraform_(plan_or_state: str, vpc_id: str | None, strict: bool, output: str | None) -> None:
    """Import `terraform show -json` (or `tofu show -json`) output, of a plan or a state, as a topology."""
    from emulator.importers import import_terraform
    result = import_terraform(plan_or_state, _lab_name(output), vpc_id, strict)
    _imported(result, output, ["sgemu", "import", "terraform", plan_or_state,
                               *(["--vpc", vpc_id] if vpc_id else []), *(["--strict"] if strict else [])])
