"""Reading JSON inputs (AWS CLI output, `terraform show -json`) with the JSON path of every value,
so each error names the file and the exact place: `sgs.json: SecurityGroups[2].IpPermissions[0].FromPort`."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ..errors import EmulatorError


class ImportSourceError(EmulatorError):
    """An input file is unreadable or not in the documented shape."""


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class JsonValue:
    """One value of an input file and where it sits in it."""

    value: object
    path: str
    source: str

    @property
    def where(self) -> str:
        return f"{self.source}: {self.path}" if self.path else self.source

    def fail(self, what: str, allowed: str) -> NoReturn:
        raise ImportSourceError(f"{self.where}: {what}; {allowed}")

    def _child(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _object(self) -> dict:
        if not isinstance(self.value, dict):
            self.fail(f"expected an object, got {_kind(self.value)}", "give the command's unchanged JSON output")
        return self.value

    def has(self, name: str) -> bool:
        return name in self._object() and self._object()[name] is not None

    def get(self, name: str) -> JsonValue | None:
        """The member `name`, or None when it is missing or null."""
        obj = self._object()
        return JsonValue(obj[name], self._child(name), self.source) if obj.get(name) is not None else None

    def need(self, name: str) -> JsonValue:
        found = self.get(name)
        if found is None:
            self.fail(f"has no {name}", "give the command's unchanged JSON output")
        return found

    def items(self, name: str | None = None) -> list[JsonValue]:
        """The elements of this list (or of member `name`; missing means empty)."""
        if name is not None:
            member = self.get(name)
            return [] if member is None else member.items()
        if not isinstance(self.value, list):
            self.fail(f"expected a list, got {_kind(self.value)}", "give the command's unchanged JSON output")
        return [JsonValue(v, f"{self.path}[{i}]", self.source) for i, v in enumerate(self.value)]

    def text(self, name: str, default: str | None = None) -> str | None:
        member = self.get(name)
        if member is None:
            return default
        if not isinstance(member.value, str):
            member.fail(f"expected a string, got {_kind(member.value)}", "give the command's unchanged JSON output")
        return member.value

    def need_text(self, name: str) -> str:
        text = self.text(name)
        if not text:
            self.fail(f"has no {name}", "give the command's unchanged JSON output")
        return text

    def integer(self, name: str) -> int | None:
        """An integer member; AWS and Terraform sometimes write numbers as strings."""
        member = self.get(name)
        if member is None:
            return None
        value = member.value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            member.fail(f"expected an integer, got {_kind(value)} {value!r}", "give the command's unchanged output")
        return int(value)

    def tags(self) -> dict[str, str]:
        """AWS's Tags list ([{Key, Value}]) as a dict."""
        return {str(t.value.get("Key")): str(t.value.get("Value", ""))
                for t in self.items("Tags") if isinstance(t.value, dict)}


def read_json(path: str | os.PathLike) -> JsonValue:
    source = os.fsdecode(path)
    name = Path(source).name
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ImportSourceError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImportSourceError(f"{name}: is not UTF-8 text; give the JSON the command printed") from None
    try:
        return JsonValue(json.loads(text), "", name)
    except json.JSONDecodeError as exc:
        raise ImportSourceError(f"{name}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
                                "give the command's unchanged JSON output (--output json)") from None
