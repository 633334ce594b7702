"""The imported topology as a YAML file whose header lists what was not carried over."""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from .build import ImportResult


def render(result: ImportResult, command: str) -> str:
    lines = [f"# Imported by: {command}", "# Check it with: sgemu validate FILE; explain it with: sgemu graph FILE"]
    if result.skipped:
        lines.append(f"# NOT carried over ({len(result.skipped)}):")
        lines += [f"#   - {s}" for s in result.skipped]
    else:
        lines.append("# Everything in the inputs was carried over.")
    if result.notes:
        lines.append("# Notes:")
        lines += [f"#   - {n}" for n in result.notes]
    body = yaml.safe_dump(result.data, sort_keys=False, default_flow_style=None, width=120, allow_unicode=True)
    return "\n".join(lines) + "\n\n" + body


def write(result: ImportResult, path: str | os.PathLike, command: str) -> None:
    Path(path).write_text(render(result, command), encoding="utf-8")
