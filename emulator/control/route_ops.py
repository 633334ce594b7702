"""Live route changes for the control socket, like `aws ec2 create-route` / `delete-route`.

The operation checks with the loader's own rules and AWS's error codes, then hands the old and new
model to `apply` (the daemon: the diff of the fabric's table routes, through iproute2) before it
answers, so the next packet already takes the new route. Refusals change nothing. Error codes:
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html (RouteAlreadyExists,
InvalidRoute.NotFound, InvalidRouteTableID.NotFound, InvalidGatewayID.NotFound).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from emulator.errors import AwsApiError
from emulator.model import Topology
from emulator.routes import TARGET_BLACKHOLE, IPNetwork, RouteEntry, RouteTable
from emulator.topology.problems import Problems
from emulator.topology.routes import FIXED_TARGETS, check_target, destination

from .api import LabApi

MUTATING = frozenset({"route_create", "route_delete"})
Apply = Callable[[Topology, Topology], None]


def route_table_json(topology: Topology, table: RouteTable) -> dict[str, object]:
    """A table as describe-route-tables shows it (the local routes first)."""
    vpc = topology.vpc
    local = [{"DestinationCidrBlock" if b.version == 4 else "DestinationIpv6CidrBlock": str(b),
              "GatewayId": "local", "State": "active", "Origin": "CreateRouteTable"}
             for b in (vpc.cidr, vpc.ipv6_cidr) if b is not None]
    routes = []
    for r in table.routes:
        key = "DestinationCidrBlock" if r.destination.version == 4 else "DestinationIpv6CidrBlock"
        nat = topology.nat_gateway(r.target)
        target = {"NatGatewayId": nat.id} if nat else {"GatewayId": r.target}
        routes.append({key: str(r.destination), **target,
                       "State": "blackhole" if r.target == TARGET_BLACKHOLE else "active", "Origin": "CreateRoute"})
    return {"RouteTableId": table.id, "Name": table.name, "Main": table.main, "Routes": [*local, *routes],
            "Associations": [{"SubnetId": s, "Main": False} for s in table.subnets] +
            ([{"Main": True}] if table.main else [])}


class RouteOps:
    def __init__(self, api: LabApi, topology: Topology, apply: Apply):
        self._api = api
        self._topology = topology
        self._tables = topology.routing
        self._apply = apply
        self.ops: dict[str, Callable[..., object]] = {
            "route_create": self.op_create, "route_delete": self.op_delete, "route_describe": self.op_describe}

    def install(self) -> None:
        """Add the operations (the journal sees the mutating ones) and the tables to the lab's model."""
        self._api.add_ops(self.ops, mutating=MUTATING)
        self._api.model_parts.append(self.model)

    def model(self, topology: Topology) -> Topology:
        return replace(topology, route_tables=self._tables)

    def _table(self, ref: str) -> RouteTable:
        found = next((t for t in self._tables if ref in (t.name, t.id)), None)
        if found is None:
            raise AwsApiError("InvalidRouteTableID.NotFound", f"The routeTable ID '{ref}' does not exist "
                              f"(route tables: {', '.join(f'{t.name} ({t.id})' for t in self._tables)})")
        return found

    def _destination(self, table: RouteTable, cidr: str) -> IPNetwork:
        """The destination, checked like a file's (refusals raise)."""
        p = Problems(f"route table {table.name}")
        dst = destination(p, cidr, "--destination", self._topology.vpc)
        if dst is None:
            vpc = self._topology.vpc
            code = "RouteAlreadyExists" if cidr in (str(vpc.cidr), str(vpc.ipv6_cidr)) else "InvalidParameterValue"
            raise AwsApiError(code, "; ".join(p.errors))
        return dst

    def _change(self, table: RouteTable, routes: tuple[RouteEntry, ...]) -> RouteTable:
        before = self._api.topology()
        changed = replace(table, routes=routes)
        self._tables = tuple(changed if t.name == table.name else t for t in self._tables)
        try:
            self._apply(before, self._api.topology())
        except Exception:
            self._tables = before.routing          # the kernel refused: the model stays as it was
            raise
        self._api.changed()
        return changed

    def op_create(self, now: float, table: str, destination: str, target: str) -> dict:
        found = self._table(table)
        dst = self._destination(found, destination)
        nat = self._topology.nat_gateway(target)
        if nat is None and target not in FIXED_TARGETS:
            names = ", ".join((*FIXED_TARGETS, *(n.name for n in self._topology.nat_gateways)))
            raise AwsApiError("InvalidGatewayID.NotFound", f"The gateway ID '{target}' does not exist (use {names})")
        p = Problems(f"route table {found.name}")
        checked = check_target(p, "--target", nat.name if nat else target, dst, nat is not None)
        if checked is None:
            raise AwsApiError("InvalidParameterValue", "; ".join(p.errors))
        if any(r.destination == dst for r in found.routes):
            raise AwsApiError("RouteAlreadyExists", f"The route identified by {dst} already exists "
                              f"in {found.id} ({found.name})")
        route = RouteEntry(dst, checked)
        self._change(found, (*found.routes, route))
        return {"table": found.id, "name": found.name, "route": route.describe(), "done": "created"}

    def op_delete(self, now: float, table: str, destination: str) -> dict:
        found = self._table(table)
        dst = self._destination(found, destination)
        gone = next((r for r in found.routes if r.destination == dst), None)
        if gone is None:
            raise AwsApiError("InvalidRoute.NotFound", f"no route with destination {dst} in "
                              f"{found.id} ({found.name})")
        self._change(found, tuple(r for r in found.routes if r != gone))
        return {"table": found.id, "name": found.name, "route": gone.describe(), "done": "deleted"}

    def op_describe(self, now: float, table: str | None = None) -> dict:
        tables = [self._table(table)] if table else list(self._tables)
        current = self._api.topology()
        return {"RouteTables": [route_table_json(current, t) for t in tables]}
