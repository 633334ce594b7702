"""Network ACLs as text: one line per entry, in evaluation order, the `*` rules last."""
from __future__ import annotations

from collections.abc import Iterator


def _entry(e: dict) -> str:
    number = "*" if e["RuleNumber"] >= 32767 else str(e["RuleNumber"])
    proto = {"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6"}.get(e["Protocol"], e["Protocol"])
    what = proto
    if "PortRange" in e:
        low, high = e["PortRange"]["From"], e["PortRange"]["To"]
        what += f" {low}" if low == high else f" {low}-{high}"
    if "IcmpTypeCode" in e:
        what += f" {e['IcmpTypeCode']['Type']}/{e['IcmpTypeCode']['Code']}"
    peer = e.get("CidrBlock") or e.get("Ipv6CidrBlock")
    return f"    {number:>5} {e['RuleAction']:<5} {what:<20} {peer}"


def nacl_text(nacls: list[dict]) -> Iterator[str]:
    """describe-network-acls JSON (as the engine answers it) as readable lines."""
    for n in nacls:
        subnets = ", ".join(a["SubnetId"] for a in n["Associations"]) or "none"
        yield f"{n['NetworkAclId']} {n['Name']}{' (default)' if n['IsDefault'] else ''}: subnets {subnets}"
        for egress, title in ((False, "  inbound"), (True, "  outbound")):
            yield title
            for e in sorted((e for e in n["Entries"] if e["Egress"] is egress), key=lambda e: e["RuleNumber"]):
                yield _entry(e)
