"""One imported permission (one peer) as a topology rule, or the reason it cannot be one."""
from __future__ import annotations

from ipaddress import ip_network

from ..model import Quotas
from .inventory import ImportedRule
from .json_source import ImportSourceError

PROTOCOL_ALIASES = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                    "icmpv6": "icmpv6", "58": "icmpv6", "-1": "all", "all": "all"}


def describe(r: ImportedRule) -> str:
    ports = "" if r.from_port is None else f" {r.from_port}" if r.from_port == r.to_port \
        else f" {r.from_port}-{r.to_port}"
    peer = r.cidr or r.group or r.prefix_list or "?"
    return f"{r.protocol}{ports} {'from' if r.direction == 'ingress' else 'to'} {peer}"


def convert(r: ImportedRule) -> dict[str, object]:
    """Protocol, ports/ICMP and CIDR in the schema; ImportSourceError naming the rule if AWS would refuse it."""
    protocol = PROTOCOL_ALIASES.get(r.protocol.strip().lower())
    out: dict[str, object] = {}
    if protocol is None:
        number = int(r.protocol) if r.protocol.strip().isdigit() else -2
        if not 0 <= number <= 255:
            raise ImportSourceError(f"{r.where}: '{r.protocol}' is not a protocol; "
                                    "AWS allows tcp, udp, icmp, icmpv6, -1 or a number 0-255")
        out["protocol"] = number
    else:
        out["protocol"] = protocol
    if protocol in ("tcp", "udp"):
        low, high = r.from_port, r.to_port
        if low is None or high is None or not 0 <= low <= high <= 65535:
            raise ImportSourceError(f"{r.where}: {protocol} ports {low}-{high} are not a port range; "
                                    "AWS needs 0 <= FromPort <= ToPort <= 65535")
        out["ports"] = low if low == high else f"{low}-{high}"
    elif protocol in ("icmp", "icmpv6"):
        kind = -1 if r.from_port is None else r.from_port
        code = -1 if r.to_port is None else r.to_port
        if not (-1 <= kind <= 255 and -1 <= code <= 255) or (kind == -1 and code != -1):
            raise ImportSourceError(f"{r.where}: ICMP type {kind} code {code} is not valid; "
                                    "FromPort is the type and ToPort the code, -1 = all (a code needs a type)")
        if kind != -1:
            out["icmp_type"] = kind
        if code != -1:
            out["icmp_code"] = code
    if r.cidr is not None:
        try:
            ip_network(r.cidr.strip(), strict=False)
        except ValueError:
            raise ImportSourceError(f"{r.where}: '{r.cidr}' is not a CIDR; AWS allows an IPv4 or IPv6 block") from None
        out["cidr"] = r.cidr.strip()
    return out


def permission(rule: dict) -> tuple:
    """What AWS compares for duplicates: everything but the description; CIDRs canonical."""
    cidr = rule.get("cidr")
    return (rule["protocol"], rule.get("ports"), rule.get("icmp_type"), rule.get("icmp_code"),
            str(ip_network(str(cidr), strict=False)) if cidr else None, rule.get("group"), rule.get("prefix_list"))


def quotas(data: dict) -> dict[str, int]:
    """Quotas the imported rules need beyond AWS's defaults (counted per direction and family; a
    prefix-list rule counts its list's max_entries)."""
    lists = {pl["name"]: pl for pl in data.get("prefix_lists", ())}

    def weight(rule: dict) -> tuple[int, int]:
        listed = lists.get(str(rule.get("prefix_list")))
        if listed is not None:
            first = str(listed["entries"][0]) if listed["entries"] else ""
            return (6 if ":" in first else 4), int(listed.get("max_entries") or len(listed["entries"]) or 1)
        return (6 if ":" in str(rule.get("cidr", "")) else 4), 1
    need_rules = max((sum(n for f, n in map(weight, g.get(d, ())) if f == fam) for g in data["security_groups"]
                      for d in ("ingress", "egress") for fam in (4, 6)), default=0)
    need_sgs = max((len(i.get("security_groups", ())) for i in data["instances"]), default=0)
    out = {}
    if need_rules > Quotas().rules_per_sg:
        out["rules_per_sg"] = min(need_rules, 1000)
    if need_sgs > Quotas().sgs_per_eni:
        out["sgs_per_eni"] = min(need_sgs, 16)
    return out
