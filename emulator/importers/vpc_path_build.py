"""Inventory -> the `prefix_lists` and `network_acls` sections: names made safe, subnets mapped to the
lab's, every entry carried or named with the reason."""
from __future__ import annotations

import re
from collections.abc import Callable
from ipaddress import ip_network

from ..model import Quotas
from ..topology.nacls import NACL_ID
from ..topology.prefix_lists import PL_ID
from .inventory import ImportedNacl, ImportedNaclEntry, ImportedPrefixList, Inventory
from .json_source import ImportSourceError
from .names import Names, node_name
from .network import Blocks
from .not_carried import prefix_list_reason

PROTOCOLS = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "all": "all", "tcp": "tcp",
             "udp": "udp", "icmp": "icmp", "icmpv6": "icmpv6"}
MAX_NACL_RULES = 40                   # AWS's highest quota per NACL, direction and family


def entries_missing(key: str) -> str:
    return prefix_list_reason(key)


def prefix_list_name(names: Names, pl: ImportedPrefixList) -> str:
    """PrefixListName in the schema's characters; AWS-managed names (com.amazonaws.*) become aws-*."""
    wanted = pl.name or pl.key
    if wanted.startswith("com.amazonaws."):
        wanted = "aws-" + wanted.removeprefix("com.amazonaws.")
    wanted = re.sub(r"[^A-Za-z0-9._-]", "-", wanted).strip("-") or pl.key
    if wanted.startswith("pl-") and wanted != pl.key:
        wanted = "list-" + wanted
    return names.claim(wanted, "list-" + pl.key)


def prefix_lists(inv: Inventory, skip: Callable[[str], None]) -> tuple[list[dict], dict[str, str]]:
    """The lists whose entries are known (data, key -> lab name); the others are named."""
    out: list[dict] = []
    names: dict[str, str] = {}
    taken = Names(limit=255)
    for pl in inv.prefix_lists.values():
        if pl.entries is None:
            owner = " (AWS-managed)" if pl.owner == "AWS" else ""
            skip(f"{pl.where}: prefix list {pl.key}{owner} not carried over: {entries_missing(pl.key)}; "
                 "the rules that use it are listed separately")
            continue
        data: dict[str, object] = {"name": prefix_list_name(taken, pl)}
        if PL_ID.fullmatch(pl.key):
            data["id"] = pl.key
        if pl.max_entries is not None:
            data["max_entries"] = max(pl.max_entries, len(pl.entries), 1)
        data["entries"] = [{"cidr": c, "description": d} if d else c for c, d in pl.entries]
        names[pl.key] = str(data["name"])
        out.append(data)
    return out, names


def network_acls(inv: Inventory, nacls: list[ImportedNacl], blocks: Blocks,
                 skip: Callable[[str], None]) -> list[dict]:
    """The chosen VPC's NACLs; the default one is declared as `default` (CONTRACT)."""
    out: list[dict] = []
    taken = Names(limit=32)
    taken.claim("default", "default")
    associated: set[str] = set()
    for n in sorted(nacls, key=lambda n: not n.is_default):
        fallback = node_name(n.key.rsplit(".", 1)[-1].split("[")[0].replace("_", "-"), 32) or "nacl"
        name = "default" if n.is_default else taken.claim(node_name(n.name or "", 32), fallback)
        data: dict[str, object] = {"name": name}
        if NACL_ID.fullmatch(n.key):
            data["id"] = n.key
        subnets = []
        for key in n.subnets:
            if key in blocks and key not in associated:
                subnets.append(blocks[key][0])
                associated.add(key)
            elif key not in blocks:
                skip(f"{n.where}: network ACL {n.key}: its association with {key} is not carried over: that subnet "
                     "is not in the imported subnets (add its describe-subnets output)")
        if subnets and not n.is_default:
            data["subnets"] = subnets
        for direction, egress in (("ingress", False), ("egress", True)):
            data[direction] = _unique(inv, n, [x for x in n.entries if x.egress is egress], skip)
        out.append(data)
    return out


def _unique(inv: Inventory, n: ImportedNacl, entries: list[ImportedNaclEntry],
            skip: Callable[[str], None]) -> list[dict]:
    """One entry per rule number: an identical repeat (a rule declared inline and as a resource) merges;
    a conflicting one is refused naming both places (strict: the import is refused)."""
    kept: dict[int, tuple[dict, str]] = {}
    for x in entries:
        converted = _entry(n, x, skip)
        if converted is None:
            continue
        first = kept.get(x.rule_number)
        if first is None:
            kept[x.rule_number] = (converted, x.where)
        elif first[0] == converted:
            inv.notes.append(f"{x.where}: network ACL {n.key}: rule {x.rule_number} repeats {first[1]}; merged")
        else:
            message = (f"{x.where}: network ACL {n.key}: rule {x.rule_number} conflicts with {first[1]} (same number "
                       "and direction, different rule)")
            if inv.strict:
                raise ImportSourceError(message + "; keep one of them")
            skip(message + ": not carried over (the first one is kept)")
    return [entry for entry, _ in sorted(kept.values(), key=lambda e: int(str(e[0]["rule"])))]


def _entry(n: ImportedNacl, e: ImportedNaclEntry, skip: Callable[[str], None]) -> dict | None:
    what = f"network ACL {n.key}: {'egress' if e.egress else 'ingress'} rule {e.rule_number}"
    protocol: str | int | None = PROTOCOLS.get(e.protocol.strip().lower())
    if protocol is None:
        number = int(e.protocol) if e.protocol.strip().isdigit() else -2
        if not 0 <= number <= 255:
            skip(f"{e.where}: {what}: '{e.protocol}' is not a protocol: not carried over")
            return None
        protocol = number
    out: dict[str, object] = {"rule": e.rule_number, "action": e.action.lower(), "protocol": protocol}
    if protocol in ("tcp", "udp"):
        low, high = e.from_port, e.to_port
        if low is None or high is None or not 0 <= low <= high <= 65535:
            skip(f"{e.where}: {what}: {protocol} without a valid PortRange ({low}-{high}): not carried over")
            return None
        out["ports"] = low if low == high else f"{low}-{high}"
    elif protocol in ("icmp", "icmpv6") and e.icmp_type is not None and e.icmp_type != -1:
        out["icmp_type"] = e.icmp_type
        if e.icmp_code is not None and e.icmp_code != -1:
            out["icmp_code"] = e.icmp_code
    try:
        out["cidr"] = str(ip_network(e.cidr.strip(), strict=False))
    except ValueError:
        skip(f"{e.where}: {what}: '{e.cidr}' is not a CIDR: not carried over")
        return None
    return out


def nacl_quota(nacls: list[dict]) -> int | None:
    """options.quotas.rules_per_nacl the imported NACLs need beyond AWS's default (the `*` rule counts)."""
    need = max((sum(1 for e in n.get(d, ()) if (":" in str(e["cidr"])) == v6) + 1
                for n in nacls for d in ("ingress", "egress") for v6 in (False, True)), default=0)
    return min(need, MAX_NACL_RULES) if need > Quotas().rules_per_nacl else None
