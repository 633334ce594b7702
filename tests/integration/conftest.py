"""Session guard for the integration tests: whatever the suite creates is gone at the end, and
the root namespace's links, routes and firewall are exactly as before.

Labs other people run on this machine at the same time are left alone: only objects of the
suite's own labs count (names starting with TEST_LABS; reach.topology enforces `it-`), and only
those that appear during the session.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.paths import NETNS_ETC, RUN_DIR

TEST_LABS = ("it-", "it4-", "it6-", "it7-", "it16-", "svctest", "probe-", "surv-",
             "nacl-")   # lab names of this suite (probe-: front-end detection)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Said once for the whole folder: every test here is an integration test and needs root."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.integration)
            if os.geteuid() != 0:
                item.add_marker(pytest.mark.skip(reason="needs root (network namespaces, NFQUEUE)"))


def _out(argv: list[str]) -> str:
    if shutil.which(argv[0]) is None:
        return ""
    return subprocess.run(argv, capture_output=True, text=True).stdout


def _sgemu_objects() -> set[str]:
    ours = tuple(f"sgemu-{lab}" for lab in TEST_LABS)
    names = {f"netns {e['name']}" for e in json.loads(_out(["ip", "-j", "netns", "list"]) or "[]")
             if e["name"].startswith(ours)}
    if NETNS_ETC.is_dir():
        names |= {f"file {p}" for p in NETNS_ETC.iterdir() if p.name.startswith(ours)}
    if RUN_DIR.is_dir():
        names |= {f"state {p}" for p in RUN_DIR.iterdir() if p.name.startswith(TEST_LABS)}
    return names


def _root_namespace() -> dict[str, str]:
    """Links, routes and every iptables front end's rules of the root namespace (no counters)."""
    links = sorted((link["ifname"], link.get("operstate", "")) for link in
                   json.loads(_out(["ip", "-j", "link", "show"]) or "[]"))
    strip = re.compile(r"^#.*$|\[\d+:\d+\]", re.M)
    snapshot = {"links": json.dumps(links),
                "routes4": _out(["ip", "route", "show", "table", "all"]),
                "routes6": _out(["ip", "-6", "route", "show", "table", "all"])}
    for save in ("iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"):
        snapshot[save] = strip.sub("", _out([save]))
    return snapshot


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    if os.geteuid() != 0:
        yield
        return
    before_objects, before_root = _sgemu_objects(), _root_namespace()
    yield
    leaked = sorted(_sgemu_objects() - before_objects)
    assert not leaked, f"the integration tests left these behind: {leaked}"
    after_root = _root_namespace()
    changed = [key for key in before_root if before_root[key] != after_root[key]]
    assert not changed, f"the root namespace changed: {changed}"


@pytest.fixture
def topology_file(tmp_path: Path):
    """Write a topology YAML text to a file and return its path."""
    def write(text: str, name: str = "lab.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write
