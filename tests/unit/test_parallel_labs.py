"""Many labs at once, without root: the names pytest-xdist workers give their labs, and
`up --name` / `renamed` refusing a bad name before anything is built."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulator.errors import TopologyError
from emulator.plan import build_plan
from emulator.pytest_plugin import LAB_NAME_MAX, worker_lab_name
from emulator.topology import load
from emulator.topology.parser import LAB_NAME, renamed

ROOT = Path(__file__).resolve().parents[2]
THREE_TIER = ROOT / "topologies" / "three-tier.yaml"
names = st.from_regex(LAB_NAME, fullmatch=True)
workers = st.integers(0, 999).map(lambda n: f"gw{n}")


def test_outside_xdist_the_name_is_unchanged():
    assert worker_lab_name("three-tier", None) == "three-tier"
    assert worker_lab_name("three-tier", "") == "three-tier"


def test_a_short_name_gets_the_worker_id():
    assert worker_lab_name("three-tier", "gw0") == "three-tier-gw0"
    assert worker_lab_name("it-x", "gw12") == "it-x-gw12"


def test_a_long_name_is_cut_and_tagged_with_a_hash_of_the_whole():
    cut = worker_lab_name("three-tier-stage", "gw3")
    assert len(cut) == LAB_NAME_MAX and cut.startswith("three-ti") and cut.endswith("-gw3")
    assert cut != worker_lab_name("three-tier-stagf", "gw3")     # same head, other name


@given(names, workers)
def test_every_worker_name_is_a_valid_lab_name(base: str, worker: str):
    assert LAB_NAME.fullmatch(worker_lab_name(base, worker))


@given(names, workers, workers)
def test_two_workers_never_share_a_name(base: str, one: str, other: str):
    if one != other:
        assert worker_lab_name(base, one) != worker_lab_name(base, other)


@given(names, names, workers)
def test_two_labs_of_one_worker_never_share_a_name(one: str, other: str, worker: str):
    if one != other:
        assert worker_lab_name(one, worker) != worker_lab_name(other, worker)


def test_an_odd_worker_id_is_hashed_into_a_valid_name():
    name = worker_lab_name("three-tier", "Worker_7!")
    assert LAB_NAME.fullmatch(name) and name.startswith("three-")
    assert name != worker_lab_name("three-tier", "Worker_8!")


def test_a_renamed_copy_keeps_the_address_plan_and_owns_its_namespaces():
    topology = load(THREE_TIER).topology
    copy = renamed(topology, "tt-copy", "--name")
    one, two = build_plan(topology), build_plan(copy)
    assert {ns.name for ns in one.namespaces}.isdisjoint(ns.name for ns in two.namespaces)
    assert [a for ns in one.namespaces for a in ns.addresses] == \
        [a for ns in two.namespaces for a in ns.addresses]
    assert one.marker != two.marker and two.marker == "sgemu:tt-copy"


@pytest.mark.parametrize("bad", ["Three", "a_b", "x" * 17, ""])
def test_renamed_refuses_a_bad_name(bad: str):
    with pytest.raises(TopologyError, match=r"--name: .* is not a valid lab name"):
        renamed(load(THREE_TIER).topology, bad, "--name")


def test_up_with_a_bad_name_says_so_in_one_line_before_anything_else():
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "up", str(THREE_TIER), "--name", "Bad_Name"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "--name: 'Bad_Name' is not a valid lab name" in done.stderr
    assert "root" not in done.stderr            # refused on the name, before the root check
