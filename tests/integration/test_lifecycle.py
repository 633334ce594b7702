"""Lab life cycle: fail closed when the engine dies, `down` from recorded state alone, rollback
of a failed `up`, two labs with the same address plan side by side, and the CLI verbs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from emulator.errors import LabError
from emulator.lab import hooks, netns, processes, state
from emulator.lab import lifecycle as lab
from emulator.paths import NETNS_ETC

from .reach import Case, assert_reachability, running, topology

SMALL = """
name: small
vpc: {cidr: 10.0.0.0/16}
subnets: [{name: s, cidr: 10.0.1.0/24}]
security_groups:
  - name: web-sg
    ingress: [{protocol: tcp, ports: 80, cidr: 0.0.0.0/0}]
instances:
  - {name: web, subnet: s, private_ip: 10.0.1.10, public_ip: 198.51.100.10, security_groups: [web-sg],
     services: [{type: http, port: 80}]}
internet:
  - {name: you, ip: 203.0.113.10}
"""


def _gone(lab_name: str) -> list[str]:
    """Whatever of the lab still exists (empty when it is completely gone)."""
    left = [ns for ns in netns.namespaces() if ns.startswith(f"sgemu-{lab_name}-")]
    left += [str(p) for p in NETNS_ETC.glob(f"sgemu-{lab_name}-*")]
    left += [str(state.paths(lab_name).root)] if state.paths(lab_name).root.exists() else []
    return left


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True,
                          timeout=60)


def kill_unsupervised(name: str) -> None:
    """SIGKILL the lab's supervisor, then its engine (else it would be restarted at once: that is
    tests/integration/test_survive.py), and wait until the engine is really gone."""
    os.kill(state.load(name).pids["supervisor"], signal.SIGKILL)
    pid = lab.status(name).engine.pid
    os.kill(pid, signal.SIGKILL)
    while processes.alive(pid):
        time.sleep(0.01)


def test_engine_killed_fails_closed_and_down_still_removes_everything(topology_file) -> None:
    path = topology_file(SMALL)
    topo = topology(path, "it-crash")
    lab.up(topo)
    try:
        assert_reachability(topo.name, [Case("you", "web", 80, "open")])
        engine = lab.status(topo.name).engine
        assert engine.alive and engine.pid
        kill_unsupervised(topo.name)
        assert_reachability(topo.name, [Case("you", "web", 80, "timeout", label="dead"),
                                        Case("web", "you", 0, "timeout", proto="icmp", label="dead")])
        assert not lab.status(topo.name).engine.alive
        path.unlink()                          # down needs no topology file
    finally:
        lab.down(topo.name)
    assert _gone(topo.name) == []
    services = subprocess.run(["pgrep", "-f", "emulator.guest.servers --name web"], capture_output=True, text=True)
    assert not any(f"sgemu-{topo.name}-" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
                   for pid in services.stdout.split() if Path(f"/proc/{pid}").exists())
    lab.down(topo.name)                        # idempotent


def test_two_labs_with_the_same_address_plan_run_side_by_side(topology_file) -> None:
    path = topology_file(SMALL)
    with running(topology(path, "it-twin-a")) as a, running(topology(path, "it-twin-b")) as b:
        assert_reachability(a, [Case("you", "web", 80, "open"), Case("you", "web", 22, "timeout")])
        assert_reachability(b, [Case("you", "web", 80, "open")])
        kill_unsupervised(a)                                   # lab a goes dark; b must not notice
        assert_reachability(a, [Case("you", "web", 80, "timeout")])
        assert_reachability(b, [Case("you", "web", 80, "open")])
    assert _gone("it-twin-a") == [] and _gone("it-twin-b") == []


def test_failed_up_rolls_back_everything(topology_file, monkeypatch) -> None:
    topo = topology(topology_file(SMALL), "it-rollback")

    def broken(plan, frontend):
        raise LabError("simulated hook failure")
    monkeypatch.setattr(hooks, "install", broken)
    with pytest.raises(LabError, match="simulated"):
        lab.up(topo)
    assert _gone(topo.name) == []


def test_up_refuses_a_lab_that_is_already_running(topology_file) -> None:
    topo = topology(topology_file(SMALL), "it-twice")
    with running(topo):
        with pytest.raises(LabError, match="already running"):
            lab.up(topo)
        assert lab.status(topo.name).engine.alive
    assert _gone(topo.name) == []


def test_cli_up_detach_status_exec_probe_down(topology_file) -> None:
    path = topology_file(SMALL.replace("name: small", "name: it-cli"))
    up = _cli("up", str(path), "--detach")
    try:
        assert up.returncode == 0, up.stderr
        status = json.loads(_cli("status", "--lab", "it-cli", "--json").stdout)
        assert status[0]["engine"]["alive"] and status[0]["frontend"] in hooks.FRONTENDS
        assert {n["name"] for n in status[0]["nodes"]} == {"web", "you"}
        probe = _cli("probe", "--lab", "it-cli", "you", "web", "--port", "80", "--timeout", "1.5")
        assert (probe.returncode, probe.stdout.strip()) == (0, "open")
        probe = _cli("probe", "--lab", "it-cli", "you", "web", "--port", "22", "--timeout", "1")
        assert (probe.returncode, probe.stdout.strip()) == (4, "timeout")
        hosts = _cli("exec", "--lab", "it-cli", "you", "--", "getent", "hosts", "web")
        assert hosts.returncode == 0 and hosts.stdout.split()[0] == "198.51.100.10"
    finally:
        down = _cli("down", "--lab", "it-cli")
    assert down.returncode == 0, down.stderr
    assert _gone("it-cli") == []
    assert _cli("down", "--lab", "it-cli").returncode == 0


def test_frontend_detection_finds_a_working_iptables() -> None:
    frontend = hooks.detect_frontend()
    assert frontend in hooks.FRONTENDS
    assert not [ns for ns in netns.namespaces() if ns.startswith("sgemu-probe-")]


def test_ctrl_c_in_the_foreground_tears_down(topology_file) -> None:
    path = topology_file(SMALL.replace("name: small", "name: it-fg"))
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "up", str(path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not state.paths("it-fg").ready.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        time.sleep(1)                          # services start after the engine is ready
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        left = _gone("it-fg")                  # what the foreground process itself left
    finally:
        if process.poll() is None:
            process.kill()
        lab.down("it-fg")
    assert left == []


def test_without_a_standby_one_engine_runs_and_a_killed_one_is_restarted_cold() -> None:
    """`options.standby: false`: the supervisor keeps no second engine (one process per lab, for
    many labs side by side); a killed engine still comes back, started cold, and enforces."""
    from emulator.bench.restart import kill_engine
    from emulator.lab.cleanup import engine_pids
    from emulator.testing.probe import probe
    from emulator.topology import parse

    data = yaml.safe_load(SMALL)
    data["name"] = "it-nostandby"
    data["options"] = {"standby": False}
    with running(parse(data, "f").topology) as name:
        time.sleep(0.5)                              # a standby would have been started by now
        assert len(engine_pids(name)) == 1
        kill = kill_engine(name)
        assert kill.ready > kill.dead
        assert len(engine_pids(name)) == 1
        assert probe(name, "you", "web", 80, timeout=3) == "open"
        assert probe(name, "you", "web", 22, timeout=1) == "timeout"
