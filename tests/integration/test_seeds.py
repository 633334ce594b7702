"""The seed examples end to end (reference §7.1 three-tier, §7.2 web server) with real clients."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from emulator.lab import state
from emulator.lab.lifecycle import exec_argv

from .reach import Case, assert_reachability, run_in, running, topology

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def test_three_tier_t1_to_t9() -> None:
    with running(topology(TOPOLOGIES / "three-tier.yaml", "it-three")) as lab:
        assert_reachability(lab, [
            Case("you", "alb", 80, "open", label="T1"),
            Case("you", "alb", 22, "timeout", label="T2"),          # sshd runs; alb-sg has no 22
            Case("alb", "app", 8080, "open", label="T3"),
            Case("you", "10.0.2.10", 8080, "timeout", label="T4"),  # no public IP: unreachable
            Case("stranger", "10.0.2.10", 8080, "timeout", label="T4"),
            Case("app", "db", 3306, "open", label="T5"),
            Case("alb", "db", 3306, "timeout", label="T6"),
            Case("db", "app", 8080, "timeout", label="T7"),
            Case("db", "you", 80, "timeout", label="T7"),
            Case("app", "alb", 80, "timeout", label="T8"),
            Case("you", "alb", 443, "refused", label="W4"),         # allowed, nothing listens
        ])
        curl = run_in(lab, "you", ["curl", "-s", "-m", "3", "http://alb/"])
        assert curl.returncode == 0 and "alb" in curl.stdout
        banner = run_in(lab, "app", ["nc", "-w", "2", "db", "3306"])
        assert banner.stdout.strip(), f"no banner from db: {banner}"
        # T9: app's 8080 listener stops; the kernel's RST is a tracked response -> refused.
        for role, pid in state.load(lab).pids.items():
            if role.startswith("service:app:"):
                os.kill(pid, signal.SIGTERM)
        time.sleep(0.5)
        assert_reachability(lab, [Case("alb", "app", 8080, "refused", label="T9")])


def test_web_server_w1_to_w5_w10_w11_and_ipv6() -> None:
    with running(topology(TOPOLOGIES / "web-server.yaml", "it-web")) as lab:
        assert_reachability(lab, [
            Case("you", "web", 22, "open", label="W1"),
            Case("stranger", "web", 22, "timeout", label="W2"),
            Case("you", "web", 80, "open", label="W3"),
            Case("stranger", "web", 80, "open", label="W3"),
            Case("you", "web", 443, "refused", label="W4"),
            Case("you", "web", 8080, "timeout", label="W5"),
            Case("you", "web", 0, "timeout", proto="icmp", label="W10"),
            Case("web", "you", 0, "reply", proto="icmp", label="W11"),
            Case("you", "web", 80, "open", ipv6=True, label="v6"),
            Case("you", "web", 22, "timeout", ipv6=True, label="v6"),  # 22 only from 203.0.113.10/32
        ])
        ssh = run_in(lab, "you", ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "web", "echo", "hi"])
        assert ssh.returncode == 0 and ssh.stdout.strip() == "hi", ssh.stderr
        start = time.monotonic()
        blocked = run_in(lab, "stranger", ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2", "web", "true"])
        assert blocked.returncode != 0 and "timed out" in blocked.stderr
        assert time.monotonic() - start >= 1.5      # a real timeout, not a quick refusal
        curl6 = run_in(lab, "you", ["curl", "-s", "-m", "3", "http://[fd00:10:0:1::10]/"])
        assert curl6.returncode == 0 and "web" in curl6.stdout


def test_blocked_packets_never_reach_the_destination_capture() -> None:
    with running(topology(TOPOLOGIES / "web-server.yaml", "it-capture")) as lab:
        dump = subprocess.Popen(exec_argv(lab, "web", ["tcpdump", "-i", "eth0", "-n", "-l", "-U",
                                                        "tcp port 8080 or tcp port 80"]),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1.0)                   # tcpdump attaches
            assert_reachability(lab, [Case("stranger", "web", 8080, "timeout", label="W5"),
                                      Case("stranger", "web", 80, "open", label="W3")])
            time.sleep(0.5)
        finally:
            dump.send_signal(signal.SIGINT)
            out, _ = dump.communicate(timeout=5)
        assert ".80:" in out or ".80 " in out, f"the capture saw nothing at all: {out!r}"
        assert ".8080" not in out, f"a blocked packet reached web:\n{out}"


def test_blocked_egress_syn_is_a_timeout_not_eperm() -> None:
    """db has no outbound rules: its SYN is dropped outside its stack, so connect() times out."""
    with running(topology(TOPOLOGIES / "three-tier.yaml", "it-eperm")) as lab:
        script = ("import socket,errno\ns=socket.socket()\ns.settimeout(1.5)\n"
                  "try:\n s.connect(('10.0.2.10',8080))\n print('connected')\n"
                  "except socket.timeout:\n print('timeout')\n"
                  "except OSError as e:\n print(errno.errorcode.get(e.errno, e.errno))\n")
        result = run_in(lab, "db", [sys.executable, "-c", script])
        assert result.stdout.strip() == "timeout", result
        ping = run_in(lab, "db", ["ping", "-c1", "-W1", "10.0.2.10"])
        assert ping.returncode == 1 and "not permitted" not in ping.stderr, ping
