"""The README's main job: `sgemu demo` brings the three-tier and classic-ports labs up, every real client outcome matches
the engine's prediction, and nothing is left behind."""
from __future__ import annotations

import subprocess
import sys


def test_demo_runs_real_clients_and_tears_down():
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "demo"], capture_output=True, text=True,
                          timeout=300)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "every real outcome matched the engine's prediction" in out
    for attempt, outcome in (("you -> alb:80 (curl)", "open"), ("stranger -> alb:443 (curl)", "refused"),
                             ("you -> alb:22 (ssh)", "timeout"), ("app -> db:3306 (nc)", "open"),
                             ("stranger -> db:3306 (nc)", "timeout"),
                             ("you -> web:443 (https)", "open"), ("stranger -> web:22 (ssh)", "timeout"),
                             ("you -> files:21 (ftp)", "open"), ("stranger -> files:50000 (ftp)", "timeout"),
                             ("app -> updates:443 (nc)", "refused"), ("db -> updates:443 (nc)", "timeout")):
        block = out[out.index(attempt):].splitlines()
        assert block[2].strip().startswith(outcome), block[:3]
    # app and updates are dual-stack: the client is pinned to IPv4, the path the prediction explains
    # (through nat-a; by name, nc would prefer IPv6 and the egress-only gateway)
    nat = out[out.index("app -> updates:443 (nc)"):].splitlines()
    assert "nc -4 " in nat[1] and "(203.0.113.80)" in nat[2], nat[:3]
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "sgemu-three-tier-" not in namespaces and "sgemu-classic-ports-" not in namespaces
    assert "sgemu-three-tier-nat-" not in namespaces
