"""Faults: the engine killed, Ctrl-C or SIGTERM at every stage of `up`, a service that cannot
start, a missing or unusable state directory, and a second `up` of a running lab. After each,
either the lab works or nothing of it is left."""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulator.errors import LabError
from emulator.lab import lifecycle as lab
from emulator.lab import netns, services, state
from emulator.model import Topology
from emulator.paths import NETNS_ETC, RUN_DIR
from emulator.topology import load

from .reach import Case, assert_reachability

SMALL = """
name: {name}
vpc: {{cidr: 10.0.0.0/16}}
subnets: [{{name: s, cidr: 10.0.1.0/24}}]
security_groups:
  - name: web-sg
    ingress: [{{protocol: tcp, ports: 80, cidr: 0.0.0.0/0}}]
instances:
  - {{name: web, subnet: s, private_ip: 10.0.1.10, public_ip: 198.51.100.10, security_groups: [web-sg],
     services: [{services}]}}
internet:
  - {{name: you, ip: 203.0.113.10}}
"""
HTTP = "{type: http, port: 80}"
SSH = "{type: ssh}"


def write(tmp_path: Path, name: str, services_yaml: str = HTTP) -> Path:
    assert name.startswith("it7-"), "the session guard watches it7- labs"
    path = tmp_path / f"{name}.yaml"
    path.write_text(SMALL.format(name=name, services=services_yaml))
    return path


def topology(path: Path) -> Topology:
    return load(str(path)).topology


def gone(name: str, run_dir: Path = RUN_DIR) -> list[str]:
    """Whatever of the lab still exists: namespaces, /etc/netns entries, state, engine processes."""
    left = [ns for ns in netns.namespaces() if ns.startswith(f"sgemu-{name}-")]
    left += [str(p) for p in NETNS_ETC.glob(f"sgemu-{name}-*")]
    left += [str(run_dir / name)] if (run_dir / name).exists() else []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"emulator.dataplane.daemon" in argv and name.encode() in argv:
                left.append(f"engine pid {proc.name}")
    return left


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_killed_engine_fails_closed_status_says_so_down_cleans_and_up_works_again(tmp_path) -> None:
    path = write(tmp_path, "it7-kill")
    assert cli("up", str(path), "--detach").returncode == 0
    try:
        assert_reachability("it7-kill", [Case("you", "web", 80, "open")])
        # the supervisor first, or it would restart the engine (tests/integration/test_survive.py)
        os.kill(state.load("it7-kill").pids["supervisor"], signal.SIGKILL)
        pid = lab.status("it7-kill").engine.pid
        os.kill(pid, signal.SIGKILL)
        time.sleep(lab.HEALTH_STALE + 0.5)
        assert_reachability("it7-kill", [Case("you", "web", 80, "timeout", label="dead"),
                                         Case("web", "you", 0, "timeout", proto="icmp", label="dead")])
        text = cli("status", "--lab", "it7-kill")
        assert "engine DOWN" in text.stdout and "fail closed" in text.stdout, text.stdout
        assert json.loads(cli("status", "--lab", "it7-kill", "--json").stdout)[0]["engine"]["alive"] is False
    finally:
        assert cli("down", "--lab", "it7-kill").returncode == 0
    assert gone("it7-kill") == []
    assert cli("up", str(path), "--detach").returncode == 0
    try:
        assert_reachability("it7-kill", [Case("you", "web", 80, "open", label="again")])
    finally:
        cli("down", "--lab", "it7-kill")
    assert gone("it7-kill") == []


STAGES = ("namespaces:", "links:", "hooks:", "engine:", "services:")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("stage", STAGES)
def test_interrupt_at_each_stage_of_up_leaves_nothing(tmp_path, stage, sig) -> None:
    name = f"it7-int-{STAGES.index(stage)}{'i' if sig == signal.SIGINT else 't'}"
    path = write(tmp_path, name)
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "up", str(path), "--detach"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: list[str] = []
    try:
        for line in process.stderr:
            seen.append(line.strip())
            if line.startswith(stage):
                process.send_signal(sig)
                break
        _, rest = process.communicate(timeout=60)
        left = gone(name)
    finally:
        if process.poll() is None:
            process.kill()
        lab.down(name)
    assert process.returncode == 130, f"exit {process.returncode}; output: {seen} {rest}"
    assert "interrupted" in rest and "Traceback" not in rest, rest
    assert left == [], f"interrupted at {stage!r} ({sig.name}), left: {left}"


def test_a_service_that_cannot_start_rolls_back_with_a_clear_error(tmp_path, monkeypatch) -> None:
    topo = topology(write(tmp_path, "it7-svc", f"{HTTP}, {SSH}"))
    monkeypatch.setattr(services, "SSHD", "/bin/false")      # "sshd" exits at once, never listens
    with pytest.raises(LabError) as raised:
        lab.up(topo)
    message = str(raised.value)
    assert "instance web" in message and "ssh" in message and "exited with status 1 before listening" in message
    assert gone("it7-svc") == []


def test_a_missing_state_directory_is_created_root_only(tmp_path) -> None:
    run_dir = tmp_path / "deep" / "run"
    env = {"SGEMU_RUN_DIR": str(run_dir)}
    up = cli("up", str(write(tmp_path, "it7-rundir")), "--detach", env=env)
    try:
        assert up.returncode == 0, up.stderr
        root = run_dir / "it7-rundir"
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        files = [p for p in root.rglob("*") if p.is_file() or p.is_socket()]
        assert files and all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0 for p in files), \
            {str(p): oct(p.stat().st_mode) for p in files if p.stat().st_mode & 0o077}
        status = json.loads(cli("status", "--json", env=env).stdout)
        assert [s["lab"] for s in status] == ["it7-rundir"] and status[0]["engine"]["alive"]
    finally:
        down = cli("down", "--lab", "it7-rundir", env=env)
    assert down.returncode == 0, down.stderr
    assert gone("it7-rundir", run_dir) == []


@pytest.mark.parametrize("where", ["/proc/sgemu-it7", "/etc/hostname/sgemu"], ids=["read-only", "not-a-dir"])
def test_an_unusable_state_directory_is_a_clear_refusal(tmp_path, where) -> None:
    up = cli("up", str(write(tmp_path, "it7-norun")), "--detach", env={"SGEMU_RUN_DIR": where})
    assert up.returncode == 1
    assert "cannot create the state directory" in up.stderr and "SGEMU_RUN_DIR" in up.stderr, up.stderr
    assert "Traceback" not in up.stderr
    assert gone("it7-norun") == []


def test_down_cleans_a_lab_whose_state_directory_was_deleted(tmp_path) -> None:
    topo = topology(write(tmp_path, "it7-lost"))
    lab.up(topo)
    try:
        shutil.rmtree(state.paths("it7-lost").root)
        assert "it7-lost" not in lab.running_labs()
    finally:
        lab.down("it7-lost")
    assert gone("it7-lost") == []


def test_a_second_up_of_a_running_lab_is_refused(tmp_path) -> None:
    path = write(tmp_path, "it7-twice")
    assert cli("up", str(path), "--detach").returncode == 0
    try:
        pid = lab.status("it7-twice").engine.pid
        again = cli("up", str(path), "--detach")
        assert again.returncode == 1
        assert "already running" in again.stderr and "sgemu down --lab it7-twice" in again.stderr, again.stderr
        assert "Traceback" not in again.stderr
        engine = lab.status("it7-twice").engine
        assert engine.alive and engine.pid == pid
        assert_reachability("it7-twice", [Case("you", "web", 80, "open")])
        with pytest.raises(LabError, match="already running"):
            lab.up(topology(path))
    finally:
        cli("down", "--lab", "it7-twice")
    assert gone("it7-twice") == []
