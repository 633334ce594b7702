"""Network ACLs on the packet path: one SubnetGate per subnet, stateless, first match wins.

AWS (https://docs.aws.amazon.com/vpc/latest/userguide/nacl-basics.html): rules are evaluated in
ascending rule-number order and the first match decides; a packet no rule matches meets the
final `*` deny. NACLs are stateless: a reply is judged by the other direction's rules like any
packet. Port ranges match the destination port in both directions. Protocol -1, and any protocol
but TCP, UDP and ICMP(v6), covers all of its traffic. Infrastructure traffic (DNS, metadata,
link-local, ND) is never filtered.

Hot path: a gate whose NACL allows a whole address family with its first rule (the default NACL)
is `open` for it, and the queue handler skips it with one tuple lookup. A gate is changed in
place (`load`), so handlers that hold it see a change at the very next packet.
"""
from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from emulator.model import (
    ICMP_PROTOCOLS,
    NACL_ALLOW,
    PORTED_PROTOCOLS,
    PROTO_ALL,
    PROTO_ICMPV6,
    Direction,
    NaclEntry,
    NetworkAcl,
)

from .firewall import EniFirewall
from .infrastructure import is_infrastructure
from .packet import Packet
from .verdict import ACCEPT, DROP, INFRASTRUCTURE, SUBNET_ACL_ALLOWED, SUBNET_ACL_RESTRICTION, Verdict

_FULL = (0, 0xFFFF)
ANY_RULE = "*"
# (network, mask, protocol or -1, a_lo, a_hi, b_lo, b_hi, verdict): (a, b) is (dport, 0) for tcp/udp,
# (type, code) for icmp/icmpv6, full ranges otherwise.
EntryTuple = tuple[int, int, int, int, int, int, int, "NaclVerdict"]


class NaclVerdict(Verdict):
    """A NACL's decision: the NACL, the direction seen from the subnet, and the deciding entry
    (None for the `*` rule)."""

    __slots__ = ("entry", "nacl_id", "nacl_name", "outbound")

    def __init__(self, action: str, nacl: NetworkAcl, outbound: bool, entry: NaclEntry | None):
        super().__init__(action, SUBNET_ACL_ALLOWED if action == ACCEPT else SUBNET_ACL_RESTRICTION)
        self.nacl_id = nacl.id
        self.nacl_name = nacl.name
        self.outbound = outbound
        self.entry = entry

    @property
    def rule_number(self) -> str:
        return ANY_RULE if self.entry is None else str(self.entry.rule_number)

    def describe(self) -> str:
        bound = "outbound" if self.outbound else "inbound"
        rule = f"rule * deny (no {bound} rule matches)" if self.entry is None else self.entry.describe()
        return f"{self.action} by network ACL {self.nacl_name} ({self.nacl_id}) {bound} {rule}"

    def __repr__(self) -> str:
        return f"<NaclVerdict {self.action} {self.nacl_name} {self.rule_number}>"


def _ranges(entry: NaclEntry) -> tuple[int, int, int, int]:
    if entry.protocol in PORTED_PROTOCOLS:
        ports = (entry.ports.low, entry.ports.high) if entry.ports is not None else _FULL
        return (*ports, *_FULL)
    if entry.protocol in ICMP_PROTOCOLS and not (entry.protocol == PROTO_ICMPV6 and entry.cidr.version == 4):
        kind = _FULL if entry.icmp_type == -1 else (entry.icmp_type, entry.icmp_type)
        code = _FULL if entry.icmp_code == -1 else (entry.icmp_code, entry.icmp_code)
        return (*kind, *code)
    return (*_FULL, *_FULL)      # -1, other protocols, icmpv6 with an IPv4 CIDR: all of it


class NaclTable:
    """One NACL direction and address family, in rule-number order, with its `*` verdict."""

    __slots__ = ("deny", "entries", "open")

    def __init__(self, nacl: NetworkAcl, direction: Direction, version: int):
        outbound = direction is Direction.EGRESS
        ordered = sorted((e for e in nacl.entries(direction) if e.cidr.version == version),
                         key=lambda e: e.rule_number)
        self.entries: list[EntryTuple] = [
            (int(e.cidr.network_address), int(e.cidr.netmask), e.protocol, *_ranges(e),
             NaclVerdict(ACCEPT if e.action == NACL_ALLOW else DROP, nacl, outbound, e)) for e in ordered]
        self.deny = NaclVerdict(DROP, nacl, outbound, None)
        first = ordered[0] if ordered else None
        # The first rule allows every packet of the family: nothing after it can ever decide.
        self.open = first is not None and first.action == NACL_ALLOW and first.protocol == PROTO_ALL \
            and first.cidr.prefixlen == 0

    def match(self, packet: Packet, remote: int) -> NaclVerdict:
        proto = packet.proto
        whole = packet.fragment_offset != 0     # a non-initial fragment has no ports or type
        if proto in PORTED_PROTOCOLS:
            a, b = packet.dport, 0
        elif proto in ICMP_PROTOCOLS:
            a, b = packet.icmp_type & 0xFFFF, packet.icmp_code & 0xFFFF
        else:
            a = b = 0
        for net, mask, entry_proto, a_lo, a_hi, b_lo, b_hi, verdict in self.entries:
            if entry_proto != PROTO_ALL and entry_proto != proto:
                continue
            if remote & mask != net:
                continue
            if whole:
                # [CHOICE] only a rule covering every port/type of the protocol decides a fragment.
                if (a_lo, a_hi, b_lo, b_hi) != (*_FULL, *_FULL):
                    continue
            elif not (a_lo <= a <= a_hi and b_lo <= b <= b_hi):
                continue
            return verdict
        return self.deny


class SubnetGate:
    """The NACL at one subnet's boundary. `open_in[v]` / `open_out[v]` (v = 4 or 6): the NACL lets
    every packet of that family through, so the hot path need not ask."""

    __slots__ = ("_dns", "_tables", "nacl", "open_in", "open_out", "subnet")

    def __init__(self, subnet: str, nacl: NetworkAcl, dns: int):
        self.subnet = subnet
        self._dns = dns
        self.nacl = nacl
        self._tables: dict[tuple[bool, int], NaclTable] = {}
        self.open_in: tuple[bool, ...] = ()
        self.open_out: tuple[bool, ...] = ()
        self.load(nacl)

    def load(self, nacl: NetworkAcl) -> None:
        """Take the NACL's current entries (a change, or a new association)."""
        self.nacl = nacl
        self._tables = {(outbound, version): NaclTable(nacl, direction, version)
                        for outbound, direction in ((False, Direction.INGRESS), (True, Direction.EGRESS))
                        for version in (4, 6)}
        self.open_in = tuple(v in (4, 6) and self._tables[False, v].open for v in range(7))
        self.open_out = tuple(v in (4, 6) and self._tables[True, v].open for v in range(7))

    def check(self, packet: Packet, outbound: bool) -> Verdict:
        """The NACL's verdict on a packet leaving (outbound) or entering the subnet."""
        version = packet.version
        if (self.open_out if outbound else self.open_in)[version]:
            return self._tables[outbound, version].entries[0][7]
        if is_infrastructure(packet, packet.proto, self._dns):
            return _INFRASTRUCTURE
        return self._tables[outbound, version].match(packet, packet.dst if outbound else packet.src)


_INFRASTRUCTURE = Verdict(ACCEPT, INFRASTRUCTURE)


def _allow_all() -> NetworkAcl:
    entries = {d: (NaclEntry(100, d, NACL_ALLOW, PROTO_ALL, IPv4Network("0.0.0.0/0")),
                   NaclEntry(101, d, NACL_ALLOW, PROTO_ALL, IPv6Network("::/0"))) for d in Direction}
    return NetworkAcl("allow-all", "acl-allow-all", (), entries[Direction.INGRESS], entries[Direction.EGRESS])


# The boundary of a path without NACL state (unit tests, tools): both families open both ways.
OPEN_GATE = SubnetGate("*", _allow_all(), 0)


def leave(firewall: EniFirewall, packet: Packet, now: float, gate: SubnetGate | None = None) -> Verdict:
    """A packet leaving an instance: its SG egress, then (when it leaves the subnet: `gate`) the
    subnet's NACL outbound. The SG's verdict stands unless the NACL denies."""
    verdict = firewall.decide(packet, Direction.EGRESS, now)
    if gate is not None and verdict.action == ACCEPT and verdict.reason != INFRASTRUCTURE:
        nacl = gate.check(packet, True)
        if nacl.action != ACCEPT:
            return nacl
    return verdict


def enter(firewall: EniFirewall, packet: Packet, now: float, gate: SubnetGate | None = None) -> Verdict:
    """A packet arriving at an instance: (when it enters the subnet from outside: `gate`) the
    subnet's NACL inbound first, then the SG ingress; a NACL drop never reaches the SG, so it
    opens no flow there."""
    if gate is not None:
        nacl = gate.check(packet, False)
        if nacl.action != ACCEPT:
            return nacl
    return firewall.decide(packet, Direction.INGRESS, now)
