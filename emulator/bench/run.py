"""`scripts/bench`: builds its own labs (`bench-*`) and measures, in one run and side by side,
(a) the same lab with no enforcement, (b) sgemu with offload, (c) sgemu without offload.

    python -m emulator.bench.run [--seconds 3] [--rounds 3] [--json]
    python -m emulator.bench.run --scale [100,1000]     # only big labs (emulator/bench/scale.py)
    python -m emulator.bench.run --parallel [4]         # only pytest -n vs serial (emulator/bench/parallel.py)

Ratios are against (a) of the same run, never against fixed numbers: machines differ.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from emulator.bench import parallel, scale
from emulator.bench.scale import SCALE_SIZES, side_table
from emulator.bench.topologies import fleet_topology, pair_topology
from emulator.lab import lifecycle as lab
from emulator.lab import netns, state
from emulator.topology import parse

IPERF_PORT = 5201
ECHO_PORT = 7000
CPS_SECONDS = 3.0
CPS_WARMUP = 0.5
UDP_SECONDS = 2.0
UDP_PAYLOAD = 64               # bytes per datagram: a packet-rate test, not a byte-rate one
PINGPONG_COUNT = 2000
MEMORY_FLOWS = 100_000
FLEET_SIZES = (10, 100)
MODES = ("plain", "offload", "queue")
MODE_TITLES = {"plain": "(a) no enforcement", "offload": "(b) sgemu, offload", "queue": "(c) sgemu, no offload"}
SERVER_START_TIMEOUT = 10.0


@dataclass
class ModeResult:
    """Medians over the rounds of one mode."""

    throughput_bps: float
    verdicts_per_s: float       # engine verdicts per second while iperf3 TCP ran (GSO: up to 64 KB each)
    udp_pps: float              # small UDP datagrams per second that reached the receiver
    tcp_drops: int              # kernel queue + socket drops during the TCP streams (all rounds)
    udp_drops: int              # the same during the UDP floods, which overrun on purpose
    cps: float
    rtt_us: float


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "emulator.guest.loadgen", *args]


def _in(ns: str, argv: list[str]) -> list[str]:
    return netns.exec_argv(ns, argv)


def _json_run(argv: list[str], timeout: float) -> dict:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=netns.package_env())
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()[-400:]}")
    out = result.stdout.strip()
    return json.loads(out if out.startswith("{\n") else out.splitlines()[-1])   # iperf3 -J: one document


def _verdicts(name: str, after: float) -> tuple[int, float]:
    """Total engine verdicts from the first health update written after `after`."""
    deadline = time.time() + 5
    while time.time() < deadline:
        health = state.read_health(name) or {}
        if health.get("updated", 0) > after:
            counters = [eni["counters"] for eni in health.get("enis", {}).values()]
            return sum(c.get("accepted", 0) + c.get("dropped", 0) for c in counters), health["updated"]
        time.sleep(0.05)
    raise RuntimeError(f"the engine of {name} wrote no health update")


def queue_drops(fabric: str) -> int:
    """Packets the kernel dropped on the lab's queues (queue full, or the socket overran)."""
    out = netns.run(_in(fabric, ["cat", "/proc/net/netfilter/nfnetlink_queue"]), check=False).stdout
    return sum(int(f[5]) + int(f[6]) for f in (line.split() for line in out.splitlines()) if len(f) >= 7)


def _start_server(argv: list[str], ready: str | None) -> subprocess.Popen:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=netns.package_env())
    if ready is not None and process.stdout is not None:
        line = process.stdout.readline()
        if ready not in line:
            process.kill()
            raise RuntimeError(f"`{' '.join(argv)}` did not start")
    return process


def _wait_port(ns: str, port: int) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if f":{port} " in netns.run(_in(ns, ["ss", "-ltnH"]), check=False).stdout:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} in {ns}")


class BenchLab:
    """One mode's running lab with its servers in `b`; clients run in `a`."""

    def __init__(self, mode: str):
        self.mode = mode
        self.name = f"bench-{mode}"
        topology = parse(pair_topology(self.name, offload=mode == "offload"), "bench").topology
        _down_quietly(self.name)
        lab.up(topology, enforce=mode != "plain")
        self._servers: list[subprocess.Popen] = []
        plan = lab.lab_plan(self.name)
        self.fabric, self.a, self.b = plan.fabric.name, plan.namespace("a").name, plan.namespace("b").name
        self.b_ip = str(topology.instance("b").private_ip)
        self.samples: dict[str, list[float]] = {}
        self.tcp_drops = self.udp_drops = 0
        try:
            self._servers.append(_start_server(_in(self.b, ["iperf3", "-s", "-p", str(IPERF_PORT)]), None))
            self._servers.append(_start_server(_in(self.b, _python("serve", str(ECHO_PORT))), "ready"))
            _wait_port(self.b, IPERF_PORT)
        except BaseException:
            self.close()
            raise

    def _add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def _iperf(self, seconds: float, *extra: str) -> dict:
        out = _json_run(_in(self.a, ["iperf3", "-c", self.b_ip, "-p", str(IPERF_PORT), "-t", str(seconds),
                                     "-J", *extra]), timeout=seconds + 30)
        if "error" in out:
            raise RuntimeError(f"iperf3 in {self.name}: {out['error']}")
        return out["end"]

    def round(self, seconds: float) -> None:
        enforced = self.mode != "plain"
        drops = queue_drops(self.fabric)
        before, _ = _verdicts(self.name, time.time()) if enforced else (0, 0.0)
        tcp = self._iperf(seconds)["sum_received"]
        after, _ = _verdicts(self.name, time.time()) if enforced else (0, 0.0)
        self._add("throughput_bps", tcp["bits_per_second"])
        self._add("verdicts_per_s", (after - before) / tcp["seconds"])
        flood = queue_drops(self.fabric)
        self.tcp_drops += flood - drops
        udp = self._iperf(UDP_SECONDS, "-u", "-b", "0", "-l", str(UDP_PAYLOAD))["sum"]
        self._add("udp_pps", (udp["packets"] - udp["lost_packets"]) / udp["seconds"])
        self.udp_drops += queue_drops(self.fabric) - flood
        _json_run(_in(self.a, _python("connect", self.b_ip, str(ECHO_PORT + 1), str(CPS_WARMUP))), timeout=30)
        cps = _json_run(_in(self.a, _python("connect", self.b_ip, str(ECHO_PORT + 1), str(CPS_SECONDS))),
                        timeout=CPS_SECONDS + 30)
        self._add("cps", cps["per_second"])
        rtt = _json_run(_in(self.a, _python("pingpong", self.b_ip, str(ECHO_PORT), str(PINGPONG_COUNT))),
                        timeout=60)
        self._add("rtt_us", rtt["median_us"])

    def result(self) -> ModeResult:
        median = {key: statistics.median(values) for key, values in self.samples.items()}
        return ModeResult(median["throughput_bps"], median["verdicts_per_s"], median["udp_pps"], self.tcp_drops,
                          self.udp_drops, median["cps"], median["rtt_us"])

    def close(self) -> None:
        for server in self._servers:
            server.terminate()
            server.wait(5)
        lab.down(self.name)


def _down_quietly(name: str) -> None:
    if name in lab.running_labs():
        lab.down(name)


def fleet_times(count: int) -> tuple[float, float]:
    """Seconds to bring up, then tear down, a lab of `count` instances (enforced, offload on)."""
    name = f"bench-up{count}"
    topology = parse(fleet_topology(name, count), "bench").topology
    _down_quietly(name)
    start = time.monotonic()
    try:
        lab.up(topology)
        up = time.monotonic() - start
    finally:
        start = time.monotonic()
        lab.down(name)
    return up, time.monotonic() - start


def memory() -> dict:
    return _json_run([sys.executable, "-m", "emulator.bench.memory", str(MEMORY_FLOWS)], timeout=300)


def compare(seconds: float, rounds: int, progress) -> dict[str, ModeResult]:
    """The three labs side by side, measured in interleaved rounds (load on the machine that
    drifts over the run then hits every mode alike); medians per mode."""
    labs: list[BenchLab] = []
    try:
        for mode in MODES:
            progress(f"up: {MODE_TITLES[mode]}")
            labs.append(BenchLab(mode))
        for n in range(1, rounds + 1):
            for bench_lab in labs:
                progress(f"round {n}/{rounds}, {MODE_TITLES[bench_lab.mode]}: iperf3 TCP {seconds:g} s, "
                         f"UDP {UDP_SECONDS:g} s, connections {CPS_SECONDS:g} s, {PINGPONG_COUNT} round trips")
                bench_lab.round(seconds)
        return {bench_lab.mode: bench_lab.result() for bench_lab in labs}
    finally:
        for bench_lab in labs:
            bench_lab.close()


def measure(seconds: float, rounds: int, progress=lambda message: None) -> dict:
    results = compare(seconds, rounds, progress)
    fleet = {}
    for count in FLEET_SIZES:
        progress(f"lab of {count} instances: up and down")
        fleet[count] = fleet_times(count)
    progress(f"engine memory with {MEMORY_FLOWS} tracked flows")
    mem = memory()
    plain, offload, queue = results["plain"], results["offload"], results["queue"]
    summary = {
        "throughput_gbps_plain": plain.throughput_bps / 1e9,
        "throughput_gbps_offload": offload.throughput_bps / 1e9,
        "throughput_gbps_no_offload": queue.throughput_bps / 1e9,
        "throughput_ratio_offload": offload.throughput_bps / plain.throughput_bps,
        "throughput_ratio_no_offload": queue.throughput_bps / plain.throughput_bps,
        "verdicts_per_s_offload": offload.verdicts_per_s,
        "verdicts_per_s_no_offload": queue.verdicts_per_s,
        "udp_pps_plain": plain.udp_pps,
        "pps_offload": offload.udp_pps,
        "pps_no_offload": queue.udp_pps,
        "queue_drops_tcp_offload": offload.tcp_drops,
        "queue_drops_tcp_no_offload": queue.tcp_drops,
        "queue_drops_udp_flood_offload": offload.udp_drops,
        "queue_drops_udp_flood_no_offload": queue.udp_drops,
        "cps_plain": plain.cps,
        "cps_offload": offload.cps,
        "cps_no_offload": queue.cps,
        "cps_ratio": offload.cps / plain.cps,
        "cps_ratio_no_offload": queue.cps / plain.cps,
        "rtt_us_plain": plain.rtt_us,
        "rtt_us_offload": offload.rtt_us,
        "rtt_us_no_offload": queue.rtt_us,
        "rtt_added_us_offload": offload.rtt_us - plain.rtt_us,
        "rtt_added_us_no_offload": queue.rtt_us - plain.rtt_us,
        **{f"{verb}_seconds_{count}": times[i] for count, times in fleet.items()
           for i, verb in enumerate(("up", "down"))},
        "mem_mb_100k_flows": mem["rss_mb"],
        "mem_added_mb_100k_flows": mem["added_mb"],
    }
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}


TARGETS = {
    "throughput_ratio_offload": (">=", 0.9), "pps_no_offload": (">=", 100_000), "cps_ratio": (">=", 0.6),
    "rtt_added_us_offload": ("<=", 20), "rtt_added_us_no_offload": ("<=", 150),
    "up_seconds_100": ("<=", 30), "mem_mb_100k_flows": ("<=", 150),
}


def met(key: str, value: float) -> bool:
    op, target = TARGETS[key]
    return value >= target if op == ">=" else value <= target


def table(summary: dict):
    from rich.table import Table

    out = Table(title="sgemu benchmark (ratios against (a) of this run)")
    out.add_column("measure")
    for mode in MODES:
        out.add_column(MODE_TITLES[mode], justify="right")
    out.add_column("target", justify="right")
    s = summary

    def row(label: str, values: tuple, key: str | None = None) -> None:
        target = ""
        if key is not None:
            op, limit = TARGETS[key]
            target = f"{op} {limit:g} {'ok' if met(key, s[key]) else 'MISSED'}"
        out.add_row(label, *values, target)

    row("TCP throughput, Gbit/s", (f"{s['throughput_gbps_plain']:.2f}", f"{s['throughput_gbps_offload']:.2f}",
                                   f"{s['throughput_gbps_no_offload']:.2f}"))
    row("  ratio to (a)", ("1", f"{s['throughput_ratio_offload']:.3f}", f"{s['throughput_ratio_no_offload']:.3f}"),
        "throughput_ratio_offload")
    row("engine verdicts/s during TCP", ("-", f"{s['verdicts_per_s_offload']:.0f}",
                                         f"{s['verdicts_per_s_no_offload']:.0f}"))
    row(f"UDP {UDP_PAYLOAD}-byte packets/s", (f"{s['udp_pps_plain']:.0f}", f"{s['pps_offload']:.0f}",
                                         f"{s['pps_no_offload']:.0f}"), "pps_no_offload")
    row("queue drops, TCP streams", ("-", str(s["queue_drops_tcp_offload"]), str(s["queue_drops_tcp_no_offload"])))
    row("queue drops, UDP floods", ("-", str(s["queue_drops_udp_flood_offload"]),
                                    str(s["queue_drops_udp_flood_no_offload"])))
    row("new connections/s", (f"{s['cps_plain']:.0f}", f"{s['cps_offload']:.0f}", f"{s['cps_no_offload']:.0f}"))
    row("  ratio to (a)", ("1", f"{s['cps_ratio']:.3f}", f"{s['cps_ratio_no_offload']:.3f}"), "cps_ratio")
    row("TCP round trip, us",
        (f"{s['rtt_us_plain']:.1f}", f"{s['rtt_us_offload']:.1f}", f"{s['rtt_us_no_offload']:.1f}"))
    row("  added, us (offload)", ("", f"{s['rtt_added_us_offload']:.1f}", ""), "rtt_added_us_offload")
    row("  added, us (no offload)", ("", "", f"{s['rtt_added_us_no_offload']:.1f}"), "rtt_added_us_no_offload")
    for count in FLEET_SIZES:
        times = f"{s[f'up_seconds_{count}']:.1f} / {s[f'down_seconds_{count}']:.1f}"
        row(f"lab of {count}: up / down, s", ("", times, ""),
            "up_seconds_100" if count == 100 else None)
    rss = f"{s['mem_mb_100k_flows']:.1f} (+{s['mem_added_mb_100k_flows']:.1f})"
    row("engine RSS with 100k flows, MB", ("", rss, ""),
        "mem_mb_100k_flows")
    return out


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="iperf3 TCP run per mode and round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument("--scale", nargs="?", const=",".join(map(str, SCALE_SIZES)), metavar="N,N",
                        help="only the big-lab part: labs of these sizes (default 100,1000) against "
                             "2-instance labs of the same run")
    parser.add_argument("--parallel", nargs="?", type=int, const=4, metavar="WORKERS",
                        help="only the pytest-xdist part: 8 lab tests serially, then with -n WORKERS (default 4)")
    args = parser.parse_args(argv)
    only_parts = bool(args.scale or args.parallel)
    if only_parts:
        summary: dict = {}
        if args.parallel:
            summary.update(parallel.measure(args.parallel, _progress))
        if args.scale:
            summary.update(scale.measure(tuple(int(n) for n in args.scale.split(",")), _progress))
        summary = {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}
    else:
        summary = measure(args.seconds, args.rounds, _progress)
    if args.json:
        print(json.dumps(summary))
    else:
        from rich.console import Console
        Console(width=120).print(side_table(summary) if only_parts else table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
