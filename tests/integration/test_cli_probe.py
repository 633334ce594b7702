"""`sgemu probe` and friends as CONTRACT.md states them: outcome words and exit statuses, one-line
errors for unknown nodes, and silence (timeout) for addresses no lab node has."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
LAB = "it-probe"


def sgemu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator.cli", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    data = yaml.safe_load((ROOT / "topologies" / "web-server.yaml").read_text())
    data["name"] = LAB
    path = tmp_path_factory.mktemp("cli") / "lab.yaml"
    path.write_text(yaml.safe_dump(data))
    up = sgemu("up", str(path), "--detach")
    assert up.returncode == 0, up.stderr
    yield LAB
    assert sgemu("down", "--lab", LAB).returncode == 0


@pytest.mark.parametrize("args,word,status", [
    (("you", "web", "--port", "80"), "open", 0),
    (("you", "web", "--port", "443"), "refused", 3),
    (("stranger", "web", "--port", "22"), "timeout", 4),
    (("you", "web", "--port", "80", "-6"), "open", 0),
    (("web", "you", "--proto", "icmp"), "reply", 0),
    (("you", "web", "--proto", "icmp"), "timeout", 4),
    (("you", "10.9.9.9", "--port", "80"), "timeout", 4),      # nobody has it: silently nowhere
    (("web", "192.0.2.1", "--port", "80"), "timeout", 4),
])
def test_probe_words_and_statuses(lab, args, word, status):
    done = sgemu("probe", "--lab", lab, *args, "--timeout", "1")
    assert (done.stdout.strip(), done.returncode) == (word, status), done.stderr


@pytest.mark.parametrize("args,message", [
    (("nosuch", "web", "--port", "80"), "has no node 'nosuch'"),
    (("you", "nosuch", "--port", "80"), "has no node 'nosuch'"),
    (("stranger", "web", "--port", "80", "-6"), "stranger has no IPv6 address"),
])
def test_probe_errors_are_one_line(lab, args, message):
    done = sgemu("probe", "--lab", lab, *args)
    assert done.returncode == 1 and message in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_bad_timeout_is_refused_up_front(lab):
    done = sgemu("probe", "--lab", lab, "you", "web", "--port", "80", "--timeout", "-1")
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_status_and_flowlogs_of_an_absent_lab_exit_0(lab):
    for verb in ("status", "flowlogs"):
        done = sgemu(verb, "--lab", "it-nosuch")
        assert done.returncode == 0 and "no lab named 'it-nosuch' is running" in done.stderr


def test_exec_runs_under_the_node_name_and_passes_the_status_through(lab):
    done = sgemu("exec", "--lab", lab, "web", "--", "hostname")
    assert (done.returncode, done.stdout.strip()) == (0, "web")
    assert sgemu("exec", "--lab", lab, "you", "--", "sh", "-c", "exit 7").returncode == 7
    missing = sgemu("exec", "--lab", lab, "web", "--", "no-such-command")
    assert missing.returncode == 127 and "Traceback" not in missing.stderr
    assert "command not found" in missing.stderr
