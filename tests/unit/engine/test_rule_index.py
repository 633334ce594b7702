"""The port index of CompiledRules: the rule a packet meets first is the one a plain scan of the
whole list (/0 first, then file order) finds, for narrow, wide and protocol -1 rules mixed."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emulator.engine.packet import Packet
from emulator.engine.rules import NARROW_PORTS, CompiledRules

from .helpers import ingress, sg

HOST = "10.0.1.50"
SOURCES = ("198.51.100.7", "198.51.100.200", "203.0.113.9")
CIDRS = ("0.0.0.0/0", "198.51.100.0/24", "198.51.100.7/32", "203.0.113.0/24")

port_ranges = st.one_of(
    st.integers(0, 200).map(lambda p: (p, p)),                                       # one port
    st.tuples(st.integers(0, 200), st.integers(0, NARROW_PORTS * 2)).map(lambda t: (t[0], t[0] + t[1])),
    st.just((0, 65535)))
rules = st.lists(st.tuples(st.sampled_from(("tcp", "udp", "all")), port_ranges, st.sampled_from(CIDRS)),
                 min_size=1, max_size=30)


def scan(compiled: CompiledRules, packet: Packet):
    """The reference: every rule of the packet's protocol (and -1), in list order."""
    by_proto, wildcard = compiled._lists[False][4]
    for net, mask, a_lo, a_hi, _b_lo, _b_hi, _members, hit in by_proto.get(packet.proto, wildcard):
        if a_lo <= packet.dport <= a_hi and packet.src & mask == net:
            return hit
    return None


@settings(max_examples=300, deadline=None)
@given(rules, st.sampled_from((6, 17)), st.integers(0, 300), st.sampled_from(SOURCES))
def test_the_index_finds_the_rule_a_full_scan_finds(specs, proto, port, source) -> None:
    group = sg("h", [ingress(p, f"{lo}-{hi}", cidr) for p, (lo, hi), cidr in specs])
    compiled = CompiledRules([group], lambda sg_id, version: frozenset())
    packet = Packet.build(4, source, HOST, proto, 40000, port, length=60)
    assert compiled.match(packet, False) is scan(compiled, packet)


def test_a_thousand_one_port_rules_index_one_rule_per_port() -> None:
    group = sg("h", [ingress("tcp", 10_000 + n, "198.51.100.0/24") for n in range(1000)])
    compiled = CompiledRules([group], lambda sg_id, version: frozenset())
    by_port, wide = compiled._ports[False][4][6]
    assert len(by_port) == 1000 and all(len(rules) == 1 for rules in by_port.values()) and wide == []
    hit = compiled.match(Packet.build(4, SOURCES[0], HOST, 6, 40000, 10_999, length=60), False)
    assert hit is not None and hit.rule.ports.low == 10_999
    assert compiled.match(Packet.build(4, SOURCES[0], HOST, 6, 40000, 11_000, length=60), False) is None


# --- the parser's fast path ----------------------------------------------------------------------

FIELDS = ("version", "src", "dst", "proto", "sport", "dport", "tcp_flags", "icmp_type", "icmp_code", "icmp_id",
          "length", "fragment_offset", "more_fragments")


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=0, max_size=80), st.sampled_from((6, 17, 1)), st.integers(0, 120),
       st.integers(0, 0xFFFF), st.integers(0, 255), st.booleans())
def test_the_parse_fast_path_answers_as_the_general_one(tail, proto, total, frag, offset_byte, cut) -> None:
    """IPv4 headers without options, any total length, fragment bits, protocol and TCP offset."""
    from emulator.engine import packet as p
    header = bytes([0x45, 0]) + total.to_bytes(2, "big") + b"\0\0" + frag.to_bytes(2, "big") + \
        bytes([64, proto]) + b"\0\0" + bytes([10, 0, 0, 1, 10, 0, 0, 2])
    data = header + (tail[:12] + bytes([offset_byte]) + tail[13:] if len(tail) > 12 else tail)
    fast, general = p.parse(data, cut), p._parse(data, True, cut)
    if isinstance(general, str):
        assert fast == general
    else:
        assert not isinstance(fast, str)
        assert [getattr(fast, f) for f in FIELDS] == [getattr(general, f) for f in FIELDS]
        assert repr(fast.inner) == repr(general.inner)
