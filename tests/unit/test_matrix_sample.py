"""Sampled reachability matrices (a big lab's full matrix would take hours of real probes):
uniform, reproducible, never a self-cell, every --expect cell kept, and said so."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from emulator import matrix as mx
from emulator.bench.topologies import scale_topology
from emulator.topology import load, parse

ROOT = Path(__file__).resolve().parents[2]
THREE_TIER = ROOT / "topologies" / "three-tier.yaml"


def sgemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_a_sample_is_distinct_reproducible_and_never_a_self_cell():
    topology = parse(scale_topology("big", 300, services=False), "big.yaml").topology
    one = mx.sample_cells(topology, (22, 80), 500, seed=7)
    assert one == mx.sample_cells(topology, (22, 80), 500, seed=7)
    assert one != mx.sample_cells(topology, (22, 80), 500, seed=8)
    assert len(set(one)) == len(one) and 490 <= len(one) <= 500      # a drawn self-cell is left out
    assert all(src != dst and port in (22, 80) for src, dst, port in one)
    assert mx.cell_count(topology, (22, 80)) == 300 * 300 * 2


def test_asking_for_more_than_the_matrix_gives_the_whole_matrix():
    topology = load(THREE_TIER).topology
    every = {(c.src, c.dst, c.port) for c in mx.predict(topology, (22,))}
    assert set(mx.sample_cells(topology, (22,), 10_000)) == every


def test_matrix_sample_prints_a_line_per_cell_and_says_it_sampled():
    done = sgemu("matrix", str(THREE_TIER), "--static", "--ports", "3306", "--sample", "2", "--seed", "3",
                 "--json")
    assert done.returncode == 0, done.stderr
    assert "sampled 2 of 15 cells (seed 3)" in done.stderr
    assert len(json.loads(done.stdout)["cells"]) == 2


def test_expected_cells_are_always_in_the_sample(tmp_path: Path):
    expect = tmp_path / "expect.yaml"
    expect.write_text(yaml.safe_dump({"app -> db:3306": "open", "alb -> db:3306": "timeout"}))
    done = sgemu("matrix", str(THREE_TIER), "--static", "--ports", "3306", "--sample", "1", "--expect",
                 str(expect), "--json")
    assert done.returncode == 0, done.stderr
    cells = {(c["src"], c["dst"]) for c in json.loads(done.stdout)["cells"]}
    assert {("app", "db"), ("alb", "db")} <= cells


def test_a_big_matrix_is_sampled_unless_told(tmp_path: Path):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(scale_topology("big", 80, services=False)))
    done = sgemu("matrix", str(path), "--static", "--ports", "22", "--json")
    assert done.returncode == 0, done.stderr
    assert "sampled" in done.stderr and "of 6400 cells" in done.stderr
    assert len(json.loads(done.stdout)["cells"]) <= mx.AUTO_SAMPLE
