"""Customer-managed prefix lists: one address family each, entries within max_entries.

AWS: a prefix list is IPv4 or IPv6, never both, holds at most MaxEntries entries (up to 1,000),
and an SG rule that references it costs MaxEntries rules of the SG's quota
(https://docs.aws.amazon.com/vpc/latest/userguide/managed-prefix-lists.html).
"""
from __future__ import annotations

import re

from emulator.ids import prefix_list_id_for

from ..model import IPNetwork, PrefixList, PrefixListEntry
from . import addresses
from .fields import declared_id, integer, mapping, sequence, string
from .problems import Problems, item, key
from .rules import aws_text

PL_ID = re.compile(r"pl-[0-9a-f]{8}(?:[0-9a-f]{9})?")
PL_ID_ALLOWED = "use pl- followed by 8 or 17 lowercase hex digits, or omit id to generate one"
PL_NAME = re.compile(r"[A-Za-z0-9._-]{1,255}")
PL_NAME_ALLOWED = "use 1-255 of A-Z a-z 0-9 . _ -, not starting with com.amazonaws"
MAX_ENTRIES_LIMIT = 1000


def parse_prefix_lists(p: Problems, value: object) -> tuple[PrefixList, ...]:
    items = sequence(p, value, "prefix_lists", "prefix lists") if value is not None else []
    lists: list[PrefixList] = []
    names: dict[str, str] = {}
    ids: dict[str, str] = {}
    for index, raw in enumerate(items or []):
        path = item("prefix_lists", index)
        fields = mapping(p, raw, path, ("name",), ("id", "max_entries", "entries"))
        if fields is None:
            continue
        name = _name(p, fields["name"], key(path, "name"), names) if "name" in fields else None
        pl_id = _id(p, fields, path, name, ids)
        entries = _entries(p, fields.get("entries", []), key(path, "entries"))
        max_entries = len(entries) or 1
        if "max_entries" in fields:
            given = integer(p, fields["max_entries"], key(path, "max_entries"), 1, MAX_ENTRIES_LIMIT)
            if given is not None:
                max_entries = given
                if len(entries) > given:
                    p.error(key(path, "entries"), f"{len(entries)} entries exceed max_entries {given}",
                            "remove entries or raise max_entries (AWS allows up to 1000)")
        family = entries[0].cidr.version if entries else 4
        if name is not None:    # even when broken, so that rules naming it are not reported too
            lists.append(PrefixList(name, pl_id, max_entries, tuple(entries), family))
    return tuple(lists)


def _entries(p: Problems, value: object, path: str) -> list[PrefixListEntry]:
    items = sequence(p, value, path, "entries (CIDRs)")
    entries: list[PrefixListEntry] = []
    where: dict[IPNetwork, str] = {}
    for index, raw in enumerate(items or []):
        entry_path = item(path, index)
        description = ""
        cidr_value: object = raw
        cidr_path = entry_path
        if isinstance(raw, dict):
            fields = mapping(p, raw, entry_path, ("cidr",), ("description",))
            if fields is None or "cidr" not in fields:
                continue
            cidr_value, cidr_path = fields["cidr"], key(entry_path, "cidr")
            if "description" in fields:
                description = aws_text(p, fields["description"], key(entry_path, "description")) or ""
        read = addresses.network(p, cidr_value, cidr_path, None)
        if read is None:
            continue
        net, canonical = read
        if not canonical:
            p.warn(cidr_path, f"'{str(cidr_value).strip()}' canonicalised to {net} (AWS stores the network address)")
        if entries and net.version != entries[0].cidr.version:
            p.error(cidr_path, f"{net} is IPv{net.version} but {where[entries[0].cidr]} is "
                               f"IPv{entries[0].cidr.version}",
                    "a prefix list holds one address family: make a second list for the other")
            continue
        if net in where:
            p.error(cidr_path, f"{net} is already {where[net]}", "each CIDR appears once in a prefix list")
            continue
        where[net] = cidr_path
        entries.append(PrefixListEntry(net, description))
    return entries


def _name(p: Problems, value: object, path: str, names: dict[str, str]) -> str | None:
    name = string(p, value, path, PL_NAME_ALLOWED)
    if name is None:
        return None
    if not PL_NAME.fullmatch(name) or name.startswith(("com.amazonaws", "pl-")):
        p.error(path, f"'{name}' is not a valid prefix list name", PL_NAME_ALLOWED)
        return None
    if name in names:
        p.error(path, f"'{name}' is already the name of {names[name]}", "prefix list names must be unique")
        return None
    names[name] = path.rsplit(".", 1)[0]
    return name


def _id(p: Problems, fields: dict[str, object], path: str, name: str | None, ids: dict[str, str]) -> str:
    generated = prefix_list_id_for(name if name is not None else path)
    return declared_id(p, fields, path, generated, PL_ID, PL_ID_ALLOWED, "prefix list", ids)
