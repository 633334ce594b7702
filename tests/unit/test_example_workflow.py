"""The example CI workflow users copy (examples/github-actions-sg-tests.yml): it installs what
sgemu needs at run time (the same packages scripts/setup installs), runs the SG tests as root in
parallel with a JUnit report, and always tears down and keeps the report."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-actions-sg-tests.yml"
NOT_AT_RUN_TIME = {"iperf3", "apache2-utils", "busybox",          # the benchmark
                   "tcpdump", "graphviz", "chromium"}             # debugging, `sgemu graph`, ui tests


def _steps() -> list[dict]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    (job,) = doc["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    return job["steps"]


def _setup_packages() -> set[str]:
    text = (ROOT / "scripts" / "setup").read_text()
    listed = re.search(r"APT_PACKAGES=\(([^)]*)\)", text)
    assert listed is not None
    return set(listed.group(1).split())


def test_it_installs_every_package_sgemu_needs_at_run_time():
    installs = " ".join(s.get("run", "") for s in _steps() if "apt-get install" in s.get("run", ""))
    assert _setup_packages() - NOT_AT_RUN_TIME <= set(installs.replace("\\", " ").split())


def test_it_runs_the_tests_as_root_in_parallel_with_a_junit_report():
    runs = [s["run"] for s in _steps() if "pytest " in s.get("run", "")]
    assert len(runs) == 1
    command = runs[0].split()
    assert command[:2] == ["sudo", ".venv/bin/pytest"]
    assert "-n" in command and command[command.index("-n") + 1] == "auto"
    assert any(arg.startswith("--junitxml=") for arg in command)


def test_it_always_tears_down_and_keeps_the_report():
    always = [s for s in _steps() if s.get("if") == "always()"]
    assert any(s.get("run", "").endswith("sgemu down --all") for s in always)
    report = [s for s in always if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert report and report[0]["with"]["path"] == "sg-results.xml"
