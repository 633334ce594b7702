"""The dependency direction is the architecture: check it on the source."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "emulator"
ROOT_ONLY = {"pyroute2", "netfilterqueue", "subprocess", "socket"}
ENGINE_ALLOWED_LOCAL = {"emulator.model", "emulator.errors", "emulator.engine"}


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
    return found


def _sources(under: Path) -> list[Path]:
    return sorted(under.rglob("*.py"))


@pytest.mark.parametrize("path", [p for p in _sources(PACKAGE) if "lab" not in p.relative_to(PACKAGE).parts],
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_root_only_modules_stay_in_lab(path: Path) -> None:
    bad = {m for m in _imports(path) if m.split(".")[0] in ROOT_ONLY}
    assert not bad, f"{path} imports {bad}; only emulator/lab/ may"


@pytest.mark.parametrize("path", _sources(PACKAGE / "engine"), ids=lambda p: p.name)
def test_engine_is_pure(path: Path) -> None:
    for module in _imports(path):
        top = module.split(".")[0]
        if top == "emulator":
            assert any(module == a or module.startswith(a + ".") for a in ENGINE_ALLOWED_LOCAL), \
                f"{path.name} imports {module}; the engine may import only model and errors"
        else:
            assert top in sys.stdlib_module_names, f"{path.name} imports non-stdlib {module}"
