"""How long a lab is closed when its engine dies: SIGKILL the engine N times under load and
measure, for each kill, the gap until the lab enforces again (root).

    python -m emulator.bench.restart [--kills 20] [--seed 1] [--no-standby] [--json]

A `pulse` client (emulator/guest/pulse.py) in the internet host opens a new connection to an
allowed port every 10 ms, tries a port no rule allows every 10 ms and holds an echo connection.
The gap of a kill is from the SIGKILL to the end of the first allowed connection started after
the old engine was gone (the lab decides packets again); "engine ready" is the same up to the new
engine having bound its queues. Also reported: connections to the blocked port that passed
(must be 0) and whether the held connection survived every kill. The integration tests
(tests/integration/test_survive.py) use the same pieces.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.lab import lifecycle, netns, processes, state
from emulator.topology import load

TOPOLOGY = """
name: {name}
vpc: {{cidr: 10.0.0.0/16}}
subnets: [{{name: s, cidr: 10.0.1.0/24}}]
security_groups:
  - name: web-sg
    ingress:
      - {{protocol: tcp, ports: 80, cidr: 0.0.0.0/0}}
      - {{protocol: tcp, ports: 7, cidr: 203.0.113.10/32}}
      - {{protocol: tcp, ports: 22, cidr: 203.0.113.10/32}}
      - {{protocol: tcp, ports: 5201, cidr: 203.0.113.10/32}}
instances:
  - {{name: web, subnet: s, private_ip: 10.0.1.10, public_ip: 198.51.100.10, security_groups: [web-sg],
     services: [{{type: http, port: 80}}, {{type: http, port: 8080}}, {{type: tcp, port: 7}}, {{type: ssh}}]}}
internet:
  - {{name: you, ip: 203.0.113.10}}
options: {{standby: {standby}}}
"""
OPEN_PORT, BLOCKED_PORT, ECHO_PORT = 80, 8080, 7      # 8080 listens, but no rule allows it
BETWEEN_KILLS = (2.2, 3.5)      # seconds after the engine is back; beyond supervisor.STABLE (2 s)
READY_WAIT = 10.0


def topology_file(name: str, directory: Path, standby: bool = True) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(TOPOLOGY.format(name=name, standby=str(standby).lower()))
    return path


def up(name: str, directory: Path, standby: bool = True) -> None:
    lifecycle.up(load(str(topology_file(name, directory, standby))).topology)


def engine_pid(lab: str) -> int:
    pid = state.read_pid(state.paths(lab).engine_pid)
    if pid is None:
        raise RuntimeError(f"lab {lab} has no engine pid")
    return pid


def wait_ready(lab: str, not_pid: int, timeout: float = READY_WAIT) -> tuple[int, float]:
    """The new engine's pid and the monotonic time it had bound its queues."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = state.read_pid(state.paths(lab).ready)
        if pid is not None and pid != not_pid:
            return pid, time.monotonic()
        time.sleep(0.002)
    raise RuntimeError(f"lab {lab}: no engine came back within {timeout:g} s after pid {not_pid} died")


@dataclass(frozen=True)
class Kill:
    killed: float       # monotonic time of the SIGKILL
    dead: float         # when the old engine was seen gone
    ready: float        # when the new one had bound its queues


def kill_engine(lab: str) -> Kill:
    pid = engine_pid(lab)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    while processes.alive(pid):
        time.sleep(0.001)
    dead = time.monotonic()
    _, ready = wait_ready(lab, pid)
    return Kill(killed, dead, ready)


def kill_repeatedly(lab: str, count: int, rng: random.Random,
                    between: Callable[[], None] | None = None) -> list[Kill]:
    """SIGKILL the engine `count` times, each at a random moment after it is back."""
    kills = []
    for _ in range(count):
        time.sleep(rng.uniform(*BETWEEN_KILLS))
        kills.append(kill_engine(lab))
        if between is not None:
            between()
    return kills


class PulseClient:
    """emulator.guest.pulse inside the lab's `you`, aimed at `web`."""

    def __init__(self, lab: str, seconds: float):
        argv = lifecycle.exec_argv(lab, "you", [sys.executable, "-m", "emulator.guest.pulse", "web", str(OPEN_PORT),
                                                str(BLOCKED_PORT), str(ECHO_PORT), str(seconds)])
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env=netns.package_env())
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            err = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"pulse did not start: {line} {err}")

    def result(self, timeout: float) -> dict:
        out, err = self.process.communicate(timeout=timeout)
        if self.process.returncode != 0:
            raise RuntimeError(f"pulse failed ({self.process.returncode}): {err.strip()[-400:]}")
        return json.loads(out.strip().splitlines()[-1])


def gaps(kills: list[Kill], pulse: dict) -> list[float]:
    """Per kill: seconds from the SIGKILL to the end of the first allowed connection that
    started after the old engine was gone."""
    opened = sorted(pulse["open"])
    found = []
    for kill in kills:
        first = next((end for start, end in opened if start >= kill.dead), None)
        if first is None:
            raise RuntimeError(f"no allowed connection succeeded after the kill at {kill.killed:.3f}")
        found.append(first - kill.killed)
    return found


def summary(kills: list[Kill], pulse: dict) -> dict[str, Any]:
    client = gaps(kills, pulse)
    ready = [k.ready - k.killed for k in kills]

    def ms(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"median": round(statistics.median(ordered) * 1000, 1),
                "p90": round(ordered[max(0, int(len(ordered) * 0.9 + 0.5) - 1)] * 1000, 1),
                "max": round(ordered[-1] * 1000, 1)}

    return {"kills": len(kills), "gap_ms": ms(client), "engine_ready_ms": ms(ready),
            "blocked_passed": len(pulse["blocked"]), "blocked_attempts": pulse["attempts"]["blocked"],
            "open_attempts": pulse["attempts"]["open"], "open_succeeded": len(pulse["open"]),
            "held_connection": "broken: " + pulse["echo_broken"] if pulse["echo_broken"] else "survived",
            "held_longest_stall_s": pulse["echo_max_stall"]}


def measure(kills: int, seed: int, progress: Callable[[str], None], standby: bool = True) -> dict[str, Any]:
    lab = f"surv-bench{os.getpid() % 1000}"
    with tempfile.TemporaryDirectory() as directory:
        progress(f"up {lab}" + ("" if standby else " (no standby: every restart is cold)"))
        up(lab, Path(directory), standby)
        try:
            pulse = PulseClient(lab, kills * (BETWEEN_KILLS[1] + 1.0) + 3.0)
            progress(f"{kills} kills, {BETWEEN_KILLS[0]:g}-{BETWEEN_KILLS[1]:g} s apart, under load")
            done = kill_repeatedly(lab, kills, random.Random(seed))
            result = summary(done, pulse.result(timeout=kills * (BETWEEN_KILLS[1] + 1.0) + 30))
        finally:
            lifecycle.down(lab)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.bench.restart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-standby", dest="standby", action="store_false",
                        help="options.standby: false: no engine kept waiting, every restart starts cold")
    parser.add_argument("--json", action="store_true", help="print one JSON line instead of text")
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    result = measure(args.kills, args.seed, progress, args.standby)
    if args.json:
        print(json.dumps(result))
        return 0
    gap, ready = result["gap_ms"], result["engine_ready_ms"]
    print(f"engine SIGKILLed {result['kills']} times under load")
    print(f"  kill -> enforcing again (first new allowed connection), ms: median {gap['median']}, "
          f"p90 {gap['p90']}, max {gap['max']}")
    print(f"  kill -> new engine bound its queues, ms: median {ready['median']}, p90 {ready['p90']}, "
          f"max {ready['max']}")
    print(f"  blocked connections that passed: {result['blocked_passed']} of {result['blocked_attempts']}")
    print(f"  held connection: {result['held_connection']} (longest stall {result['held_longest_stall_s']} s)")
    return 0 if result["blocked_passed"] == 0 and result["held_connection"] == "survived" else 1


if __name__ == "__main__":
    sys.exit(main())
