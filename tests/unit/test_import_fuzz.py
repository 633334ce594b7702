"""Real files with a few values deleted, nulled, emptied or of the wrong type (a fixed seed, so every run
is the same): the importers import them or refuse them with an ImportSourceError naming the place,
in both modes; nothing else escapes."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from emulator.importers import ImportSourceError, import_aws, import_terraform

from .import_reading import load
from .test_import_corpus import AWS_FILES, TERRAFORM_FILES

REPLACEMENTS = (None, "", 7, -5, "x", [], {})
MUTANTS = 6


def places(value: object, path: tuple = ()) -> list[tuple]:
    out = [path] if path else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        out += places(child, (*path, key))
    return out


def mutant(doc: object, rng: random.Random) -> object:
    doc = json.loads(json.dumps(doc))
    for _ in range(rng.randint(1, 3)):
        spots = places(doc)
        if not spots:
            break
        *parents, last = rng.choice(spots)
        node = doc
        for step in parents:
            node = node[step]  # type: ignore[index]
        choice = rng.randrange(len(REPLACEMENTS) + 1)
        if choice == len(REPLACEMENTS):
            del node[last]  # type: ignore[union-attr]
        else:
            node[last] = REPLACEMENTS[choice]  # type: ignore[index]
    return doc


CASES = [pytest.param(p.values[0], terraform, id=p.id, marks=p.marks)
         for files, terraform in ((AWS_FILES, False), (TERRAFORM_FILES, True)) for p in files]


@pytest.mark.parametrize("path, terraform", CASES)
def test_damaged_files_are_imported_or_refused_with_the_place(path: Path, terraform: bool, tmp_path: Path) -> None:
    doc, _ = load(path)
    rng = random.Random(path.name)
    for n in range(MUTANTS):
        damaged = tmp_path / f"{n}-{path.name}"
        damaged.write_text(json.dumps(mutant(doc, rng)), encoding="utf-8")
        for strict in (False, True):
            try:
                import_terraform(damaged, strict=strict) if terraform else import_aws(files=[damaged], strict=strict)
            except ImportSourceError as exc:
                assert str(exc).startswith(damaged.name) or str(exc).startswith("--vpc"), str(exc)
