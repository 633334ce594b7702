"""The layer contract (ARCHITECTURE.md), checked on the source: a module imports only from lower
ranks (or its own package at its rank or below), I/O only from the lab rank up, guests only the
standard library and the model, the engine only the standard library and the foundation."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "emulator"

# module prefix -> rank; the longest matching prefix wins
RANKS = {
    "emulator": 0, "emulator.errors": 0, "emulator.ids": 0, "emulator.paths": 0, "emulator.model": 0, "emulator.routes": 0,
    "emulator.topology": 1, "emulator.plan": 1, "emulator.engine": 1,
    "emulator.explain": 2, "emulator.importers": 2,
    "emulator.matrix": 3, "emulator.graph": 3, "emulator.reach": 2, "emulator.portranges": 1,
    "emulator.control": 4, "emulator.control.protocol": 4, "emulator.control.api": 4,
    "emulator.render": 4, "emulator.render.text": 4, "emulator.render.live": 4,
    "emulator.lab": 5, "emulator.guest": 5, "emulator.control.server": 5, "emulator.control.client": 5,
    "emulator.render.graphviz": 5,
    "emulator.dataplane": 6, "emulator.testing": 6, "emulator.web": 6,
    "emulator.cli": 7, "emulator.pytest_plugin": 7, "emulator.bench": 7,
}
IO_RANK = 5
IO_MODULES = {"subprocess", "socket", "select", "selectors", "signal", "threading", "concurrent", "multiprocessing",
              "asyncio", "pyroute2", "netfilterqueue"}
GUEST_ALLOWED = {"emulator.model", "emulator.guest"}
ENGINE_ALLOWED = {"emulator.model", "emulator.errors", "emulator.ids", "emulator.engine"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # resolve relative imports against the file's package
                parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-node.level]
                module = ".".join((*parts, module)) if module else ".".join(parts)
            found.add(module)
            # `from emulator import x` imports the module emulator.x
            found.update(f"{module}.{alias.name}" for alias in node.names
                         if module.startswith("emulator") and f"{module}.{alias.name}" in _ALL_MODULES)
    return found


def rank(module: str) -> int:
    best = max((p for p in RANKS if module == p or module.startswith(p + ".")), key=len)
    return RANKS[best]


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


SOURCES = sorted(PACKAGE.rglob("*.py"))
_ALL_MODULES = {_module_name(p) for p in SOURCES}
IDS = [str(p.relative_to(PACKAGE)) for p in SOURCES]


def test_every_module_has_a_rank() -> None:
    for module in _ALL_MODULES:
        assert any(module == p or module.startswith(p + ".") for p in RANKS if p != "emulator") \
            or module == "emulator", f"{module} has no rank: add it to RANKS (and ARCHITECTURE.md)"


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_imports_point_down(path: Path) -> None:
    me = _module_name(path)
    for target in _imports(path):
        if not target.startswith("emulator") or target == "emulator":
            continue
        if _package(target) == _package(me) or rank(me) == 0:   # the foundation may use itself
            assert rank(target) <= rank(me), f"{me} (rank {rank(me)}) imports {target} (rank {rank(target)})"
        else:
            assert rank(target) < rank(me), f"{me} (rank {rank(me)}) imports {target} (rank {rank(target)}); " \
                                             "a module imports only from lower ranks"


@pytest.mark.parametrize("path", SOURCES, ids=IDS)
def test_io_only_from_the_lab_rank_up(path: Path) -> None:
    me = _module_name(path)
    if rank(me) >= IO_RANK:
        return
    bad = {m for m in _imports(path) if m.split(".")[0] in IO_MODULES}
    assert not bad, f"{me} (rank {rank(me)}) imports {bad}; I/O belongs at rank {IO_RANK} and up"


@pytest.mark.parametrize("path", sorted((PACKAGE / "guest").rglob("*.py")), ids=lambda p: p.name)
def test_guests_use_only_the_standard_library_and_the_model(path: Path) -> None:
    for module in _imports(path):
        top = module.split(".")[0]
        if top == "emulator":
            assert any(module == a or module.startswith(a + ".") for a in GUEST_ALLOWED), \
                f"{path.name} imports {module}; programs run inside instances import only the model"
        else:
            assert top in sys.stdlib_module_names, f"{path.name} imports non-stdlib {module}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "engine").rglob("*.py")), ids=lambda p: p.name)
def test_engine_is_pure(path: Path) -> None:
    for module in _imports(path):
        top = module.split(".")[0]
        if top == "emulator":
            assert any(module == a or module.startswith(a + ".") for a in ENGINE_ALLOWED), \
                f"{path.name} imports {module}; the engine may import only model, errors and ids"
        else:
            assert top in sys.stdlib_module_names and top not in IO_MODULES, \
                f"{path.name} imports {module}; the engine is pure (standard library, no I/O)"


def test_the_contract_catches_an_upward_import() -> None:
    """The check itself can fail: the engine importing the lab is out of order."""
    assert rank("emulator.lab.lifecycle") > rank("emulator.engine.firewall")
    assert rank("emulator.control.server") == IO_RANK and rank("emulator.control.protocol") < IO_RANK
