"""`scripts/bench --nat`: what the way through a NAT gateway costs, against the direct way out.

Two labs of the same shape, up one after the other in one run: `bench-nat-plain` with no enforcement
(the kernel's own figures: routing, the gateway namespace's NAT and the IGW's 1:1 NAT) and `bench-nat`
enforced as users run it (offload on). In each, one TCP stream (iperf3) to the internet host `net`
from `pub`, an instance with a public IP (out through the IGW, one queue trip per packet until
offloaded), and from `priv`, an instance of a private subnet whose route table sends 0.0.0.0/0 to the
NAT gateway (its SG egress, then the gateway's ENI both ways in the engine: no fast path there, its
subnet's NACL and its flow log see every packet). Medians over rounds, interleaved; ratios only.
"""
from __future__ import annotations

import statistics
import subprocess

from emulator.bench.labs import IPERF_PORT, down_quietly, json_run
from emulator.lab import lifecycle as lab
from emulator.lab import netns
from emulator.topology import parse

NET_IP, NAT_EIP = "203.0.113.80", "198.51.100.50"
LABS = {"plain": "bench-nat-plain", "enforced": "bench-nat"}


def nat_topology(name: str) -> dict:
    everything = [{"protocol": "-1", "cidr": "0.0.0.0/0"}]
    return {
        "name": name, "vpc": {"cidr": "10.0.0.0/16"},
        "subnets": [{"name": "public", "cidr": "10.0.1.0/24"}, {"name": "private", "cidr": "10.0.2.0/24"}],
        "security_groups": [{"name": "out-sg", "egress": everything}],
        "nat_gateways": [{"name": "nat-a", "subnet": "public", "private_ip": "10.0.1.20", "public_ip": NAT_EIP}],
        "route_tables": [{"name": "private-rt", "subnets": ["private"],
                          "routes": [{"destination": "0.0.0.0/0", "target": "nat-a"}]}],
        "instances": [{"name": "pub", "subnet": "public", "private_ip": "10.0.1.10", "public_ip": "198.51.100.10",
                       "security_groups": ["out-sg"]},
                      {"name": "priv", "subnet": "private", "private_ip": "10.0.2.10", "security_groups": ["out-sg"]}],
        "internet": [{"name": "net", "ip": NET_IP}],
    }


def _throughput(name: str, client: str, seconds: float) -> float:
    argv = lab.exec_argv(name, client, ["iperf3", "-c", NET_IP, "-p", str(IPERF_PORT), "-t", str(seconds), "-J"])
    out = json_run(argv, timeout=seconds + 30)
    if "error" in out:
        raise RuntimeError(f"iperf3 from {client} in {name}: {out['error']}")
    return float(out["end"]["sum_received"]["bits_per_second"])


def measure(seconds: float, rounds: int, progress=lambda message: None) -> dict:
    samples: dict[str, list[float]] = {}
    servers: list[subprocess.Popen] = []
    try:
        for mode, name in LABS.items():
            down_quietly(name)
            progress(f"{name}: up")
            lab.up(parse(nat_topology(name), "bench").topology, enforce=mode == "enforced")
            servers.append(subprocess.Popen(lab.exec_argv(name, "net", ["iperf3", "-s", "-p", str(IPERF_PORT)]),
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            env=netns.package_env()))
        for round_number in range(rounds):
            progress(f"round {round_number + 1}/{rounds}: pub (igw) and priv (nat-a) -> net, both labs")
            for mode, name in LABS.items():
                for client, path in (("pub", "igw"), ("priv", "nat")):
                    samples.setdefault(f"{mode}_{path}", []).append(_throughput(name, client, seconds))
    finally:
        for server in servers:
            server.terminate()
            server.wait(5)
        for name in LABS.values():
            down_quietly(name)
    mbps = {key: statistics.median(values) / 1e6 for key, values in samples.items()}
    return {**{f"nat_throughput_mbps_{key}": value for key, value in mbps.items()},
            "nat_ratio_plain_nat_to_igw": mbps["plain_nat"] / mbps["plain_igw"],
            "nat_ratio_enforced_nat_to_igw": mbps["enforced_nat"] / mbps["enforced_igw"],
            "nat_ratio_enforced_to_plain_igw": mbps["enforced_igw"] / mbps["plain_igw"],
            "nat_ratio_enforced_to_plain_nat": mbps["enforced_nat"] / mbps["plain_nat"]}
