"""Real connection attempts from inside a lab node: `open`, `refused`, `timeout` or `reply`.

TCP and UDP run `emulator.guest.attempt`, ICMP runs `ping -c1`, in the source's namespace through
`ip netns exec`, like a user's own client would. `observer` turns them into `matrix` cells.
"""
from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from ipaddress import ip_address

from emulator.errors import LabError
from emulator.lab import netns, state
from emulator.lab.lifecycle import lab_plan
from emulator.lab.netns import package_env
from emulator.matrix import Cell, Observe, predict, predict_cells
from emulator.model import Outcome, Topology
from emulator.plan import LabPlan

OUTCOMES = frozenset(Outcome)

def resolve(lab: str, src: str, dst: str, ipv6: bool = False, plan: LabPlan | None = None) -> str:
    """DST as SRC would address it: a literal address, or a node name seen from SRC
    (private IP inside the VPC; public IP or IPv6 from the internet)."""
    plan = plan or lab_plan(lab)
    nodes = {ns.node: ns for ns in plan.nodes}
    gateways = {g.gateway: g for g in plan.gateway_enis}
    if src in gateways:
        raise LabError(f"{src} is a NAT gateway: it opens no connection of its own; probe from an instance "
                       f"or internet host (nodes: {', '.join(nodes)})")
    if src not in nodes:
        raise LabError(f"lab {lab!r} has no node {src!r} (nodes: {', '.join(nodes)})")
    try:
        return str(ip_address(dst))
    except ValueError:
        pass
    if dst in gateways and not ipv6:     # it answers nothing: a probe of it times out, as in AWS
        return gateways[dst].private_ip if nodes[src].role == "instance" else gateways[dst].public_ip
    if dst not in nodes:
        raise LabError(f"lab {lab!r} has no node {dst!r} (nodes: {', '.join(nodes)})")
    family = 6 if ipv6 else 4
    address = plan.address(src, dst, family)
    if address is None:
        if plan.address(src, src, family) is None:
            raise LabError(f"{src} has no IPv{family} address")
        where = "inside the VPC" if nodes[src].role == "instance" else "from the internet"
        raise LabError(f"{dst} has no IPv{family} address reachable {where} (from {src})")
    return address


def probe(lab: str, src: str, dst: str, port: int = 0, proto: str = "tcp", timeout: float = 2.0,
          ipv6: bool = False, plan: LabPlan | None = None) -> str:
    """`plan`: the lab's plan when the caller probes many times (a big lab's plan takes a while)."""
    plan = plan or lab_plan(lab)
    address = resolve(lab, src, dst, ipv6, plan)
    if proto == "icmp":
        argv = netns.exec_argv(plan.namespace(src).name,
                               ["ping", "-c1", "-n", f"-W{max(1, round(timeout))}", address])
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
        if result.returncode == 0:
            return "reply"
        if result.returncode == 1:
            return "timeout"
        raise LabError(f"ping from {src} to {address} failed: {result.stderr.strip() or result.stdout.strip()}")
    if proto not in ("tcp", "udp"):
        raise LabError(f"unknown protocol {proto!r}: use tcp, udp or icmp")
    if not 0 < port < 65536:
        raise LabError(f"{proto} needs a port between 1 and 65535 (--port)")
    argv = netns.exec_argv(plan.namespace(src).name, [sys.executable, "-m", "emulator.guest.attempt", proto,
                                                      address, str(port), str(timeout)])
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10, env=package_env())
    word = result.stdout.strip()
    if word in OUTCOMES:
        return word
    raise LabError(f"{proto} probe from {src} to {address}:{port} failed: "
                   f"{word.removeprefix('error ') or result.stderr.strip()}")


def observer(lab: str, timeout: float) -> Observe:
    topology = state.load_topology(lab)
    plan = lab_plan(lab)

    def observe(src: str, dst: str, port: int, proto: str) -> str:
        try:
            return probe(lab, src, dst, port, proto, timeout, plan=plan)
        except LabError:
            # DST has no address SRC could know (an internet host and a private-only instance):
            # try its private IP anyway, as someone who knows it would; the fabric must drop it.
            return probe(lab, src, str(topology.instance(dst).private_ip), port, proto, timeout, plan=plan)
    return observe


def observe_all(cells: list[Cell], proto: str, observe: Observe, workers: int = 16) -> list[Cell]:
    """Fill `observed` by running every probe, in parallel (they mostly wait on timeouts)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        seen = list(pool.map(lambda c: observe(c.src, c.dst, c.port, proto), cells))
    return [replace(c, observed=o) for c, o in zip(cells, seen)]


def observed_cells(lab: str, cells: list[tuple[str, str, int]], proto: str,
                   timeout: float) -> tuple[Topology, list[Cell]]:
    """Chosen cells of the running lab's matrix (a sample of a big lab's), predicted and probed."""
    topology = state.load_topology(lab)
    return topology, observe_all(predict_cells(topology, cells, proto), proto, observer(lab, timeout))


def observed_matrix(lab: str, ports: tuple[int, ...], proto: str, timeout: float) -> tuple[Topology, list[Cell]]:
    """The running lab's matrix: the engine's prediction for its current topology, then real probes."""
    topology = state.load_topology(lab)
    return topology, observe_all(predict(topology, ports, proto), proto, observer(lab, timeout))
