"""Hostile packets from raw sockets inside a running lab: the engine stays up (same pid, fresh
health, no engine errors), counts what it drops, and every probe still gets the right answer."""
from __future__ import annotations

import sys
import time

import yaml

from emulator.lab import lifecycle as lab
from emulator.lab import state
from emulator.topology import parse

from .reach import Case, assert_reachability, run_in
from .test_faults import gone

LAB = """
name: it7-raw
vpc: {cidr: 10.0.0.0/16}
subnets: [{name: s, cidr: 10.0.1.0/24}]
security_groups:
  - name: web-sg
    ingress: [{protocol: tcp, ports: 80, cidr: 0.0.0.0/0}]
  - name: db-sg
  - name: app-sg
    ingress: [{protocol: tcp, ports: 5432, group: db-sg}]
instances:
  - {name: web, subnet: s, private_ip: 10.0.1.10, public_ip: 198.51.100.10, security_groups: [web-sg],
     services: [{type: http, port: 80}]}
  - {name: db, subnet: s, private_ip: 10.0.1.20, security_groups: [db-sg]}
  - {name: app, subnet: s, private_ip: 10.0.1.30, security_groups: [app-sg]}
internet:
  - {name: you, ip: 203.0.113.10}
"""

# Runs inside a node with scapy (L3 raw sockets: the kernel fills in the IP length and checksum,
# so what reaches the fabric is valid IP carrying hostile contents).
SENDER = r"""
import random, sys
from scapy.all import IP, TCP, UDP, ICMP, Raw, IPOption_RR, conf, send
conf.verb = 0
src, dst, spoof_as, spoof_to = sys.argv[1:5]      # scapy cannot guess src behind a /32
random.seed(7)
packets = [
    IP(src=src, dst=dst, proto=6) / Raw(b"\x00\x50"),                          # TCP header cut to 2 bytes
    IP(src=src, dst=dst, proto=6) / Raw(b"\x00\x01\x00\x50" + b"\x00" * 8 + b"\xf0\x02" + b"\x00" * 6),  # data offset 15
    IP(src=src, dst=dst, proto=17) / Raw(b"\x00\x35\x00"),                     # UDP header cut
    IP(src=src, dst=dst, proto=1) / Raw(b"\x08"),                              # ICMP header cut
    IP(src=src, dst=dst) / TCP(dport=80, flags="SF"),
    IP(src=src, dst=dst) / TCP(dport=22, flags="SF"),
    IP(src=src, dst=dst) / TCP(dport=22, flags="A"),
    IP(src=src, dst=dst) / TCP(dport=22, flags="FPU"),
    IP(src=src, dst=dst) / TCP(dport=80, flags="S", chksum=0xBAD),
    IP(src=src, dst=dst, options=[IPOption_RR()]) / TCP(dport=80, flags="S"),
    IP(src=src, dst=dst, proto=253) / Raw(b"unknown"),
    IP(src=src, dst=dst, proto=0) / Raw(b""),
    IP(src=src, dst=dst) / UDP(dport=53, len=0),
    IP(src=src, dst=dst) / ICMP(type=3, code=3) / IP(src=dst, dst="10.9.9.9") / UDP(sport=1, dport=2),
    IP(src=src, dst=dst, flags="MF", proto=6) / Raw(b"\x00\x01\x00\x16" + b"\x00" * 20),
    IP(src=src, dst=dst, frag=100, proto=17) / Raw(b"y" * 32),
]
packets += [IP(src=src, dst=dst, proto=random.choice([6, 17, 1, 47, 132, 255])) / Raw(bytes(random.randrange(256)
            for _ in range(random.randrange(0, 40)))) for _ in range(300)]
if spoof_as != "-":
    packets += [IP(src=spoof_as, dst=spoof_to) / TCP(sport=40000 + n, dport=5432, flags="S") for n in range(5)]
send(packets, inter=0.001)
print(len(packets))
"""


def _counters(name: str, instance: str) -> dict[str, int]:
    return lab.status(name).engine.enis[instance]["counters"]


def test_hostile_packets_from_raw_sockets_do_not_disturb_the_engine() -> None:
    topo = parse(yaml.safe_load(LAB), "it7-raw.yaml").topology
    lab.up(topo)
    try:
        time.sleep(1.2)
        before = lab.status(topo.name).engine
        assert before.alive
        from_outside = run_in(topo.name, "you", [sys.executable, "-c", SENDER, "203.0.113.10", "198.51.100.10", "-", "-"], timeout=120)
        assert from_outside.returncode == 0, from_outside.stderr
        from_web = run_in(topo.name, "web", [sys.executable, "-c", SENDER, "10.0.1.10", "10.0.1.30", "10.0.1.20", "10.0.1.30"],
                          timeout=120)
        assert from_web.returncode == 0, from_web.stderr
        time.sleep(1.5)                                   # a fresh health.json after the burst
        after = lab.status(topo.name).engine
        assert after.alive and after.pid == before.pid
        assert state.read_health(topo.name)["engine_errors"] == 0
        web, app = _counters(topo.name, "web"), _counters(topo.name, "app")
        assert web["malformed"] >= 2 * 4, web            # cut headers, from outside and from web
        assert web["ENI_SG_RULES_MISMATCH"] >= 4, web    # SYN+FIN, bare ACK... to 22 from outside
        assert web["ENI_SOURCE_DEST_CHECK_RESTRICTION"] >= 5, web
        assert app["accepted"] == 0 and app["dropped"] > 0, f"hostile traffic got into app: {app}"
        assert_reachability(topo.name, [
            Case("you", "web", 80, "open"), Case("you", "web", 22, "timeout"),
            Case("db", "app", 5432, "refused"), Case("web", "app", 5432, "timeout")])
        assert lab.status(topo.name).engine.pid == before.pid
    finally:
        lab.down(topo.name)
    assert gone(topo.name) == []
