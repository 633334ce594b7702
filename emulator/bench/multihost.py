"""`scripts/bench --multihost`: two "hosts" on one machine, joined by the kernel's VXLAN, each with
its own fabric and its own engine enforcing only its own ENIs (docs/SCALING.md, "More than one
machine"). Simulated: each host is a lab; their fabric namespaces are joined by an underlay veth
(192.0.2.0/30, TEST-NET-1, nothing routed beyond it) carrying VXLAN (VNI 42, UDP 4789), and each
fabric routes the other host's subnet through the tunnel. What is real: the encapsulation, the
routing, and two engines each checking its own ENIs (the sender's egress on host 1, the receiver's
ingress on host 2). What is not: the SG membership is not shared (a rule on host 2 names host 1's
instances by CIDR), and nothing coordinates live changes between the engines.

Measured in one run: the TCP round trip between two instances of host 1 and between an instance
of host 1 and one of host 2, and that host 2's engine enforces its ingress on tunnelled packets.
"""
from __future__ import annotations

import subprocess
import sys

from emulator.bench.scale import PINGPONG_PORT, round_trip_us
from emulator.lab import lifecycle as lab
from emulator.lab import netns
from emulator.plan import marker, namespace_name
from emulator.topology import parse

HOSTS = ("mh-h1", "mh-h2")
UNDERLAY = ("192.0.2.1", "192.0.2.2")     # /30 between the two fabrics
OVERLAY = ("172.31.255.1", "172.31.255.2")  # /30 on the VXLAN devices
SUBNETS = ("10.0.1.0/24", "10.0.2.0/24")
VNI = 42


def host_topology(index: int) -> dict:
    """Host 1 runs a1 and a2, host 2 runs b1: one VPC, a subnet per host. Both admit TCP to the
    benchmark's echo ports from the whole VPC (by CIDR: membership is not shared between hosts)."""
    names = ("a1", "a2") if index == 0 else ("b1",)
    return {"name": HOSTS[index], "vpc": {"cidr": "10.0.0.0/16"},
            "subnets": [{"name": f"s{index + 1}", "cidr": SUBNETS[index]}],
            "security_groups": [{"name": "echo-sg", "ingress": [
                {"protocol": "tcp", "ports": f"{PINGPONG_PORT}-{PINGPONG_PORT + 1}", "cidr": "10.0.0.0/16"}]}],
            "instances": [{"name": n, "subnet": f"s{index + 1}", "security_groups": ["echo-sg"]} for n in names],
            "options": {"offload": False}}


def join() -> None:
    """The underlay veth and a VXLAN device in each fabric, marked as that lab's (so `down` removes
    them with the fabric), and a route to the other host's subnet through the tunnel."""
    fabrics = [namespace_name(h, "vpc") for h in HOSTS]
    netns.batch(fabrics[0], ["link add ul-h2 type veth peer name ul-h1",
                             f"link set ul-h2 alias {marker(HOSTS[0])}",
                             f"link set ul-h1 alias {marker(HOSTS[1])}",
                             f"link set ul-h1 netns {fabrics[1]}"])
    for me, fabric in enumerate(fabrics):
        other = 1 - me
        underlay, tunnel = f"ul-h{other + 1}", f"vx-h{other + 1}"
        netns.batch(fabric, [
            f"link set {underlay} mtu 1600 up",          # room for the 50-byte VXLAN header: inner MTU 1500
            f"addr add {UNDERLAY[me]}/30 dev {underlay}",
            f"link add {tunnel} type vxlan id {VNI} local {UNDERLAY[me]} remote {UNDERLAY[other]} "
            f"dstport 4789 dev {underlay}",
            f"link set {tunnel} alias {marker(HOSTS[me])}",
            f"link set {tunnel} mtu 1500 up",
            f"addr add {OVERLAY[me]}/30 dev {tunnel}",
            f"route add {SUBNETS[other]} via {OVERLAY[other]} dev {tunnel}"])


def _probe(name: str, src: str, address: str, port: int) -> str:
    """`sgemu probe` as a user runs it: open, refused or timeout."""
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "probe", "--lab", name, src, address,
                           "--port", str(port), "--timeout", "2"], capture_output=True, text=True, timeout=60,
                          env=netns.package_env())
    return done.stdout.strip() or done.stderr.strip()


def measure(progress=lambda message: None) -> dict:
    for name in HOSTS:
        if name in lab.running_labs():
            lab.down(name)
    try:
        for index, name in enumerate(HOSTS):
            progress(f"host {index + 1} ({name}): up")
            lab.up(parse(host_topology(index), "bench").topology)
        progress("joining the hosts' fabrics with VXLAN")
        join()
        progress("round trips a1 -> a2 (one host) and a1 -> b1 (through the tunnel)")
        local = round_trip_us(HOSTS[0], "a1", "a2")
        remote = round_trip_us(HOSTS[0], "a1", "b1", server_lab=HOSTS[1])
        b1 = str(lab.lab_plan(HOSTS[1]).address("b1", "b1"))
        # Allowed by b1's SG, nothing listens now: refused (both engines passed it). Port 22 is not
        # in b1's SG: host 2's engine drops the tunnelled SYN, a timeout.
        allowed = _probe(HOSTS[0], "a1", b1, PINGPONG_PORT + 1)
        blocked = _probe(HOSTS[0], "a1", b1, 22)
        return {"multihost_rtt_us_same_host": local, "multihost_rtt_us_across_vxlan": remote,
                "multihost_rtt_ratio": remote / local, "multihost_b1_allowed_port_from_a1": allowed,
                "multihost_b1_port_22_from_a1": blocked}
    finally:
        for name in HOSTS:
            lab.down(name)
