"""The benchmark's pure parts: ab's report read, the chart drawn, the verdict-cost labs valid at
every point (raised quotas), the pull-back probe's engine side."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from emulator.bench import chart, verdict_cost
from emulator.bench.labs import ab_rate
from emulator.bench.pullback import offloaded
from emulator.bench.topologies import pair_topology
from emulator.engine.offload import untracked
from emulator.topology import parse

AB_REPORT = """
Concurrency Level:      4
Time taken for tests:   3.001 seconds
Complete requests:      9123
Failed requests:        2
Requests per second:    3040.12 [#/sec] (mean)
"""


def test_ab_rate_reads_rate_and_failures() -> None:
    assert ab_rate(AB_REPORT) == (3040.12, 2)
    with pytest.raises(RuntimeError, match="no rate"):
        ab_rate("apr_socket_connect(): Connection refused (111)")


@pytest.mark.parametrize("build", [
    lambda: verdict_cost.lab(rules_per_sg=1000), lambda: verdict_cost.lab(rules_per_sg=2, sgs_per_eni=16),
    lambda: verdict_cost.lab(enis=500), lambda: verdict_cost.lab()])
def test_every_cost_point_is_a_valid_lab(build) -> None:
    topology = parse(build(), "bench").topology
    assert topology.instances


def test_the_cost_probe_times_both_kinds_of_packet() -> None:
    figures = verdict_cost.cost(verdict_cost.lab(rules_per_sg=60), flows=10)
    assert figures["new_ns"] > 0 and figures["established_ns"] > 0
    series = {"1": {"new_ratio": 1.0, "established_ratio": 1.0}, "9": {"new_ratio": 1.4, "established_ratio": 2.5}}
    assert verdict_cost.worst_ratio(series) == 2.5


def test_the_chart_is_svg_with_a_bar_per_ratio_and_per_cost_point() -> None:
    point = {"new_ns": 2000.0, "established_ns": 900.0, "new_ratio": 1.1, "established_ratio": 0.9}
    summary = {"throughput_ratio_offload": 1.02, "udp_pps_ratio_offload": 0.5, "engine_vs_binding_ratio": 0.85,
               "cps_ratio": 0.4, "cps_ratio_no_offload": 0.3, "load_start": 1.5, "load_end": 2.0,
               "verdict_cost": {"rules_per_sg": {"1": point, "1000": {**point, "new_ratio": 7.0}}}}
    svg = ET.fromstring(chart.render(summary))
    bars = list(svg.iter("{http://www.w3.org/2000/svg}rect"))
    assert len(bars) == 1 + len(chart.RATIOS) + 2 + 2 * 2          # background, ratios, legend, 2 points x 2
    red = [b for b in bars if b.get("fill") == chart.BAD]
    assert len(red) == 3                                           # udp 0.5 < 0.8, both cps ratios < 0.6
    assert any("7.00x" in (t.text or "") for t in svg.iter("{http://www.w3.org/2000/svg}text"))


def test_the_pullback_probe_offloads_every_flow_tracked() -> None:
    offloads = offloaded(parse(pair_topology("bench-plain", offload=True), "bench").topology, 50)
    assert len(offloads) == 50 and not any(untracked(f) for f in offloads.flows.values())


def test_the_nat_benchmark_lab_sends_one_instance_out_through_the_gateway_and_one_direct() -> None:
    from ipaddress import ip_address

    from emulator.bench.nat_path import NET_IP, nat_topology
    from emulator.routes import route_from
    topology = parse(nat_topology("bench-nat"), "bench").topology
    assert route_from(topology, "private", ip_address(NET_IP)).target == "nat-a"
    assert route_from(topology, "public", ip_address(NET_IP)).target == "igw"
    assert topology.instance("pub").public_ip is not None and topology.instance("priv").public_ip is None
