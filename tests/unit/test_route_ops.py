"""Live route changes (`sgemu route create|delete|describe`): AWS's error codes, nothing changed on a
refusal, the kernel diff handed to the daemon, and the lab's model following the change."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emulator.control.api import LabApi
from emulator.control.route_ops import RouteOps
from emulator.engine.firewall import build_firewalls
from emulator.errors import AwsApiError
from emulator.model import Topology
from emulator.plan import build_plan
from emulator.plan.routing import route_changes
from emulator.topology import parse

NAT_FILE = Path(__file__).resolve().parents[2] / "topologies" / "three-tier-nat.yaml"


class Harness:
    def __init__(self, tmp_path: Path):
        self.topology = parse(yaml.safe_load(NAT_FILE.read_text()), "t.yaml").topology
        state, firewalls = build_firewalls(self.topology)
        self.persisted: list[Topology] = []
        self.api = LabApi("rt", self.topology, state, firewalls, 0.0, 0.0, tmp_path / "flowlogs",
                          self.persisted.append)
        self.kernel: list[list[str]] = []
        RouteOps(self.api, self.topology, self.apply).install()

    def apply(self, before: Topology, after: Topology) -> None:
        self.kernel.append(route_changes(build_plan(before).fabric.routes, build_plan(after).fabric.routes))

    def op(self, op: str, **args: object) -> dict:
        return self.api.handle(op, args, 1.0)  # type: ignore[return-value]

    def code(self, op: str, **args: object) -> str:
        with pytest.raises(AwsApiError) as caught:
            self.op(op, **args)
        return caught.value.code


def test_delete_then_create_changes_the_kernel_tables_and_the_model(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert h.op("route_delete", table="private-rt", destination="0.0.0.0/0")["route"] == "0.0.0.0/0 -> nat-a"
    assert h.kernel[-1] == ["route del 198.51.100.10/32 via 10.0.1.20 dev ngw-nat-a onlink table 101",  # alb's EIP
                            "route del 203.0.113.10/32 via 10.0.1.20 dev ngw-nat-a onlink table 101",
                            "route del 203.0.113.80/32 via 10.0.1.20 dev ngw-nat-a onlink table 101"]
    assert h.persisted[-1].route_table_of("private").routes[0].describe() == "::/0 -> eigw"
    h.op("route_create", table="private-rt", destination="203.0.113.80/32", target="igw")
    assert h.kernel[-1] == ["route replace 203.0.113.80/32 dev igw-updates table 101"]
    h.op("route_create", table=h.topology.route_table_of("data").id, destination="0.0.0.0/0", target="blackhole")
    assert h.kernel[-1] == ["route replace blackhole 203.0.113.10/32 table 102",
                            "route replace blackhole 203.0.113.80/32 table 102"]
    described = h.op("route_describe", table="data-rt")["RouteTables"][0]
    assert {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "blackhole", "State": "blackhole",
            "Origin": "CreateRoute"} in described["Routes"]
    assert described["Routes"][0]["GatewayId"] == "local"
    assert {"route_create", "route_delete"} <= h.api.mutating


@pytest.mark.parametrize(("op", "args", "code"), [
    ("route_create", {"table": "nope", "destination": "0.0.0.0/0", "target": "igw"}, "InvalidRouteTableID.NotFound"),
    ("route_create", {"table": "private-rt", "destination": "0.0.0.0/0", "target": "igw"}, "RouteAlreadyExists"),
    ("route_create", {"table": "private-rt", "destination": "10.0.0.0/16", "target": "igw"}, "RouteAlreadyExists"),
    ("route_create", {"table": "private-rt", "destination": "192.0.2.0/24", "target": "nat-zz"},
     "InvalidGatewayID.NotFound"),
    ("route_create", {"table": "private-rt", "destination": "192.0.2.0/24", "target": "eigw"},
     "InvalidParameterValue"),
    ("route_create", {"table": "private-rt", "destination": "banana", "target": "igw"}, "InvalidParameterValue"),
    ("route_delete", {"table": "private-rt", "destination": "192.0.2.0/24"}, "InvalidRoute.NotFound"),
    ("route_delete", {"table": "ghost", "destination": "0.0.0.0/0"}, "InvalidRouteTableID.NotFound"),
], ids=["unknown-table", "duplicate", "local-cidr", "unknown-gateway", "eigw-ipv4", "bad-cidr", "no-such-route",
        "delete-unknown-table"])
def test_refusals_use_aws_codes_and_change_nothing(tmp_path: Path, op: str, args: dict, code: str) -> None:
    h = Harness(tmp_path)
    assert h.code(op, **args) == code
    assert h.kernel == [] and h.persisted == []
    assert h.api.topology().route_tables == h.topology.route_tables


def test_a_kernel_refusal_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    def refuse(before: Topology, after: Topology) -> None:
        raise OSError("ip failed")

    h.apply = refuse  # type: ignore[method-assign]
    ops = RouteOps(h.api, h.topology, refuse)
    with pytest.raises(OSError):
        ops.op_delete(1.0, "private-rt", "0.0.0.0/0")
    assert ops.model(h.topology).route_tables == h.topology.route_tables
