"""Raw IP packet (as NFQUEUE delivers it, no link layer) -> the header fields SGs look at.

Hot path: precompiled `struct` formats, one object per packet, no exceptions for bad
input. `parse` returns a short reason string for anything malformed.
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address
from struct import Struct

from emulator.model import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, IPAddress

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

_IPV4 = Struct("!BBHHHBBHII")        # ver/ihl tos total id frag ttl proto csum src dst
_IPV6 = Struct("!IHBB16s16s")        # ver/tc/flow payload-len next-header hop-limit src dst
_PORTS = Struct("!HH")
_TCP_PORTS_FLAGS = Struct("!HH8xBB")  # sport dport (seq ack) data-offset flags
_ICMP = Struct("!BBHH")              # type code checksum identifier
_U16 = Struct("!H")
_IPV4_PORTS = Struct("!BBHHHBBHIIHH")  # an IPv4 header without options, then the L4 ports
_TCP_OFFSET_FLAGS = Struct("!BB")     # TCP data offset and flags, 12 bytes into the TCP header

# IPv6 extension headers walked to find the L4 protocol (AH counts 4-byte units).
_HOP_BY_HOP, _ROUTING, _FRAGMENT, _AH, _DEST_OPTS = 0, 43, 44, 51, 60
_EXTENSION_HEADERS = frozenset((_HOP_BY_HOP, _ROUTING, _FRAGMENT, _AH, _DEST_OPTS))

# ICMP types that carry an echo/query identifier.
_ICMP_QUERY_TYPES = frozenset((0, 8, 13, 14, 15, 16, 17, 18))
_ICMPV6_QUERY_TYPES = frozenset((128, 129))
# ICMP error messages embed the header of the packet that caused them.
ICMP_ERROR_TYPES = frozenset((3, 11, 12))
ICMPV6_ERROR_TYPES = frozenset((1, 2, 3, 4))


class Packet:
    """The header fields of one IP packet. Addresses are ints for cheap masking."""

    __slots__ = (
        "dport",
        "dst",
        "fragment_offset",
        "icmp_code",
        "icmp_id",
        "icmp_type",
        "inner",
        "length",
        "more_fragments",
        "proto",
        "sport",
        "src",
        "tcp_flags",
        "version",
    )

    def __init__(self, version: int, src: int, dst: int, proto: int, sport: int = 0,
                 dport: int = 0, tcp_flags: int = 0, icmp_type: int = -1, icmp_code: int = -1,
                 icmp_id: int = 0, length: int = 0, fragment_offset: int = 0,
                 more_fragments: bool = False, inner: Packet | None = None):
        self.version = version
        self.src = src
        self.dst = dst
        self.proto = proto
        self.sport = sport
        self.dport = dport
        self.tcp_flags = tcp_flags
        self.icmp_type = icmp_type
        self.icmp_code = icmp_code
        self.icmp_id = icmp_id
        self.length = length
        self.fragment_offset = fragment_offset   # in bytes; > 0 only for non-initial fragments
        self.more_fragments = more_fragments
        self.inner = inner                       # embedded original header of an ICMP error

    @classmethod
    def build(cls, version: int, src: int | IPAddress | str, dst: int | IPAddress | str,
              proto: int, sport: int = 0, dport: int = 0, tcp_flags: int = 0,
              icmp_type: int = -1, icmp_code: int = -1, icmp_id: int = 0, length: int = 0,
              inner: Packet | None = None, fragment_offset: int = 0,
              more_fragments: bool = False) -> Packet:
        """A packet from fields (for explain and tests); addresses may be ints, objects or text."""
        return cls(version, _as_int(src), _as_int(dst), proto, sport, dport, tcp_flags, icmp_type,
                   icmp_code, icmp_id, length, fragment_offset, more_fragments, inner)

    @property
    def src_ip(self) -> IPAddress:
        return _as_ip(self.version, self.src)

    @property
    def dst_ip(self) -> IPAddress:
        return _as_ip(self.version, self.dst)

    @property
    def is_icmp_error(self) -> bool:
        if self.proto == PROTO_ICMP:
            return self.icmp_type in ICMP_ERROR_TYPES
        return self.proto == PROTO_ICMPV6 and self.icmp_type in ICMPV6_ERROR_TYPES

    def __repr__(self) -> str:
        what = f"proto {self.proto}"
        if self.proto in (PROTO_TCP, PROTO_UDP):
            what = f"{'tcp' if self.proto == PROTO_TCP else 'udp'} {self.sport}->{self.dport}"
            if self.proto == PROTO_TCP:
                what += f" flags=0x{self.tcp_flags:02x}"
        elif self.icmp_type >= 0:
            kind = "icmpv6" if self.proto == PROTO_ICMPV6 else "icmp"
            what = f"{kind} {self.icmp_type}/{self.icmp_code} id={self.icmp_id}"
        frag = f" frag@{self.fragment_offset}" if self.fragment_offset or self.more_fragments else ""
        inner = f" inner=[{self.inner!r}]" if self.inner is not None else ""
        return f"<Packet v{self.version} {self.src_ip} > {self.dst_ip} {what} len={self.length}{frag}{inner}>"


def _as_int(address: int | IPAddress | str) -> int:
    if isinstance(address, int):
        return address
    if isinstance(address, str):
        address = ip_address(address)
    return int(address)


def _as_ip(version: int, value: int) -> IPAddress:
    return IPv4Address(value) if version == 4 else IPv6Address(value)


def parse(data: bytes, cut: bool = False) -> Packet | str:
    """Header fields of an IP packet, or a short reason why it is malformed. Never raises.

    `cut`: the data may stop short of the packet's end (a queue's copy range, a GSO packet
    larger than it); the IP header's length is then the packet's, and headers past the data
    are malformed as before."""
    # Fast path for most packets, the same answer as the general one: IPv4 without options,
    # not a fragment, TCP or UDP whose header is whole. Anything else takes the general path.
    size = len(data)
    if size >= 28 and data[0] == 0x45:
        _vi, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst, sport, dport = _IPV4_PORTS.unpack_from(data)
        if frag & 0x3FFF == 0 and total >= 20 and (total <= size or cut):
            available = (total if total < size else size) - 20
            if proto == PROTO_UDP and available >= 8:
                return Packet(4, src, dst, PROTO_UDP, sport, dport, 0, -1, -1, 0, total, 0, False, None)
            if proto == PROTO_TCP and available >= 20:
                offset, flags = _TCP_OFFSET_FLAGS.unpack_from(data, 32)
                if offset >> 4 >= 5 and (offset >> 4) * 4 <= available:
                    return Packet(4, src, dst, PROTO_TCP, sport, dport, flags, -1, -1, 0, total, 0, False, None)
    return _parse(data, True, cut)


def _parse(data: bytes, outer: bool, cut: bool = False) -> Packet | str:
    """`outer` is False for the header embedded in an ICMP error: there only the first
    bytes of the original datagram are guaranteed, so missing L4 fields stay 0."""
    if not data:
        return "empty packet"
    version = data[0] >> 4
    if version == 4:
        return _parse_ipv4(data, outer, cut)
    if version == 6:
        return _parse_ipv6(data, outer, cut)
    return f"unknown IP version {version}"


def _parse_ipv4(data: bytes, outer: bool, cut: bool) -> Packet | str:
    size = len(data)
    if size < 20:
        return "truncated IPv4 header"
    ver_ihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(data)
    header_len = (ver_ihl & 0x0F) * 4
    if header_len < 20:
        return "bad IHL"
    if size < header_len:
        return "truncated IPv4 options"
    if total < header_len:
        return "bad IPv4 total length"
    length = total
    if total > size:
        if outer and not cut:
            return "truncated IPv4 packet"
        total = size
        if not outer:
            length = size
    packet = Packet(4, src, dst, proto, length=length, fragment_offset=(frag & 0x1FFF) * 8,
                    more_fragments=bool(frag & 0x2000))
    if packet.fragment_offset:
        return packet
    return _parse_l4(packet, data, header_len, total, outer)


def _parse_ipv6(data: bytes, outer: bool, cut: bool) -> Packet | str:
    size = len(data)
    if size < 40:
        return "truncated IPv6 header"
    _vtf, payload_len, next_header, _hops, src, dst = _IPV6.unpack_from(data)
    # Payload length 0 means a jumbogram (or nothing): trust what we were given.
    end = packet_len = 40 + payload_len if payload_len else size
    if end > size:
        if outer and not cut:
            return "truncated IPv6 packet"
        end = size
        if not outer:
            packet_len = size
    packet = Packet(6, int.from_bytes(src, "big"), int.from_bytes(dst, "big"), next_header,
                    length=packet_len)
    offset = 40
    while next_header in _EXTENSION_HEADERS:
        if offset + 8 > end:
            return "truncated IPv6 extension header"
        if next_header == _FRAGMENT:
            # A second fragment header must not turn a later fragment back into a first one.
            frag = _U16.unpack_from(data, offset + 2)[0]
            packet.fragment_offset = max(packet.fragment_offset, frag & 0xFFF8)
            packet.more_fragments = packet.more_fragments or bool(frag & 1)
            length = 8
        elif next_header == _AH:
            length = (data[offset + 1] + 2) * 4
        else:
            length = (data[offset + 1] + 1) * 8
        next_header = data[offset]
        offset += length
    if offset > end:
        return "truncated IPv6 extension header"
    packet.proto = next_header
    if packet.fragment_offset:
        return packet
    return _parse_l4(packet, data, offset, end, outer)


def _parse_l4(packet: Packet, data: bytes, offset: int, end: int, outer: bool) -> Packet | str:
    proto = packet.proto
    available = end - offset
    if proto == PROTO_TCP:
        if available >= 14:
            packet.sport, packet.dport, data_offset, packet.tcp_flags = \
                _TCP_PORTS_FLAGS.unpack_from(data, offset)
            if outer and (data_offset >> 4 < 5 or (data_offset >> 4) * 4 > available):
                return "bad TCP data offset"
        elif outer:
            return "truncated TCP header"
        elif available >= 4:
            packet.sport, packet.dport = _PORTS.unpack_from(data, offset)
    elif proto == PROTO_UDP:
        if available >= 8 or (not outer and available >= 4):
            packet.sport, packet.dport = _PORTS.unpack_from(data, offset)
        elif outer:
            return "truncated UDP header"
    elif proto == PROTO_ICMP or proto == PROTO_ICMPV6:
        if available >= 8 or (not outer and available >= 6):
            packet.icmp_type, packet.icmp_code, _csum, ident = _ICMP.unpack_from(data, offset)
            queries = _ICMP_QUERY_TYPES if proto == PROTO_ICMP else _ICMPV6_QUERY_TYPES
            if packet.icmp_type in queries:
                packet.icmp_id = ident
        elif outer:
            return "truncated ICMP header"
        elif available >= 2:
            packet.icmp_type, packet.icmp_code = data[offset], data[offset + 1]
        if outer and packet.is_icmp_error:
            inner = _parse(data[offset + 8:end], False)
            if isinstance(inner, Packet) and inner.version == packet.version:
                packet.inner = inner
    return packet
