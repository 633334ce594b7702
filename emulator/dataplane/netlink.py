"""The netlink and nfnetlink wire format, for the two raw netfilter sockets the engine speaks on
(ctnetlink in kernel_conntrack.py, the queue's config in nfqueue.py). Hand-rolled with `struct`
on purpose: one small message per call, no event loop or library object per packet or flow.

Layout (linux/netlink.h, linux/netfilter/nfnetlink.h): nlmsghdr (length, type, flags, seq, pid),
then for nfnetlink an nfgenmsg (family, version, res_id in network order), then attributes
(length, type, payload padded to 4 bytes; nested ones flagged).
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP, NLM_F_CREATE = 0x1, 0x4, 0x300, 0x400
NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF                     # without the nested / byte-order flags

HEADER = struct.Struct("=IHHII")           # nlmsghdr: length, type, flags, seq, pid
NFGEN = struct.Struct("=BBH")              # nfgenmsg: family, version, res_id
ATTR = struct.Struct("=HH")                # nlattr: length, type
ERRNO = struct.Struct("=i")                # nlmsgerr: error, then the request's header


def attr(kind: int, payload: bytes, nested: bool = False) -> bytes:
    data = ATTR.pack(ATTR.size + len(payload), kind | (NLA_F_NESTED if nested else 0)) + payload
    return data + b"\0" * (-len(data) % 4)


def nfnl_message(subsystem: int, kind: int, flags: int, family: int, attrs: bytes, seq: int,
                 res_id: int = 0) -> bytes:
    """One nfnetlink request: header, nfgenmsg, attributes."""
    body = NFGEN.pack(family, 0, socket.htons(res_id)) + attrs
    return HEADER.pack(HEADER.size + len(body), subsystem << 8 | kind, flags, seq, 0) + body


def attrs(data: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Top-level attributes of one level, by type (nested ones still packed)."""
    end = len(data) if end is None else end
    found: dict[int, bytes] = {}
    offset = start
    while offset + ATTR.size <= end:
        length, kind = ATTR.unpack_from(data, offset)
        if length < ATTR.size or offset + length > end:
            break
        found[kind & NLA_TYPE_MASK] = data[offset + ATTR.size:offset + length]
        offset += (length + 3) & ~3
    return found


def messages(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, seq, start of payload, end) of each netlink message in one datagram."""
    offset = 0
    while offset + HEADER.size <= len(data):
        length, kind, _flags, seq, _pid = HEADER.unpack_from(data, offset)
        if length < HEADER.size or offset + length > len(data):
            return
        yield kind, seq, offset + HEADER.size, offset + length
        offset += (length + 3) & ~3


def error_code(data: bytes, start: int) -> int:
    """The (negative errno, or 0 for an ack) of an NLMSG_ERROR message's payload at `start`."""
    return int(ERRNO.unpack_from(data, start)[0])
