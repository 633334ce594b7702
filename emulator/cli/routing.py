"""Verbs that change a running lab's route tables, like the EC2 API (root)."""
from __future__ import annotations

import json

import click
from rich.markup import escape

from .options import ask, console, json_option, lab_option, live


@click.group()
def route() -> None:
    """Change a running lab's route tables (the next packet takes the new route)."""


@route.command()
@lab_option()
@click.argument("table", metavar="ROUTE_TABLE")
@click.option("--destination", required=True, help="IPv4 or IPv6 CIDR outside the VPC.")
@click.option("--target", required=True, help="igw, eigw, blackhole or a NAT gateway (name or nat- id).")
def create(name: str | None, table: str, destination: str, target: str) -> None:
    """Add a route (like create-route)."""
    result = ask(live(name), "route_create", table=table, destination=destination, target=target)
    console.print(f"{result['table']} ({escape(result['name'])}): {escape(result['route'])} {result['done']}")


@route.command()
@lab_option()
@click.argument("table", metavar="ROUTE_TABLE")
@click.option("--destination", required=True, help="The route's destination CIDR, exactly.")
def delete(name: str | None, table: str, destination: str) -> None:
    """Remove a route (like delete-route); what it carried is discarded silently from then on."""
    result = ask(live(name), "route_delete", table=table, destination=destination)
    console.print(f"{result['table']} ({escape(result['name'])}): {escape(result['route'])} {result['done']}")


@route.command()
@lab_option()
@click.argument("table", metavar="[ROUTE_TABLE]", required=False)
@json_option
def describe(name: str | None, table: str | None, as_json: bool) -> None:
    """The lab's route tables now (like describe-route-tables)."""
    result = ask(live(name), "route_describe", table=table)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    for t in result["RouteTables"]:
        subnets = [a["SubnetId"] for a in t["Associations"] if "SubnetId" in a]
        console.print(f"{t['RouteTableId']} ({escape(t['Name'])}){' main' if t['Main'] else ''}"
                      f"{': ' + ', '.join(subnets) if subnets else ''}")
        for r in t["Routes"]:
            dst = r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock")
            console.print(f"  {dst} -> {r.get('NatGatewayId') or r.get('GatewayId')} ({r['State']})")
