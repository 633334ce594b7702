"""packet.parse: header fields from raw bytes built with scapy, and reasons for bad input."""
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import GRE, ICMP, IP, TCP, UDP, IPerror, TCPerror, fragment
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    ICMPv6PacketTooBig,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.packet import Raw

from emulator.engine.packet import (
    TCP_ACK,
    TCP_FIN,
    TCP_PSH,
    TCP_RST,
    TCP_SYN,
    Packet,
    parse,
)

A4, B4 = "10.0.1.10", "10.0.2.20"
A6, B6 = "fd00:10:0:1::10", "fd00:10:0:2::20"


def parsed(scapy_packet) -> Packet:
    result = parse(bytes(scapy_packet))
    assert isinstance(result, Packet), result
    return result


# --- IPv4 -----------------------------------------------------------------------------------

@pytest.mark.parametrize("flags,expected", [
    ("S", TCP_SYN), ("SA", TCP_SYN | TCP_ACK), ("A", TCP_ACK), ("PA", TCP_PSH | TCP_ACK),
    ("FA", TCP_FIN | TCP_ACK), ("R", TCP_RST), ("RA", TCP_RST | TCP_ACK), ("", 0),
])
def test_ipv4_tcp_fields(flags, expected):
    p = parsed(IP(src=A4, dst=B4) / TCP(sport=40000, dport=80, flags=flags))
    assert (p.version, p.proto, p.sport, p.dport, p.tcp_flags) == (4, 6, 40000, 80, expected)
    assert (p.src_ip, p.dst_ip) == (IPv4Address(A4), IPv4Address(B4))
    assert p.src == int(IPv4Address(A4)) and p.dst == int(IPv4Address(B4))
    assert (p.icmp_type, p.icmp_code, p.icmp_id) == (-1, -1, 0)
    assert p.length == 40 and p.fragment_offset == 0 and not p.more_fragments and p.inner is None


@pytest.mark.parametrize("payload", [b"", b"x", b"hello world" * 10])
def test_ipv4_udp_fields_and_length(payload):
    p = parsed(IP(src=A4, dst=B4) / UDP(sport=5353, dport=53) / Raw(payload))
    assert (p.proto, p.sport, p.dport, p.tcp_flags) == (17, 5353, 53, 0)
    assert p.length == 28 + len(payload)


@pytest.mark.parametrize("icmp_type,has_id", [(8, True), (0, True), (13, True), (14, True),
                                               (15, True), (16, True), (17, True), (18, True),
                                               (5, False), (9, False), (10, False)])
def test_ipv4_icmp_identifier_only_for_queries(icmp_type, has_id):
    p = parsed(IP(src=A4, dst=B4) / ICMP(type=icmp_type, code=0, id=0x1234))
    assert (p.proto, p.icmp_type, p.icmp_code) == (1, icmp_type, 0)
    assert p.icmp_id == (0x1234 if has_id else 0)
    assert (p.sport, p.dport) == (0, 0)


def test_ipv4_options_are_skipped():
    p = parsed(IP(src=A4, dst=B4, options=b"\x01\x01\x01\x00") / TCP(sport=1, dport=22, flags="S"))
    assert (p.proto, p.sport, p.dport, p.tcp_flags) == (6, 1, 22, TCP_SYN)


def test_other_protocol_has_no_ports():
    p = parsed(IP(src=A4, dst=B4) / GRE() / Raw(b"abcd"))
    assert (p.proto, p.sport, p.dport, p.icmp_type) == (47, 0, 0, -1)


def test_ipv4_first_fragment_has_ports_and_later_fragments_do_not():
    datagram = IP(src=A4, dst=B4) / UDP(sport=7, dport=9999) / Raw(b"z" * 3000)
    first, second = [bytes(f) for f in fragment(datagram, 1480)][:2]
    p1, p2 = parse(first), parse(second)
    assert (p1.dport, p1.fragment_offset, p1.more_fragments) == (9999, 0, True)
    assert (p2.proto, p2.dport, p2.sport) == (17, 0, 0)
    assert p2.fragment_offset == 1480 and p2.more_fragments


def test_ipv4_padding_beyond_total_length_is_ignored():
    raw = bytes(IP(src=A4, dst=B4) / UDP(sport=1, dport=2)) + b"\x00" * 18
    p = parse(raw)
    assert isinstance(p, Packet) and p.length == 28


# --- IPv6 -----------------------------------------------------------------------------------

def test_ipv6_tcp_fields():
    p = parsed(IPv6(src=A6, dst=B6) / TCP(sport=50000, dport=443, flags="S"))
    assert (p.version, p.proto, p.sport, p.dport, p.tcp_flags) == (6, 6, 50000, 443, TCP_SYN)
    assert (p.src_ip, p.dst_ip) == (IPv6Address(A6), IPv6Address(B6))
    assert p.length == 60


@pytest.mark.parametrize("extensions", [
    [IPv6ExtHdrHopByHop()],
    [IPv6ExtHdrRouting()],
    [IPv6ExtHdrDestOpt()],
    [IPv6ExtHdrHopByHop(), IPv6ExtHdrDestOpt(), IPv6ExtHdrRouting(), IPv6ExtHdrDestOpt()],
    [IPv6ExtHdrFragment(offset=0, m=0)],
    [IPv6ExtHdrHopByHop(), IPv6ExtHdrFragment(offset=0, m=1)],
    [AH(spi=1, icv=b"\x00" * 12, payloadlen=4)],
], ids=["hbh", "routing", "destopts", "chain", "atomic-fragment", "hbh+first-fragment", "ah"])
@pytest.mark.parametrize("l4,proto,dport", [(TCP(dport=22, flags="S"), 6, 22),
                                             (UDP(dport=53), 17, 53)])
def test_ipv6_extension_headers_are_walked(extensions, l4, proto, dport):
    packet = IPv6(src=A6, dst=B6)
    for extension in extensions:
        if isinstance(extension, AH):   # scapy does not fill AH's next header
            extension = extension.copy()
            extension.nh = proto
        packet = packet / extension
    p = parsed(packet / l4)
    assert (p.proto, p.dport, p.fragment_offset) == (proto, dport, 0)


def test_ipv6_non_initial_fragment():
    p = parsed(IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(offset=100, m=1, nh=17) / Raw(b"y" * 64))
    assert (p.proto, p.fragment_offset, p.more_fragments, p.dport) == (17, 800, True, 0)


def test_ipv6_no_next_header():
    p = parsed(IPv6(src=A6, dst=B6, nh=59))
    assert p.proto == 59 and p.length == 40


@pytest.mark.parametrize("message,icmp_type,ident", [
    (ICMPv6EchoRequest(id=77), 128, 77), (ICMPv6EchoReply(id=78), 129, 78),
    (ICMPv6ND_NS(tgt=B6), 135, 0),
])
def test_icmpv6_types(message, icmp_type, ident):
    p = parsed(IPv6(src=A6, dst=B6) / message)
    assert (p.proto, p.icmp_type, p.icmp_id) == (58, icmp_type, ident)


# --- ICMP errors embed the original header ---------------------------------------------------

def test_icmp_port_unreachable_embeds_udp():
    original = IP(src=A4, dst=B4) / UDP(sport=40001, dport=9999) / Raw(b"q")
    p = parsed(IP(src=B4, dst=A4) / ICMP(type=3, code=3) / original)
    assert p.is_icmp_error and p.icmp_id == 0
    inner = p.inner
    assert inner is not None and (inner.src_ip, inner.dst_ip) == (IPv4Address(A4), IPv4Address(B4))
    assert (inner.proto, inner.sport, inner.dport) == (17, 40001, 9999)


def test_icmp_frag_needed_embeds_truncated_tcp_with_ports():
    original = bytes(IP(src=A4, dst=B4) / TCP(sport=40002, dport=80, flags="PA"))[:28]
    p = parsed(IP(src="10.0.0.1", dst=A4) / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(original))
    assert p.inner is not None and (p.inner.sport, p.inner.dport) == (40002, 80)
    assert p.inner.tcp_flags == 0      # the flags byte is beyond the 8 guaranteed bytes


@pytest.mark.parametrize("error", [ICMP(type=11, code=0), ICMP(type=12, code=0),
                                   ICMP(type=3, code=1)])
def test_other_icmp_errors_have_inner(error):
    p = parsed(IP(src=B4, dst=A4) / error / IPerror(src=A4, dst=B4) / TCPerror(sport=1, dport=2))
    assert p.inner is not None and (p.inner.proto, p.inner.dport) == (6, 2)


def test_icmp_error_about_echo_keeps_identifier():
    p = parsed(IP(src=B4, dst=A4) / ICMP(type=3, code=1) / IPerror(src=A4, dst=B4) / ICMP(id=9))
    assert p.inner is not None and (p.inner.icmp_type, p.inner.icmp_id) == (8, 9)


def test_icmp_error_with_garbage_inner_has_no_inner():
    p = parsed(IP(src=B4, dst=A4) / ICMP(type=3, code=3) / Raw(b"\x99" * 30))
    assert p.is_icmp_error and p.inner is None


def test_echo_is_not_an_error_and_has_no_inner():
    p = parsed(IP(src=A4, dst=B4) / ICMP() / Raw(bytes(IP(src=A4, dst=B4) / UDP())))
    assert not p.is_icmp_error and p.inner is None


@pytest.mark.parametrize("error,icmp_type", [(ICMPv6DestUnreach(code=4), 1),
                                             (ICMPv6PacketTooBig(mtu=1280), 2)])
def test_icmpv6_errors_embed_original(error, icmp_type):
    original = IPv6(src=A6, dst=B6) / UDP(sport=3333, dport=4444)
    p = parsed(IPv6(src=B6, dst=A6) / error / original)
    assert p.icmp_type == icmp_type and p.is_icmp_error
    assert p.inner is not None and (p.inner.version, p.inner.sport, p.inner.dport) == (6, 3333, 4444)


# --- malformed input gives a reason ----------------------------------------------------------

def _v4_tcp() -> bytes:
    return bytes(IP(src=A4, dst=B4) / TCP(sport=1, dport=2))


def _with_byte(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1:]


@pytest.mark.parametrize("data,reason", [
    (b"", "empty packet"),
    (b"\x70" + b"\x00" * 39, "unknown IP version 7"),
    (b"\x00" * 40, "unknown IP version 0"),
    (b"\x45" + b"\x00" * 10, "truncated IPv4 header"),
    (_with_byte(_v4_tcp(), 0, 0x44), "bad IHL"),
    (_with_byte(_v4_tcp(), 0, 0x4F)[:40], "truncated IPv4 options"),
    (_with_byte(_with_byte(_v4_tcp(), 2, 0), 3, 10), "bad IPv4 total length"),
    (_v4_tcp()[:30], "truncated IPv4 packet"),
    (bytes(IP(src=A4, dst=B4, proto=6, len=30)) + b"\x00" * 10, "truncated TCP header"),
    (_with_byte(_v4_tcp(), 32, 0x40), "bad TCP data offset"),
    (_with_byte(_v4_tcp(), 32, 0xF0), "bad TCP data offset"),
    (bytes(IP(src=A4, dst=B4, proto=17, len=24)) + b"\x00" * 4, "truncated UDP header"),
    (bytes(IP(src=A4, dst=B4, proto=1, len=24)) + b"\x08\x00\x00\x00", "truncated ICMP header"),
    (b"\x60" + b"\x00" * 20, "truncated IPv6 header"),
    (bytes(IPv6(src=A6, dst=B6) / UDP())[:44], "truncated IPv6 packet"),
    (bytes(IPv6(src=A6, dst=B6, nh=0, plen=4)) + b"\x11\x00\x00\x00", "truncated IPv6 extension header"),
    (bytes(IPv6(src=A6, dst=B6, nh=0, plen=8)) + b"\x11\x05" + b"\x00" * 6, "truncated IPv6 extension header"),
    (bytes(IPv6(src=A6, dst=B6, nh=6, plen=10)) + b"\x00" * 10, "truncated TCP header"),
])
def test_malformed_reasons(data, reason):
    assert parse(data) == reason


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data):
    assert isinstance(parse(data), (Packet, str))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([4, 6]), st.integers(0, 255), st.binary(max_size=80))
def test_random_payload_behind_valid_header_never_raises(version, proto, payload):
    header = IP(src=A4, dst=B4, proto=proto) if version == 4 else IPv6(src=A6, dst=B6, nh=proto)
    result = parse(bytes(header / Raw(payload)))
    assert isinstance(result, (Packet, str))
    if isinstance(result, Packet):
        assert result.version == version


# --- Packet.build ---------------------------------------------------------------------------

@pytest.mark.parametrize("src,dst", [(A4, B4), (IPv4Address(A4), IPv4Address(B4)),
                                     (int(IPv4Address(A4)), int(IPv4Address(B4)))])
def test_build_accepts_text_objects_and_ints(src, dst):
    p = Packet.build(4, src, dst, 6, sport=1, dport=80, tcp_flags=TCP_SYN)
    assert (p.src_ip, p.dst_ip, p.dport) == (IPv4Address(A4), IPv4Address(B4), 80)
    assert "tcp 1->80" in repr(p)


def test_build_matches_parse():
    built = Packet.build(6, A6, B6, 17, sport=5, dport=6, length=48)
    got = parsed(IPv6(src=A6, dst=B6) / UDP(sport=5, dport=6))
    assert [getattr(built, s) for s in Packet.__slots__] == [getattr(got, s) for s in Packet.__slots__]


# --- zero and odd lengths ---------------------------------------------------------------------

def test_ipv4_total_length_zero_is_malformed():
    data = bytearray(_v4_tcp())
    data[2:4] = b"\x00\x00"
    assert parse(bytes(data)) == "bad IPv4 total length"


def test_ipv6_payload_length_zero_uses_the_bytes_given():
    data = bytearray(bytes(IPv6(src=A6, dst=B6) / UDP(sport=9, dport=10)))
    data[4:6] = b"\x00\x00"
    p = parse(bytes(data))
    assert isinstance(p, Packet) and (p.dport, p.length) == (10, 48)


def test_ipv6_with_nothing_after_the_header():
    p = parse(bytes(IPv6(src=A6, dst=B6, nh=17, plen=0)))
    assert p == "truncated UDP header"


def test_zero_length_payloads_parse():
    assert parsed(IP(src=A4, dst=B4) / UDP(sport=1, dport=2)).length == 28
    assert parsed(IP(src=A4, dst=B4, proto=47)).length == 20


def test_inner_header_of_icmp_error_may_be_cut_short():
    original = bytes(IP(src=A4, dst=B4) / UDP(sport=7, dport=8))[:22]   # two bytes of UDP: not both ports
    p = parsed(IP(src=B4, dst=A4) / ICMP(type=3, code=3) / Raw(original))
    assert p.inner is not None and (p.inner.proto, p.inner.sport, p.inner.dport) == (17, 0, 0)


def test_a_second_fragment_header_cannot_hide_a_later_fragment():
    """Found by fuzzing: frag header (offset 8) then frag header (offset 0) then an ICMPv6 NS-looking
    payload must stay a non-initial fragment, not become neighbour discovery (infrastructure)."""
    data = bytes.fromhex("6000000000182c40fd000010000000000000000000000080fd000010000000000000000000"
                         "0000812c000008000000003a000000000000008700000000000000")
    packet = parse(data)
    assert not isinstance(packet, str)
    assert packet.fragment_offset == 8 and packet.icmp_type == -1
