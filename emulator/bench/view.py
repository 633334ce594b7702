"""What an open `sgemu ui` costs the engine, measured two ways, each open against closed in the same run:

- the packet path alone (no root): the queue handler's work per packet (parse, decide, observe) with the
  decision feed off and on, alternating, medians; stable, so it shows the feed's own cost;
- a real lab without offload (every packet through the engine, the worst case for the feed), in
  interleaved rounds with the view closed and open, where "open" is a real `sgemu ui` process with a
  client reading its event stream (what a browser tab does). On a shared machine this one is noisy.

    python -m emulator.bench.view [--seconds 3] [--rounds 3] [--json] [--no-lab]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emulator.bench.labs import BenchLab
from emulator.bench.topologies import pair_topology
from emulator.control.api import LabApi
from emulator.engine.firewall import build_firewalls
from emulator.engine.packet import parse as parse_packet
from emulator.model import Direction
from emulator.topology import parse

PATH_PACKETS = 100_000          # packets per repetition of the packet-path measure
PATH_REPS = 9
VIEW_SETTLE = 3.0               # seconds between opening the view and measuring

MEASURES = {"throughput_bps": "TCP throughput, bit/s", "verdicts_per_s": "engine verdicts/s during TCP",
            "udp_pps": "UDP 64-byte packets/s", "cps": "new connections/s", "rtt_us": "TCP round trip, us"}


@contextmanager
def view_open(lab: str) -> Iterator[None]:
    """`sgemu ui` on the lab and a reader of its event stream, for the duration of the block."""
    process = subprocess.Popen([sys.executable, "-m", "emulator.cli", "ui", "--lab", lab, "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        found = re.search(r"http://\S+/\?token=(\S+)", process.stdout.readline())
        if found is None:
            raise RuntimeError("sgemu ui did not start")
        url = found.group(0).replace("/?token=", "/api/events?token=")
        stream = urllib.request.urlopen(url, timeout=30)
        if stream.readline() != b"event: hello\n":
            raise RuntimeError("sgemu ui's event stream did not start")

        def read() -> None:
            try:
                while stream.readline():
                    pass
            except OSError:
                pass

        threading.Thread(target=read, daemon=True).start()
        time.sleep(VIEW_SETTLE)      # its start-up (imports, the first graph) is not the view's running cost
        yield
        stream.close()
    finally:
        process.terminate()
        process.wait(10)


def _tcp_ack(src: int, dst: int, sport: int, dport: int) -> bytes:
    """An IPv4 TCP ACK segment's headers (what most packets of a busy flow are)."""
    ip = struct.pack("!BBHHHBBHII", 0x45, 0, 40, 1, 0, 64, 6, 0, src, dst)
    return ip + struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, 0x10, 65535, 0, 0)


def packet_path_us() -> dict[str, float]:
    """Microseconds per packet through parse, decide and observe, the feed off and on (alternating)."""
    topology = parse(pair_topology("bench-path", offload=False), "bench").topology
    state, firewalls = build_firewalls(topology)
    api = LabApi("bench-path", topology, state, firewalls, 0.0, 0.0, Path(os.devnull), lambda current: None)
    a, b = (int(topology.instance(n).private_ip) for n in ("a", "b"))
    raws = [_tcp_ack(a, b, 40000 + n % 64, 5201) for n in range(PATH_PACKETS)]    # 64 flows, one service
    firewall, now = firewalls["a"], 1.0
    runs: dict[str, list[float]] = {"closed": [], "open": []}
    for _ in range(PATH_REPS):
        for state_name in ("closed", "open"):
            if state_name == "open":
                api.decisions.op_decisions(now)
            else:
                api.decisions.active = False
            start = time.perf_counter()
            for raw in raws:
                packet = parse_packet(raw, True)
                # why the ignore below: parse() returned a Packet for these bytes (checked before the timed loop)
                verdict = firewall.decide(packet, Direction.EGRESS, now)    # type: ignore[arg-type]
                # why the ignore below: parse() returned a Packet for these bytes (checked before the timed loop)
                api.observe("a", packet, True, verdict, now)               # type: ignore[arg-type]
            runs[state_name].append((time.perf_counter() - start) / PATH_PACKETS * 1e6)
            now += 0.5
    closed, opened = (statistics.median(runs[s]) for s in ("closed", "open"))
    return {"path_us_closed": round(closed, 3), "path_us_open": round(opened, 3),
            "path_ratio": round(opened / closed, 3)}


def measure(seconds: float, rounds: int, progress=lambda message: None) -> dict[str, float]:
    samples: dict[str, dict[str, list[float]]] = {"closed": {}, "open": {}}
    progress("up: one lab without offload")
    bench_lab = BenchLab("queue")
    try:
        for n in range(1, rounds + 1):
            # alternate which state goes first, so a drift of the machine's load hits both alike
            for state in (("closed", "open") if n % 2 else ("open", "closed")):
                progress(f"round {n}/{rounds}, view {state}")
                if state == "open":
                    with view_open(bench_lab.name):
                        bench_lab.round(seconds)
                else:
                    bench_lab.round(seconds)
                for key, values in bench_lab.samples.items():
                    samples[state].setdefault(key, []).append(values[-1])
    finally:
        bench_lab.close()
    summary: dict[str, float] = {}
    for key in MEASURES:
        closed, opened = (statistics.median(samples[s][key]) for s in ("closed", "open"))
        summary[f"{key}_closed"], summary[f"{key}_open"] = round(closed, 1), round(opened, 1)
        summary[f"{key}_ratio"] = round(opened / closed, 3) if closed else 0.0
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.bench.view", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="iperf3 TCP run per round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    parser.add_argument("--no-lab", action="store_true", help="only the packet path (no root, no lab)")
    args = parser.parse_args(argv)
    summary = packet_path_us()
    if not args.no_lab:
        summary |= measure(args.seconds, args.rounds, lambda m: print(f"bench: {m}", file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(summary))
        return 0
    from rich.console import Console
    from rich.table import Table
    table = Table(title="sgemu ui: the engine with the view closed and open (no offload; ratio open/closed)")
    for column in ("measure", "view closed", "view open", "ratio"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row("packet path (parse, decide, observe), us/packet", f"{summary['path_us_closed']:.3f}",
                  f"{summary['path_us_open']:.3f}", f"{summary['path_ratio']:.3f}")
    for key, label in MEASURES.items():
        if f"{key}_closed" not in summary:
            continue
        table.add_row(label, f"{summary[f'{key}_closed']:,.1f}", f"{summary[f'{key}_open']:,.1f}",
                      f"{summary[f'{key}_ratio']:.3f}")
    Console(width=110).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
