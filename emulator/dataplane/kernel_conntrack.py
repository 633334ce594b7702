"""The kernel side of offload: the fabric's conntrack entries that carry the offload mark,
with their counters, and releasing one (clearing the mark so its next packet meets the engine
again). Plain ctnetlink over one netlink socket opened inside the fabric namespace, parsed with
`struct`: the daemon asks once a second and must not stall its packet loop for it. A dump walks
the kernel's whole conntrack hash (every namespace's, ~10 ms here), so a few offloaded flows are
looked up one by one instead. Counters need net.netfilter.nf_conntrack_acct=1 in the fabric,
which the plan sets when offload is on.
"""
from __future__ import annotations

import errno
import socket
import struct

from pyroute2 import netns as pyroute2_netns

from emulator.dataplane.netlink import (
    NFGEN,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    attr,
    attrs,
    error_code,
    messages,
    nfnl_message,
)
from emulator.engine.offload import KernelFlow, Wire
from emulator.model import PROTO_ICMP, PROTO_ICMPV6
from emulator.plan import OFFLOAD_MARK, PULLBACK_MARK

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_NEW, IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_GET_CTRZERO = 0, 1, 3
CTA_TUPLE_ORIG, CTA_TUPLE_REPLY, CTA_TIMEOUT, CTA_MARK = 1, 2, 7, 8
CTA_COUNTERS_ORIG, CTA_COUNTERS_REPLY, CTA_MARK_MASK = 9, 10, 21
CTA_TUPLE_IP, CTA_TUPLE_PROTO = 1, 2
CTA_IP_V4_SRC, CTA_IP_V4_DST, CTA_IP_V6_SRC, CTA_IP_V6_DST = 1, 2, 3, 4
CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTO_DST_PORT = 1, 2, 3
# ICMP echo tuples: identifier, type, code (linux/netfilter/nfnetlink_conntrack.h), per family.
CTA_PROTO_ICMP = {PROTO_ICMP: (4, 5, 6), PROTO_ICMPV6: (7, 8, 9)}
CTA_COUNTERS_PACKETS, CTA_COUNTERS_BYTES = 1, 2
FAMILY_VERSION: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 6}
VERSION_FAMILY = {4: socket.AF_INET, 6: socket.AF_INET6}
RECV_BUFFER = 1 << 16
DUMP_ABOVE = 256                           # offloaded flows beyond which one dump beats lookups
SOCKET_BUFFER = 4 << 20                    # bytes; the answers to a batch of requests must fit
BATCH_BYTES = 16 << 10                     # requests sent in one datagram when releasing many flows

_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")


# --- encoding -----------------------------------------------------------------------------------

def tuple_attr(kind: int, flow: Wire) -> bytes:
    version, proto, src, sport, dst, dport = flow
    size, src_kind, dst_kind = (4, CTA_IP_V4_SRC, CTA_IP_V4_DST) if version == 4 else \
        (16, CTA_IP_V6_SRC, CTA_IP_V6_DST)
    ip = attr(src_kind, src.to_bytes(size, "big")) + attr(dst_kind, dst.to_bytes(size, "big"))
    icmp = CTA_PROTO_ICMP.get(proto)
    if icmp is not None:            # an echo flow: (identifier, type) where others carry ports
        ident, icmp_type, icmp_code = icmp
        ports = attr(CTA_PROTO_NUM, bytes([proto])) + attr(ident, _U16.pack(sport)) + \
            attr(icmp_type, bytes([dport])) + attr(icmp_code, b"\0")
    else:
        ports = attr(CTA_PROTO_NUM, bytes([proto])) + attr(CTA_PROTO_SRC_PORT, _U16.pack(sport)) + \
            attr(CTA_PROTO_DST_PORT, _U16.pack(dport))
    return attr(kind, attr(CTA_TUPLE_IP, ip, True) + attr(CTA_TUPLE_PROTO, ports, True), True)


def message(kind: int, flags: int, family: int, attrs: bytes, seq: int) -> bytes:
    return nfnl_message(NFNL_SUBSYS_CTNETLINK, kind, flags, family, attrs, seq)


# --- decoding -----------------------------------------------------------------------------------

def _tuple(version: int, data: bytes | None) -> Wire | None:
    if data is None:
        return None
    level = attrs(data)
    ip, proto = attrs(level.get(CTA_TUPLE_IP, b"")), attrs(level.get(CTA_TUPLE_PROTO, b""))
    src_kind, dst_kind = (CTA_IP_V4_SRC, CTA_IP_V4_DST) if version == 4 else (CTA_IP_V6_SRC, CTA_IP_V6_DST)
    if src_kind not in ip or dst_kind not in ip or CTA_PROTO_NUM not in proto:
        return None

    def port(kind: int) -> int:
        return int(_U16.unpack(proto[kind][:2])[0]) if kind in proto else 0

    number = proto[CTA_PROTO_NUM][0]
    icmp = CTA_PROTO_ICMP.get(number)
    if icmp is not None:
        sport, dport = port(icmp[0]), proto[icmp[1]][0] if icmp[1] in proto else 0
    else:
        sport, dport = port(CTA_PROTO_SRC_PORT), port(CTA_PROTO_DST_PORT)
    return (version, number, int.from_bytes(ip[src_kind], "big"), sport, int.from_bytes(ip[dst_kind], "big"), dport)


def _counters(data: bytes | None) -> tuple[int, int]:
    level = attrs(data or b"")
    if CTA_COUNTERS_PACKETS not in level or CTA_COUNTERS_BYTES not in level:
        return 0, 0
    return _U64.unpack(level[CTA_COUNTERS_PACKETS])[0], _U64.unpack(level[CTA_COUNTERS_BYTES])[0]


def kernel_flow(family: int, data: bytes, start: int, end: int) -> KernelFlow | None:
    """One conntrack message's attributes (from `start`, after nfgenmsg) as a KernelFlow."""
    version = FAMILY_VERSION.get(family)
    if version is None:
        return None
    level = attrs(data, start, end)
    orig, reply = _tuple(version, level.get(CTA_TUPLE_ORIG)), _tuple(version, level.get(CTA_TUPLE_REPLY))
    if orig is None or reply is None:
        return None
    mark = _U32.unpack(level[CTA_MARK])[0] if CTA_MARK in level else 0
    return KernelFlow(orig, reply, *_counters(level.get(CTA_COUNTERS_ORIG)),
                      *_counters(level.get(CTA_COUNTERS_REPLY)), mark)


class KernelConntrack:
    """A ctnetlink socket of the fabric namespace."""

    def __init__(self, fabric: str):
        pyroute2_netns.pushns(fabric)
        try:
            self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        finally:
            pyroute2_netns.popns()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        self._sock.bind((0, 0))
        self._seq = 0

    def _send(self, kind: int, flags: int, family: int, payload: bytes) -> int:
        self._seq += 1
        self._sock.send(message(kind, flags, family, payload, self._seq))
        return self._seq

    def current(self, flows: list[Wire]) -> list[KernelFlow]:
        """The kernel's view of the offloaded flows (each named by its offering packet's tuple,
        the kernel's original or reply tuple); a flow the kernel no longer marks is left out."""
        if len(flows) > DUMP_ABOVE:
            return self.offloaded()
        found = []
        for flow in flows:
            entry = self.lookup(flow)
            if entry is not None and entry.mark & OFFLOAD_MARK:
                found.append(entry)
        return found

    def lookup(self, flow: Wire) -> KernelFlow | None:
        """The connection with `flow` as its original or reply tuple (the kernel's hash holds
        both directions), or None."""
        seq = self._send(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_ACK, VERSION_FAMILY[flow[0]],
                         tuple_attr(CTA_TUPLE_ORIG, flow))
        found = None
        while True:
            data = self._sock.recv(RECV_BUFFER)
            for kind, got, start, end in messages(data):
                if got != seq:
                    continue
                if kind == NLMSG_ERROR:
                    code = -error_code(data, start)
                    if code not in (0, errno.ENOENT):
                        raise OSError(code, f"conntrack get: {errno.errorcode.get(code, code)}")
                    return found
                found = kernel_flow(NFGEN.unpack_from(data, start)[0], data, start + NFGEN.size, end)

    def offloaded(self) -> list[KernelFlow]:
        """Every connection whose mark carries the offload bit (filtered in the kernel)."""
        mark = attr(CTA_MARK, _U32.pack(OFFLOAD_MARK)) + attr(CTA_MARK_MASK, _U32.pack(OFFLOAD_MARK))
        seq = self._send(IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP, socket.AF_UNSPEC, mark)
        flows: list[KernelFlow] = []
        while True:
            data = self._sock.recv(RECV_BUFFER)
            for kind, got, start, end in messages(data):
                if got != seq:
                    continue
                if kind == NLMSG_DONE:
                    return flows
                if kind == NLMSG_ERROR:
                    code = -error_code(data, start)
                    raise OSError(code, f"conntrack dump: {errno.errorcode.get(code, code)}")
                family = NFGEN.unpack_from(data, start)[0]
                flow = kernel_flow(family, data, start + NFGEN.size, end)
                if flow is not None and flow.mark & OFFLOAD_MARK:
                    flows.append(flow)

    def release(self, flows: list[KernelFlow], zero: bool = False) -> None:
        """Clear the offload (and closing) bits: the flows' next packets go through the queues
        again. `zero`: reset their counters first, for flows whose engine entries are gone (a
        later entry then counts in step with the kernel again). Requests go many to a datagram;
        a connection that vanished meanwhile needs nothing."""
        requests: list[tuple[int, int, bytes]] = []
        for flow in flows:
            family, orig = VERSION_FAMILY[flow.orig[0]], tuple_attr(CTA_TUPLE_ORIG, flow.orig)
            if zero:
                requests.append((IPCTNL_MSG_CT_GET_CTRZERO, family, orig))
            requests.append((IPCTNL_MSG_CT_NEW, family,
                             orig + attr(CTA_MARK, _U32.pack(flow.mark & ~(OFFLOAD_MARK | PULLBACK_MARK)))))
        self._batch(requests)

    def insert(self, flows: list[KernelFlow], timeout: int) -> None:
        """Create connections with these tuples and marks (the benchmark's offloaded flows
        without their traffic); `timeout` in seconds."""
        self._batch([(IPCTNL_MSG_CT_NEW, VERSION_FAMILY[f.orig[0]],
                      tuple_attr(CTA_TUPLE_ORIG, f.orig) + tuple_attr(CTA_TUPLE_REPLY, f.reply) +
                      attr(CTA_TIMEOUT, _U32.pack(timeout)) + attr(CTA_MARK, _U32.pack(f.mark))) for f in flows],
                    NLM_F_CREATE)

    def _batch(self, requests: list[tuple[int, int, bytes]], flags: int = 0) -> None:
        """Requests (kind, family, attributes), many to a datagram, each acknowledged."""
        batch: list[bytes] = []
        size = 0
        for kind, family, payload in requests:
            self._seq += 1
            batch.append(message(kind, NLM_F_REQUEST | NLM_F_ACK | flags, family, payload, self._seq))
            size += len(batch[-1])
            if size >= BATCH_BYTES:
                self._send_batch(batch)
                batch, size = [], 0
        if batch:
            self._send_batch(batch)

    def _send_batch(self, batch: list[bytes]) -> None:
        """Send requests in one datagram and wait for every one's acknowledgement."""
        first = self._seq - len(batch) + 1
        self._sock.send(b"".join(batch))
        waiting = set(range(first, self._seq + 1))
        while waiting:
            data = self._sock.recv(RECV_BUFFER)
            for kind, got, start, _end in messages(data):
                if got in waiting and kind == NLMSG_ERROR:
                    waiting.discard(got)
                    code = -error_code(data, start)
                    if code not in (0, errno.ENOENT):
                        raise OSError(code, f"conntrack update: {errno.errorcode.get(code, code)}")

    def close(self) -> None:
        self._sock.close()
