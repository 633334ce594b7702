"""Reading a topology file: YAML syntax errors become problems with file:line:column."""
from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from ..errors import TopologyError
from .parser import Loaded, parse

YAML_ALLOWED = "fix the YAML (indentation, a missing colon or quote)"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: YAML would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"duplicate key '{key_node.value}'", key_node.start_mark)
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


def default_name(path: str | os.PathLike) -> str:
    """The file stem lowercased, anything outside [a-z0-9-] as '-', at most 16 characters."""
    return re.sub(r"[^a-z0-9-]", "-", Path(path).stem.lower())[:16]


def load(path: str | os.PathLike) -> Loaded:
    """Read, parse and validate a topology file; raises TopologyError listing every problem."""
    source = os.fsdecode(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError([f"{source}: cannot read the file: {exc.strerror or exc}; "
                             "give the path of a readable topology YAML file"]) from None
    except UnicodeDecodeError:
        raise TopologyError([f"{source}: is not UTF-8 text; save the topology as UTF-8 YAML"]) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise TopologyError([f"{where}: {exc.problem or exc.context}; {YAML_ALLOWED}"]) from None
    except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError) as exc:
        # PyYAML lets a bad typed scalar escape as ValueError (`2001-13-45`, `!!int x`).
        raise TopologyError([f"{source}: not valid YAML ({exc}); {YAML_ALLOWED}"]) from None
    return parse(data, source, default_name(source))
