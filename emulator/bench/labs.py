"""The benchmark's labs (`bench-*`) and the native tools it drives in them.

Modes, each its own lab of two instances a -> b, up side by side:
  plain    the same lab with no SG hook at all: the kernel's own figures (the baseline)
  offload  sgemu, established flows handed to the kernel
  queue    sgemu without offload: every packet through the engine
  binding  the queue lab's hooks with an accept-only consumer of the same NFQUEUE binding in
           place of the engine (emulator/bench/binding.py): the binding's own limit
Rates come from native tools, so the baseline is the kernel's: iperf3 (TCP throughput, UDP
packets/s with small datagrams) and ab without keep-alive against busybox httpd (new
connections/s). Round trips come from the Python probe in guest/loadgen.py, the same in every
mode (a latency difference cancels its cost).
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emulator.bench.topologies import pair_topology
from emulator.lab import cleanup, netns, processes, state
from emulator.lab import lifecycle as lab
from emulator.plan import ENI_QUEUE
from emulator.topology import parse

IPERF_PORT = 5201
ECHO_PORT = 7000
HTTP_PORT = 8080
CPS_SECONDS = 3.0
CPS_CONCURRENCY = 4            # ab -c: connections in flight (each opened and closed, no keep-alive)
UDP_SECONDS = 2.0
UDP_PAYLOAD = 64               # bytes per datagram: a packet-rate test, not a byte-rate one
PINGPONG_COUNT = 2000
SERVER_START_TIMEOUT = 10.0
MODES = ("plain", "offload", "queue", "binding")
MODE_TITLES = {"plain": "(a) no enforcement", "offload": "(b) sgemu, offload", "queue": "(c) sgemu, no offload",
               "binding": "(d) accept-only consumer"}
TOOLS = {
    "throughput": "iperf3 -t SECONDS, one TCP stream a -> b",
    "udp_pps": f"iperf3 -u -b 0 -l {UDP_PAYLOAD}, datagrams received per second",
    "cps": f"ab -c {CPS_CONCURRENCY} -t {CPS_SECONDS:g} (no keep-alive) against busybox httpd",
    "rtt": f"python round trips (emulator/guest/loadgen.py pingpong, {PINGPONG_COUNT} after a warm-up)",
    "binding": "emulator/bench/binding.py: accept-only consumer of the engine's NFQUEUE binding",
}
_AB_RATE = re.compile(r"Requests per second:\s+([\d.]+)")
_AB_FAILED = re.compile(r"Failed requests:\s+(\d+)")


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _in(ns: str, argv: list[str]) -> list[str]:
    return netns.exec_argv(ns, argv)


def json_run(argv: list[str], timeout: float) -> dict:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=netns.package_env())
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed: {result.stderr.strip()[-400:]}")
    out = result.stdout.strip()
    return json.loads(out if out.startswith("{\n") else out.splitlines()[-1])   # iperf3 -J: one document


def ab_rate(output: str) -> tuple[float, int]:
    """(requests per second, failed requests) from ab's report."""
    rate, failed = _AB_RATE.search(output), _AB_FAILED.search(output)
    if rate is None or failed is None:
        raise RuntimeError(f"ab printed no rate: {output.strip()[-300:]}")
    return float(rate.group(1)), int(failed.group(1))


def _verdicts(name: str, after: float) -> int:
    """Total engine verdicts from the first health update written after `after`."""
    deadline = time.time() + 5
    while time.time() < deadline:
        health = state.read_health(name) or {}
        if health.get("updated", 0) > after:
            counters = [eni["counters"] for eni in health.get("enis", {}).values()]
            return sum(c.get("accepted", 0) + c.get("dropped", 0) for c in counters)
        time.sleep(0.05)
    raise RuntimeError(f"the engine of {name} wrote no health update")


def queue_drops(fabric: str) -> int:
    """Packets the kernel dropped on the lab's queues (queue full, or the socket overran)."""
    out = netns.run(_in(fabric, ["cat", "/proc/net/netfilter/nfnetlink_queue"]), check=False).stdout
    return sum(int(f[5]) + int(f[6]) for f in (line.split() for line in out.splitlines()) if len(f) >= 7)


def _start(argv: list[str], ready: str | None) -> subprocess.Popen:
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


def down_quietly(name: str) -> None:
    if name in lab.running_labs():
        lab.down(name)


class BenchLab:
    """One mode's running lab with its servers in `b`; clients run in `a`."""

    def __init__(self, mode: str):
        self.mode = mode
        self.name = f"bench-{mode}"
        topology = parse(pair_topology(self.name, offload=mode == "offload"), "bench").topology
        down_quietly(self.name)
        lab.up(topology, enforce=mode != "plain")
        self._servers: list[subprocess.Popen] = []
        self._site = Path(tempfile.mkdtemp(prefix="sgemu-bench-"))
        plan = lab.lab_plan(self.name)
        self.fabric, self.a, self.b = plan.fabric.name, plan.namespace("a").name, plan.namespace("b").name
        self.b_ip = str(topology.instance("b").private_ip)
        self.samples: dict[str, list[float]] = {}
        self.tcp_drops = self.udp_drops = 0
        try:
            if mode == "binding":
                self._replace_engine([ENI_QUEUE])
            self._servers.append(_start(_in(self.b, ["iperf3", "-s", "-p", str(IPERF_PORT)]), None))
            _wait_port(self.b, IPERF_PORT)
            if mode != "binding":
                (self._site / "index.html").write_text("ok\n")
                self._servers.append(_start(_in(self.b, ["busybox", "httpd", "-f", "-p", str(HTTP_PORT),
                                                         "-h", str(self._site)]), None))
                self._servers.append(_start(_in(self.b, _python("emulator.guest.loadgen", "serve",
                                                                str(ECHO_PORT))), "ready"))
                _wait_port(self.b, HTTP_PORT)
        except BaseException:
            self.close()
            raise

    def _replace_engine(self, queues: list[int]) -> None:
        """Stop the lab's engine (its queues unbind) and bind them with the accept-only consumer."""
        pid = state.read_pid(state.paths(self.name).engine_pid)
        if pid is None or not cleanup.is_engine(pid, self.name):
            raise RuntimeError(f"no engine found for {self.name}")
        processes.stop([pid])
        self._servers.append(_start(_in(self.fabric, _python("emulator.bench.binding", *map(str, queues))), "ready"))

    def _add(self, key: str, value: float) -> None:
        self.samples.setdefault(key, []).append(value)

    def _iperf(self, seconds: float, *extra: str) -> dict:
        out = json_run(_in(self.a, ["iperf3", "-c", self.b_ip, "-p", str(IPERF_PORT), "-t", str(seconds),
                                    "-J", *extra]), timeout=seconds + 30)
        if "error" in out:
            raise RuntimeError(f"iperf3 in {self.name}: {out['error']}")
        return out["end"]

    def round(self, seconds: float) -> None:
        if self.mode != "binding":
            self._tcp(seconds)
        flood = queue_drops(self.fabric)
        udp = self._iperf(UDP_SECONDS, "-u", "-b", "0", "-l", str(UDP_PAYLOAD))["sum"]
        self._add("udp_pps", (udp["packets"] - udp["lost_packets"]) / udp["seconds"])
        self.udp_drops += queue_drops(self.fabric) - flood
        if self.mode == "binding":
            return
        self._add("cps", self._cps())
        rtt = json_run(_in(self.a, _python("emulator.guest.loadgen", "pingpong", self.b_ip, str(ECHO_PORT),
                                           str(PINGPONG_COUNT))), timeout=60)
        self._add("rtt_us", rtt["median_us"])

    def _tcp(self, seconds: float) -> None:
        enforced = self.mode != "plain"
        drops = queue_drops(self.fabric)
        before = _verdicts(self.name, time.time()) if enforced else 0
        tcp = self._iperf(seconds)["sum_received"]
        after = _verdicts(self.name, time.time()) if enforced else 0
        self._add("throughput_bps", tcp["bits_per_second"])
        self._add("verdicts_per_s", (after - before) / tcp["seconds"])
        self.tcp_drops += queue_drops(self.fabric) - drops

    def _cps(self) -> float:
        """New connections per second: HTTP/1.0 requests without keep-alive, each its own connection."""
        argv = _in(self.a, ["ab", "-q", "-r", "-s", "5", "-c", str(CPS_CONCURRENCY), "-t", f"{CPS_SECONDS:g}",
                            "-n", "10000000", f"http://{self.b_ip}:{HTTP_PORT}/index.html"])
        result = subprocess.run(argv, capture_output=True, text=True, timeout=CPS_SECONDS + 60)
        rate, failed = ab_rate(result.stdout)
        self._add("cps_failed", failed)
        return rate

    def median(self, key: str) -> float:
        return statistics.median(self.samples[key]) if key in self.samples else 0.0

    def close(self) -> None:
        for server in self._servers:
            server.terminate()
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(self._site, ignore_errors=True)
        lab.down(self.name)


def tool_versions() -> dict[str, str]:
    """The native tools' versions, for the record."""
    def first_line(argv: list[str]) -> str:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except OSError:
            return "missing"
        lines = (result.stdout or result.stderr).strip().splitlines()
        return lines[0].strip() if lines else "unknown"

    return {"iperf3": first_line(["iperf3", "--version"]), "ab": first_line(["ab", "-V"]),
            "busybox": first_line(["busybox"])}
