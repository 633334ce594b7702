"""Reachability matrices: every source x destination instance x port, predicted by the engine
(`explain`) and, for a running lab, observed by real probes (`testing.probe.observe_all`). Pure."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass

import yaml

from .errors import MatrixError
from .explain import explain
from .model import PROTO_TCP, PROTO_UDP, Instance, Topology

SYMBOLS = {"open": ".", "reply": ".", "refused": "R", "timeout": "X", None: "?"}
# (src, dst, port, proto) -> observed outcome
Observe = Callable[[str, str, int, str], str]


@dataclass(frozen=True)
class Cell:
    src: str
    dst: str
    port: int
    predicted: str
    observed: str | None
    reason: str

    @property
    def label(self) -> str:
        return f"{self.src} -> {self.dst}:{self.port}"

    @property
    def agrees(self) -> bool:
        return self.observed is None or _same(self.predicted, self.observed)


def _same(a: str, b: str) -> bool:
    """`open` and `reply` both mean an answer came back."""
    return a == b or {a, b} == {"open", "reply"}


def listening(inst: Instance, proto: str, port: int) -> bool | None:
    """Does DST answer on PORT? An instance that declares services listens on exactly those;
    one that declares none is assumed to listen on every asked port (None: let explain decide)."""
    if proto == "icmp":
        return None
    if not inst.services:
        return True
    return inst.listens(PROTO_UDP if proto == "udp" else PROTO_TCP, port)


def predict(topology: Topology, ports: Iterable[int], proto: str = "tcp") -> list[Cell]:
    ports = (0,) if proto == "icmp" else tuple(ports)
    cells = []
    for src in topology.nodes:
        for dst in topology.instances:
            if src.name == dst.name:
                continue
            for port in ports:
                e = explain(topology, src.name, dst.name, port, proto,
                            listening=listening(dst, proto, port))
                cells.append(Cell(src.name, dst.name, port, e.outcome, None, e.why))
    return cells


def mismatches(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if not c.agrees]


def parse_expected(data: object, source: str) -> dict[tuple[str, str, int], str]:
    """--expect: a mapping {"src -> dst:port": outcome} or a list of {src, dst, port, outcome}."""
    valid = {"open", "refused", "timeout", "reply"}
    entries: list[tuple[str, object, tuple[object, object], object]] = []
    if isinstance(data, Mapping):
        for key, outcome in data.items():
            src, sep, rest = str(key).partition("->")
            dst, _, port = rest.strip().rpartition(":")
            if not sep or not dst:
                raise MatrixError(f"{source}: {key!r}: use 'src -> dst:port'")
            entries.append((str(key), src.strip(), (dst.strip(), port), outcome))
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, Mapping) or not {"src", "dst", "outcome"} <= set(item):
                raise MatrixError(f"{source}: [{i}]: needs src, dst, port and outcome")
            entries.append((f"[{i}]", item["src"], (item["dst"], item.get("port", 0)), item["outcome"]))
    else:
        raise MatrixError(f"{source}: expected a mapping 'src -> dst:port: outcome' or a list of cells")
    expected: dict[tuple[str, str, int], str] = {}
    for where, source_node, (dst_node, given_port), outcome in entries:
        try:
            number = int(str(given_port))
        except (TypeError, ValueError):
            raise MatrixError(f"{source}: {where}: port {given_port!r} is not a number") from None
        if outcome not in valid:
            raise MatrixError(f"{source}: {where}: outcome {outcome!r}; use one of {', '.join(sorted(valid))}")
        expected[(str(source_node), str(dst_node), number)] = str(outcome)
    return expected


def against_expected(cells: list[Cell], expected: dict[tuple[str, str, int], str]) -> list[str]:
    """One line per difference between the expectation and what was observed (or predicted)."""
    by_key = {(c.src, c.dst, c.port): c for c in cells}
    problems = []
    for key, want in expected.items():
        cell = by_key.get(key)
        if cell is None:
            problems.append(f"{key[0]} -> {key[1]}:{key[2]}: expected {want}, but the matrix has no such cell")
            continue
        got = cell.observed if cell.observed is not None else cell.predicted
        if not _same(want, got):
            problems.append(f"{cell.label}: expected {want}, got {got} ({cell.reason})")
    return problems


def grid(cells: list[Cell], which: str = "observed", columns: Iterable[str] = ()) -> list[str]:
    """Compact text: per port, rows are sources, columns destinations (`.` open, R refused, X timeout);
    `columns` fixes the destinations' order (else first appearance)."""
    lines: list[str] = []
    for port in dict.fromkeys(c.port for c in cells):
        here = [c for c in cells if c.port == port]
        srcs = list(dict.fromkeys(c.src for c in here))
        dsts = list(dict.fromkeys([*columns, *(c.dst for c in here)]))
        width = max(len(s) for s in srcs)
        outcome = {(c.src, c.dst): getattr(c, which) for c in here}
        lines.append(f"port {port} ({which})" if port else f"icmp ({which})")
        lines.append(" " * (width + 2) + " ".join(d[:6].ljust(6) for d in dsts))
        for s in srcs:
            row = " ".join((SYMBOLS[outcome[(s, d)]] if (s, d) in outcome else "-").ljust(6) for d in dsts)
            lines.append(f"{s.ljust(width)}  {row}")
        lines.append("")
    return lines


def as_json(lab: str, proto: str, ports: Iterable[int], cells: list[Cell]) -> dict:
    return {"lab": lab, "proto": proto, "ports": list(ports),
            "cells": [asdict(c) for c in cells],
            "mismatches": [asdict(c) for c in mismatches(cells)]}


def read_expected(path: str) -> dict[tuple[str, str, int], str]:
    """--expect FILE (YAML or JSON)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise MatrixError(f"{path}: cannot read the expectations: {exc}") from None
    return parse_expected(data, path)
