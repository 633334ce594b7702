"""Static reachability matrices and --expect files (pure)."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator import matrix as mx
from emulator.testing.probe import observe_all
from emulator.topology import load

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


@pytest.fixture(scope="module")
def cells():
    return mx.predict(load(TOPOLOGIES / "three-tier.yaml").topology, (80, 443, 3306, 8080))


def outcome(cells, src, dst, port):
    return next(c.predicted for c in cells if (c.src, c.dst, c.port) == (src, dst, port))


@pytest.mark.parametrize("src,dst,port,expected", [
    ("you", "alb", 80, "open"), ("you", "alb", 443, "refused"), ("alb", "app", 8080, "open"),
    ("app", "db", 3306, "open"), ("alb", "db", 3306, "timeout"), ("stranger", "db", 3306, "timeout"),
    ("db", "app", 8080, "timeout"),
])
def test_predicted_cells(cells, src, dst, port, expected):
    assert outcome(cells, src, dst, port) == expected


def test_every_source_destination_port_but_self(cells):
    assert len(cells) == 5 * 3 * 4 - 3 * 4           # 5 sources x 3 instances x 4 ports, minus self
    assert not any(c.src == c.dst for c in cells)


def test_listener_assumed_only_without_declared_services():
    topo = load(TOPOLOGIES / "three-tier.yaml").topology
    alb = topo.instance("alb")
    assert mx.listening(alb, "tcp", 80) and not mx.listening(alb, "tcp", 443)
    bare = type(alb)(name="x", subnet="public", private_ip=alb.private_ip, security_groups=())
    assert mx.listening(bare, "tcp", 443) is True and mx.listening(bare, "icmp", 0) is None


def test_grid_symbols_and_column_order(cells):
    lines = mx.grid(cells, "predicted", ["alb", "app", "db"])
    block = lines[lines.index("port 443 (predicted)"):]
    assert block[1].split() == ["alb", "app", "db"]
    assert block[2].split() == ["alb", "-", "X", "X"]
    you = next(line for line in block if line.startswith("you"))
    assert you.split() == ["you", "R", "X", "X"]


def test_observed_mismatch_is_reported(cells):
    lies = {("you", "alb", 80): "timeout"}
    observed = observe_all(cells, "tcp", lambda s, d, p, proto: lies.get((s, d, p), outcome(cells, s, d, p)))
    bad = mx.mismatches(observed)
    assert [(c.src, c.dst, c.port) for c in bad] == [("you", "alb", 80)]


def test_reply_and_open_agree():
    cell = mx.Cell("a", "b", 53, "reply", "open", "")
    assert cell.agrees


@pytest.mark.parametrize("data", [
    {"you -> alb:80": "open", "alb -> db:3306": "timeout"},
    [{"src": "you", "dst": "alb", "port": 80, "outcome": "open"},
     {"src": "alb", "dst": "db", "port": 3306, "outcome": "timeout"}],
])
def test_expect_forms(cells, data):
    expected = mx.parse_expected(data, "exp.yaml")
    assert expected == {("you", "alb", 80): "open", ("alb", "db", 3306): "timeout"}
    assert mx.against_expected(cells, expected) == []


def test_expect_differences_name_the_cell(cells):
    problems = mx.against_expected(cells, {("you", "alb", 443): "open", ("you", "nowhere", 1): "open"})
    assert problems[0].startswith("you -> alb:443: expected open, got refused")
    assert "no such cell" in problems[1]


@pytest.mark.parametrize("data,message", [
    ({"you alb 80": "open"}, "use 'src -> dst:port'"),
    ({"you -> alb:http": "open"}, "port 'http' is not a number"),
    ({"you -> alb:80": "maybe"}, "outcome 'maybe'"),
    ([{"src": "you"}], r"\[0\]: needs src"),
    ("open", "expected a mapping"),
])
def test_bad_expect_files(data, message):
    with pytest.raises(mx.MatrixError, match=message):
        mx.parse_expected(data, "exp.yaml")


def test_json_shape(cells):
    doc = mx.as_json("three-tier", "tcp", (80,), cells)
    assert set(doc) == {"lab", "proto", "ports", "cells", "mismatches"}
    assert set(doc["cells"][0]) == {"src", "dst", "port", "predicted", "observed", "reason"}
