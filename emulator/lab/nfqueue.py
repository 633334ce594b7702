"""Feeds the fabric's NFQUEUE packets to the engine and applies its verdicts.

One netfilterqueue handle per ENI, each constructed INSIDE the fabric namespace (the handle
binds to the namespace it is created in; queue numbers are per namespace), all served from
one selector loop. The hook tells the direction: PREROUTING -i eni-X (0) is X's egress,
POSTROUTING -o eni-X (4) is X's ingress.
"""
from __future__ import annotations

import logging
import selectors
import time
import traceback
from collections.abc import Callable

from netfilterqueue import NetfilterQueue
from pyroute2 import netns as pyroute2_netns

from emulator.engine.firewall import ACCEPT, EniFirewall
from emulator.engine.packet import Packet, parse
from emulator.engine.verdict import Verdict
from emulator.model import Direction, Topology
from emulator.plan import HAIRPIN_MARK, LabPlan

HOOK_PREROUTING = 0
QUEUE_MAX_LEN = 8192            # packets the kernel holds per queue before dropping
SOCKET_BUFFER = 8 << 20         # bytes; bursts must not overflow the netlink socket
MAX_LOGGED_ERRORS = 20          # engine bugs: log the first tracebacks, not one per packet

log = logging.getLogger("sgemu.engine")

# (eni, packet, egress?, verdict, engine time): told about every decided packet (flow logs, watch).
Observe = Callable[[str, Packet, bool, Verdict, float], None]


def public_sources(topology: Topology) -> dict[int, int]:
    """Private IPv4 -> public IPv4 as ints: how a hairpinned source really looks (after SNAT)."""
    return {int(i.private_ip): int(i.public_ip) for i in topology.instances if i.public_ip is not None}


class QueueServer:
    def __init__(self, plan: LabPlan, firewalls: dict[str, EniFirewall], public: dict[int, int],
                 clock: Callable[[], float] = time.monotonic, observe: Observe | None = None):
        self._clock = clock
        self._observe = observe
        self._public = public
        self.errors = 0
        self._queues: list[NetfilterQueue] = []
        self._selector = selectors.DefaultSelector()
        pyroute2_netns.pushns(plan.fabric.name)
        try:
            for eni in plan.enis:
                queue = NetfilterQueue()
                queue.bind(eni.queue, self._handler(eni.instance, firewalls[eni.instance]),
                           max_len=QUEUE_MAX_LEN, sock_len=SOCKET_BUFFER)
                self._queues.append(queue)
        finally:
            pyroute2_netns.popns()
        for queue in self._queues:
            self._selector.register(queue.get_fd(), selectors.EVENT_READ, queue)

    def _handler(self, eni: str, firewall: EniFirewall) -> Callable:
        clock, public, hairpin, observe = self._clock, self._public, HAIRPIN_MARK, self._observe

        def on_packet(pkt) -> None:
            packet = parse(pkt.get_payload())
            if isinstance(packet, str):
                firewall.malformed()
                pkt.drop()
                return
            if pkt.hook == HOOK_PREROUTING:
                direction = Direction.EGRESS
            else:
                direction = Direction.INGRESS
                # Hairpin: the kernel SNATs the source to the sender's public IP only after
                # this hook; the SG must see the public IP (references then do not match).
                if pkt.get_mark() & hairpin and packet.version == 4:
                    packet.src = public.get(packet.src, packet.src)
            now = clock()
            try:
                verdict = firewall.decide(packet, direction, now)
            except Exception:   # an engine bug: fail closed for this packet, keep the lab alive
                self.errors += 1
                if self.errors <= MAX_LOGGED_ERRORS:
                    log.error("engine error on %r:\n%s", packet, traceback.format_exc())
                pkt.drop()
                return
            if verdict.action == ACCEPT:
                pkt.accept()
            else:
                pkt.drop()
            if observe is not None:
                observe(eni, packet, direction is Direction.EGRESS, verdict, now)

        return on_packet

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
