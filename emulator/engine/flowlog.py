"""VPC Flow Logs: per ENI, per flow and action, aggregated over an interval (sans-IO).

`record` is on the packet path: one key tuple and a dict lookup per packet. Records are rendered
(addresses as text, unix seconds) only when an interval closes or a reader asks for the open one.
A record is a dict of every field we know, so any custom format is a selection of its keys.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from emulator.errors import FlowLogFormatError
from emulator.ids import eni_id_for, instance_id_for, subnet_id_for, vpc_id_for
from emulator.model import PROTO_TCP, PROTO_UDP, IPNetwork

from .packet import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, Packet
from .verdict import ACCEPT, INFRASTRUCTURE, Verdict

DEFAULT_FORMAT = ("version", "account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport",
                  "protocol", "packets", "bytes", "start", "end", "action", "log-status")
# The flow-log version that introduced each field; a record's `version` is the highest chosen.
FIELD_VERSIONS: dict[str, int] = {
    **dict.fromkeys(DEFAULT_FORMAT, 2),
    **dict.fromkeys(("vpc-id", "subnet-id", "instance-id", "tcp-flags", "type", "pkt-srcaddr",
                     "pkt-dstaddr"), 3),
    **dict.fromkeys(("region", "az-id", "sublocation-type", "sublocation-id"), 4),
    **dict.fromkeys(("pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path"), 5),
}
EMULATOR_FIELDS = ("reject-reason",)          # ours, outside the AWS format: why a REJECT happened
FIELDS = (*FIELD_VERSIONS, *EMULATOR_FIELDS)
REGION = "us-east-1"
AZ_ID = "use1-az1"
TRAFFIC_PATH_IN_VPC = "1"                     # egress through a resource in the same VPC
TRAFFIC_PATH_IGW = "8"                        # egress through the internet gateway
# AWS logs FIN 1, SYN 2, RST 4 and SYN-ACK as 18; other flags (ACK alone, PSH, URG) are not reported.
_AWS_TCP_FLAGS = tuple((f & (TCP_FIN | TCP_SYN | TCP_RST)) | (16 if f & TCP_SYN and f & TCP_ACK else 0)
                       for f in range(256))


@dataclass(frozen=True)
class EniIdentity:
    """The AWS ids a record names, stable per lab and instance."""

    interface_id: str
    instance_id: str
    subnet_id: str
    vpc_id: str
    account_id: str
    # Set for an ENI that forwards others' packets (a NAT gateway's): AWS shows its primary private
    # IPv4 as srcaddr/dstaddr where the packet's own address is not the ENI's, and the packet's in
    # pkt-srcaddr/pkt-dstaddr (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-limitations.html).
    primary_ipv4: int | None = None

    @classmethod
    def of(cls, lab: str, instance: str, subnet: str, account_id: str, vpc_id: str = "") -> EniIdentity:
        return cls(eni_id_for(lab, instance), instance_id_for(lab, instance), subnet_id_for(lab, subnet),
                   vpc_id or vpc_id_for(lab), account_id)

    @classmethod
    def of_gateway(cls, lab: str, gateway: str, subnet: str, account_id: str, vpc_id: str,
                   private_ip: int) -> EniIdentity:
        """A NAT gateway's ENI: no instance (`-`, as AWS logs a requester-managed ENI)."""
        return cls(eni_id_for(lab, gateway), "-", subnet_id_for(lab, subnet), vpc_id or vpc_id_for(lab),
                   account_id, private_ip)


def parse_format(text: str) -> tuple[str, ...]:
    """A custom format: field names separated by spaces or commas, `${field}` (AWS's syntax) or bare."""
    names = tuple(part.strip().removeprefix("${").removesuffix("}")
                  for part in text.replace(",", " ").split() if part.strip())
    unknown = [n for n in names if n not in FIELDS]
    if not names or unknown:
        raise FlowLogFormatError(f"unknown flow-log field(s) {', '.join(unknown) or '(none given)'}; "
                         f"use: {' '.join(FIELDS)}")
    return names


def render(record: dict[str, str], fields: tuple[str, ...] = DEFAULT_FORMAT) -> str:
    """One line: the chosen fields, space-separated, `version` the highest version chosen."""
    version = str(max((FIELD_VERSIONS.get(f, 2) for f in fields), default=2))
    return " ".join(version if f == "version" else record[f] for f in fields)


def _address(version: int, value: int) -> str:
    return str(IPv4Address(value) if version == 4 else IPv6Address(value))


class FlowLog:
    """Open-interval aggregation for every ENI of a lab. Times are the engine's clock;
    `wall_offset` turns them into unix seconds."""

    def __init__(self, enis: dict[str, EniIdentity], vpc: tuple[IPNetwork, ...], interval: float,
                 wall_offset: float, now: float):
        self._enis = enis
        self._vpc = vpc
        self.interval = interval
        self._wall_offset = wall_offset
        self._flows: dict[tuple, list] = {}
        self._closes = self._boundary(now)

    def _boundary(self, now: float) -> float:
        """The engine time at which the interval containing `now` ends (aligned on wall time)."""
        wall = now + self._wall_offset
        return (wall // self.interval + 1) * self.interval - self._wall_offset

    def record(self, eni: str, packet: Packet, egress: bool, verdict: Verdict, now: float) -> None:
        """Count one decided packet; infrastructure traffic is not logged (as in AWS)."""
        reason = verdict.reason
        if reason == INFRASTRUCTURE:
            return
        flags = _AWS_TCP_FLAGS[packet.tcp_flags & 0xFF]
        key = (eni, packet.version, packet.proto, packet.src, packet.dst, packet.sport, packet.dport,
               egress, verdict.action, reason if verdict.action != ACCEPT else "")
        flow = self._flows.get(key)
        if flow is None:
            self._flows[key] = [1, packet.length, now, now, flags]
        else:
            flow[0] += 1
            flow[1] += packet.length
            flow[3] = now
            flow[4] |= flags

    def record_bulk(self, eni: str, flow: tuple[int, int, int, int, int, int], egress: bool, packets: int,
                    size: int, now: float) -> None:
        """Accepted traffic the kernel passed for an offloaded flow; `flow` is (version, proto,
        src, sport, dst, dport) as its packets crossed `eni`. No TCP flags: the kernel fast
        path never carries SYN, FIN or RST."""
        version, proto, src, sport, dst, dport = flow
        key = (eni, version, proto, src, dst, sport, dport, egress, ACCEPT, "")
        entry = self._flows.get(key)
        if entry is None:
            self._flows[key] = [packets, size, now, now, 0]
        else:
            entry[0] += packets
            entry[1] += size
            entry[3] = now

    def due(self, now: float) -> bool:
        return now >= self._closes

    def close(self, now: float) -> list[dict[str, str]]:
        """End the open interval: its records, and a fresh interval from `now`."""
        records = self.current()
        self._flows = {}
        self._closes = self._boundary(now)
        return records

    def current(self, eni: str | None = None) -> list[dict[str, str]]:
        """The open interval's records so far (they keep growing until it closes), of one ENI if given."""
        return [self._render(key, flow) for key, flow in self._flows.items() if eni is None or key[0] == eni]

    def _render(self, key: tuple, flow: list) -> dict[str, str]:
        eni, version, proto, src, dst, sport, dport, egress, action, reason = key
        packets, size, first, last, flags = flow
        ids = self._enis[eni]
        pkt_src, pkt_dst = _address(version, src), _address(version, dst)
        srcaddr, dstaddr = pkt_src, pkt_dst
        if ids.primary_ipv4 is not None and version == 4:
            if egress and src != ids.primary_ipv4:
                srcaddr = _address(4, ids.primary_ipv4)
            elif not egress and dst != ids.primary_ipv4:
                dstaddr = _address(4, ids.primary_ipv4)
        ported = proto == PROTO_TCP or proto == PROTO_UDP
        if egress:
            inside = any(n.version == version and int(n.network_address) <= dst <= int(n.broadcast_address)
                         for n in self._vpc)
            path = TRAFFIC_PATH_IN_VPC if inside else TRAFFIC_PATH_IGW
        else:
            path = "-"
        return {
            "account-id": ids.account_id, "interface-id": ids.interface_id, "srcaddr": srcaddr,
            "dstaddr": dstaddr, "srcport": str(sport if ported else 0), "dstport": str(dport if ported else 0),
            "protocol": str(proto), "packets": str(packets), "bytes": str(size),
            "start": str(int(first + self._wall_offset)), "end": str(int(last + self._wall_offset)),
            "action": "ACCEPT" if action == ACCEPT else "REJECT", "log-status": "OK",
            "vpc-id": ids.vpc_id, "subnet-id": ids.subnet_id, "instance-id": ids.instance_id,
            "tcp-flags": str(flags if proto == PROTO_TCP else 0), "type": f"IPv{version}",
            "pkt-srcaddr": pkt_src, "pkt-dstaddr": pkt_dst, "region": REGION, "az-id": AZ_ID,
            "sublocation-type": "-", "sublocation-id": "-", "pkt-src-aws-service": "-",
            "pkt-dst-aws-service": "-", "flow-direction": "egress" if egress else "ingress",
            "traffic-path": path, "reject-reason": reason or "-", "eni": eni,
        }
