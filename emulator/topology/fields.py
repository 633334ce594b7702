"""Typed readers for YAML values: each returns the value or None after reporting why it is wrong."""
from __future__ import annotations

import difflib
import re

from .problems import Problems, key

_INT = re.compile(r"-?[0-9]+")


def describe(value: object) -> str:
    """A short, user-facing rendering of a YAML value for error messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int):
        return f"{value} (an integer)"
    if isinstance(value, float):
        return f"{value} (a number)"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "...'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def mapping(p: Problems, value: object, path: str, required: tuple[str, ...],
            optional: tuple[str, ...] = ()) -> dict[str, object] | None:
    """A mapping with only known keys (typos are errors) and every required key present."""
    allowed = (*required, *optional)
    listing = f"allowed keys: {', '.join(allowed)}"
    if not isinstance(value, dict):
        p.error(path, f"expected a mapping, got {describe(value)}", f"write a mapping with keys {', '.join(allowed)}")
        return None
    known: dict[str, object] = {}
    for name, child in value.items():
        if isinstance(name, str) and name in allowed:
            known[name] = child
            continue
        close = difflib.get_close_matches(str(name), allowed, n=1) if isinstance(name, str) else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        p.error(key(path, str(name)), f"unknown key{hint}", listing)
    for name in required:
        if name not in known:
            p.error(key(path, name), "is missing", f"it is required ({listing})")
    return known


def sequence(p: Problems, value: object, path: str, what: str) -> list[object] | None:
    if not isinstance(value, list):
        p.error(path, f"expected a list of {what}, got {describe(value)}", "write a YAML list ([] for none)")
        return None
    return value


def string(p: Problems, value: object, path: str, allowed: str) -> str | None:
    if not isinstance(value, str):
        p.error(path, f"expected a string, got {describe(value)}", allowed)
        return None
    return value


def integer(p: Problems, value: object, path: str, low: int, high: int, unit: str = "") -> int | None:
    """An int in [low, high]; YAML booleans are not integers here."""
    allowed = f"use an integer{unit} from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int):
        p.error(path, f"expected an integer, got {describe(value)}", allowed)
        return None
    if not low <= value <= high:
        p.error(path, f"{value} is out of range", allowed)
        return None
    return value


def boolean(p: Problems, value: object, path: str) -> bool | None:
    if not isinstance(value, bool):
        p.error(path, f"expected true or false, got {describe(value)}", "use true or false")
        return None
    return value


def parse_int(text: str) -> int | None:
    """ASCII decimal only: Python's int() would also accept other scripts' digits."""
    text = text.strip()
    return int(text) if _INT.fullmatch(text) else None


def declared_id(p: Problems, fields: dict[str, object], path: str, generated: str, pattern: re.Pattern[str],
                allowed: str, kind: str, ids: dict[str, str]) -> str:
    """An object's AWS id: the `id` it declares (checked against `pattern`) or `generated`; each id
    may be taken once in a file (`ids`: id -> the path that took it)."""
    where = key(path, "id")
    found = generated
    if "id" in fields:
        given = string(p, fields["id"], where, allowed)
        if given is not None and not pattern.fullmatch(given):
            p.error(where, f"'{given}' is not a {kind} id", allowed)
        elif given is not None:
            found = given
    if found in ids:
        p.error(where, f"'{found}' is already the id of {ids[found]}", f"{kind} ids must be unique")
    ids[found] = path
    return found
