"""`scripts/bench --scale`: what a big lab costs on this machine, against a small one of the same run.

For each size: seconds to `up` (every instance running a real sshd) and to `down`, memory the
lab takes (the machine's MemAvailable before and after), the engine's RSS and open file
descriptors, processes, seconds for `status` and for a sampled reachability matrix, and the
per-packet cost: the median TCP round trip between the lab's last two instances (the worst
place for a hook list walked in order; offload off, so every packet meets the engine), minus
the same round trip in a 2-instance lab without enforcement. The ratio compares it with the
cost in an enforced 2-instance lab of the same run.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from emulator.bench.topologies import scale_topology
from emulator.lab import hooks, netns
from emulator.lab import lifecycle as lab
from emulator.plan import ENI_QUEUE
from emulator.topology import parse

SCALE_SIZES = (100, 1000)
PINGPONG_PORT = 7100
ROUND_TRIPS = 3000
RTT_RUNS = 3                   # pingpong runs per lab; the median is kept
MATRIX_SAMPLE = 200            # probed cells of the big lab's matrix


def _meminfo_available_mb() -> float:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) / 1024


def _engine(name: str) -> tuple[float, int]:
    """The engine's RSS (MB) and open file descriptors."""
    pid = lab.status(name).engine.pid
    if pid is None:
        raise RuntimeError(f"lab {name} has no engine")
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def round_trip_us(name: str, client: str, server: str, server_lab: str | None = None) -> float:
    """Median TCP round trip (one small message and its echo) from client to server, in us;
    `server_lab`: the server is an instance of another lab (bench --multihost), reached at its
    private address."""
    plan = lab.lab_plan(name)
    server_plan = plan if server_lab is None else lab.lab_plan(server_lab)
    address = plan.address(client, server) if server_lab is None else server_plan.address(server, server)
    python = [sys.executable, "-m", "emulator.guest.loadgen"]
    echo = subprocess.Popen(netns.exec_argv(server_plan.namespace(server).name,
                                            [*python, "serve", str(PINGPONG_PORT)]),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=netns.package_env())
    try:
        if echo.stdout is None or "ready" not in echo.stdout.readline():
            raise RuntimeError(f"the echo server in {name}/{server} did not start")
        runs = []
        for _ in range(RTT_RUNS):
            done = subprocess.run(netns.exec_argv(plan.namespace(client).name,
                                                  [*python, "pingpong", str(address), str(PINGPONG_PORT),
                                                   str(ROUND_TRIPS)]),
                                  capture_output=True, text=True, timeout=120, env=netns.package_env())
            if done.returncode != 0:
                raise RuntimeError(f"pingpong in {name} failed: {done.stderr.strip()[-300:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1])["median_us"])
        return statistics.median(runs)
    finally:
        echo.terminate()
        echo.wait(5)


def rule_per_eni(name: str) -> None:
    """Put the earlier hook layout in front of today's, in this lab only: a PREROUTING rule per
    ENI (`-i eni-X -j NFQUEUE`), in instance order, where the single dispatch rule sits. A packet
    from the last ENI then walks every other ENI's rule first, as it did before; the engine
    still tells ENIs by interface, so the verdicts are the same."""
    plan = lab.lab_plan(name)
    frontend = lab.status(name).frontend
    if frontend is None:
        raise RuntimeError(f"lab {name} records no iptables front end")
    lines = [f"-I PREROUTING 2 -i {eni.device} -j NFQUEUE --queue-num {ENI_QUEUE}" for eni in reversed(plan.enis)]
    netns.run(netns.exec_argv(plan.fabric.name, [hooks.restore_command(frontend, 4), "--noflush"]),
              stdin="\n".join(["*mangle", *lines, "COMMIT"]) + "\n")


def _down_quietly(name: str) -> None:
    if name in lab.running_labs():
        lab.down(name)


def small_round_trips(progress) -> tuple[float, float]:
    """(no enforcement, enforced) round trips in a 2-instance lab: the same-run baseline."""
    results = []
    for enforce in (False, True):
        name = f"bench-s2{'e' if enforce else 'p'}"
        _down_quietly(name)
        progress(f"2-instance lab, {'enforced' if enforce else 'no enforcement'}: round trips")
        lab.up(parse(scale_topology(name, 2, services=False), "bench").topology, enforce=enforce)
        try:
            results.append(round_trip_us(name, "n1", "n2"))
        finally:
            lab.down(name)
    return results[0], results[1]


def big_lab(count: int, progress, sample: int = MATRIX_SAMPLE) -> dict:
    name = f"bench-n{count}"
    _down_quietly(name)
    topology = parse(scale_topology(name, count, services=True), "bench").topology
    before = _meminfo_available_mb()
    progress(f"lab of {count} instances (an sshd in each): up")
    start = time.monotonic()
    lab.up(topology)
    result: dict = {"up_seconds": time.monotonic() - start}
    try:
        result["memory_mb"] = before - _meminfo_available_mb()
        result["engine_rss_mb"], result["engine_fds"] = _engine(name)
        result["processes"] = sum(len(netns.pids(ns.name)) for ns in lab.lab_plan(name).nodes)
        start = time.monotonic()
        lab.status(name)
        result["status_seconds"] = time.monotonic() - start
        progress(f"lab of {count}: round trips n{count - 1} -> n{count}")
        result["rtt_us"] = round_trip_us(name, f"n{count - 1}", f"n{count}")
        progress(f"lab of {count}: the same with a queue rule per ENI (the layout before), for comparison")
        rule_per_eni(name)
        result["rtt_us_rule_per_eni"] = round_trip_us(name, f"n{count - 1}", f"n{count}")
        progress(f"lab of {count}: a matrix of {sample} sampled cells (port 22)")
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "emulator.cli", "matrix", "--lab", name, "--ports", "22",
                               "--timeout", "1.5", "--sample", str(sample), "--seed", str(count), "--json"],
                              capture_output=True, text=True, timeout=1800, env=netns.package_env())
        result["matrix_seconds"] = time.monotonic() - start
        if not done.stdout.startswith("{"):      # exit 1 with JSON: disagreements, counted below
            raise RuntimeError(f"sgemu matrix on {name} failed: {done.stderr.strip()[-300:]}")
        matrix = json.loads(done.stdout)
        result["matrix_cells"] = len(matrix["cells"])
        result["matrix_disagreements"] = len(matrix["mismatches"])
    finally:
        progress(f"lab of {count}: down")
        start = time.monotonic()
        lab.down(name)
        result["down_seconds"] = time.monotonic() - start
    return result


def measure(sizes: tuple[int, ...], progress=lambda message: None) -> dict:
    plain, enforced = small_round_trips(progress)
    summary: dict = {"rtt_us_plain_2": plain, "rtt_us_2": enforced, "rtt_added_us_2": enforced - plain}
    for count in sizes:
        for key, value in big_lab(count, progress).items():
            summary[f"{key}_{count}"] = value
        added = summary[f"rtt_us_{count}"] - plain
        summary[f"rtt_added_us_{count}"] = added
        summary[f"per_packet_ratio_{count}"] = added / summary["rtt_added_us_2"]
        summary[f"per_packet_ratio_{count}_rule_per_eni"] = \
            (summary[f"rtt_us_rule_per_eni_{count}"] - plain) / summary["rtt_added_us_2"]
    return summary


SCALE_TARGETS = {"up_seconds_1000": ("<=", 120.0), "down_seconds_1000": ("<=", 60.0),
                 "per_packet_ratio_1000": ("<=", 1.5), "xdist_speedup": (">", 1.0)}


def side_table(summary: dict):
    """The scale and parallel parts: one row per measure, with its target where the issue sets one."""
    from rich.table import Table
    out = Table(title="sgemu benchmark: the parts asked for (ratios against this run)")
    for column in ("measure", "value", "target"):
        out.add_column(column, justify="left" if column == "measure" else "right")
    for key, value in summary.items():
        op, limit = SCALE_TARGETS.get(key, (None, None))
        target = ""
        if op is not None and limit is not None:
            ok = value <= limit if op == "<=" else value > limit
            target = f"{op} {limit:g} {'ok' if ok else 'MISSED'}"
        out.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value), target)
    return out


if __name__ == "__main__":      # python -m emulator.bench.scale [SIZE...]: the scale part alone, JSON
    sizes = tuple(int(a) for a in sys.argv[1:]) or SCALE_SIZES
    print(json.dumps(measure(sizes, lambda m: print(f"bench: {m}", file=sys.stderr, flush=True))))
