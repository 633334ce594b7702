"""The supervisor without root: an engine that cannot start, or refuses a damaged journal, is not
restarted in a loop; the supervisor gives up at once and its account says why (the lab stays
closed). Real processes (the supervisor and the engine daemon) in a private SGEMU_RUN_DIR."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

from emulator.lab import supervisor
from emulator.paths import LabPaths
from emulator.topology import parse

from .test_live import TOPOLOGY


def run_supervisor(run_dir: Path, lab: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "SGEMU_RUN_DIR": str(run_dir)}
    done = subprocess.run([sys.executable, "-m", supervisor.SUPERVISOR_MODULE, lab], env=env, capture_output=True,
                          text=True, timeout=60)
    account = supervisor.read_account(LabPaths(run_dir / lab))
    assert account is not None, done.stdout + done.stderr
    return done, account


def lab_dir(run_dir: Path, lab: str) -> LabPaths:
    where = LabPaths(run_dir / lab)
    where.logs.mkdir(parents=True)
    return where


def test_an_engine_that_cannot_start_is_given_up_on_at_once(tmp_path: Path) -> None:
    lab_dir(tmp_path, "nostart")           # no model at all: the engine exits during start-up
    done, account = run_supervisor(tmp_path, "nostart")
    assert done.returncode == 1
    assert account["state"] == "gave up" and account["restarts"] == 0
    assert account["gave_up"] == "the engine exited during start-up (exited with status 1)"


def test_a_damaged_journal_stops_the_engine_before_it_binds_and_is_not_retried(tmp_path: Path) -> None:
    where = lab_dir(tmp_path, "badjournal")
    with open(where.topology_at_up, "wb") as f:
        pickle.dump(parse(TOPOLOGY, "t.yaml").topology, f)
    where.journal.write_bytes(b'{"seq":1,"op":"set_sgs","args":{},"crc":1}\n')
    where.journal_commit.write_text(json.dumps({"length": where.journal.stat().st_size, "records": 1}))
    done, account = run_supervisor(tmp_path, "badjournal")
    assert done.returncode == 1 and account["state"] == "gave up" and account["restarts"] == 0
    assert "line 1 fails its checksum" in account["gave_up"] and str(where.journal) in account["gave_up"]
    assert "the lab stays closed" in where.engine_fatal.read_text()
    assert not where.ready.exists()
    assert not Path("/run/netns/sgemu-live-vpc").exists(), "the refusing engine touched the host"
    assert supervisor.death_reason(supervisor.ENGINE_FATAL, where) == account["gave_up"]
