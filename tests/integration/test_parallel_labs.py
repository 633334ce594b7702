"""Many labs at once: two copies of one file through `sgemu up --name`, each enforcing its own
SGs and torn down exactly, and the sg_lab fixture under real pytest-xdist workers."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from emulator.lab import netns, state
from emulator.paths import NETNS_ETC

from .reach import Case, assert_reachability

pytest_plugins = ["pytester"]

PAIR = """
name: pair
vpc: {cidr: 10.0.0.0/16}
subnets: [{name: s, cidr: 10.0.1.0/24}]
security_groups:
  - name: web-sg
    ingress: [{protocol: tcp, ports: 80, cidr: 203.0.113.0/24}]
instances:
  - {name: web, subnet: s, private_ip: 10.0.1.10, public_ip: 198.51.100.10, security_groups: [web-sg],
     services: [{type: http, port: 80}, {type: tcp, port: 8080}]}
  - {name: peer, subnet: s, private_ip: 10.0.1.11}
internet:
  - {name: you, ip: 203.0.113.10}
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True,
                          timeout=120)


def _left(lab_name: str) -> list[str]:
    """Whatever of the lab exists (empty when it is completely gone)."""
    left = [ns for ns in netns.namespaces() if ns.startswith(f"sgemu-{lab_name}-")]
    left += [str(p) for p in NETNS_ETC.glob(f"sgemu-{lab_name}-*")]
    return left + ([str(state.paths(lab_name).root)] if state.paths(lab_name).root.exists() else [])


def test_two_copies_of_one_file_by_name_each_enforce_their_own_sgs(topology_file) -> None:
    path = str(topology_file(PAIR))
    names = ("it-copy-a", "it-copy-b")
    try:
        for name in names:
            done = _cli("up", path, "--name", name, "--detach")
            assert done.returncode == 0, done.stderr
        listed = {lab["lab"] for lab in json.loads(_cli("status", "--json").stdout)}
        assert set(names) <= listed
        for name in names:
            assert_reachability(name, [Case("you", "web", 80, "open"), Case("you", "web", 8080, "timeout")])
        # A live change reaches only the lab it names.
        done = _cli("sg", "authorize-ingress", "--lab", "it-copy-a", "web-sg", "--protocol", "tcp",
                    "--port", "8080", "--cidr", "203.0.113.10/32")
        assert done.returncode == 0, done.stderr
        assert_reachability("it-copy-a", [Case("you", "web", 8080, "open")])
        assert_reachability("it-copy-b", [Case("you", "web", 8080, "timeout")])
        # Tearing one down removes exactly that one.
        assert _cli("down", "--lab", "it-copy-a").returncode == 0
        assert _left("it-copy-a") == []
        assert "sgemu-it-copy-b-web" in netns.namespaces()
        assert_reachability("it-copy-b", [Case("you", "web", 80, "open")])
    finally:
        for name in names:
            _cli("down", "--lab", name)
    assert _left("it-copy-b") == []


def test_up_refuses_a_name_already_running_and_leaves_it_alone(topology_file) -> None:
    path = str(topology_file(PAIR))
    try:
        assert _cli("up", path, "--name", "it-copy-c", "--detach").returncode == 0
        again = _cli("up", path, "--name", "it-copy-c", "--detach")
        assert again.returncode == 1 and "already running" in again.stderr
        assert_reachability("it-copy-c", [Case("you", "web", 80, "open")])
    finally:
        _cli("down", "--lab", "it-copy-c")
    assert _left("it-copy-c") == []


XDIST_SUITE = """
import json, os, pathlib, pytest

TOPOLOGY = {topology!r}
OUT = pathlib.Path({out!r})


@pytest.mark.parametrize("n", range({tests}))
def test_lab_of_its_own(sg_lab, n):
    lab = sg_lab(TOPOLOGY, name="it-xd")
    assert lab.probe("you", "web", 80) == "open"
    assert lab.probe("you", "web", 8080) == "timeout"
    lab.authorize_ingress("web-sg", "tcp", 8080, cidr="203.0.113.10/32")   # other workers' labs keep theirs
    assert lab.probe("you", "web", 8080) == "open"
    mine = sorted(ns for ns in os.listdir("/run/netns") if ns.startswith("sgemu-it-xd"))
    (OUT / f"{{n}}.json").write_text(json.dumps({{"worker": os.environ.get("PYTEST_XDIST_WORKER"),
                                                 "lab": lab.name, "namespaces": mine}}))
"""


def test_sg_lab_under_pytest_xdist_gives_each_worker_its_own_labs(pytester: pytest.Pytester,
                                                                  topology_file) -> None:
    out = pytester.path / "seen"
    out.mkdir()
    pytester.makepyfile(XDIST_SUITE.format(topology=str(topology_file(PAIR)), out=str(out), tests=4))
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=4)
    seen = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    workers = {s["worker"] for s in seen}
    assert workers == {"gw0", "gw1"}, seen              # both workers ran labs
    assert all(s["lab"] == f"it-xd-{s['worker']}" for s in seen), seen
    for s in seen:      # at its moment, a test saw its own lab and at most the other worker's
        own = {ns for ns in s["namespaces"] if ns.startswith(f"sgemu-{s['lab']}-")}
        assert own == {f"sgemu-{s['lab']}-{node}" for node in ("vpc", "web", "peer", "you")}, s
    assert _left("it-xd-gw0") == [] and _left("it-xd-gw1") == []
