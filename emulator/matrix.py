"""Reachability matrices: every source x destination instance x port, predicted by the engine
(`explain`) and, for a running lab, observed by real probes (`testing.probe.observe_all`). Pure."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass

import yaml

from .errors import MatrixError
from .explain import explain
from .model import PROTO_TCP, PROTO_UDP, Instance, InternetHost, Topology
from .routes import routes_declared

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
    via: str = ""                      # the NAT gateway an internet destination is reached through

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
    # With route tables, where instances can reach on the internet is a question too (NAT, no route).
    outside: tuple[InternetHost, ...] = topology.internet if routes_declared(topology) else ()
    destinations: tuple[Instance | InternetHost, ...] = (*topology.instances, *outside)
    pairs = [(src.name, dst.name) for src in topology.nodes for dst in destinations
             if src.name != dst.name and (isinstance(src, Instance) or isinstance(dst, Instance))]
    return predict_cells(topology, [(src, dst, port) for src, dst in pairs for port in ports], proto)


def predict_cells(topology: Topology, cells: Iterable[tuple[str, str, int]], proto: str = "tcp") -> list[Cell]:
    """The engine's prediction for each (src, dst instance, port)."""
    predicted = []
    for src, dst, port in cells:
        node = topology.node(dst)
        # A lab's internet hosts run no services: one that is reached answers RST (or ICMP unreachable).
        listens = listening(node, proto, port) if isinstance(node, Instance) else (None if proto == "icmp" else False)
        e = explain(topology, src, dst, port, proto, listening=listens)
        nat = next((n.name for n in topology.nat_gateways if any(f"NAT gateway {n.name} " in note for note in e.notes)),
                   "")
        reason = f"through NAT gateway {nat}: {e.why}" if nat and e.outcome != "timeout" else e.why
        predicted.append(Cell(src, dst, port, e.outcome, None, reason, nat))
    return predicted


FULL_MATRIX_MAX = 5000         # cells probed in full; beyond, `matrix` samples unless told how many
AUTO_SAMPLE = 1000


def cell_count(topology: Topology, ports: Iterable[int]) -> int:
    """Cells of the full matrix (a few self-pairs included)."""
    return len(topology.nodes) * len(topology.instances) * len(tuple(ports))


def sample_cells(topology: Topology, ports: Iterable[int], count: int, seed: int = 0) -> list[tuple[str, str, int]]:
    """`count` distinct (src, dst instance, port) cells drawn uniformly from the whole matrix
    (every cell if it has no more), reproducible from `seed`; drawn by index, so a matrix of
    a million cells is never built."""
    sources, targets, ports = topology.nodes, topology.instances, tuple(ports)
    total = len(sources) * len(targets) * len(ports)
    chosen: list[tuple[str, str, int]] = []
    for index in random.Random(seed).sample(range(total), min(count, total)):
        src, rest = divmod(index, len(targets) * len(ports))
        dst, port = divmod(rest, len(ports))
        if sources[src].name != targets[dst].name:
            chosen.append((sources[src].name, targets[dst].name, ports[port]))
    return chosen


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


def listing(cells: list[Cell], which: str = "observed") -> list[str]:
    """One line per cell (a sample of a big matrix: a grid would be mostly empty)."""
    return [f"{c.label}  {getattr(c, which)}" for c in cells]


def grid(cells: list[Cell], which: str = "observed", columns: Iterable[str] = ()) -> list[str]:
    """Compact text: per port, rows are sources, columns destinations (`.` open, R refused, X timeout,
    N reached through a NAT gateway);
    `columns` fixes the destinations' order (else first appearance)."""
    lines: list[str] = []
    for port in dict.fromkeys(c.port for c in cells):
        here = [c for c in cells if c.port == port]
        srcs = list(dict.fromkeys(c.src for c in here))
        dsts = list(dict.fromkeys([*columns, *(c.dst for c in here)]))
        width = max(len(s) for s in srcs)
        outcome = {(c.src, c.dst): getattr(c, which) for c in here}
        nat = {(c.src, c.dst) for c in here if c.via and getattr(c, which) in ("open", "reply", "refused")}
        lines.append(f"port {port} ({which})" if port else f"icmp ({which})")
        # each column as wide as its destination's name (names are never cut: "update" is not "updates")
        lines.append((" " * (width + 2) + " ".join(d.ljust(6) for d in dsts)).rstrip())
        for s in srcs:
            row = " ".join(("N" if (s, d) in nat else SYMBOLS[outcome[(s, d)]] if (s, d) in outcome else "-")
                           .ljust(max(6, len(d))) for d in dsts)
            lines.append(f"{s.ljust(width)}  {row}".rstrip())
        lines.append("")
    return lines


def as_json(lab: str, proto: str, ports: Iterable[int], cells: list[Cell]) -> dict:
    return {"lab": lab, "proto": proto, "ports": list(ports),
            "cells": [_cell_json(c) for c in cells],
            "mismatches": [_cell_json(c) for c in mismatches(cells)]}


def _cell_json(cell: Cell) -> dict[str, object]:
    """A cell's fields; `via` only when a NAT gateway carries it."""
    out = asdict(cell)
    if not cell.via:
        del out["via"]
    return out


def read_expected(path: str) -> dict[tuple[str, str, int], str]:
    """--expect FILE (YAML or JSON)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as exc:
        raise MatrixError(f"{path}: cannot read the expectations: {exc}") from None
    return parse_expected(data, path)
