"""Load: SYN and UDP floods within the conntrack allowance (drops counted, memory bounded, an
established flow unharmed), thousands of concurrent connections, and several labs at once.
Every flood is bounded in count and time and stays between the lab's own namespaces."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from emulator.lab import lifecycle as lab
from emulator.lab import state
from emulator.topology import parse

from .reach import Case, assert_reachability, run_in
from .test_faults import cli, gone, write

ALLOWANCE = 300
FLOOD = 3000                    # packets per flood
LAB = f"""
name: it7-flood
options: {{conntrack_allowance: {ALLOWANCE}}}
vpc: {{cidr: 10.0.0.0/16}}
subnets: [{{name: s, cidr: 10.0.1.0/24}}]
security_groups:
  - name: web-sg                 # narrow egress: every flow is tracked and needs the allowance
    ingress: [{{protocol: tcp, ports: 80, cidr: 0.0.0.0/0}}, {{protocol: tcp, ports: 3306, cidr: 0.0.0.0/0}},
              {{protocol: udp, ports: 9999, cidr: 0.0.0.0/0}}]
    egress: []
instances:
  - {{name: web, subnet: s, private_ip: 10.0.1.10, public_ip: 198.51.100.10, security_groups: [web-sg],
     services: [{{type: http, port: 80}}, {{type: tcp, port: 3306}}]}}
internet:
  - {{name: you, ip: 203.0.113.10}}
  - {{name: friend, ip: 203.0.113.20}}
"""

# A keep-alive HTTP client on one connection: a request every 0.1 s for `seconds`; prints "ok failed".
KEEPALIVE = r"""
import socket, sys, time
host, seconds = sys.argv[1], float(sys.argv[2])
s = socket.create_connection((host, 80), timeout=3)
ok = failed = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
        data = b""
        while True:
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and b" 200 " in head:
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                if len(body) >= length:
                    break
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        ok += 1
    except OSError:
        failed += 1
        break
    time.sleep(0.1)
print(ok, failed)
"""

FLOODER = r"""
import random, sys
from scapy.all import IP, TCP, UDP, Raw, conf, send
conf.verb = 0
src, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])   # scapy cannot guess src behind a /32
random.seed(11)
send([IP(src=src, dst=dst) / TCP(sport=random.randrange(1024, 65535), dport=80, flags="S", seq=random.getrandbits(32))
      for _ in range(count)], inter=0)
send([IP(src=src, dst=dst) / UDP(sport=random.randrange(1024, 65535), dport=9999) / Raw(b"flood") for _ in range(count)], inter=0)
"""

# Opens N connections and holds them all open at once; every one must get the service banner.
HOLDER = r"""
import resource, selectors, socket, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 256)), hard))
held = []
for _ in range(n):
    held.append(socket.create_connection((host, port), timeout=5))
sel = selectors.DefaultSelector()
for s in held:
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
greeted = set()
while len(greeted) < n:
    events = sel.select(timeout=10)
    if not events:
        break
    for key, _ in events:
        if key.fileobj.recv(256):
            greeted.add(key.fileobj)
            sel.unregister(key.fileobj)
sample = held[:: max(1, n // 20)]
for s in sample:
    s.setblocking(True)
    s.settimeout(5)
    s.sendall(b"still here\n")
echoed = sum(1 for s in sample if b"still here" in s.recv(256))
print(len(held), len(greeted), echoed, len(sample))
"""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_syn_and_udp_floods_stay_within_the_allowance_and_spare_an_established_flow() -> None:
    topo = parse(yaml.safe_load(LAB), "it7-flood.yaml").topology
    lab.up(topo)
    try:
        engine = lab.status(topo.name).engine
        rss_before = _rss_kib(engine.pid)
        established = subprocess.Popen(lab.exec_argv(topo.name, "friend", [sys.executable, "-c", KEEPALIVE, "web", "12"]),
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        started = time.monotonic()
        flood = run_in(topo.name, "you", [sys.executable, "-c", FLOODER, "203.0.113.10", "198.51.100.10", str(FLOOD)], timeout=120)
        assert flood.returncode == 0, flood.stderr
        flood_seconds = time.monotonic() - started
        out, err = established.communicate(timeout=60)
        time.sleep(1.5)                               # one more health.json after the flood
        status = lab.status(topo.name).engine
        web = status.enis["web"]
        assert status.alive and status.pid == engine.pid
        assert web["counters"]["conntrack_allowance_exceeded"] >= FLOOD, web["counters"]
        assert web["flows"] <= ALLOWANCE, web
        ok, failed = map(int, out.split())
        assert failed == 0 and ok >= 20, f"the established flow broke during the flood: ok {ok} failed {failed} {err}"
        growth = _rss_kib(engine.pid) - rss_before
        assert growth < 64 * 1024, f"engine RSS grew by {growth} KiB during {2 * FLOOD} packets"
        assert flood_seconds < 90
    finally:
        lab.down(topo.name)
    assert gone(topo.name) == []


def test_two_thousand_concurrent_connections() -> None:
    topo = parse(yaml.safe_load(LAB.replace(f"conntrack_allowance: {ALLOWANCE}", "conntrack_allowance: 100000")),
                 "it7-flood.yaml").topology
    lab.up(topo)
    try:
        result = run_in(topo.name, "friend", [sys.executable, "-c", HOLDER, "198.51.100.10", "3306", "2000"],
                        timeout=180)
        assert result.returncode == 0, result.stderr[-2000:]
        held, greeted, echoed, sample = map(int, result.stdout.split())
        assert (held, greeted, echoed) == (2000, 2000, sample), result.stdout
        engine = lab.status(topo.name).engine
        assert engine.alive and engine.counters.get("conntrack_allowance_exceeded", 0) == 0
        assert_reachability(topo.name, [Case("you", "web", 80, "open")])
    finally:
        lab.down(topo.name)
    assert gone(topo.name) == []


def test_several_labs_at_once(tmp_path) -> None:
    names = [f"it7-many-{n}" for n in range(4)]
    paths = [write(tmp_path, name) for name in names]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        ups = list(pool.map(lambda p: cli("up", str(p), "--detach"), paths))
    try:
        assert [u.returncode for u in ups] == [0] * len(names), [u.stderr for u in ups]
        for name in names:
            assert_reachability(name, [Case("you", "web", 80, "open"), Case("you", "web", 22, "timeout")])
        # the supervisor first, or the engine comes back at once (tests/integration/test_survive.py)
        os.kill(state.load(names[0]).pids["supervisor"], signal.SIGKILL)
        os.kill(lab.status(names[0]).engine.pid, signal.SIGKILL)
        assert_reachability(names[0], [Case("you", "web", 80, "timeout", label="dead")])
        for name in names[1:]:
            assert lab.status(name).engine.alive
            assert_reachability(name, [Case("you", "web", 80, "open", label="others")])
    finally:
        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            downs = list(pool.map(lambda name: cli("down", "--lab", name), names))
    assert [d.returncode for d in downs] == [0] * len(names), [d.stderr for d in downs]
    assert [gone(name) for name in names] == [[]] * len(names)
