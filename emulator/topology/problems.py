"""Collects every problem and warning of one topology file, each tied to a dotted path."""
from __future__ import annotations

from dataclasses import dataclass, field


def key(path: str, name: str) -> str:
    """`security_groups[0]` + `ingress` -> `security_groups[0].ingress`."""
    return f"{path}.{name}" if path else name


def item(path: str, index: int) -> str:
    return f"{path}[{index}]"


@dataclass
class Problems:
    """Parsing never stops at the first problem: users fix a file in one pass."""

    source: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, path: str, what: str, allowed: str) -> None:
        self.errors.append(f"{self.source}: {path}: {what}; {allowed}")

    def warn(self, path: str, what: str) -> None:
        self.warnings.append(f"{self.source}: {path}: {what}")
