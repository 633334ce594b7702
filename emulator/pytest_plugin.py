"""pytest plugin (entry point `pytest11`): the `sg_lab` fixture brings labs up for a test and
always tears them down, also when the test fails or the run is interrupted.

    def test_db_only_from_app(sg_lab):
        lab = sg_lab("topologies/three-tier.yaml")
        assert lab.probe("app", "db", 3306) == "open"
        assert lab.probe("alb", "db", 3306) == "timeout"

Scope: `--sgemu-scope=module` (or ini `sgemu_scope`) shares labs within a module; default function.

Under pytest-xdist (`pytest -n N`) every worker runs its own labs: a lab's name gets the
worker's id (`three-tier` -> `three-tier-gw0`, cut and tagged with a hash of the full name
to stay within 16 characters), so workers never share a lab or its namespaces. `lab.name` is
the name in use (for `sgemu ... --lab`).
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import pytest

if TYPE_CHECKING:
    from emulator.testing.sglab import SgLab

_SCOPES = ("function", "class", "module", "package", "session")
_live: dict[str, SgLab] = {}       # every lab the plugin started and has not yet torn down
LAB_NAME_MAX = 16
_WORKER_ID = re.compile(r"[a-z0-9]{1,6}")


def worker_lab_name(base: str, worker: str | None) -> str:
    """The lab name `base` gets on pytest-xdist worker `worker` (None: not under xdist).
    Distinct per worker, and distinct bases stay distinct when cut: the cut keeps a tag
    of the full base name."""
    if not worker:
        return base
    if not _WORKER_ID.fullmatch(worker):          # xdist ids are gw0, gw1...; anything else is hashed
        worker = hashlib.sha1(worker.encode()).hexdigest()[:6]
    suffix = f"-{worker}"
    if len(base) + len(suffix) <= LAB_NAME_MAX:
        return base + suffix
    tag = hashlib.sha1(base.encode()).hexdigest()[:3]
    head = base[:LAB_NAME_MAX - len(suffix) - len(tag) - 1].rstrip("-")
    return f"{head}-{tag}{suffix}"


def xdist_worker() -> str | None:
    """This process's pytest-xdist worker id (gw0, gw1...), or None outside xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER") or None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sgemu")
    group.addoption("--sgemu-scope", choices=_SCOPES, default=None,
                    help="scope of the sg_lab fixture (default: function)")
    group.addoption("--sgemu-timeout", type=float, default=None,
                    help="seconds each sg_lab probe waits (default 1.5)")
    parser.addini("sgemu_scope", "scope of the sg_lab fixture", default="function")


Scope = Literal["session", "package", "module", "class", "function"]


def _scope(fixture_name: str, config: pytest.Config) -> Scope:
    return cast(Scope, config.getoption("--sgemu-scope") or config.getini("sgemu_scope") or "function")


def _down(lab: SgLab) -> None:
    _live.pop(lab.name, None)
    lab.down()


@pytest.fixture(scope=_scope)
def sg_lab(request: pytest.FixtureRequest) -> Iterator[Callable[..., SgLab]]:
    """Factory: `sg_lab(path, name=None)` -> a running SgLab, torn down after the scope.
    Under pytest-xdist the name (given, or the file's) carries the worker's id."""
    from emulator.testing.sglab import SgLab
    started: list[SgLab] = []
    timeout = request.config.getoption("--sgemu-timeout") or 1.5
    worker = xdist_worker()

    def start(path: str | Path, name: str | None = None) -> SgLab:
        lab = SgLab.from_file(path, name, timeout, rename=lambda base: worker_lab_name(base, worker))
        _live[lab.name] = lab
        started.append(lab)
        return lab

    try:
        yield start
    finally:
        for lab in reversed(started):
            _down(lab)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Last resort after an interrupt: nothing the plugin started may outlive the run."""
    for lab in list(_live.values()):
        _down(lab)
