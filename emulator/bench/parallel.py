"""`scripts/bench --parallel`: a suite of lab tests run serially, then with pytest-xdist
(`-n WORKERS`), in the same run; the ratio is the speed-up. The suite is eight tests in the
shape of the README's example (each brings up the three-tier lab with sg_lab, probes it for
real, changes it at runtime), written to a temporary directory and run by a child pytest.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from emulator.lab import netns

SUITE = '''
import pytest

TOPOLOGY = {topology!r}


@pytest.fixture
def lab(sg_lab):
    return sg_lab(TOPOLOGY, name="bench-par")


def test_alb_faces_the_internet(lab):
    assert lab.probe("you", "alb", 80) == "open"


def test_alb_ssh_is_closed(lab):
    assert lab.probe("you", "alb", 22) == "timeout"


def test_https_allowed_but_closed(lab):
    assert lab.probe("you", "alb", 443) == "refused"


def test_app_reaches_db(lab):
    assert lab.probe("app", "db", 3306) == "open"


def test_db_initiates_nothing(lab):
    assert lab.probe("db", "app", 8080) == "timeout"


def test_matrix(lab):
    lab.assert_matrix({{"alb -> app:8080": "open", "alb -> db:3306": "timeout", "app -> db:3306": "open"}})


def test_real_client(lab):
    assert lab.exec("app", "nc", "-N", "-w", "2", "db", "3306").stdout.startswith("db tcp 3306 ready")


def test_open_a_port_at_runtime(lab):
    assert lab.probe("stranger", "alb", 8443) == "timeout"
    lab.authorize_ingress("alb-sg", "tcp", 8443, cidr="198.51.100.7/32")
    assert lab.probe("stranger", "alb", 8443) == "refused"
'''
SUITE_TESTS = 8
THREE_TIER = Path(str(files("emulator") / "topologies" / "three-tier.yaml"))


def run_suite(directory: Path, workers: int) -> float:
    """Seconds for one run of the suite (0 workers: serially); raises unless all tests pass."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)]
    if workers:
        argv += ["-n", str(workers)]
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=netns.package_env(),
                          cwd=directory)
    seconds = time.monotonic() - start
    if done.returncode != 0 or f"{SUITE_TESTS} passed" not in done.stdout:
        raise RuntimeError(f"the parallel-benchmark suite failed with -n {workers}:\n{done.stdout[-2000:]}")
    return seconds


def measure(workers: int, progress=lambda message: None) -> dict:
    with tempfile.TemporaryDirectory(prefix="sgemu-bench-") as tmp:
        directory = Path(tmp)
        (directory / "test_suite.py").write_text(SUITE.format(topology=str(THREE_TIER)))
        progress(f"pytest: {SUITE_TESTS} lab tests serially")
        serial = run_suite(directory, 0)
        progress(f"pytest: {SUITE_TESTS} lab tests with -n {workers}")
        parallel = run_suite(directory, workers)
    return {"suite_tests": SUITE_TESTS, "xdist_workers": workers, "suite_seconds_serial": serial,
            "suite_seconds_xdist": parallel, "xdist_speedup": serial / parallel}
