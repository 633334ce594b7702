"""A lab that survives its engine: SIGKILL at random moments under load (a held ssh session, a
held TCP connection, an iperf3 stream, a loop of new connections, a stream of `sg` changes), with
real clients. Checked: blocked traffic never passes at any moment, the held sessions survive
(even with their rules revoked before the crash), every acknowledged change is in force after
the restarts and a refused one never appears, a damaged journal or a crash loop leaves the lab
closed with the reason in `status`, and `down` leaves nothing (supervisor included)."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from emulator.bench import restart
from emulator.lab import lifecycle, netns, processes, state, supervisor
from emulator.lab.cleanup import engine_pids, supervisor_pids
from emulator.paths import NETNS_ETC, RUN_DIR
from emulator.testing.probe import probe

from .session import Session

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, NFQUEUE)")]

KILLS = 5


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def leftovers(lab: str) -> list[str]:
    left = [ns for ns in netns.namespaces() if ns.startswith(f"sgemu-{lab}-")]
    left += [str(p) for p in NETNS_ETC.glob(f"sgemu-{lab}-*")]
    left += [str(RUN_DIR / lab)] if (RUN_DIR / lab).exists() else []
    left += [f"supervisor {pid}" for pid in supervisor_pids(lab)]
    left += [f"engine {pid}" for pid in engine_pids(lab)]
    return left


@pytest.fixture
def lab(tmp_path: Path, request: pytest.FixtureRequest):
    name = f"surv-{request.node.name[5:12].replace('_', '')}"
    restart.up(name, tmp_path)
    try:
        yield name
    finally:
        lifecycle.down(name)
        assert leftovers(name) == []


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


class ChangeStream(threading.Thread):
    """`sg` changes through the CLI, one after another, while the engine is being killed:
    authorizations of fresh ports (each answer recorded) and revocations that must be refused."""

    def __init__(self, lab: str):
        super().__init__(daemon=True)
        self.lab = lab
        self.stopping = threading.Event()
        self.acknowledged: list[int] = []
        self.unanswered: list[int] = []          # the engine died with the request: either outcome
        self.refused: list[str] = []
        self.problems: list[str] = []

    def run(self) -> None:
        port = 20000
        while not self.stopping.is_set():
            port += 1
            done = cli("sg", "authorize-ingress", "--lab", self.lab, "web-sg", "--protocol", "tcp",
                       "--port", str(port), "--cidr", "10.99.0.0/16")
            if done.returncode == 0:
                self.acknowledged.append(port)
            elif "engine is not running" in done.stderr or "did not answer" in done.stderr:
                self.unanswered.append(port)
            else:
                self.problems.append(done.stderr.strip())
            if port % 4 == 0:       # never authorized: refused (or unanswered), never journaled
                refused = cli("sg", "revoke-ingress", "--lab", self.lab, "web-sg", "--protocol", "udp",
                              "--port", str(port), "--cidr", "10.98.0.0/16")
                if refused.returncode == 0:
                    self.problems.append(f"revoke of a missing rule succeeded: {refused.stdout}")
                elif "InvalidPermission.NotFound" in refused.stderr:
                    self.refused.append(str(port))


def test_sigkill_under_load_keeps_the_lab_closed_sessions_open_and_changes_in_force(lab: str) -> None:
    seconds = KILLS * (restart.BETWEEN_KILLS[1] + 1.0) + 8.0
    pulse = restart.PulseClient(lab, seconds)
    ssh = Session(lifecycle.exec_argv(lab, "you", ["ssh", "-T", "web", "while read l; do echo got $l; done"]))
    iperf_server = subprocess.Popen(lifecycle.exec_argv(lab, "web", ["iperf3", "-s", "-1", "-p", "5201"]),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    changes = ChangeStream(lab)
    try:
        assert ssh.ask("hello", wait=10) == "got hello"
        time.sleep(0.5)
        iperf = subprocess.Popen(lifecycle.exec_argv(lab, "you", ["iperf3", "-c", "web", "-p", "5201", "-J",
                                                                   "-t", str(int(seconds - 6))]),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Their rules go before the crashes: tracked, the held ssh and echo connections live on.
        for port in ("22", "7"):
            revoked = cli("sg", "revoke-ingress", "--lab", lab, "web-sg", "--protocol", "tcp", "--port", port,
                          "--cidr", "203.0.113.10/32")
            assert revoked.returncode == 0, revoked.stderr
        changes.start()
        answers: list[str | None] = []

        def ask_ssh() -> None:
            answers.append(ssh.ask(f"after-kill-{len(answers)}", wait=8))

        kills = restart.kill_repeatedly(lab, KILLS, random.Random(os.getpid()), ask_ssh)
        changes.stopping.set()
        changes.join(timeout=60)
        result = pulse.result(timeout=seconds + 30)
        out, _ = iperf.communicate(timeout=seconds + 30)
    finally:
        changes.stopping.set()
        ssh.close()
        iperf_server.kill()
    summary = restart.summary(kills, result)
    print(f"\nrestart gap over {KILLS} kills under load: {summary}")

    assert result["blocked"] == [], f"connections to the blocked port passed at {result['blocked']}"
    assert summary["held_connection"] == "survived", summary
    assert answers == [f"got after-kill-{n}" for n in range(KILLS)], answers
    report = json.loads(out)
    assert "error" not in report, report.get("error")
    assert report["end"]["sum_received"]["bytes"] > 0
    assert not changes.problems, changes.problems
    assert changes.acknowledged, "no change was acknowledged"
    assert max(summary["gap_ms"].values()) < 2000 + 1000, summary      # restarted within 2 s (+ bind)

    engine = lifecycle.engine_status(lab)
    assert engine.alive and engine.restarts == KILLS and engine.last_reason == "killed by SIGKILL", engine
    exported = yaml.safe_load(cli("export", "--lab", lab, "--format", "yaml").stdout)
    rules = [r for g in exported["security_groups"] if g["name"] == "web-sg" for r in g["ingress"]]
    ports = {str(r["ports"]) for r in rules if r["protocol"] == "tcp"}
    missing = [p for p in changes.acknowledged if str(p) not in ports]
    assert not missing, f"acknowledged changes lost: {missing}"
    assert not {"22", "7"} & ports, "a revoke was lost"
    assert changes.refused and not [r for r in rules if r["protocol"] == "udp"], "a refused change is in force"
    journal = state.paths(lab).journal.read_text()
    assert '"protocol":"udp"' not in journal, "a refused change was journaled"
    # the revokes are journaled, unless a compaction folded them into the replay base since
    assert '"op":"revoke"' in journal or state.paths(lab).journal_base.exists()
    # The revokes are in force for new connections; the held ones were kept by tracking alone.
    assert probe(lab, "you", "web", 22, timeout=1.5) == "timeout"
    assert probe(lab, "you", "web", 80, timeout=1.5) == "open"
    status = cli("status", "--lab", lab).stdout
    assert f"restarted {KILLS} times (last: killed by SIGKILL)" in status, status


def damage_journal(lab: str, how: str) -> None:
    path = state.paths(lab).journal
    data = path.read_bytes()
    path.write_bytes(data.replace(b"8081", b"8082") if how == "altered" else data[: len(data) // 2])


@pytest.mark.parametrize("how, reason", [("altered", "fails its checksum"), ("truncated", "was truncated")])
def test_a_damaged_journal_leaves_the_lab_closed_with_the_reason(lab: str, how: str, reason: str) -> None:
    for port in ("8081", "8090"):
        added = cli("sg", "authorize-ingress", "--lab", lab, "web-sg", "--protocol", "tcp", "--port", port,
                    "--cidr", "0.0.0.0/0")
        assert added.returncode == 0, added.stderr
    damage_journal(lab, how)
    os.kill(restart.engine_pid(lab), signal.SIGKILL)
    account = wait_for(lambda: (a := supervisor.read_account(state.paths(lab))) and a["state"] == "gave up" and a,
                       10, "the supervisor gives up")
    assert reason in account["gave_up"] and str(state.paths(lab).journal) in account["gave_up"], account
    time.sleep(0.5)
    assert supervisor_pids(lab) == [] and engine_pids(lab) == [], "a crash loop (or an engine) is running"
    assert probe(lab, "you", "web", 80, timeout=1.5) == "timeout", "the lab is open without an engine"
    text = cli("status", "--lab", lab).stdout
    assert "engine DOWN" in text and "gave up" in text and reason in re.sub(r"\s+", " ", text), text
    doctor = cli("doctor").stdout
    assert re.search(rf"lab {lab} .*gave up.*{reason}", re.sub(r"\n(?!\S)", "", doctor)), doctor


def test_an_engine_that_keeps_dying_is_given_up_on_and_the_lab_stays_closed(lab: str) -> None:
    pid = restart.engine_pid(lab)
    for _ in range(supervisor.MAX_IN_A_ROW + 1):
        os.kill(pid, signal.SIGKILL)
        if _ < supervisor.MAX_IN_A_ROW:
            pid, _ready = restart.wait_ready(lab, pid)
    account = wait_for(lambda: (a := supervisor.read_account(state.paths(lab))) and a["state"] == "gave up" and a,
                       10, "the supervisor gives up")
    assert f"died {supervisor.MAX_IN_A_ROW + 1} times in a row" in account["gave_up"], account
    assert account["restarts"] == supervisor.MAX_IN_A_ROW
    assert engine_pids(lab) == []
    assert probe(lab, "you", "web", 80, timeout=1.5) == "timeout"
    status = json.loads(cli("status", "--lab", lab, "--json").stdout)[0]["engine"]
    assert not status["alive"] and status["supervisor"] == "gave up" and "in a row" in status["closed_because"]


def test_down_stops_the_supervisor_first_even_without_state(lab: str) -> None:
    supervisors = supervisor_pids(lab)
    assert len(supervisors) == 1 and engine_pids(lab)
    shutil.rmtree(state.paths(lab).root)        # a crashed lab: only names and command lines remain
    lifecycle.down(lab)
    assert leftovers(lab) == []
    assert not processes.alive(supervisors[0])
