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
    from emulator.importers import import_aws
    result = import_aws(security_groups, instances, subnets, vpcs, _lab_name(output), vpc_id)
    command = ["sgemu", "import", "aws", *(a for f in security_groups for a in ("--security-groups", f))]
    for flag, value in (("--instances", instances), ("--subnets", subnets), ("--vpcs", vpcs), ("--vpc", vpc_id)):
        command += [flag, value] if value else []
    _imported(result, output, command)


@import_.command(name="terraform")
@click.argument("plan_or_state", type=click.Path(dir_okay=False))
@click.option("--vpc", "vpc_id", help="The VPC (id or resource address) when the configuration has several.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Topology file to write (default: stdout).")
def import_terraform_(plan_or_state: str, vpc_id: str | None, output: str | None) -> None:
    """Import `terraform show -json` output (a plan or a state) as a topology."""
    from emulator.importers import import_terraform
    result = import_terraform(plan_or_state, _lab_name(output), vpc_id)
    _imported(result, output, ["sgemu", "import", "terraform", plan_or_state, *(["--vpc", vpc_id] if vpc_id else [])])
