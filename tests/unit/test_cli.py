"""The no-root verbs as a user runs them: exit codes, one-line errors, every shipped topology."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml"))


def sgemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True,
                          cwd=ROOT)


def test_every_topology_is_shipped():
    assert {p.name for p in SHIPPED} >= {"three-tier.yaml", "web-server.yaml", "private-app.yaml",
                                         "database.yaml", "ssh-bastion.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_validate_plan_explain_matrix_on_shipped_topologies(path: Path):
    done = sgemu("validate", str(path))
    assert done.returncode == 0 and "valid" in done.stdout, done.stderr
    done = sgemu("plan", str(path))
    assert done.returncode == 0 and "-vpc (fabric)" in done.stdout and "NFQUEUE --queue-num" in done.stdout
    done = sgemu("matrix", str(path), "--static", "--ports", "22,80", "--json")
    cells = json.loads(done.stdout)["cells"]
    assert done.returncode == 0 and cells and all(c["observed"] is None for c in cells)
    first = cells[0]
    done = sgemu("explain", str(path), first["src"], first["dst"], "--port", str(first["port"]), "--json")
    explained = json.loads(done.stdout)
    assert done.returncode == 0 and explained["outcome"] == first["predicted"]
    for hop in explained["request"] + explained["reply"]:
        assert hop["verdict"]["action"] in ("ACCEPT", "DROP") and hop["verdict"]["reason"].isupper()


def test_invalid_file_one_line_per_problem_and_exit_1(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vpc: {cidr: 10.0.0.0/8}\nsubnets: [{name: A, cidr: 10.0.1.0/24}]\n")
    done = sgemu("validate", str(bad))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"error: {bad}: ") for line in lines)
    assert any("vpc.cidr" in line for line in lines) and any("subnets[0].name" in line for line in lines)


def test_missing_file_and_unknown_node_are_one_line_errors():
    done = sgemu("validate", "/nonexistent/topology.yaml")
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    done = sgemu("explain", str(ROOT / "topologies" / "three-tier.yaml"), "nobody", "db", "--port", "1")
    assert done.returncode == 1 and "no instance or internet host named 'nobody'" in done.stderr
    assert "Traceback" not in done.stderr


def test_static_matrix_expect_file_exits_1_on_difference(tmp_path: Path):
    expect = tmp_path / "expect.yaml"
    expect.write_text('"app -> db:3306": open\n"alb -> db:3306": open\n')
    done = sgemu("matrix", str(ROOT / "topologies" / "three-tier.yaml"), "--static", "--ports", "3306",
                 "--expect", str(expect))
    assert done.returncode == 1
    assert "alb -> db:3306: expected open, got timeout" in done.stdout
