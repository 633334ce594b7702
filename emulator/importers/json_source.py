"""Reading JSON inputs (AWS CLI output, `terraform show -json`) with the JSON path of every value,
so each message names the file and the exact place: `sgs.json: SecurityGroups[2].IpPermissions[0].FromPort`.

Files are taken as saved: UTF-8, UTF-8 with a byte-order mark, or UTF-16/32 with one (what PowerShell's
`>` writes). Recorded boto3 responses (`{"status_code": 200, "data": {...}}`, as placebo stores them) are
read as the response they wrap.
"""
from __future__ import annotations

import codecs
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from ..errors import ImportSourceError

# Longest first: the UTF-32-LE mark begins with the UTF-16-LE one.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"), (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))


def kind_of(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class JsonValue:
    """One value of an input file and where it sits in it.

    Reading conventions, the same for every attribute: a member that is absent or null is "not given"
    (get() -> None, text() -> default, items() -> []); an empty string is "given, empty" (text() returns
    it, callers decide); a value of the wrong JSON type is an error naming the place.
    """

    value: object
    path: str
    source: str

    @property
    def where(self) -> str:
        return f"{self.source}: {self.path}" if self.path else self.source

    def fail(self, what: str, expected: str) -> NoReturn:
        raise ImportSourceError(f"{self.where}: {what}; {expected}")

    def _child(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def _object(self) -> dict:
        if not isinstance(self.value, dict):
            self.fail(f"expected an object, got {kind_of(self.value)}", "the command prints an object here")
        return self.value

    def has(self, name: str) -> bool:
        return self._object().get(name) is not None

    def get(self, name: str) -> JsonValue | None:
        """The member `name`, or None when it is absent or null."""
        obj = self._object()
        return JsonValue(obj[name], self._child(name), self.source) if obj.get(name) is not None else None

    def need(self, name: str) -> JsonValue:
        found = self.get(name)
        if found is None:
            self.fail(f"has no {name}", f"the command prints {name} for every such object")
        return found

    def items(self, name: str | None = None) -> list[JsonValue]:
        """The elements of this list (or of member `name`; absent or null means empty)."""
        if name is not None:
            member = self.get(name)
            return [] if member is None else member.items()
        if not isinstance(self.value, list):
            self.fail(f"expected a list, got {kind_of(self.value)}", "the command prints a list here")
        return [JsonValue(v, f"{self.path}[{i}]", self.source) for i, v in enumerate(self.value)]

    def text(self, name: str, default: str | None = None) -> str | None:
        member = self.get(name)
        if member is None:
            return default
        if not isinstance(member.value, str):
            member.fail(f"expected a string, got {kind_of(member.value)}", "the command prints a string here")
        return member.value

    def need_text(self, name: str) -> str:
        text = self.text(name)
        if not text:
            self.fail(f"has no {name}" if text is None else f"{name} is empty",
                      f"the command prints {name} for every such object")
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
            member.fail(f"expected an integer, got {kind_of(value)} {value!r}", "the command prints a number here")
        return int(value)

    def tags(self, name: str = "Tags") -> dict[str, str]:
        """AWS's Tags list ([{Key, Value}]; TagSet for network interfaces) as a dict."""
        return {str(t.value.get("Key")): str(t.value.get("Value", ""))
                for t in self.items(name) if isinstance(t.value, dict)}


def decode(raw: bytes, name: str) -> str:
    """The text of a file as saved: a byte-order mark names its encoding, else UTF-8."""
    encoding, body = next(((enc, raw[len(bom):]) for bom, enc in BOMS if raw.startswith(bom)), ("utf-8", raw))
    if encoding == "utf-8" and len(raw) >= 2 and raw[0] != 0 and raw[1] == 0:
        encoding = "utf-16-le"                    # UTF-16 saved without a mark: '{' then a zero byte
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ImportSourceError(f"{name}: byte {exc.start} is not {encoding.upper()} text; save the command's "
                                "output as UTF-8 or UTF-16 (what the AWS CLI and PowerShell write)") from None


def read_json(path: str | os.PathLike) -> JsonValue:
    source = os.fsdecode(path)
    name = Path(source).name
    try:
        raw = Path(source).read_bytes()
    except OSError as exc:
        raise ImportSourceError(f"{name}: cannot read the file: {exc.strerror or exc}") from None
    text = decode(raw, name)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportSourceError(f"{name}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
                                "the AWS CLI needs --output json, Terraform `show -json`") from None
    if isinstance(value, dict) and set(value) == {"status_code", "data"} and isinstance(value["data"], dict):
        return JsonValue(value["data"], "data", name)         # a recorded boto3 response (placebo)
    return JsonValue(value, "", name)
