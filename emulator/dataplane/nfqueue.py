"""Feeds the fabric's NFQUEUE packets to the engine and applies its verdicts.

One netfilterqueue handle for every ENI (ENI_QUEUE), constructed INSIDE the fabric namespace
(the handle binds to the namespace it is created in; queue numbers are per namespace), served
from one selector loop with the control socket. The packet's interface tells the ENI (its
index, looked up once at start) and the hook the direction: PREROUTING -i eni-X (0) is X's
egress, POSTROUTING -o eni-X (4) is X's ingress. A packet of no known ENI is dropped. A NAT
gateway's ENI (ngw-X) is on the same queue: its subnet's NACL alone decides there (engine/gateway.py).

Lean path: each queue copies only the first COPY_RANGE bytes of a packet (headers are all
the engine reads) and takes GSO packets whole (NFQA_CFG_F_GSO), so a 64 KB TCP burst is one
decision instead of forty; reads drain each socket before the next select; nothing is logged
per packet. With offload, a verdict's packet mark hands an established flow to the kernel
(see emulator/engine/offload.py and the bypass rules in plan.py).
"""
from __future__ import annotations

import logging
import os
import select
import selectors
import socket
import struct
import time
import traceback
from collections.abc import Callable

from netfilterqueue import NetfilterQueue
from pyroute2 import netns as pyroute2_netns

from emulator.dataplane.netlink import HEADER, NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR, attr, error_code, nfnl_message
from emulator.engine.firewall import ACCEPT, EniFirewall
from emulator.engine.gateway import GatewayPort
from emulator.engine.nacl import OPEN_GATE, SubnetGate, enter, leave
from emulator.engine.naclstate import NaclState
from emulator.engine.offload import Offloads
from emulator.engine.packet import TCP_FIN, TCP_RST, TCP_SYN, Packet, parse
from emulator.engine.verdict import Verdict
from emulator.model import PROTO_TCP, Direction, Topology
from emulator.plan import DECIDED_MARK, ENI_QUEUE, HAIRPIN_MARK, OFFLOAD_MARK, PULLBACK_MARK, LabPlan

HOOK_PREROUTING = 0
QUEUE_MAX_LEN = 16384           # packets the kernel holds per queue before dropping
SOCKET_BUFFER = 16 << 20        # bytes; bursts must not overflow the netlink socket
COPY_RANGE = 512                # bytes copied per packet: IP + L4 headers, an ICMP error's inner header
MAX_LOGGED_ERRORS = 20          # engine bugs: log the first tracebacks, not one per packet
_SYN_FIN_RST = TCP_SYN | TCP_FIN | TCP_RST

# nfnetlink_queue config message (linux/netfilter/nfnetlink_queue.h) asking for GSO packets whole.
_NFNL_SUBSYS_QUEUE, _NFQNL_MSG_CONFIG = 3, 2
_NFQA_CFG_MASK, _NFQA_CFG_FLAGS, _NFQA_CFG_F_GSO = 4, 5, 1 << 2

log = logging.getLogger("sgemu.engine")

# (eni, packet, egress?, verdict, engine time): told about every decided packet (flow logs, watch).
Observe = Callable[[str, Packet, bool, Verdict, float], None]


def public_sources(topology: Topology) -> dict[int, int]:
    """Private IPv4 -> public IPv4 as ints: how a hairpinned source really looks (after SNAT): an
    instance's public IP, or a NAT gateway's Elastic IP."""
    return {**{int(i.private_ip): int(i.public_ip) for i in topology.instances if i.public_ip is not None},
            **{int(n.private_ip): int(n.public_ip) for n in topology.nat_gateways}}


def enable_gso(fd: int, queue_num: int) -> bool:
    """Ask the kernel to queue GSO packets unsegmented (never fail-open). Sent on the queue's
    own socket (the kernel accepts config only from the socket bound to the queue); True when
    the kernel acknowledged it. A packet message that arrives first is left for the binding."""
    gso = struct.pack("!I", _NFQA_CFG_F_GSO)
    request = nfnl_message(_NFNL_SUBSYS_QUEUE, _NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, socket.AF_UNSPEC,
                           attr(_NFQA_CFG_MASK, gso) + attr(_NFQA_CFG_FLAGS, gso), 0x5e6e, res_id=queue_num)
    with socket.socket(fileno=os.dup(fd)) as sock:
        sock.send(request)
        if not select.select([sock], [], [], 1.0)[0]:
            return False
        reply = sock.recv(64, socket.MSG_PEEK)
        if len(reply) < HEADER.size + 4 or HEADER.unpack_from(reply)[1] != NLMSG_ERROR:
            return True         # not our ack: a packet came first; the config was sent all the same
        sock.recv(64)
        return error_code(reply, HEADER.size) == 0


class QueueServer:
    def __init__(self, plan: LabPlan, firewalls: dict[str, EniFirewall], public: dict[int, int],
                 clock: Callable[[], float] = time.monotonic, observe: Observe | None = None,
                 offloads: Offloads | None = None, nacls: NaclState | None = None,
                 gateways: dict[str, GatewayPort] | None = None):
        self._clock = clock
        self._nacls = nacls
        self._observe = observe
        self._public = public
        self._offloads = offloads
        self.errors = 0
        self.gso = True             # every queue takes GSO packets whole
        self._queues: list[NetfilterQueue] = []
        self._selector = selectors.DefaultSelector()
        # Private address -> the ENI that receives it (what a packet between instances reaches)
        # and the NACL at its subnet's boundary.
        self._receivers: dict[tuple[int, int], tuple[str, EniFirewall, SubnetGate]] = {
            (a.version, int(a)): (name, fw, self._gate(fw)) for name, fw in firewalls.items()
                           for a in fw.instance.addresses}
        pyroute2_netns.pushns(plan.fabric.name)
        try:
            # ifindex -> that ENI's handler; the devices exist before the engine starts.
            handlers = {socket.if_nametoindex(eni.device):
                        self._handler(eni.instance, firewalls[eni.instance], self._gate(firewalls[eni.instance]))
                        for eni in plan.enis}
            ports = gateways or {}
            handlers.update({socket.if_nametoindex(g.device): self._gateway_handler(g.gateway, ports[g.gateway])
                             for g in plan.gateway_enis})
            if handlers:
                queue = NetfilterQueue()
                queue.bind(ENI_QUEUE, self._dispatch(handlers), max_len=QUEUE_MAX_LEN, range=COPY_RANGE,
                           sock_len=SOCKET_BUFFER)
                self._queues.append(queue)
                self.gso = enable_gso(queue.get_fd(), ENI_QUEUE)
        finally:
            pyroute2_netns.popns()
        for queue in self._queues:
            self._selector.register(queue.get_fd(), selectors.EVENT_READ, queue)

    def _gate(self, firewall: EniFirewall) -> SubnetGate:
        """The NACL gate of the instance's subnet (one allowing all when the lab has no NACL state)."""
        if self._nacls is None:
            return OPEN_GATE
        return self._nacls.gate(firewall.instance.subnet)

    def _dispatch(self, handlers: dict[int, Callable]) -> Callable:
        """The queue's callback: the ENI is the packet's input device on the egress hook and its
        output device on the ingress hook. An unknown device (none should reach the queue) is
        dropped and counted as an engine error: fail closed."""
        def on_packet(pkt) -> None:
            handler = handlers.get(pkt.indev if pkt.hook == HOOK_PREROUTING else pkt.outdev)
            if handler is None:
                self.errors += 1
                pkt.drop()
                return
            handler(pkt)

        return on_packet

    def _handler(self, eni: str, firewall: EniFirewall, gate: SubnetGate) -> Callable:
        clock, public, hairpin, admit = self._clock, self._public, HAIRPIN_MARK, self._admit
        offloads, receivers, egress, ingress = self._offloads, self._receivers, Direction.EGRESS, Direction.INGRESS

        def on_packet(pkt) -> None:
            packet = parse(pkt.get_payload(), True)
            if isinstance(packet, str):
                firewall.malformed()
                pkt.drop()
                return
            now = clock()
            if pkt.hook != HOOK_PREROUTING:
                if pkt.get_mark() & hairpin and packet.version == 4:
                    # Hairpin: the kernel SNATs the source to the sender's public IP only after
                    # this hook; the SG must see the public IP (references then do not match).
                    packet.src = public.get(packet.src, packet.src)
                # From outside the VPC (or hairpinned through the IGW): it enters the subnet.
                boundary = None if gate.open_in[packet.version] else gate
                if admit(eni, firewall, packet, ingress, now, boundary) is None:
                    pkt.drop()
                else:
                    pkt.accept()
                return
            version = packet.version
            receiver = receivers.get((version, packet.dst))
            # NACLs only where the packet leaves its subnet (never between two ENIs of one subnet).
            leaving = None if gate.open_out[version] or (receiver is not None and receiver[2] is gate) else gate
            verdict = admit(eni, firewall, packet, egress, now, leaving)
            if verdict is None:
                pkt.drop()
                return
            mark = 0
            if receiver is not None:
                # To another instance's private address: no NAT on the way, so its ingress
                # is decided now on the same packet, and POSTROUTING lets it pass unqueued.
                peer_eni, peer, peer_gate = receiver
                entering = None if peer_gate is gate or peer_gate.open_in[version] else peer_gate
                if admit(peer_eni, peer, packet, ingress, now, entering) is None:
                    pkt.drop()
                    return
                mark = DECIDED_MARK
            # Offload decisions ride on packets leaving an instance: the mark is copied to the
            # connection by mangle FORWARD, which only those packets cross next. A verdict
            # without `tracked` belongs to no flow (ICMP errors, fragments, infrastructure).
            if offloads is not None and verdict.tracked is not None:
                if packet.proto != PROTO_TCP or packet.tcp_flags & _SYN_FIN_RST == 0:
                    if offloads.offer(firewall, packet, now):
                        mark |= OFFLOAD_MARK
                elif offloads.pull_back(packet):
                    mark |= PULLBACK_MARK
            if mark:
                pkt.set_mark(pkt.get_mark() | mark)
            pkt.accept()

        return on_packet

    def _gateway_handler(self, eni: str, port: GatewayPort) -> Callable:
        """A NAT gateway's ENI: its subnet's NACL where the packet crosses the subnet's boundary, no
        SG, no connection table (the gateway's own conntrack, in its namespace, translates). Leaving
        the gateway is PREROUTING -i ngw-X, reaching it POSTROUTING -o ngw-X."""
        clock = self._clock

        def on_packet(pkt) -> None:
            packet = parse(pkt.get_payload(), True)
            if isinstance(packet, str):
                port.malformed()
                pkt.drop()
                return
            outbound = pkt.hook == HOOK_PREROUTING
            try:
                verdict = port.decide(packet, outbound)
            except Exception:   # an engine bug: fail closed for this packet, keep the lab alive
                self._engine_error(packet)
                pkt.drop()
                return
            if self._observe is not None:
                self._observe(eni, packet, outbound, verdict, clock())
            if verdict.action == ACCEPT:
                pkt.accept()
            else:
                pkt.drop()

        return on_packet

    def _engine_error(self, packet: Packet) -> None:
        self.errors += 1
        if self.errors <= MAX_LOGGED_ERRORS:
            log.error("engine error on %r:\n%s", packet, traceback.format_exc())

    def _admit(self, eni: str, firewall: EniFirewall, packet: Packet, direction: Direction,
               now: float, boundary: SubnetGate | None = None) -> Verdict | None:
        """ENI's verdict on the packet (with its subnet's NACL when `boundary` is crossed), told
        to the flow log; returned only when it accepts. None also on an engine bug: the caller
        drops (fail closed)."""
        try:
            if boundary is None:        # no NACL on the way (most packets): the SG alone
                verdict = firewall.decide(packet, direction, now)
            elif direction is Direction.EGRESS:
                verdict = leave(firewall, packet, now, boundary)
            else:
                verdict = enter(firewall, packet, now, boundary)
        except Exception:   # an engine bug: fail closed for this packet, keep the lab alive
            self._engine_error(packet)
            return None
        if self._observe is not None:
            self._observe(eni, packet, direction is Direction.EGRESS, verdict, now)
        return verdict if verdict.action == ACCEPT else None

    @property
    def offloaded(self) -> int | None:
        """Flows the kernel fast-paths now; None when offload is off."""
        return None if self._offloads is None else len(self._offloads)

    def serve(self, seconds: float) -> None:
        """Handle whatever arrives for up to `seconds`."""
        deadline = self._clock() + seconds
        while (left := deadline - self._clock()) > 0:
            for key, _ in self._selector.select(left):
                if isinstance(key.data, NetfilterQueue):
                    key.data.run(block=False)
                else:
                    key.data()

    def register(self, fileobj, callback: Callable[[], None]) -> None:
        """Serve another readable file (the control socket) from the same loop, between batches."""
        self._selector.register(fileobj, selectors.EVENT_READ, callback)

    def unregister(self, fileobj) -> None:
        self._selector.unregister(fileobj)

    def close(self) -> None:
        for queue in self._queues:
            self._selector.unregister(queue.get_fd())
            queue.unbind()
        self._queues.clear()
