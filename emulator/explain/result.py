"""What `sgemu explain` answers: the hops a packet and its reply crossed, the outcome, the packets
shown as text, and the JSON the CLI and the browser view print."""
from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import ip_address

from ..engine.firewall import Verdict
from ..engine.nacl import NaclVerdict
from ..engine.packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet
from ..model import PROTO_ICMPV6, PROTO_TCP, PROTO_UDP
from ..routes import NatGateway


@dataclass(frozen=True)
class Hop:
    where: str                         # "web egress", "db ingress", "internet"
    packet: str                        # "10.0.1.10:40000 -> 10.0.2.10:3306 tcp SYN"
    verdict: Verdict | None            # None for hops no SG decides (routing, internet)
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict is None or self.verdict.accepted

    @property
    def why(self) -> str:
        """What decided this hop, in words."""
        return self.verdict.describe() if self.verdict is not None else self.note


@dataclass(frozen=True)
class Explanation:
    src: str
    dst: str
    proto: str
    port: int
    outcome: str                       # open | refused | timeout | reply
    why: str
    request: tuple[Hop, ...] = ()
    reply: tuple[Hop, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    groups: tuple[tuple[str, str], ...] = ()   # (sg id, sg name), to show names beside ids


_FLAGS = ((TCP_SYN, "SYN"), (TCP_ACK, "ACK"), (TCP_RST, "RST"), (TCP_FIN, "FIN"))


def show(p: Packet) -> str:
    src, dst = ip_address(p.src), ip_address(p.dst)
    if p.proto in (PROTO_TCP, PROTO_UDP):
        a = f"[{src}]:{p.sport}" if p.version == 6 else f"{src}:{p.sport}"
        b = f"[{dst}]:{p.dport}" if p.version == 6 else f"{dst}:{p.dport}"
        name = "tcp" if p.proto == PROTO_TCP else "udp"
        flags = " " + "+".join(n for bit, n in _FLAGS if p.tcp_flags & bit) if p.proto == PROTO_TCP else ""
        return f"{a} -> {b} {name}{flags}"
    name = "icmpv6" if p.proto == PROTO_ICMPV6 else "icmp"
    return f"{src} -> {dst} {name} type {p.icmp_type} code {p.icmp_code}"


def wanted(shown: str, nat: NatGateway | None) -> str:
    """"10.0.1.10:80 -> 203.0.113.10:40000 tcp SYN+ACK" -> "tcp port 40000 to/from ..."."""
    parts = shown.split()
    if len(parts) >= 4 and parts[3] in ("tcp", "udp"):
        address, port = parts[2].rsplit(":", 1)
        to_gateway = nat is not None and address == str(nat.private_ip)
        whose = ("the NAT gateway's source port; it uses 1024-65535" if to_gateway
                 else "the client's ephemeral port; AWS suggests 1024-65535")
        return f"{parts[3]} destination port {port} ({whose})"
    return " ".join(parts[3:])


def verdict_json(verdict: Verdict | None) -> dict | None:
    if verdict is None:
        return None
    if isinstance(verdict, NaclVerdict):
        return {"action": verdict.action, "reason": verdict.reason, "nacl_id": verdict.nacl_id,
                "nacl": verdict.nacl_name, "rule_number": verdict.rule_number,
                "direction": "outbound" if verdict.outbound else "inbound",
                "rule": verdict.entry.describe() if verdict.entry is not None else "rule * deny"}
    rule = verdict.rule
    return {"action": verdict.action, "reason": verdict.reason, "sg_id": verdict.sg_id,
            "rule_id": rule.rule_id if rule is not None else None,
            "rule": rule.describe() if rule is not None else None, "tracked": verdict.tracked}


def explanation_json(e: Explanation) -> dict:
    """The explanation as plain JSON types (verdicts as their fields)."""
    def hops(items: tuple[Hop, ...]) -> list[dict]:
        return [{"where": h.where, "packet": h.packet, "verdict": verdict_json(h.verdict), "note": h.note}
                for h in items]
    return {"src": e.src, "dst": e.dst, "proto": e.proto, "port": e.port, "outcome": e.outcome, "why": e.why,
            "request": hops(e.request), "reply": hops(e.reply), "notes": list(e.notes),
            "groups": dict(e.groups)}
