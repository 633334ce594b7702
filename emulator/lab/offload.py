"""The kernel side of offload: the fabric's conntrack entries that carry the offload mark,
with their counters, over ctnetlink (pyroute2), and releasing one (clearing the mark so its
next packet meets the engine again). Counters need net.netfilter.nf_conntrack_acct=1 in the
fabric namespace, which the plan sets when offload is on."""
from __future__ import annotations

import socket
from ipaddress import ip_address

from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple, NFCTSocket

from emulator.engine.offload import KernelFlow, Wire
from emulator.plan import OFFLOAD_MARK, PULLBACK_MARK

FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


def _tuple(version: int, message) -> Wire | None:
    ip = message.get_attr("CTA_TUPLE_IP")
    proto = message.get_attr("CTA_TUPLE_PROTO")
    if ip is None or proto is None:
        return None
    name = "CTA_IP_V4" if version == 4 else "CTA_IP_V6"
    src, dst = ip.get_attr(f"{name}_SRC"), ip.get_attr(f"{name}_DST")
    return (version, proto.get_attr("CTA_PROTO_NUM"), int(ip_address(src)),
            proto.get_attr("CTA_PROTO_SRC_PORT") or 0, int(ip_address(dst)),
            proto.get_attr("CTA_PROTO_DST_PORT") or 0)


def _counters(message, name: str) -> tuple[int, int]:
    counters = message.get_attr(name)
    if counters is None:
        return 0, 0
    return counters.get_attr("CTA_COUNTERS_PACKETS") or 0, counters.get_attr("CTA_COUNTERS_BYTES") or 0


def kernel_flow(version: int, message) -> KernelFlow | None:
    orig = _tuple(version, message.get_attr("CTA_TUPLE_ORIG"))
    reply = _tuple(version, message.get_attr("CTA_TUPLE_REPLY"))
    if orig is None or reply is None:
        return None
    orig_packets, orig_bytes = _counters(message, "CTA_COUNTERS_ORIG")
    reply_packets, reply_bytes = _counters(message, "CTA_COUNTERS_REPLY")
    return KernelFlow(orig, reply, orig_packets, orig_bytes, reply_packets, reply_bytes,
                      message.get_attr("CTA_MARK") or 0)


class KernelConntrack:
    """ctnetlink sockets of the fabric namespace, one per address family."""

    def __init__(self, fabric: str):
        # pyroute2 opens the socket lazily: name the namespace rather than entering it.
        self._sockets = {v: NFCTSocket(nfgen_family=f, netns=fabric) for v, f in FAMILIES.items()}

    def offloaded(self) -> list[KernelFlow]:
        """Every connection whose mark carries the offload bit (filtered in the kernel)."""
        flows = []
        for version, sock in self._sockets.items():
            for message in sock.dump(mark=OFFLOAD_MARK, mark_mask=OFFLOAD_MARK):
                flow = kernel_flow(version, message)
                if flow is not None and flow.mark & OFFLOAD_MARK:
                    flows.append(flow)
        return flows

    def release(self, flow: KernelFlow) -> None:
        """Clear the offload (and closing) bits: the flow's next packet goes through the queues
        again. A connection that vanished meanwhile needs nothing."""
        version, proto, src, sport, dst, dport = flow.orig
        family = FAMILIES[version]
        orig = NFCTAttrTuple(family=family, saddr=str(ip_address(src)), daddr=str(ip_address(dst)),
                             proto=proto, sport=sport, dport=dport)
        try:
            self._sockets[version].entry("set", tuple_orig=orig, mark=flow.mark & ~(OFFLOAD_MARK | PULLBACK_MARK))
        except Exception as error:  # pyroute2 raises NetlinkError(ENOENT) for a vanished entry
            if getattr(error, "code", None) != 2:
                raise

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
