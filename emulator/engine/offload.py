"""Kernel offload of established flows: which flows the kernel may fast-path, and how the
engine keeps knowing them (sans-IO: the lab feeds kernel conntrack counters in, and releases
what this returns).

Offloaded, once they have carried OFFER_AFTER packets and every ENI they cross (both ENIs
between two instances, the instance's one for the internet) holds their entry:
- TCP flows ESTABLISHED on every ENI; SYN/FIN/RST still come back to the engine (the bypass
  rule excludes them), so its state machine sees every open and close, and a FIN or RST pulls
  the flow back for good (its last counters are read, then it is released);
- UDP flows, and ICMP echo flows (echo request and reply only: ICMP errors never take the
  fast path, the kernel would see them as RELATED to the flow).
Tracked flows survive rule changes, so letting the kernel pass their packets is exact ("When you
change a security group rule, its tracked connections are not immediately interrupted":
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/security-group-connection-tracking.html).
Untracked flows are offloaded too: their packets are allowed by the rules as they are, and
every change that could cut them (an SG rule, a membership, a NACL) pulls them back before it
is acknowledged (`recall`), so the next packet after a revoke meets the engine again.
Idle timeouts stay the engine's: kernel counters refresh the entries, and a flow whose entry
would expire before the next sync is released first, so a packet after its timeout always
meets the engine (and is dropped when no rule allows it), to the second.

NACLs are stateless, so offload must never let a packet skip one: a flow is offered only when
the NACLs it crosses allow both of its directions now (a flow's NACL verdicts are fixed while the
NACLs are, since every packet of one direction has the same addresses, protocol and destination
port), and every NACL change recalls all offloaded flows before it is acknowledged (`recall`
with `every`), so the next packet of each meets the engine and the new rules.

The offer is made on a packet leaving an instance (PREROUTING, before any NAT): its tuple is
the kernel's original or reply tuple, which is how kernel flows are matched back. ICMP echo
tuples carry (identifier, type) where TCP/UDP carry ports, as ctnetlink does.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from emulator.model import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, Topology

from .conntrack import ESTABLISHED, flow_key
from .firewall import EniFirewall
from .nacl import OPEN_GATE, SubnetGate
from .packet import TCP_ACK, Packet

OFFER_AFTER = 10                               # packets a flow carries (both ways) before it is offered
Wire = tuple[int, int, int, int, int, int]     # version, proto, src, sport|echo id, dst, dport|echo type
# (ENI, flow as its packets crossed it, egress?, packets, bytes, now): traffic the kernel passed.
Traffic = Callable[[str, Wire, bool, int, int, float], None]
# Echo request <-> reply, per protocol: the only ICMP messages that are offloaded.
ECHO_PAIRS: dict[tuple[int, int], int] = {(PROTO_ICMP, 8): 0, (PROTO_ICMP, 0): 8,
                                          (PROTO_ICMPV6, 128): 129, (PROTO_ICMPV6, 129): 128}


@dataclass(frozen=True)
class KernelFlow:
    """One kernel conntrack entry carrying the offload mark, with its counters."""

    orig: Wire
    reply: Wire
    orig_packets: int = 0
    orig_bytes: int = 0
    reply_packets: int = 0
    reply_bytes: int = 0
    mark: int = 0               # the whole connmark (other bits must survive a release)


def wire(packet: Packet) -> Wire:
    proto = packet.proto
    if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
        return (packet.version, proto, packet.src, packet.icmp_id, packet.dst, packet.icmp_type)
    return (packet.version, proto, packet.src, packet.sport, packet.dst, packet.dport)


def reverse(flow: Wire) -> Wire:
    version, proto, src, sport, dst, dport = flow
    if proto == PROTO_ICMP or proto == PROTO_ICMPV6:
        return (version, proto, dst, sport, src, ECHO_PAIRS.get((proto, dport), dport))
    return (version, proto, dst, dport, src, sport)


def logged(flow: Wire) -> Wire:
    """The flow as the flow log keys it: ICMP has no ports there."""
    if flow[1] == PROTO_ICMP or flow[1] == PROTO_ICMPV6:
        return (flow[0], flow[1], flow[2], 0, flow[4], 0)
    return flow


def _answer(packet: Packet) -> Packet:
    """A packet the other way on the same flow (an echo reply answers an echo request)."""
    if (packet.proto, packet.icmp_type) in ECHO_PAIRS:
        return Packet(packet.version, packet.dst, packet.src, packet.proto, icmp_type=ECHO_PAIRS[
            (packet.proto, packet.icmp_type)], icmp_code=0, icmp_id=packet.icmp_id)
    return Packet(packet.version, packet.dst, packet.src, packet.proto, packet.dport, packet.sport, tcp_flags=TCP_ACK)


def offloadable(packet: Packet) -> bool:
    """The protocols (and ICMP messages) the kernel fast path may carry."""
    proto = packet.proto
    return proto == PROTO_TCP or proto == PROTO_UDP or (proto, packet.icmp_type) in ECHO_PAIRS


class OffloadedFlow:
    """The engine entries (one per ENI crossed) behind one kernel flow. `seen` is what the
    engine has counted so far along the offering packet's direction and back, as
    [packets, bytes, packets back, bytes back]; kernel counters beyond it are new traffic."""

    __slots__ = ("closing", "legs", "seen", "tracked", "wire")

    def __init__(self, flow: Wire, legs: list[tuple[EniFirewall, tuple]], seen: list[int], tracked: bool):
        self.wire = flow
        self.legs = legs
        self.seen = seen
        self.tracked = tracked      # False when any ENI re-checks it against the rules (untracked there)
        self.closing = False        # pulled back: released once its last counters are read


class Offloads:
    """The lab's offloaded flows, keyed by the tuple of the packet that offered them."""

    def __init__(self, topology: Topology, firewalls: dict[str, EniFirewall],
                 gates: dict[str, SubnetGate] | None = None):
        self._enis: dict[tuple[int, int], EniFirewall] = {
            (a.version, int(a)): firewalls[i.name] for i in topology.instances for a in i.addresses}
        self._gates = gates or {}
        # Hairpin (to another instance's public IP) crosses NAT between the two ENIs: not offloaded.
        self._public = frozenset(int(i.public_ip) for i in topology.instances if i.public_ip is not None)
        self.flows: dict[Wire, OffloadedFlow] = {}
        self.recalled = 0           # flows pulled back by changes so far
        self.gone: set[KernelFlow] = set()      # of the last sync's releases: engine entries gone

    def __len__(self) -> int:
        return len(self.flows)

    def offered(self) -> list[Wire]:
        """The offloaded flows, each by its offering packet's tuple (how the kernel is asked)."""
        return list(self.flows)

    def offer(self, firewall: EniFirewall, packet: Packet, now: float) -> bool:
        """For an accepted packet of a flow (no TCP SYN/FIN/RST) leaving `firewall`'s instance:
        True when its flow may take the kernel fast path (then it is recorded as offloaded)."""
        flow = wire(packet)
        known = self.flows.get(flow) or self.flows.get(reverse(flow))
        if known is not None:
            return not known.closing
        if not offloadable(packet):
            return False
        legs = [(firewall, flow_key(packet, True))]
        peer = self._enis.get((packet.version, packet.dst))
        if peer is not None:
            legs.append((peer, flow_key(packet, False)))
        elif packet.version == 4 and packet.dst in self._public:
            return False
        found = [fw.table.get(key, now) for fw, key in legs]
        entries = [entry for entry in found if entry is not None]
        tcp = packet.proto == PROTO_TCP
        if len(entries) != len(found) or (tcp and any(entry.state != ESTABLISHED for entry in entries)):
            return False
        first = entries[0]
        if first.packets_egress + first.packets_ingress < OFFER_AFTER:
            return False
        if not self._nacls_allow(firewall, peer, packet):
            return False
        seen = [first.packets_egress, first.bytes_egress, first.packets_ingress, first.bytes_ingress]
        self.flows[flow] = OffloadedFlow(flow, legs, seen, all(e.tracked for e in entries))
        return True

    def _nacls_allow(self, firewall: EniFirewall, peer: EniFirewall | None, packet: Packet) -> bool:
        """Both directions of the flow pass every NACL boundary they cross, now."""
        own = self._gates.get(firewall.instance.subnet, OPEN_GATE)
        other = None if peer is None else self._gates.get(peer.instance.subnet, OPEN_GATE)
        if other is own:
            return True                                # one subnet: no NACL on the way
        back = _answer(packet)
        checks = [(own, packet, True), (own, back, False)]
        if other is not None:
            checks += [(other, packet, False), (other, back, True)]
        return all(gate.check(p, outbound).accepted for gate, p, outbound in checks)

    def pull_back(self, packet: Packet) -> bool:
        """A SYN, FIN or RST: the flow comes back to the engine for good. True when it was
        offloaded and is not yet closing (the verdict then marks it closing)."""
        flow = wire(packet)
        known = self.flows.get(flow) or self.flows.get(reverse(flow))
        if known is None or known.closing:
            return False
        known.closing = True
        return True

    def recall(self, kernel: Iterable[KernelFlow], which: Callable[[OffloadedFlow], bool]) -> list[KernelFlow]:
        """Before a change that could alter the verdict on `which` flows is acknowledged: the
        kernel flows to release now (their counters were just synced), forgotten here. Their
        engine entries live on; their next packets meet the engine, which offers them again."""
        release: list[KernelFlow] = []
        for k in kernel:
            flow = self.flows.get(k.orig) or self.flows.get(k.reply)
            if flow is not None and which(flow):
                del self.flows[flow.wire]
                release.append(k)
        self.recalled += len(release)
        return release

    def sync(self, kernel: Iterable[KernelFlow], now: float, traffic: Traffic | None = None,
             ahead: float = 0.0) -> list[KernelFlow]:
        """Refresh the engine's entries from the kernel's counters (and tell `traffic`, e.g. the
        flow log, what passed); forget flows the kernel no longer marks. Returns the kernel flows
        to release (clear their mark at once): those whose engine entry is gone or idle past its
        timeout, any the engine never offered, and those that would expire within `ahead`
        seconds (the time to the next sync): their next packet meets the engine, which refreshes
        and offers them again, or drops it when they expired, exactly on time. `gone` lists those
        released whose engine entries are gone."""
        release: list[KernelFlow] = []
        alive: dict[Wire, OffloadedFlow] = {}
        self.gone = set()
        for k in kernel:
            flow = self.flows.get(k.orig)
            forward = True
            if flow is None:
                flow = self.flows.get(k.reply)
                forward = False
            if flow is None:
                release.append(k)
                self.gone.add(k)
                continue
            counts = (k.orig_packets, k.orig_bytes, k.reply_packets, k.reply_bytes) if forward else \
                (k.reply_packets, k.reply_bytes, k.orig_packets, k.orig_bytes)
            deadline = self._refresh(flow, counts, now, traffic)
            if deadline is None:
                release.append(k)
                self.gone.add(k)
            elif flow.closing or deadline <= now + ahead:
                release.append(k)
            else:
                alive[flow.wire] = flow
        self.flows = alive
        return release

    @staticmethod
    def _refresh(flow: OffloadedFlow, counts: tuple[int, int, int, int], now: float,
                 traffic: Traffic | None) -> float | None:
        """Add the new traffic to every leg; the earliest idle deadline of the legs' entries, or
        None when one is gone or expired."""
        delta = [max(0, c - s) for c, s in zip(counts, flow.seen)]
        flow.seen = [max(c, s) for c, s in zip(counts, flow.seen)]
        earliest: float | None = None
        for n, (firewall, key) in enumerate(flow.legs):
            # The first leg saw the offering packet as egress, the peer as ingress.
            out_p, out_b, in_p, in_b = delta if n == 0 else (delta[2], delta[3], delta[0], delta[1])
            deadline = firewall.account(key, out_p, out_b, in_p, in_b, now)
            if deadline is None:
                return None
            earliest = deadline if earliest is None else min(earliest, deadline)
            if traffic is not None:
                eni = firewall.instance.name
                if delta[0]:
                    traffic(eni, logged(flow.wire), n == 0, delta[0], delta[1], now)
                if delta[2]:
                    traffic(eni, logged(reverse(flow.wire)), n != 0, delta[2], delta[3], now)
        return earliest


def untracked(flow: OffloadedFlow) -> bool:
    """Recall scope of an SG change: only untracked flows are re-checked against the rules."""
    return not flow.tracked


def every(flow: OffloadedFlow) -> bool:
    """Recall scope of a stateless check (a NACL): every packet is evaluated again."""
    return True
