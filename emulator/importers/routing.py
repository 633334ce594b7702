"""Route tables and NAT gateways from `aws ec2 describe-route-tables` and `describe-nat-gateways`
(internet and egress-only gateways are known by their ids: igw-, eigw-).

The input's main route table becomes `main` (CONTRACT.md); a route whose target a lab cannot model
(peering, transit gateway, VPC endpoint, ENI or instance, VPN gateway, a NAT gateway not given) becomes
`blackhole`, with a note naming the real target; the local route is implicit in a lab.
"""
from __future__ import annotations

from ipaddress import ip_network

from .inventory import Inventory
from .json_source import JsonValue

# Route fields naming a target a lab cannot model, with what it is.
UNMODELLED = (("VpcPeeringConnectionId", "VPC peering connection"), ("TransitGatewayId", "transit gateway"),
              ("NetworkInterfaceId", "network interface"), ("InstanceId", "instance"),
              ("LocalGatewayId", "local gateway"), ("CarrierGatewayId", "carrier gateway"),
              ("CoreNetworkArn", "core network"))


def read_route_tables(doc: JsonValue, inv: Inventory) -> None:
    inv.route_tables += doc.items("RouteTables")


def read_nat_gateways(doc: JsonValue, inv: Inventory) -> None:
    for n in doc.items("NatGateways"):
        with inv.item("this NAT gateway"):
            inv.nat_gateways[n.need_text("NatGatewayId")] = n


def read_gateways(doc: JsonValue, inv: Inventory) -> None:
    """Internet and egress-only gateways: their ids alone say what a route to them means."""
    for key in ("InternetGateways", "EgressOnlyInternetGateways"):
        inv.notes += [f"{g.where}: {g.text('InternetGatewayId') or g.text('EgressOnlyInternetGatewayId')}: "
                      "routes to it become igw/eigw" for g in doc.items(key) if doc.has(key)]


def routing_section(inv: Inventory, vpc: str | None, subnet_names: dict[str, str],
                    vpc_blocks: tuple[str, ...]) -> dict[str, list[dict[str, object]]]:
    """`nat_gateways` and `route_tables` for the chosen VPC (subnet ids -> lab subnet names)."""
    nats: dict[str, str] = {}
    out_nats: list[dict[str, object]] = []
    for key, n in inv.nat_gateways.items():
        if vpc is not None and n.text("VpcId") not in (None, vpc):
            inv.skipped.append(f"{n.where}: NAT gateway {key} not carried over: it belongs to {n.text('VpcId')}")
            continue
        address = next((a for a in n.items("NatGatewayAddresses") if a.text("PublicIp")), None)
        subnet = subnet_names.get(n.text("SubnetId") or "")
        if n.text("State") not in (None, "available", "pending") or address is None or subnet is None:
            inv.skipped.append(f"{n.where}: NAT gateway {key} not carried over: a lab runs public NAT gateways that "
                               "are available, with an Elastic IP, in a subnet of the lab")
            continue
        nats[key] = key.lower()
        out_nats.append({"name": key.lower(), "id": key, "subnet": subnet,
                         "private_ip": address.text("PrivateIp"), "public_ip": address.text("PublicIp")})
    tables: list[dict[str, object]] = []
    for t in inv.route_tables:
        table = _table(t, nats, subnet_names, vpc_blocks, inv)
        other_vpc = vpc is not None and t.text("VpcId") not in (None, vpc)
        if other_vpc or any(table["name"] == known["name"] for known in tables):
            why = f"it belongs to {t.text('VpcId')}, not the lab's VPC" if other_vpc else \
                "the lab has one VPC, whose main route table is already carried"
            inv.skipped.append(f"{t.where}: route table {t.text('RouteTableId')} not carried over: {why}")
            continue
        tables.append(table)
    return {"nat_gateways": out_nats, "route_tables": tables}


def _table(t: JsonValue, nats: dict[str, str], subnet_names: dict[str, str], vpc_blocks: tuple[str, ...],
           inv: Inventory) -> dict[str, object]:
    key = t.text("RouteTableId") or ""
    main = any(isinstance(a.value, dict) and a.value.get("Main") is True for a in t.items("Associations"))
    subnets = [subnet_names[s] for a in t.items("Associations") if (s := a.text("SubnetId")) in subnet_names]
    routes: list[dict[str, object]] = []
    seen: set[str] = set()
    for r in t.items("Routes"):
        dst = r.text("DestinationCidrBlock") or r.text("DestinationIpv6CidrBlock")
        if r.text("GatewayId") == "local" or dst is None:
            if dst is None and r.text("DestinationPrefixListId"):
                inv.skipped.append(f"{r.where}: route to prefix list {r.text('DestinationPrefixListId')} not "
                                   "carried over: give its entries as routes by hand")
            continue
        # why the ignore below: the comprehension compares blocks of one family only (version checked)
        if any(ip_network(dst).subnet_of(ip_network(b)) for b in vpc_blocks  # type: ignore[arg-type]
               if ip_network(b).version == ip_network(dst).version):
            inv.skipped.append(f"{r.where}: route {dst} inside the VPC not carried over: a lab's local route "
                               "carries everything inside the VPC")
            continue
        if dst in seen:
            continue
        seen.add(dst)
        routes.append({"destination": dst, "target": _target(r, nats, dst, inv)})
    return {"name": "main" if main else key.lower(), "id": key, **({"subnets": subnets} if subnets else {}),
            "routes": routes}


def _target(r: JsonValue, nats: dict[str, str], dst: str, inv: Inventory) -> str:
    gateway = r.text("GatewayId") or ""
    if r.text("State") == "blackhole":
        return "blackhole"
    if (nat := r.text("NatGatewayId")) is not None:
        if nat in nats:
            return nats[nat]
        inv.notes.append(f"{r.where}: route {dst} -> {nat} became blackhole: give describe-nat-gateways output "
                         "with that NAT gateway (available, with an Elastic IP)")
        return "blackhole"
    if gateway.startswith("igw-"):
        return "igw"
    if r.text("EgressOnlyInternetGatewayId") or gateway.startswith("eigw-"):
        return "eigw"
    real = next((f"{what} {r.text(name)}" for name, what in UNMODELLED if r.text(name)), None) or \
        (f"gateway {gateway}" if gateway else "an unknown target")
    inv.notes.append(f"{r.where}: route {dst} -> {real} became blackhole: a lab does not emulate it")
    return "blackhole"
