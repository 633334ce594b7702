"""Network ACLs in the engine: rule order, first match, the `*` deny, statelessness, the order with the SGs,
exemptions, the short-circuit of allow-all NACLs, and live changes with AWS's error codes."""
from __future__ import annotations

from ipaddress import ip_network

import pytest
from scapy.layers.inet import IP

from emulator.engine.nacl import OPEN_GATE, NaclVerdict, SubnetGate, enter, leave
from emulator.engine.naclstate import NaclState
from emulator.engine.packet import Packet, parse
from emulator.engine.verdict import INFRASTRUCTURE, SUBNET_ACL_RESTRICTION
from emulator.errors import AwsApiError
from emulator.model import (
    NACL_ALLOW,
    NACL_DENY,
    PROTO_ALL,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    Direction,
    NaclEntry,
    NetworkAcl,
    PortRange,
)
from emulator.topology import parse as parse_topology

from .helpers import icmp, proto_packet, tcp, udp

IN, OUT = Direction.INGRESS, Direction.EGRESS
WEB, APP, APP2, YOU = "10.0.1.10", "10.0.2.10", "10.0.2.20", "203.0.113.10"


def entry(number: int, action: str, protocol: int = PROTO_ALL, cidr: str = "0.0.0.0/0", ports=None,
          direction: Direction = IN, icmp_type: int = -1, icmp_code: int = -1) -> NaclEntry:
    port_range = PortRange(*ports) if isinstance(ports, tuple) else PortRange(ports, ports) if ports else None
    return NaclEntry(number, direction, action, protocol, ip_network(cidr), port_range, icmp_type, icmp_code)


def gate(*entries: NaclEntry) -> SubnetGate:
    nacl = NetworkAcl("n", "acl-00000001", (), tuple(e for e in entries if e.direction is IN),
                      tuple(e for e in entries if e.direction is OUT))
    return SubnetGate("s", nacl, int(ip_network("10.0.0.0/16").network_address) + 2)


def pkt(raw: bytes) -> Packet:
    packet = parse(raw)
    assert isinstance(packet, Packet)
    return packet


def inbound(g: SubnetGate, raw: bytes) -> NaclVerdict:
    verdict = g.check(pkt(raw), False)
    assert isinstance(verdict, NaclVerdict)
    return verdict


# --- one NACL table ---------------------------------------------------------------------------

def test_the_lowest_number_decides_whatever_the_file_order():
    g = gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=22), entry(90, NACL_DENY, cidr="203.0.113.0/24"))
    verdict = inbound(g, tcp(YOU, WEB, 40000, 22))
    assert not verdict.accepted and verdict.rule_number == "90" and verdict.reason == SUBNET_ACL_RESTRICTION
    assert inbound(g, tcp("198.51.100.7", WEB, 40000, 22)).rule_number == "100"


def test_an_allow_before_a_deny_wins():
    g = gate(entry(80, NACL_ALLOW, PROTO_TCP, ports=22), entry(90, NACL_DENY, cidr="203.0.113.0/24"))
    assert inbound(g, tcp(YOU, WEB, 40000, 22)).accepted
    assert not inbound(g, tcp(YOU, WEB, 40000, 23)).accepted


def test_no_match_is_the_final_star_deny():
    g = gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=80))
    verdict = inbound(g, tcp(YOU, WEB, 40000, 81))
    assert not verdict.accepted and verdict.entry is None and verdict.rule_number == "*"
    assert "rule * deny (no inbound rule matches)" in verdict.describe()


def test_ports_are_destination_ports_in_both_directions():
    g = gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=(1024, 65535), direction=OUT))
    assert g.check(pkt(tcp(WEB, YOU, 80, 40000, "SA")), True).accepted         # the reply's dport
    assert not g.check(pkt(tcp(WEB, YOU, 40000, 80)), True).accepted          # sport never matches


def test_protocol_all_and_other_protocols_ignore_ports_and_types():
    g = gate(entry(100, NACL_ALLOW, PROTO_ALL, ports=22), entry(110, NACL_ALLOW, 47, "10.0.0.0/8"))
    assert inbound(g, udp(YOU, WEB, 5, 53)).accepted and inbound(g, icmp(YOU, WEB, 13)).accepted
    g = gate(entry(110, NACL_ALLOW, 47))
    assert inbound(g, proto_packet(YOU, WEB, 47)).accepted
    assert not inbound(g, tcp(YOU, WEB, 1, 2)).accepted


def test_tcp_rules_never_match_udp():
    g = gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=53))
    assert not inbound(g, udp(YOU, WEB, 40000, 53)).accepted
    g = gate(entry(100, NACL_ALLOW, PROTO_UDP, ports=53))
    assert inbound(g, udp(YOU, WEB, 40000, 53)).accepted


def test_icmp_type_and_code():
    # N15: echo request in, echo reply out; a timestamp request (13) is dropped
    g = gate(entry(100, NACL_ALLOW, PROTO_ICMP, icmp_type=8), entry(100, NACL_ALLOW, PROTO_ICMP, icmp_type=0,
                                                                    direction=OUT))
    assert inbound(g, icmp(YOU, WEB, 8)).accepted
    assert g.check(pkt(icmp(WEB, YOU, 0)), True).accepted
    assert not inbound(g, icmp(YOU, WEB, 13)).accepted
    g = gate(entry(100, NACL_ALLOW, PROTO_ICMP, icmp_type=3, icmp_code=4))
    assert inbound(g, icmp(YOU, WEB, 3, 4)).accepted and not inbound(g, icmp(YOU, WEB, 3, 3)).accepted


def test_ipv4_rules_never_match_ipv6_traffic():
    # N14: an IPv4-only allow leaves IPv6 to the `*` rule
    g = gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=80))
    assert inbound(g, tcp(YOU, WEB, 40000, 80)).accepted
    verdict = inbound(g, tcp("2001:db8::10", "fd00:10:0:1::10", 40000, 80))
    assert not verdict.accepted and verdict.rule_number == "*"


def test_only_an_all_ports_rule_decides_a_non_initial_fragment():
    fragment = bytes(IP(src=YOU, dst=WEB, frag=100, proto=6) / (b"x" * 8))
    assert not inbound(gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=(0, 65535 - 1))), fragment).accepted
    assert inbound(gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=(0, 65535))), fragment).accepted
    assert inbound(gate(entry(100, NACL_ALLOW)), fragment).accepted


def test_infrastructure_traffic_is_never_filtered():
    # N20: a deny-all NACL leaves the VPC's DNS (base + 2), metadata and link-local alone
    g = gate(entry(1, NACL_DENY), entry(2, NACL_DENY, direction=OUT))
    dns = udp(WEB, "10.0.0.2", 40000, 53)
    assert g.check(pkt(dns), True).reason == INFRASTRUCTURE
    assert g.check(pkt(tcp(WEB, "169.254.169.254", 40000, 80)), True).accepted
    assert not g.check(pkt(udp(WEB, "10.0.0.3", 40000, 53)), True).accepted


def test_allow_all_first_rules_short_circuit_per_family_and_direction():
    g = gate(entry(100, NACL_ALLOW), entry(100, NACL_ALLOW, direction=OUT, cidr="::/0"))
    assert g.open_in[4] and not g.open_in[6] and g.open_out[6] and not g.open_out[4]
    assert not gate(entry(100, NACL_ALLOW, cidr="10.0.0.0/8")).open_in[4]
    assert not gate(entry(90, NACL_DENY, PROTO_TCP, ports=22), entry(100, NACL_ALLOW)).open_in[4]
    assert not gate(entry(100, NACL_ALLOW, PROTO_TCP, ports=(0, 65535))).open_in[4]   # tcp only
    assert OPEN_GATE.open_in[4] and OPEN_GATE.open_in[6] and OPEN_GATE.open_out[4] and OPEN_GATE.open_out[6]


# --- with the SGs: order and statelessness ----------------------------------------------------

DOC = {
    "name": "n", "vpc": {"cidr": "10.0.0.0/16", "ipv6_cidr": "fd00:10::/56"},
    "subnets": [{"name": "public", "cidr": "10.0.1.0/24", "ipv6_cidr": "fd00:10:0:1::/64"},
                {"name": "private", "cidr": "10.0.2.0/24"}],
    "security_groups": [{"name": "open", "ingress": [{"protocol": "all", "cidr": "0.0.0.0/0"}]},
                        {"name": "ssh", "ingress": [{"protocol": "tcp", "ports": 22, "cidr": "10.0.1.0/24"}]}],
    "network_acls": [{"name": "private-nacl", "subnets": ["private"],
                      "ingress": [{"rule": 100, "action": "allow", "protocol": "tcp", "ports": 22,
                                   "cidr": "10.0.1.0/24"}],
                      "egress": [{"rule": 110, "action": "allow", "protocol": "tcp", "ports": "49152-65535",
                                  "cidr": "0.0.0.0/0"}]}],
    "instances": [{"name": "web", "subnet": "public", "private_ip": WEB, "security_groups": ["open"]},
                  {"name": "app", "subnet": "private", "private_ip": APP, "security_groups": ["ssh"]},
                  {"name": "app2", "subnet": "private", "private_ip": APP2, "security_groups": ["open"]}],
}


class Lab:
    """The engine's path as the queue handler composes it: SG egress, NACL out and NACL in only when
    the subnet boundary is crossed, SG ingress."""

    def __init__(self, doc: dict = DOC):
        from emulator.engine.firewall import build_firewalls
        self.topology = parse_topology(doc, "n.yaml").topology
        self.sgs, self.firewalls = build_firewalls(self.topology)
        self.nacls = NaclState(self.topology)
        self.owner = {str(a): i for i in self.topology.instances for a in i.addresses}
        self.now = 1.0

    def send(self, raw: bytes) -> list:
        packet = pkt(raw)
        src, dst = self.owner.get(str(packet.src_ip)), self.owner.get(str(packet.dst_ip))
        crossing = src is None or dst is None or src.subnet != dst.subnet
        verdicts = []
        if src is not None:
            g = self.nacls.gate(src.subnet) if crossing else None
            verdicts.append(leave(self.firewalls[src.name], packet, self.now, g))
            if not verdicts[-1].accepted:
                return verdicts
        if dst is not None:
            g = self.nacls.gate(dst.subnet) if crossing else None
            verdicts.append(enter(self.firewalls[dst.name], packet, self.now, g))
        return verdicts


def delivered(verdicts: list) -> bool:
    return all(v.accepted for v in verdicts)


def test_missing_ephemeral_rule_kills_the_syn_ack_of_an_sg_allowed_connection():
    # N21: the server subnet's outbound allows 49152-65535 only; a Linux client port 40000 times out
    lab = Lab()
    assert delivered(lab.send(tcp(WEB, APP, 40000, 22, "S")))                    # the SYN reaches app
    reply = lab.send(tcp(APP, WEB, 22, 40000, "SA"))
    assert not delivered(reply) and isinstance(reply[-1], NaclVerdict) and reply[-1].outbound
    assert len(reply) == 1 and lab.firewalls["app"].table.tracked == 1   # the SG tracks it; the NACL drops it
    assert delivered(lab.send(tcp(WEB, APP, 50000, 22, "S")))
    assert delivered(lab.send(tcp(APP, WEB, 22, 50000, "SA")))


def test_a_nacl_inbound_drop_never_reaches_the_sg():
    lab = Lab()
    verdicts = lab.send(tcp(WEB, APP, 40000, 23, "S"))
    assert isinstance(verdicts[-1], NaclVerdict) and not verdicts[-1].accepted
    assert len(lab.firewalls["app"].table) == 0                # no flow opened behind the NACL


def test_same_subnet_traffic_never_meets_the_nacl():
    # N8: the NACL would deny app <-> app2 on 3306, but they share a subnet
    lab = Lab()
    assert delivered(lab.send(tcp(APP, APP2, 40000, 3306, "S")))
    assert delivered(lab.send(tcp(APP2, APP, 3306, 40000, "SA")))


def test_a_deny_added_later_stops_an_open_tracked_connection_at_its_next_packet():
    # N16: stateless means stateless, tracked or not
    lab = Lab()
    assert delivered(lab.send(tcp(WEB, APP, 50000, 22, "S")))
    assert delivered(lab.send(tcp(APP, WEB, 22, 50000, "SA")))
    assert delivered(lab.send(tcp(WEB, APP, 50000, 22, "A")))
    held = lab.nacls.gate("private")
    lab.nacls.create_entry("private-nacl", entry(50, NACL_DENY, cidr="10.0.1.10/32"))
    assert held is lab.nacls.gate("private")                   # changed in place: handlers see it
    verdicts = lab.send(tcp(WEB, APP, 50000, 22, "PA"))
    assert not delivered(verdicts) and verdicts[-1].rule_number == "50"
    lab.nacls.delete_entry("private-nacl", IN, 50)
    assert delivered(lab.send(tcp(WEB, APP, 50000, 22, "PA")))


def test_associating_an_empty_nacl_cuts_open_flows_and_moving_back_restores_them():
    # N17
    doc = {**DOC, "network_acls": [*DOC["network_acls"], {"name": "empty"}]}
    lab = Lab(doc)
    assert delivered(lab.send(tcp(WEB, APP, 50000, 22, "S")))
    old, new = lab.nacls.associate("empty", "private")
    assert (old, new) == (lab.nacls.nacl("private-nacl").id, lab.nacls.nacl("empty").id)
    assert not delivered(lab.send(tcp(APP, WEB, 22, 50000, "SA")))
    lab.nacls.associate("private-nacl", "private")
    assert delivered(lab.send(tcp(APP, WEB, 22, 50000, "SA")))
    assert [n.subnets for n in lab.nacls.network_acls()] == [(), ("private",), ()]


# --- live changes and their refusals ----------------------------------------------------------

def code(call, *args) -> str:
    with pytest.raises(AwsApiError) as caught:
        call(*args)
    return caught.value.code


def test_error_codes_and_refusals_change_nothing():
    lab = Lab()
    state = lab.nacls
    before = (state.version, state.network_acls())
    # N11: the same number inbound twice is refused; outbound it is another key
    assert code(state.create_entry, "private-nacl", entry(100, NACL_DENY)) == "NetworkAclEntryAlreadyExists"
    assert code(state.replace_entry, "private-nacl", entry(7, NACL_DENY)) == "InvalidNetworkAclEntry.NotFound"
    assert code(state.delete_entry, "private-nacl", IN, 7) == "InvalidNetworkAclEntry.NotFound"
    assert code(state.create_entry, "acl-0123456789abcdef0", entry(1, NACL_DENY)) == "InvalidNetworkAclID.NotFound"
    assert code(state.associate, "private-nacl", "nowhere") == "InvalidSubnetID.NotFound"
    assert (state.version, state.network_acls()) == before
    state.create_entry("private-nacl", entry(100, NACL_DENY, direction=OUT, cidr="10.9.0.0/16"))
    assert [e.rule_number for e in state.nacl("private-nacl").egress] == [100, 110]


def test_the_rule_quota_counts_the_star_rule_per_family():
    # N19: 19 IPv4 rules + `*` fill a quota of 20; an IPv6 rule is counted apart
    lab = Lab()
    state = lab.nacls
    for n in range(2, 20):
        state.create_entry("private-nacl", entry(n, NACL_ALLOW, cidr=f"10.{n}.0.0/16"))
    assert code(state.create_entry, "private-nacl", entry(200, NACL_ALLOW)) == "NetworkAclEntryLimitExceeded"
    state.create_entry("private-nacl", entry(201, NACL_ALLOW, cidr="::/0"))
    # a replace that moves a rule to the full family is refused too; within it, it is fine
    assert code(state.replace_entry, "private-nacl", entry(201, NACL_ALLOW)) == "NetworkAclEntryLimitExceeded"
    state.replace_entry("private-nacl", entry(2, NACL_DENY, cidr="10.2.0.0/16"))


def test_replace_changes_the_verdict_at_once():
    lab = Lab()
    lab.nacls.replace_entry("private-nacl", entry(100, NACL_DENY, PROTO_TCP, "10.0.1.0/24", 22))
    assert not delivered(lab.send(tcp(WEB, APP, 50000, 22, "S")))
    assert lab.nacls.nacl("private-nacl").ingress[0].action == NACL_DENY


def test_a_model_without_nacls_gets_allow_all_gates():
    lab = Lab({**DOC, "network_acls": []})
    assert all(g.open_in[4] and g.open_out[4] and g.open_in[6] for g in lab.nacls.gates.values())
    lab.topology = lab.topology.__class__(**{**lab.topology.__dict__, "network_acls": ()})
    bare = NaclState(lab.topology)
    assert all(g.open_in[4] and g.open_out[4] for g in bare.gates.values())
