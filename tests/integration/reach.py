"""Helpers for live-lab tests: a lab that is always torn down, and reachability assertions that
print an expected-vs-observed matrix with the exact command reproducing each mismatch."""
from __future__ import annotations

import contextlib
import dataclasses
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from emulator.lab import lifecycle as lab
from emulator.model import Topology
from emulator.testing.probe import probe
from emulator.topology import load

PROBE_TIMEOUT = 1.5


def topology(path: Path, name: str) -> Topology:
    """A topology file loaded under a test-only lab name (so it never clashes with a user's lab)."""
    assert name.startswith("it-"), "test labs are named it-*: the session guard watches that prefix"
    return dataclasses.replace(load(str(path)).topology, name=name)


@contextlib.contextmanager
def running(topo: Topology) -> Iterator[str]:
    lab.up(topo)
    try:
        yield topo.name
    finally:
        lab.down(topo.name)


@dataclass(frozen=True)
class Case:
    src: str
    dst: str
    port: int
    expected: str                  # open | refused | timeout | reply
    proto: str = "tcp"
    ipv6: bool = False
    label: str = ""

    def command(self, lab_name: str) -> str:
        port = f" --port {self.port}" if self.proto != "icmp" else ""
        six = " -6" if self.ipv6 else ""
        return (f"sgemu probe --lab {lab_name} {self.src} {self.dst}{port} --proto {self.proto}"
                f"{six} --timeout {PROBE_TIMEOUT:g}")


def observe(lab_name: str, case: Case) -> str:
    try:
        return probe(lab_name, case.src, case.dst, case.port, case.proto, PROBE_TIMEOUT, case.ipv6)
    except Exception as exc:       # shown in the matrix as what was observed
        return f"error: {exc}"


def assert_reachability(lab_name: str, cases: list[Case]) -> None:
    """Probe every case (in parallel: timeouts dominate) and fail with the whole matrix."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        observed = list(pool.map(lambda c: observe(lab_name, c), cases))
    rows, mismatches = [], []
    for case, seen in zip(cases, observed):
        ok = seen == case.expected
        what = f"{case.src} -> {case.dst} {case.proto}{'/' + str(case.port) if case.proto != 'icmp' else ''}" \
               f"{' (v6)' if case.ipv6 else ''}"
        rows.append(f"{'  ' if ok else '!!'} {case.label:4} {what:38} expected {case.expected:8} observed {seen}")
        if not ok:
            mismatches.append(f"   {case.label}: {case.command(lab_name)}")
    report = "\n".join(rows)
    assert not mismatches, f"reachability mismatch in lab {lab_name}:\n{report}\nreproduce:\n" + \
        "\n".join(mismatches)


def run_in(lab_name: str, node: str, argv: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(lab.exec_argv(lab_name, node, argv), capture_output=True, text=True, timeout=timeout)
