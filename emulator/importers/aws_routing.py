"""`sgemu import aws` readers for route tables and gateways: `describe-route-tables`,
`describe-nat-gateways`, `describe-internet-gateways`, `describe-egress-only-internet-gateways`
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Route.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_NatGateway.html).

Internet and egress-only gateways are known by their ids (igw-, eigw-) even when their describe
output is not given; `routing.routing_section` turns what is read here into the lab's sections.
"""
from __future__ import annotations

from .inventory import (
    ROUTE_LOCAL,
    ROUTE_NAT,
    ROUTE_UNMODELLED,
    ImportedNatGateway,
    ImportedRoute,
    ImportedRouteTable,
    Inventory,
)
from .json_source import JsonValue
from .routing import EDGE, NAT_NEEDS, NAT_PRIVATE

# Route fields naming a target a lab cannot model, with what it is.
UNMODELLED = (("VpcPeeringConnectionId", "VPC peering connection"), ("TransitGatewayId", "transit gateway"),
              ("NetworkInterfaceId", "network interface"), ("InstanceId", "instance"),
              ("LocalGatewayId", "local gateway"), ("CarrierGatewayId", "carrier gateway"),
              ("CoreNetworkArn", "core network"))


def read_route_tables(doc: JsonValue, inv: Inventory) -> None:
    for t in doc.items("RouteTables"):
        with inv.item("this route table"):
            key = t.need_text("RouteTableId")
            table = inv.route_tables[key] = ImportedRouteTable(key, t.where, t.text("VpcId") or None)
            for a in t.items("Associations"):
                table.main = table.main or (isinstance(a.value, dict) and a.value.get("Main") is True)
                if subnet := a.text("SubnetId"):
                    table.subnets.append((subnet, a.where))
                elif gateway := a.text("GatewayId"):
                    inv.skipped.append(f"{a.where}: route table {key}: its association with {gateway} not carried "
                                       f"over: {EDGE}")
            table.routes = [_route(r) for r in t.items("Routes")]


def _route(r: JsonValue) -> ImportedRoute:
    dst = r.text("DestinationCidrBlock") or r.text("DestinationIpv6CidrBlock") or None
    pl = r.text("DestinationPrefixListId") or None
    gateway = r.text("GatewayId") or ""
    if gateway == "local":
        return ImportedRoute(r.where, dst, ROUTE_LOCAL)
    if r.text("State") == "blackhole":
        return ImportedRoute(r.where, dst, "blackhole", prefix_list=pl)
    if nat := r.text("NatGatewayId"):
        return ImportedRoute(r.where, dst, ROUTE_NAT, nat, pl)
    if gateway.startswith("igw-"):
        return ImportedRoute(r.where, dst, "igw", prefix_list=pl)
    if r.text("EgressOnlyInternetGatewayId") or gateway.startswith("eigw-"):
        return ImportedRoute(r.where, dst, "eigw", prefix_list=pl)
    real = next((f"{what} {r.text(name)}" for name, what in UNMODELLED if r.text(name)), None) or \
        (f"gateway {gateway}" if gateway else "an unknown target")
    return ImportedRoute(r.where, dst, ROUTE_UNMODELLED, real, pl)


def read_nat_gateways(doc: JsonValue, inv: Inventory) -> None:
    for n in doc.items("NatGateways"):
        with inv.item("this NAT gateway"):
            key = n.need_text("NatGatewayId")
            address = next((a for a in n.items("NatGatewayAddresses") if a.text("PublicIp")), None)
            usable = n.text("State") in (None, "available", "pending") and address is not None
            inv.nat_gateways[key] = ImportedNatGateway(
                key, n.where, n.text("VpcId") or None, n.text("SubnetId") or None,
                address.text("PrivateIp") if address else None, address.text("PublicIp") if address else None,
                not_carried=None if usable else NAT_PRIVATE if n.text("ConnectivityType") == "private" else NAT_NEEDS)


def read_gateways(doc: JsonValue, inv: Inventory) -> None:
    """Internet and egress-only gateways: their ids alone say what a route to them means."""
    for key, field, kind in (("InternetGateways", "InternetGatewayId", "igw"),
                             ("EgressOnlyInternetGateways", "EgressOnlyInternetGatewayId", "eigw")):
        for g in doc.items(key):
            if gateway := g.text(field):
                inv.notes.append(f"{g.where}: {gateway}: routes to it become {kind}")
