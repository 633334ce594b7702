"""Verbs that change a running lab's network ACLs and prefix lists, like the EC2 API (root)."""
from __future__ import annotations

import json

import click
from rich.markup import escape

from .options import ask, console, json_option, lab_option, live


@click.group()
def nacl() -> None:
    """Change a running lab's network ACLs (stateless: the next packet of every flow obeys)."""


def _direction(ingress: bool, egress: bool) -> bool:
    """True for egress; exactly one of the flags is required."""
    if ingress == egress:
        raise click.UsageError("give exactly one of --ingress or --egress")
    return egress


def _entry_verb(action: str) -> click.Command:
    @click.command(name=f"{action}-entry")
    @lab_option()
    @click.argument("nacl_ref", metavar="NACL")
    @click.option("--rule-number", type=int, required=True, help="1-32766; lower numbers are evaluated first.")
    @click.option("--ingress", is_flag=True, help="An inbound rule.")
    @click.option("--egress", is_flag=True, help="An outbound rule.")
    @click.option("--rule-action", type=click.Choice(["allow", "deny"]), help="allow or deny.")
    @click.option("--protocol", help="tcp, udp, icmp, icmpv6, all, -1 or 0-255.")
    @click.option("--port", help="N or N-M: the destination port (tcp/udp).")
    @click.option("--icmp-type", type=int, help="ICMP type (-1 = all).")
    @click.option("--icmp-code", type=int, help="ICMP code (-1 = all).")
    @click.option("--cidr", help="IPv4 or IPv6 CIDR: the source (inbound) or destination (outbound).")
    def verb(name: str | None, nacl_ref: str, rule_number: int, ingress: bool, egress: bool,
             rule_action: str | None, protocol: str | None, port: str | None, icmp_type: int | None,
             icmp_code: int | None, cidr: str | None) -> None:
        outbound = _direction(ingress, egress)
        if action == "delete":
            result = ask(live(name), "nacl_delete_entry", nacl=nacl_ref, rule_number=rule_number, egress=outbound)
        else:
            result = ask(live(name), f"nacl_{action}_entry", nacl=nacl_ref, rule_number=rule_number,
                         egress=outbound, rule_action=rule_action, protocol=protocol, port=port,
                         icmp_type=icmp_type, icmp_code=icmp_code, cidr=cidr)
        console.print(f"{result['nacl']} ({escape(result['name'])}) {'outbound' if outbound else 'inbound'} "
                      f"{escape(result['entry'] or str(rule_number))}: {result['done']}")

    verb.help = {"create": "Add a numbered entry (like create-network-acl-entry).",
                 "replace": "Replace the entry with that number (like replace-network-acl-entry).",
                 "delete": "Delete the entry with that number (like delete-network-acl-entry)."}[action] + \
        " Applies to the next packet of every flow, open or not."
    return verb


for _action in ("create", "replace", "delete"):
    nacl.add_command(_entry_verb(_action))


@nacl.command()
@lab_option()
@click.argument("nacl_ref", metavar="NACL")
@click.argument("subnet", metavar="SUBNET")
def associate(name: str | None, nacl_ref: str, subnet: str) -> None:
    """Move SUBNET to NACL (like replace-network-acl-association)."""
    result = ask(live(name), "nacl_associate", nacl=nacl_ref, subnet=subnet)
    console.print(f"{subnet}: {result['previous']} -> {result['nacl']} ({escape(result['name'])}), "
                  f"{result['NewAssociationId']}")


@nacl.command()
@lab_option()
@click.argument("nacl_ref", metavar="[NACL]", required=False)
@json_option
def describe(name: str | None, nacl_ref: str | None, as_json: bool) -> None:
    """The lab's NACLs now, with the `*` rules (like describe-network-acls)."""
    result = ask(live(name), "nacl_describe", nacl=nacl_ref)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from emulator.render.nacl import nacl_text
    for line in nacl_text(result["NetworkAcls"]):
        console.print(escape(line))


@click.group(name="prefix-list")
def prefix_list() -> None:
    """Change a running lab's prefix lists; every rule that references one follows at once."""


def _pl_verb(action: str) -> click.Command:
    @click.command(name=f"{action}-entry")
    @lab_option()
    @click.argument("pl_ref", metavar="PL")
    @click.option("--cidr", required=True, help="The entry's CIDR.")
    @click.option("--description", help="The entry's description (add-entry).")
    def verb(name: str | None, pl_ref: str, cidr: str, description: str | None) -> None:
        if action == "add":
            result = ask(live(name), "prefix_list_modify", prefix_list=pl_ref,
                         add=[{"cidr": cidr, "description": description or ""}])
        else:
            result = ask(live(name), "prefix_list_modify", prefix_list=pl_ref, remove=[cidr])
        console.print(f"{result['prefix_list']} ({escape(result['name'])}): "
                      f"{', '.join(result['entries']) or 'no entries'} (max {result['max_entries']})")

    verb.help = ("Add an entry" if action == "add" else "Remove an entry") + \
        " (like modify-managed-prefix-list); tracked flows survive, untracked ones are re-checked."
    return verb


for _action in ("add", "remove"):
    prefix_list.add_command(_pl_verb(_action))
