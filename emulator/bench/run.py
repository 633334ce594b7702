"""`scripts/bench`: builds its own labs (`bench-*`) and measures, in one run and side by side,
(a) the same lab with no enforcement, (b) sgemu with offload, (c) sgemu without offload and
(d) an accept-only consumer of the engine's NFQUEUE binding (see emulator/bench/labs.py).

    python -m emulator.bench.run [--seconds 3] [--rounds 3] [--json] [--save DIR]
    python -m emulator.bench.run --scale [100,1000]     # only big labs (emulator/bench/scale.py)
    python -m emulator.bench.run --parallel [4]         # only pytest -n vs serial (emulator/bench/parallel.py)
    python -m emulator.bench.run --multihost            # two hosts joined by VXLAN (emulator/bench/multihost.py)

Ratios are against (a) (or (d), for the engine's per-packet path) of the same run, never against
fixed numbers: machines differ. `--save DIR` writes bench.json and bench.svg (a chart) there.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.bench import chart, multihost, nat_path, parallel, pullback, scale, verdict_cost
from emulator.bench.labs import MODE_TITLES, MODES, TOOLS, BenchLab, down_quietly, json_run, tool_versions
from emulator.bench.report import TARGETS, met, table
from emulator.bench.scale import SCALE_SIZES, side_table
from emulator.bench.topologies import fleet_topology, pair_topology
from emulator.lab import lifecycle as lab
from emulator.topology import parse

MEMORY_FLOWS = 100_000
FLEET_SIZES = (10, 100)

__all__ = ["TARGETS", "main", "measure", "met"]


def fleet_times(count: int) -> tuple[float, float]:
    """Seconds to bring up, then tear down, a lab of `count` instances (enforced, offload on)."""
    name = f"bench-up{count}"
    topology = parse(fleet_topology(name, count), "bench").topology
    down_quietly(name)
    start = time.monotonic()
    try:
        lab.up(topology)
        up = time.monotonic() - start
    finally:
        start = time.monotonic()
        lab.down(name)
    return up, time.monotonic() - start


def memory() -> dict:
    return json_run([sys.executable, "-m", "emulator.bench.memory", str(MEMORY_FLOWS)], timeout=300)


def compare(seconds: float, rounds: int, progress: Callable[[str], None]) -> tuple[dict[str, BenchLab], dict]:
    """The four labs side by side, measured in interleaved rounds (load on the machine that
    drifts over the run then hits every mode alike); then the pull-back probe in (a)'s fabric,
    which has no engine of its own."""
    labs: list[BenchLab] = []
    try:
        for mode in MODES:
            progress(f"up: {MODE_TITLES[mode]}")
            labs.append(BenchLab(mode))
        for n in range(1, rounds + 1):
            for bench_lab in labs:
                progress(f"round {n}/{rounds}, {MODE_TITLES[bench_lab.mode]}")
                bench_lab.round(seconds)
        progress(f"pull back {pullback.FLOWS} offloaded flows")
        plain = labs[MODES.index("plain")]
        pulled = pullback.measure(parse(pair_topology(plain.name, offload=True), "bench").topology, plain.fabric)
        return {bench_lab.mode: bench_lab for bench_lab in labs}, pulled
    finally:
        for bench_lab in labs:
            bench_lab.close()


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(seconds: float, rounds: int, progress: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    load_start = _load()
    modes, pulled = compare(seconds, rounds, progress)
    fleet = {}
    for count in FLEET_SIZES:
        progress(f"lab of {count} instances: up and down")
        fleet[count] = fleet_times(count)
    progress(f"engine memory with {MEMORY_FLOWS} tracked flows")
    mem = memory()
    cost = verdict_cost.measure(progress)
    offload, queue, binding = modes["offload"], modes["queue"], modes["binding"]
    m = {mode: bench_lab.median for mode, bench_lab in modes.items()}
    summary: dict[str, Any] = {
        "throughput_gbps_plain": m["plain"]("throughput_bps") / 1e9,
        "throughput_gbps_offload": m["offload"]("throughput_bps") / 1e9,
        "throughput_gbps_no_offload": m["queue"]("throughput_bps") / 1e9,
        "throughput_ratio_offload": m["offload"]("throughput_bps") / m["plain"]("throughput_bps"),
        "throughput_ratio_no_offload": m["queue"]("throughput_bps") / m["plain"]("throughput_bps"),
        "verdicts_per_s_offload": m["offload"]("verdicts_per_s"),
        "verdicts_per_s_no_offload": m["queue"]("verdicts_per_s"),
        "udp_pps_plain": m["plain"]("udp_pps"),
        "pps_offload": m["offload"]("udp_pps"),
        "pps_no_offload": m["queue"]("udp_pps"),
        "binding_pps": m["binding"]("udp_pps"),
        "udp_pps_ratio_offload": m["offload"]("udp_pps") / m["plain"]("udp_pps"),
        "engine_vs_binding_ratio": m["queue"]("udp_pps") / m["binding"]("udp_pps"),
        "queue_drops_tcp_offload": offload.tcp_drops,
        "queue_drops_tcp_no_offload": queue.tcp_drops,
        "queue_drops_udp_flood_offload": offload.udp_drops,
        "queue_drops_udp_flood_no_offload": queue.udp_drops,
        "queue_drops_udp_flood_binding": binding.udp_drops,
        "cps_plain": m["plain"]("cps"),
        "cps_offload": m["offload"]("cps"),
        "cps_no_offload": m["queue"]("cps"),
        "cps_ratio": m["offload"]("cps") / m["plain"]("cps"),
        "cps_ratio_no_offload": m["queue"]("cps") / m["plain"]("cps"),
        "cps_failed": {mode: int(sum(bench_lab.samples.get("cps_failed", []))) for mode, bench_lab in modes.items()
                       if mode != "binding"},
        "rtt_us_plain": m["plain"]("rtt_us"),
        "rtt_us_offload": m["offload"]("rtt_us"),
        "rtt_us_no_offload": m["queue"]("rtt_us"),
        "rtt_added_us_offload": m["offload"]("rtt_us") - m["plain"]("rtt_us"),
        "rtt_added_us_no_offload": m["queue"]("rtt_us") - m["plain"]("rtt_us"),
        **{f"{verb}_seconds_{count}": times[i] for count, times in fleet.items()
           for i, verb in enumerate(("up", "down"))},
        "mem_mb_100k_flows": mem["rss_mb"],
        "mem_added_mb_100k_flows": mem["added_mb"],
        "verdict_cost_ratio_rules": verdict_cost.worst_ratio(cost["rules_per_sg"]),
        "verdict_cost_ratio_enis": verdict_cost.worst_ratio(cost["enis_per_lab"]),
        "verdict_cost": cost,
        "pullback_ms_10k_flows": pulled["recall_all_ms"],
        "pullback": {k: round(v, 3) if isinstance(v, float) else v for k, v in pulled.items()},
        "tools": {**TOOLS, "versions": tool_versions()},
        "load_start": load_start,
        "load_end": _load(),
        "rounds": rounds,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def save(summary: dict[str, Any], directory: Path) -> None:
    """bench.json and bench.svg side by side."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench.json").write_text(json.dumps(summary, indent=1) + "\n")
    (directory / "bench.svg").write_text(chart.render(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="iperf3 TCP run per mode and round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument("--save", type=Path, metavar="DIR", help="also write DIR/bench.json and DIR/bench.svg")
    parser.add_argument("--scale", nargs="?", const=",".join(map(str, SCALE_SIZES)), metavar="N,N",
                        help="only the big-lab part: labs of these sizes (default 100,1000) against "
                             "2-instance labs of the same run")
    parser.add_argument("--parallel", nargs="?", type=int, const=4, metavar="WORKERS",
                        help="only the pytest-xdist part: 8 lab tests serially, then with -n WORKERS (default 4)")
    parser.add_argument("--multihost", action="store_true",
                        help="only the two-host simulation: two fabrics joined by VXLAN, an engine each")
    parser.add_argument("--nat", action="store_true",
                        help="only the NAT gateway path: TCP out through nat-a against out through the IGW, "
                             "enforced and not")
    args = parser.parse_args(argv)
    only_parts = bool(args.scale or args.parallel or args.multihost or args.nat)
    if only_parts:
        summary: dict = {}
        if args.parallel:
            summary.update(parallel.measure(args.parallel, _progress))
        if args.scale:
            summary.update(scale.measure(tuple(int(n) for n in args.scale.split(",")), _progress))
        if args.multihost:
            summary.update(multihost.measure(_progress))
        if args.nat:
            summary.update(nat_path.measure(args.seconds, args.rounds, _progress))
        summary = {k: round(v, 3) if isinstance(v, float) else v for k, v in summary.items()}
    else:
        summary = measure(args.seconds, args.rounds, _progress)
        if args.save is not None:
            save(summary, args.save)
    if args.json:
        print(json.dumps(summary))
    else:
        from rich.console import Console
        Console(width=140).print(side_table(summary) if only_parts else table(summary, FLEET_SIZES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
