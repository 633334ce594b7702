"""Journal compaction on a real lab: more live changes than the threshold, made with the real CLI,
are folded into the replay base; a SIGKILLed engine (restarted by the supervisor) comes back from
the base plus a short journal with every change in force (real probes), the same exports and the
same sgr- ids the CLI printed when the rules were authorized."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from emulator.bench import restart
from emulator.dataplane.journal import COMPACT_AFTER
from emulator.lab import lifecycle, state
from emulator.testing.probe import probe

from .test_survive import leftovers

FIRST_PORT = 30000
KEPT = 50                                   # rules authorized and kept (the SG's quota is 60)
CHURNED = range(31000, 31030)               # each authorized, then revoked: two changes
REVOKED = range(FIRST_PORT + 40, FIRST_PORT + 45)
NACL_DENIED = FIRST_PORT + 5                # an SG rule allows it, the default NACL's entry 50 denies it
YOU = "203.0.113.10/32"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True, timeout=60)


def ok(*args: str) -> str:
    done = cli(*args)
    assert done.returncode == 0, f"sgemu {' '.join(args)}: {done.stderr}"
    return done.stdout


def rule_id(output: str) -> str:
    found = re.match(r"(sgr-[0-9a-f]{17}) (authorized|revoked) in ", output)
    assert found, output
    return found.group(1)


def views(lab: str) -> dict[str, str]:
    """What users read of the lab: the topology, describe-security-groups, the NACLs."""
    return {"yaml": ok("export", "--lab", lab, "--format", "yaml"), "aws": ok("export", "--lab", lab),
            "nacls": ok("nacl", "describe", "--lab", lab)}


def journal_lines(lab: str) -> int:
    return len(state.paths(lab).journal.read_bytes().splitlines())


def kill_and_wait(lab: str) -> dict:
    old = restart.engine_pid(lab)
    os.kill(old, signal.SIGKILL)
    restart.wait_ready(lab, old)
    return json.loads(state.paths(lab).health.read_text())


@pytest.fixture
def lab(tmp_path: Path):
    name = "jrnl-compact"
    restart.up(name, tmp_path)
    try:
        yield name
    finally:
        lifecycle.down(name)
        assert leftovers(name) == []


def test_a_compacted_journal_survives_a_killed_engine_with_every_change_and_id(lab: str) -> None:
    def change(action: str, port: int) -> str:
        return rule_id(ok("sg", f"{action}-ingress", "--lab", lab, "web-sg", "--protocol", "tcp", "--port", str(port),
                          "--cidr", YOU, *(["--description", f"live {port}"] if action == "authorize" else [])))

    def churn(port: int) -> None:
        made = change("authorize", port)
        assert change("revoke", port) == made

    with ThreadPoolExecutor(4) as pool:         # the engine takes them one at a time, as from a script
        ids = dict(zip(range(FIRST_PORT, FIRST_PORT + KEPT),
                       pool.map(lambda port: change("authorize", port), range(FIRST_PORT, FIRST_PORT + KEPT))))
        list(pool.map(churn, CHURNED))
    for port in REVOKED:
        assert change("revoke", port) == ids[port]
    ok("nacl", "create-entry", "--lab", lab, "default", "--rule-number", "50", "--ingress", "--rule-action", "deny",
       "--protocol", "tcp", "--port", str(NACL_DENIED), "--cidr", "0.0.0.0/0")
    ok("instance", "set-conntrack", "--lab", lab, "web", "--tcp-established", "7200")
    total = KEPT + 2 * len(CHURNED) + len(REVOKED) + 2
    assert total > COMPACT_AFTER

    # the engine compacts between packet batches (once a second) once the journal is long enough
    deadline = time.monotonic() + 10
    while not state.paths(lab).journal_base.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    commit = json.loads(state.paths(lab).journal_commit.read_text())
    assert commit["base"] >= COMPACT_AFTER and commit["base"] + commit["records"] == total, commit
    assert journal_lines(lab) == commit["records"] < COMPACT_AFTER
    before = views(lab)

    health = kill_and_wait(lab)
    assert health["journal_base"] == commit["base"] and health["replayed_changes"] == commit["records"], health
    assert views(lab) == before
    for port in (FIRST_PORT, FIRST_PORT + 20, FIRST_PORT + 39, FIRST_PORT + KEPT - 1):
        assert probe(lab, "you", "web", port, timeout=1.5) == "refused", port    # allowed: the host answers RST
    for port in (*REVOKED[:2], NACL_DENIED, CHURNED[0], FIRST_PORT + KEPT):
        assert probe(lab, "you", "web", port, timeout=1.5) == "timeout", port   # dropped
    assert probe(lab, "you", "web", 80, timeout=1.5) == "open"

    # the ids the CLI printed before the compaction are the rules' ids after it
    for port in (FIRST_PORT + 1, FIRST_PORT + 27):
        assert change("revoke", port) == ids[port]
    after_revokes = views(lab)
    health = kill_and_wait(lab)         # and once more: the base plus the journal that followed it
    assert health["journal_base"] == commit["base"] and health["replayed_changes"] == commit["records"] + 2
    assert views(lab) == after_revokes
    assert probe(lab, "you", "web", FIRST_PORT + 1, timeout=1.5) == "timeout"
    assert probe(lab, "you", "web", FIRST_PORT + 2, timeout=1.5) == "refused"
    assert journal_lines(lab) < COMPACT_AFTER
    status = ok("status", "--lab", lab)
    assert "restarted 2 times (last: killed by SIGKILL)" in status, status
