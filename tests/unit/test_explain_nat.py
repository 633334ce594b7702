"""explain through a NAT gateway: its subnet's NACL on both legs of the request and of the answer, as
AWS's NAT gateway table of checks has them (reference aws-vpc-path.md 5.4, scenario NG8), and nothing
extra where every NACL allows all."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from emulator.explain import explain
from emulator.topology import parse

NAT_FILE = Path(__file__).resolve().parents[2] / "topologies" / "three-tier-nat.yaml"


def doc(ingress: list[dict[str, Any]] | None = None, egress: list[dict[str, Any]] | None = None,
        subnets: tuple[str, ...] = ("public",)) -> dict[str, Any]:
    data = yaml.safe_load(NAT_FILE.read_text())
    if ingress is not None or egress is not None:
        data["network_acls"] = [{"name": "public-nacl", "subnets": list(subnets), "ingress": ingress or [],
                                 "egress": egress or []}]
    return data


def tcp(rule: int, ports: str | int, cidr: str) -> dict[str, Any]:
    return {"rule": rule, "action": "allow", "protocol": "tcp", "ports": ports, "cidr": cidr}


REQUESTS = [tcp(100, 443, "10.0.2.0/24")]
OUT = [tcp(100, 443, "0.0.0.0/0"), tcp(110, "1024-65535", "10.0.2.0/24")]


def test_every_nacl_allowing_all_adds_no_hop() -> None:
    e = explain(parse(doc(), "t").topology, "app", "updates", 443)
    assert e.outcome == "open"
    assert not [h for h in (*e.request, *e.reply) if "public" in h.where]


def test_the_answer_needs_the_ephemeral_range_in_the_gateways_subnet() -> None:
    e = explain(parse(doc(REQUESTS, OUT), "t").topology, "app", "updates", 443)
    assert e.outcome == "timeout"
    assert [h.where for h in e.request][-2:] == ["public subnet inbound", "public subnet outbound"]
    assert e.request[-1].packet.startswith("10.0.1.20:")          # the outside leg leaves from the gateway
    assert [h.where for h in e.reply] == ["public subnet inbound"]
    assert "the NAT gateway's source port; it uses 1024-65535" in e.why and "network ACL public-nacl" in e.why


def test_with_the_range_the_answer_crosses_both_legs_back() -> None:
    e = explain(parse(doc([*REQUESTS, tcp(120, "1024-65535", "0.0.0.0/0")], OUT), "t").topology,
                "app", "updates", 443, listening=True)
    assert e.outcome == "open"
    assert [h.where for h in e.reply][:2] == ["public subnet inbound", "public subnet outbound"]
    assert e.reply[1].packet.startswith("203.0.113.80:443 -> 10.0.2.10:")


def test_a_request_the_gateways_subnet_does_not_let_in_never_leaves() -> None:
    e = explain(parse(doc([tcp(100, 443, "10.0.9.0/24")], OUT), "t").topology, "app", "updates", 443)
    assert e.outcome == "timeout" and not e.reply
    assert e.request[-1].where == "public subnet inbound" and "rule * deny" in e.why


def test_the_gateway_itself_answers_nothing_by_name_private_ip_or_elastic_ip() -> None:
    topology = parse(doc(), "t").topology
    for src, dst in (("you", "198.51.100.50"), ("app", "nat-a"), ("alb", "10.0.1.20")):
        e = explain(topology, src, dst, 22)
        assert (e.dst, e.outcome) == ("nat-a", "timeout") and "NAT gateway" in e.why and not e.request


def test_probe_addresses_the_gateway_as_each_side_sees_it_and_never_probes_from_it() -> None:
    import pytest

    from emulator.errors import LabError
    from emulator.plan import build_plan
    from emulator.testing.probe import resolve
    plan = build_plan(parse(doc(), "t").topology)
    assert resolve("lab", "app", "nat-a", plan=plan) == "10.0.1.20"
    assert resolve("lab", "you", "nat-a", plan=plan) == "198.51.100.50"
    with pytest.raises(LabError, match="nat-a is a NAT gateway: it opens no connection"):
        resolve("lab", "nat-a", "you", plan=plan)
