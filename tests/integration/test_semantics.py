"""SG semantics on real packets: stateful replies with no egress rules, SG references (and
hairpin through public IPs), the default SG, and IPv6."""
from __future__ import annotations

from .reach import Case, assert_reachability, running, topology

STATEFUL = """
name: stateful
vpc: {cidr: 10.0.0.0/16}
subnets: [{name: s, cidr: 10.0.1.0/24}]
security_groups:
  - name: server-sg
    ingress:
      - {protocol: tcp, ports: 5000, cidr: 10.0.0.0/16}
      - {protocol: udp, ports: 5353, cidr: 10.0.0.0/16}
      - {protocol: icmp, cidr: 10.0.0.0/16}
    egress: []
  - name: client-sg
    ingress: []
instances:
  - {name: server, subnet: s, private_ip: 10.0.1.10, security_groups: [server-sg],
     services: [{type: tcp, port: 5000}, {type: udp-echo, port: 5353}, {type: tcp, port: 6000}]}
  - {name: client, subnet: s, private_ip: 10.0.1.20, security_groups: [client-sg],
     services: [{type: tcp, port: 5000}]}
"""


def test_replies_need_no_egress_rule_for_tcp_udp_and_icmp(topology_file) -> None:
    with running(topology(topology_file(STATEFUL), "it-stateful")) as lab:
        assert_reachability(lab, [
            Case("client", "server", 5000, "open", label="tcp"),
            Case("client", "server", 5353, "reply", proto="udp", label="P5"),
            Case("client", "server", 0, "reply", proto="icmp", label="P1"),
            Case("client", "server", 6000, "timeout", label="rule"),   # listening, no rule
            Case("server", "client", 5000, "timeout", label="T7"),     # no egress: cannot initiate
            Case("server", "client", 0, "timeout", proto="icmp", label="T7"),
        ])


REFERENCES = """
name: refs
vpc: {cidr: 10.0.0.0/16}
subnets: [{name: s, cidr: 10.0.1.0/24}]
security_groups:
  - name: a-sg
    ingress: []
  - name: b-sg
    ingress:
      - {protocol: tcp, ports: 5432, group: a-sg}
      - {protocol: tcp, ports: 5433, cidr: 198.51.100.1/32}
  - name: x-sg
    ingress: [{protocol: tcp, ports: 22, cidr: 0.0.0.0/0}]
  - name: y-sg
    ingress:
      - {protocol: tcp, ports: 22, cidr: 0.0.0.0/0}
      - {protocol: -1, group: y-sg}
instances:
  - {name: a, subnet: s, private_ip: 10.0.1.10, public_ip: 198.51.100.1, security_groups: [a-sg]}
  - {name: b, subnet: s, private_ip: 10.0.1.20, public_ip: 198.51.100.2, security_groups: [b-sg],
     services: [{type: tcp, port: 5432}, {type: tcp, port: 5433}]}
  - {name: c, subnet: s, private_ip: 10.0.1.30, security_groups: [b-sg]}
  - {name: x1, subnet: s, private_ip: 10.0.1.41, security_groups: [x-sg]}
  - {name: x2, subnet: s, private_ip: 10.0.1.42, security_groups: [x-sg], services: [{type: tcp, port: 5432}]}
  - {name: y1, subnet: s, private_ip: 10.0.1.51, security_groups: [y-sg]}
  - {name: y2, subnet: s, private_ip: 10.0.1.52, security_groups: [y-sg], services: [{type: tcp, port: 5432}]}
  - {name: d1, subnet: s, private_ip: 10.0.1.61, services: [{type: tcp, port: 7000}]}
  - {name: d2, subnet: s, private_ip: 10.0.1.62, public_ip: 198.51.100.62, services: [{type: tcp, port: 7000}]}
internet:
  - {name: int, ip: 203.0.113.10}
"""


def test_references_default_sg_and_hairpin(topology_file) -> None:
    with running(topology(topology_file(REFERENCES), "it-refs")) as lab:
        assert_reachability(lab, [
            Case("a", "b", 5432, "open", label="ref"),              # source is a private IP of a-sg
            Case("c", "b", 5432, "timeout", label="ref"),           # c is not in a-sg
            Case("a", "198.51.100.2", 5432, "timeout", label="R4"),  # via public IP: source is a's public IP
            Case("a", "198.51.100.2", 5433, "open", label="R4"),    # ...which a CIDR rule does match
            Case("c", "198.51.100.2", 5433, "timeout", label="R4"),  # no public IP: no way out
            Case("x1", "x2", 5432, "timeout", label="R2"),          # no implicit self-allow
            Case("y1", "y2", 5432, "open", label="R3"),             # explicit self-reference
            Case("d1", "d2", 7000, "open", label="R1"),             # default SG: members talk freely
            Case("d2", "d1", 7000, "open", label="R1"),
            Case("int", "d2", 7000, "timeout", label="R1"),         # but nobody else gets in
        ])


DUAL_STACK = """
name: v6
vpc: {cidr: 10.0.0.0/16, ipv6_cidr: "fd00:10::/56"}
subnets: [{name: s, cidr: 10.0.1.0/24, ipv6_cidr: "fd00:10:0:1::/64"}]
security_groups:
  - name: v4-only
    ingress:
      - {protocol: tcp, ports: 80, cidr: 0.0.0.0/0}
      - {protocol: icmpv6, icmp_type: 128, icmp_code: 0, cidr: "::/0"}
instances:
  - {name: web, subnet: s, private_ip: 10.0.1.10, ipv6: "fd00:10:0:1::10", public_ip: 198.51.100.10,
     security_groups: [v4-only], services: [{type: http, port: 80}]}
  - {name: peer, subnet: s, private_ip: 10.0.1.20, ipv6: "fd00:10:0:1::20"}
internet:
  - {name: you, ip: 203.0.113.10, ipv6: "2001:db8:ff::10"}
"""


def test_ipv6_rules_are_separate_from_ipv4(topology_file) -> None:
    with running(topology(topology_file(DUAL_STACK), "it-v6")) as lab:
        assert_reachability(lab, [
            Case("you", "web", 80, "open", label="v4"),
            Case("you", "web", 80, "timeout", ipv6=True, label="R6"),   # 0.0.0.0/0 never matches IPv6
            Case("peer", "web", 80, "timeout", ipv6=True, label="R6"),
            Case("you", "web", 0, "reply", proto="icmp", ipv6=True, label="P3"),
            Case("you", "web", 0, "timeout", proto="icmp", label="P3"),  # no IPv4 ICMP rule
            Case("web", "you", 0, "reply", proto="icmp", ipv6=True, label="egress"),
        ])
