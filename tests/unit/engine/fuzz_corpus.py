"""Hostile and odd packets, built with scapy, for the engine fuzz tests.

Two sources: `corpus()` is a fixed, named list (truncated headers, IP options, fragments, bad
checksums, zero lengths, unknown protocols, odd TCP flags, spoofed sources, IPv6 extension
chains, ICMP errors with lying payloads); `packets()` is a hypothesis strategy drawing the same
kinds of packets with random fields. Both give (name, raw bytes, direction, firewall name).
"""
from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert, IPOption_RR
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.layers.ipsec import AH
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from emulator.model import Direction

A4, A6 = "10.0.1.80", "fd00:10::80"          # instance a
B4, B6 = "10.0.1.81", "fd00:10::81"          # instance b (in sg-b, which a references)
YOU, INT, INT_NET = "203.0.113.10", "198.51.100.7", "198.51.100.0/24"
INT6 = "2001:db8:ff::7"
DNS = "10.0.0.2"                              # VPC+2
INGRESS, EGRESS = Direction.INGRESS, Direction.EGRESS

ADDRESSES4 = (A4, B4, YOU, INT, DNS, "169.254.169.254", "10.0.2.9", "0.0.0.0", "255.255.255.255",
              "224.0.0.5")
ADDRESSES6 = (A6, B6, INT6, "fe80::1", "ff02::1", "::", "::1", "fd00:10::99", "::ffff:10.0.1.80")
PORTS = (22, 80, 443, 53, 1500, 1000, 2000, 3306, 0, 65535)


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    direction: Direction
    firewall: str = "a"


def _ip(src: str, dst: str, **fields) -> ScapyPacket:
    return IPv6(src=src, dst=dst, **fields) if ":" in src else IP(src=src, dst=dst, **fields)


def _cut(packet: ScapyPacket, size: int) -> bytes:
    return bytes(packet)[:size]


def _patch(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1:]


def _v4_fragments(src: str, dst: str, dport: int) -> list[bytes]:
    """A TCP segment split in two: the first fragment has the ports, the second none."""
    segment = bytes(TCP(sport=40001, dport=dport, flags="PA") / Raw(b"x" * 64))
    return [bytes(IP(src=src, dst=dst, id=77, flags="MF", proto=6) / Raw(segment[:24])),
            bytes(IP(src=src, dst=dst, id=77, frag=3, proto=6) / Raw(segment[24:]))]


def corpus() -> list[Sample]:
    """Named hostile packets; the direction says which hook of which firewall sees them."""
    tcp_in = _ip(INT, A4) / TCP(sport=40000, dport=80, flags="S")
    samples = [
        # truncated and zero-length
        Sample("empty", b"", INGRESS),
        Sample("one byte v4", b"\x45", INGRESS),
        Sample("ipv4 header cut", _cut(tcp_in, 12), INGRESS),
        Sample("tcp header cut", _cut(tcp_in, 30), INGRESS),
        Sample("ipv4 total length zero", _patch(_patch(bytes(tcp_in), 2, 0), 3, 0), INGRESS),
        Sample("ipv4 total length huge", _patch(bytes(tcp_in), 2, 0xFF), INGRESS),
        Sample("ipv4 ihl below 5", _patch(bytes(tcp_in), 0, 0x42), INGRESS),
        Sample("ipv6 header cut", _cut(_ip(INT6, A6) / TCP(dport=80), 39), INGRESS),
        Sample("ipv6 payload length zero", _patch(_patch(bytes(_ip(INT6, A6) / TCP(dport=22)), 4, 0), 5, 0),
               INGRESS),
        Sample("udp zero length field", bytes(_ip(INT, A4) / UDP(sport=1, dport=53, len=0)), INGRESS),
        Sample("tcp data offset zero", _patch(bytes(tcp_in), 32, 0x00), INGRESS),
        Sample("icmp cut", bytes(IP(src=INT, dst=A4, proto=1, len=23)) + b"\x08\x00\x00", INGRESS),
        Sample("version 5", _patch(bytes(tcp_in), 0, 0x55), INGRESS),
        # IP options
        Sample("ipv4 record route to 80", bytes(IP(src=INT, dst=A4, options=[IPOption_RR()]) /
                                                TCP(dport=80, flags="S")), INGRESS),
        Sample("ipv4 router alert to 22", bytes(IP(src=INT, dst=A4, options=[IPOption_Router_Alert()]) /
                                                TCP(dport=22, flags="S")), INGRESS),
        Sample("ipv4 nop options to 3306", bytes(IP(src=INT, dst=A4, options=[IPOption_NOP()] * 8) /
                                                 TCP(dport=3306, flags="S")), INGRESS),
        # fragments
        *(Sample(f"v4 fragment {n} to 22", f, INGRESS) for n, f in enumerate(_v4_fragments(INT, A4, 22))),
        Sample("v4 non-initial fragment, no flow", bytes(IP(src=INT, dst=A4, frag=100, proto=17) / Raw(b"z" * 40)),
               INGRESS),
        Sample("v4 non-initial gre fragment from the gre net", bytes(IP(src=INT, dst=A4, frag=9, proto=47) /
                                                                      Raw(b"g" * 16)), INGRESS),
        Sample("v6 non-initial fragment", bytes(IPv6(src=INT6, dst=A6) / IPv6ExtHdrFragment(offset=10, nh=6) /
                                                Raw(b"f" * 32)), INGRESS),
        Sample("v6 atomic fragment to 53", bytes(IPv6(src=INT6, dst=A6) / IPv6ExtHdrFragment(offset=0) /
                                                 UDP(sport=9, dport=53)), INGRESS),
        # checksums the engine must not trust or need
        Sample("bad ip checksum to 80", bytes(IP(src=INT, dst=A4, chksum=0xDEAD) / TCP(dport=80, flags="S")),
               INGRESS),
        Sample("bad tcp checksum to 22", bytes(IP(src=INT, dst=A4) / TCP(dport=22, flags="S", chksum=1)), INGRESS),
        Sample("bad udp checksum to 53 v6", bytes(IPv6(src=INT6, dst=A6) / UDP(dport=53, chksum=7)), INGRESS),
        # protocols nobody expects
        *(Sample(f"protocol {p}", bytes(_ip(INT, A4, proto=p) / Raw(b"??")), INGRESS) for p in (0, 47, 50, 132, 253, 255)),
        Sample("v6 no next header", bytes(IPv6(src=INT6, dst=A6, nh=59)), INGRESS),
        Sample("v6 protocol 47", bytes(IPv6(src=INT6, dst=A6, nh=47) / Raw(b"gre")), INGRESS),
        # TCP flag combinations
        *(Sample(f"tcp {flags or 'no flags'} to {port}", bytes(_ip(INT, A4) / TCP(dport=port, flags=flags)), INGRESS)
          for flags in ("SF", "A", "FPU", "", "SRAFPUEC", "R", "SA") for port in (22, 80)),
        Sample("bare ack out to 443", bytes(_ip(A4, INT) / TCP(sport=5, dport=443, flags="A")), EGRESS),
        Sample("bare ack out to 25", bytes(_ip(A4, INT) / TCP(sport=5, dport=25, flags="A")), EGRESS),
        # spoofed sources and destinations
        Sample("a sends as b", bytes(_ip(B4, INT) / TCP(dport=443, flags="S")), EGRESS),
        Sample("a sends as the internet", bytes(_ip(YOU, B4) / TCP(dport=22, flags="S")), EGRESS),
        Sample("a sends as b v6", bytes(_ip(B6, INT6) / UDP(dport=53)), EGRESS),
        Sample("b's traffic arrives on a's ENI", bytes(_ip(B4, B4) / TCP(dport=22, flags="S")), INGRESS),
        Sample("to a from b's address, spoofed by the internet", bytes(_ip(B4, A4) / TCP(dport=5432, flags="S")),
               INGRESS),
        Sample("from a to itself", bytes(_ip(A4, A4) / TCP(dport=22, flags="S")), INGRESS),
        Sample("link-local source v4 to 22", bytes(_ip("169.254.1.1", A4) / TCP(dport=22, flags="S")), INGRESS),
        Sample("dns port from VPC+2", bytes(_ip(DNS, A4) / UDP(sport=53, dport=9999)), INGRESS),
        # IPv6 extension chains
        Sample("v6 hbh+dest+routing to 22", bytes(IPv6(src=INT6, dst=A6) / IPv6ExtHdrHopByHop() /
                                                  IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting() /
                                                  TCP(dport=22, flags="S")), INGRESS),
        Sample("v6 chain with AH to 53", bytes(IPv6(src=INT6, dst=A6) / IPv6ExtHdrHopByHop() / AH(nh=17, payloadlen=1) /
                                               UDP(dport=53)), INGRESS),
        Sample("v6 chain cut", _cut(IPv6(src=INT6, dst=A6) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() /
                                    TCP(dport=22), 50), INGRESS),
        Sample("v6 eight hop-by-hops", bytes(IPv6(src=INT6, dst=A6) / (IPv6ExtHdrHopByHop() / IPv6ExtHdrHopByHop()) /
                                             (IPv6ExtHdrHopByHop() / IPv6ExtHdrHopByHop()) /
                                             (IPv6ExtHdrHopByHop() / IPv6ExtHdrHopByHop()) /
                                             UDP(dport=53)), INGRESS),
        Sample("v6 neighbour solicitation", bytes(IPv6(src="fe80::9", dst="ff02::1:ff00:80") /
                                                  ICMPv6ND_NS(tgt=A6)), INGRESS),
        Sample("v6 echo out", bytes(IPv6(src=A6, dst=INT6) / ICMPv6EchoRequest(id=3)), EGRESS),
        # ICMP errors whose embedded header claims a flow that does not exist
        Sample("port unreachable about nothing", bytes(IP(src=INT, dst=A4) / ICMP(type=3, code=3) /
                                                       IP(src=A4, dst=INT) / UDP(sport=5, dport=6)), INGRESS),
        Sample("frag needed with cut inner", bytes(IP(src=INT, dst=A4) / ICMP(type=3, code=4) /
                                                   _cut(IP(src=A4, dst=INT) / TCP(sport=5, dport=6), 24)), INGRESS),
        Sample("time exceeded with v6 inner", bytes(IP(src=INT, dst=A4) / ICMP(type=11) /
                                                    IPv6(src=A6, dst=INT6) / UDP()), INGRESS),
        Sample("v6 unreachable about nothing", bytes(IPv6(src=INT6, dst=A6) / ICMPv6DestUnreach() /
                                                     IPv6(src=A6, dst=INT6) / TCP(sport=1, dport=2)), INGRESS),
        Sample("icmp error nested in icmp error", bytes(IP(src=INT, dst=A4) / ICMP(type=3) / IP(src=A4, dst=INT) /
                                                        ICMP(type=3) / IP(src=INT, dst=A4) / UDP()), INGRESS),
        Sample("icmp timestamp", bytes(IP(src=INT, dst=A4) / ICMP(type=13)), INGRESS),
        Sample("icmp echo to b from a's ENI", bytes(IP(src=A4, dst=B4) / ICMP(type=8)), EGRESS),
        Sample("icmp type 255", bytes(IP(src=INT, dst=A4) / ICMP(type=255, code=255)), INGRESS),
    ]
    # the same packets seen from b's side too (b's SG is different)
    return samples + [Sample(s.name + " (at b)", s.data, s.direction, "b") for s in samples]


# --- hypothesis: the same kinds of packets with random fields ---------------------------------

def _l4(draw, proto: int, version: int) -> ScapyPacket:
    port = st.one_of(st.sampled_from(PORTS), st.integers(0, 65535))
    if proto == 6:
        return TCP(sport=draw(port), dport=draw(port), flags=draw(st.integers(0, 255)))
    if proto == 17:
        return UDP(sport=draw(port), dport=draw(port))
    kind = draw(st.one_of(st.sampled_from([0, 3, 8, 11, 13, 128, 129, 1, 2, 135]), st.integers(0, 255)))
    code = draw(st.one_of(st.sampled_from([0, 3, 4]), st.integers(0, 255)))
    message = ICMP(type=kind, code=code, id=draw(st.integers(0, 65535))) if proto == 1 else \
        Raw(bytes([kind, code, 0, 0]) + draw(st.binary(min_size=4, max_size=4)))
    return message


def _embedded(draw, version: int) -> ScapyPacket:
    """An original datagram inside an ICMP error: any addresses, maybe cut short."""
    pool = ADDRESSES4 if version == 4 else ADDRESSES6
    proto = draw(st.sampled_from([6, 17, 1 if version == 4 else 58, 47]))
    inner = _ip(draw(st.sampled_from(pool)), draw(st.sampled_from(pool)), **({"proto": proto} if version == 4
                                                                            else {"nh": proto}))
    inner = inner / _l4(draw, proto, version) if proto != 47 else inner / Raw(b"gre!")
    data = bytes(inner)
    return Raw(data[:draw(st.integers(0, len(data)))])


@st.composite
def samples(draw) -> Sample:
    version = draw(st.sampled_from([4, 6]))
    pool = ADDRESSES4 if version == 4 else ADDRESSES6
    src, dst = draw(st.sampled_from(pool)), draw(st.sampled_from(pool))
    icmp = 1 if version == 4 else 58
    proto = draw(st.one_of(st.sampled_from([6, 17, icmp, 47]), st.integers(0, 255)))
    if version == 4:
        header = IP(src=src, dst=dst, proto=proto, ttl=draw(st.integers(0, 255)))
        if draw(st.booleans()):
            header.options = draw(st.sampled_from([[IPOption_RR()], [IPOption_NOP()] * 4,
                                                   [IPOption_Router_Alert()]]))
        if draw(st.integers(0, 4)) == 0:
            header.frag = draw(st.integers(0, 8191))
            header.flags = draw(st.sampled_from(["", "MF", "DF"]))
        if draw(st.integers(0, 5)) == 0:
            header.chksum = draw(st.integers(0, 65535))
        packet = header
    else:
        packet = IPv6(src=src, dst=dst)
        for ext in draw(st.lists(st.sampled_from(["hbh", "dest", "routing", "frag", "ah"]), max_size=4)):
            packet = packet / {"hbh": IPv6ExtHdrHopByHop(), "dest": IPv6ExtHdrDestOpt(),
                               "routing": IPv6ExtHdrRouting(), "ah": AH(payloadlen=1),
                               "frag": IPv6ExtHdrFragment(offset=draw(st.sampled_from([0, 0, 1, 100])),
                                                          m=draw(st.integers(0, 1)))}[ext]
        packet.lastlayer().nh = proto
    if proto in (6, 17) or proto == icmp:
        l4 = _l4(draw, proto, version)
        if proto == icmp and draw(st.booleans()):
            l4 = l4 / _embedded(draw, version)
        packet = packet / l4
    else:
        packet = packet / Raw(draw(st.binary(max_size=24)))
    data = bytes(packet)
    if draw(st.integers(0, 5)) == 0:
        data = data[:draw(st.integers(0, len(data)))]
    return Sample("drawn", data, draw(st.sampled_from([INGRESS, EGRESS])), draw(st.sampled_from(["a", "b"])))
