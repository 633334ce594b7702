"""Names AWS allows made safe for the topology schema, unique, with every change recorded."""
from __future__ import annotations

import re

from ..topology.nodes import NODE_NAME, RESERVED_NODE_NAMES
from ..topology.rules import AWS_TEXT

_NOT_NODE = re.compile(r"[^a-z0-9-]+")
_NOT_AWS_TEXT = re.compile(r"[^a-zA-Z0-9 ._\-:/()#,@\[\]+=;{}!$*]+")
NODE_NAME_MAX = 32
LAB_NAME_MAX = 16


def node_name(text: str, limit: int = NODE_NAME_MAX) -> str:
    """Lowercase a-z 0-9 -, starting with a letter or digit ('' if nothing is left)."""
    safe = _NOT_NODE.sub("-", text.lower()).strip("-")
    return re.sub("-{2,}", "-", safe)[:limit].rstrip("-")


def sg_text(text: str) -> str:
    """A name or description in the schema's (AWS's VPC) character set, at most 255 characters."""
    return text if AWS_TEXT.fullmatch(text) and len(text) <= 255 else _NOT_AWS_TEXT.sub("-", text)[:255]


class Names:
    """Hands out unique names of one kind; `taken` may be shared between kinds (nodes)."""

    def __init__(self, taken: set[str] | None = None, limit: int = NODE_NAME_MAX):
        self.taken = taken if taken is not None else set()
        self.limit = limit

    def claim(self, wanted: str, fallback: str) -> str:
        base = wanted or fallback
        name, n = base, 1
        while name in self.taken:
            n += 1
            suffix = f"-{n}"
            name = base[:self.limit - len(suffix)] + suffix
        self.taken.add(name)
        return name


def instance_name(names: Names, tag: str | None, instance_id: str) -> str:
    """The Name tag made safe, else the instance id (i-… is already a valid node name)."""
    wanted = node_name(tag) if tag else ""
    if wanted in RESERVED_NODE_NAMES or (wanted and not NODE_NAME.fullmatch(wanted)):
        wanted = ""
    return names.claim(wanted, node_name(instance_id) or "instance")


def sg_name(names: Names, group_name: str | None, key: str) -> str:
    """GroupName if the schema allows it, else made safe; an SG known only by id gets sg_<hex>."""
    wanted = sg_text(group_name.strip()) if group_name else ""
    if wanted.startswith("sg-"):
        wanted = "sg_" + wanted[3:]
    fallback = "sg_" + key[3:] if key.startswith("sg-") else sg_text(key.rsplit(".", 1)[-1]) or "group"
    return names.claim(wanted, fallback)
