"""pytest plugin (entry point `pytest11`): the `sg_lab` fixture brings labs up for a test and
always tears them down, also when the test fails or the run is interrupted.

    def test_db_only_from_app(sg_lab):
        lab = sg_lab("topologies/three-tier.yaml")
        assert lab.probe("app", "db", 3306) == "open"
        assert lab.probe("alb", "db", 3306) == "timeout"

Scope: `--sgemu-scope=module` (or ini `sgemu_scope`) shares labs within a module; default function.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

import pytest

if TYPE_CHECKING:
    from emulator.testing.sglab import SgLab

_SCOPES = ("function", "class", "module", "package", "session")
_live: dict[str, SgLab] = {}       # every lab the plugin started and has not yet torn down


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
    """Factory: `sg_lab(path, name=None)` -> a running SgLab, torn down after the scope."""
    from emulator.testing.sglab import SgLab
    started: list[SgLab] = []
    timeout = request.config.getoption("--sgemu-timeout") or 1.5

    def start(path: str | Path, name: str | None = None) -> SgLab:
        lab = SgLab.from_file(path, name, timeout)
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
