"""The first exchange of an RDP server: enough for `nmap -sV`, `nc` and an RDP client to see that
something speaks RDP on 3389, and for the refused-versus-timeout lesson. Not a desktop.

[MS-RDPBCGR] 2.2.1.1: the client opens with an X.224 Connection Request (ISO 8073 class 0) in a
TPKT (RFC 1006), optionally carrying an RDP Negotiation Request; 2.2.1.2: the server answers with
an X.224 Connection Confirm, carrying an RDP Negotiation Response when the client negotiated.
We select standard RDP security (PROTOCOL_RDP), which every client accepts, then close: the next
step (MCS Connect Initial) is beyond what a reachability lab needs.
"""
from __future__ import annotations

import asyncio
import logging
import struct

log = logging.getLogger("sgemu.servers")

TPKT_VERSION = 3
TPKT_HEADER = struct.Struct(">BBH")          # version, reserved, length of the whole packet
X224_CONNECTION_REQUEST = 0xE0
X224_CONNECTION_CONFIRM = 0xD0
RDP_NEG_REQ = 0x01
RDP_NEG_RSP = 0x02
RDP_NEG = struct.Struct("<BBHI")             # type, flags, length (8), protocols
PROTOCOL_RDP = 0x00000000
SOURCE_REFERENCE = 0x1234
MAX_REQUEST = 512                            # a request with a long cookie is well under this
READ_TIMEOUT = 10.0


def confirm(request: bytes) -> bytes | None:
    """The Connection Confirm answering one TPKT-framed Connection Request, or None when
    `request` is not one (the connection is then closed without an answer)."""
    if len(request) < TPKT_HEADER.size + 7:
        return None
    version, _, length = TPKT_HEADER.unpack_from(request)
    x224 = request[TPKT_HEADER.size:]
    if version != TPKT_VERSION or length != len(request) or x224[1] & 0xF0 != X224_CONNECTION_REQUEST \
            or x224[0] != len(x224) - 1:
        return None
    negotiated = len(x224) >= 7 + RDP_NEG.size and x224[-RDP_NEG.size] == RDP_NEG_REQ
    body = struct.pack(">BHHB", X224_CONNECTION_CONFIRM, 0, SOURCE_REFERENCE, 0)
    if negotiated:
        body += RDP_NEG.pack(RDP_NEG_RSP, 0, RDP_NEG.size, PROTOCOL_RDP)
    tpdu = bytes([len(body)]) + body          # length indicator: the header after this byte
    return TPKT_HEADER.pack(TPKT_VERSION, 0, TPKT_HEADER.size + len(tpdu)) + tpdu


async def read_tpkt(reader: asyncio.StreamReader) -> bytes | None:
    head = await reader.readexactly(TPKT_HEADER.size)
    version, _, length = TPKT_HEADER.unpack(head)
    if version != TPKT_VERSION or not TPKT_HEADER.size < length <= MAX_REQUEST:
        return None
    return head + await reader.readexactly(length - TPKT_HEADER.size)


async def serve_rdp(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    try:
        request = await asyncio.wait_for(read_tpkt(reader), READ_TIMEOUT)
        answer = confirm(request) if request is not None else None
        log.info("%s rdp: %s from %s", name, "connection confirmed" if answer else "not an RDP request",
                 peer and peer[0])
        if answer is not None:
            writer.write(answer)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
        pass
    finally:
        writer.close()
