"""Security: state and control socket root-only, no shell and no unchecked strings reaching `ip`
or iptables, the root namespace untouched by a full run, and nothing routed out of a lab."""
from __future__ import annotations

import ast
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from emulator.lab import hooks, netns, state
from emulator.lab import lifecycle as lab
from emulator.plan import LabPlan, Ruleset, build_plan
from emulator.topology import load

from .conftest import _root_namespace
from .reach import Case, assert_reachability, run_in
from .test_faults import gone

PACKAGE = Path(__file__).resolve().parents[2] / "emulator"
OUTSIDE = "192.0.2.1"               # TEST-NET-1: never a real host

LAB = """
name: {name}
vpc: {{cidr: 10.0.0.0/16, ipv6_cidr: "fd00:10::/56"}}
subnets: [{{name: s, cidr: 10.0.1.0/24, ipv6_cidr: "fd00:10:0:1::/64"}}]
security_groups:
  - name: open-sg
    ingress: [{{protocol: all, cidr: 0.0.0.0/0}}, {{protocol: all, cidr: "::/0"}}]
instances:
  - {{name: web, subnet: s, private_ip: 10.0.1.10, ipv6: "fd00:10:0:1::10", public_ip: 198.51.100.10,
     security_groups: [open-sg], services: [{{type: http, port: 80}}]}}
  - {{name: db, subnet: s, private_ip: 10.0.1.20, security_groups: [open-sg]}}
internet:
  - {{name: you, ip: 203.0.113.10, ipv6: "2001:db8:ff::10"}}
"""


def _topology(tmp_path: Path, name: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(LAB.format(name=name))
    return load(str(path)).topology


# --- no root needed: what may reach a shell, ip and iptables -----------------------------------

def _subprocess_calls() -> list[tuple[str, ast.Call]]:
    return [(f"{path.relative_to(PACKAGE)}:{node.lineno}", node)
            for path in sorted(PACKAGE.rglob("*.py")) for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name) and node.func.value.id in ("subprocess", "os")]


def test_no_shell_is_ever_used() -> None:
    calls = _subprocess_calls()
    assert any(call.func.attr == "run" for _, call in calls), "the scan found no subprocess call at all"
    shell = [where for where, call in calls
             if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                    for k in call.keywords)]
    system = [where for where, call in calls if call.func.attr in ("system", "popen", "execl", "execlp")]
    as_text = [where for where, call in calls if call.func.attr in ("run", "Popen", "check_output", "call")
               and call.args and isinstance(call.args[0], (ast.Constant, ast.JoinedStr, ast.BinOp))]
    assert (shell, system, as_text) == ([], [], []), "commands must be argv lists, never shell text"


@pytest.mark.parametrize("commands", [["link set eth0 up\nlink del eni-web"], ["addr add 10.0.0.1/24 dev eth0; reboot"],
                                      ["route add $(id) dev eth0"], ["link set eth0 alias `x`"]])
def test_ip_batch_refuses_anything_but_names_and_addresses(commands) -> None:
    with pytest.raises(ValueError, match="refusing ip -batch input"):
        netns.batch("sgemu-x-vpc", commands)


@pytest.mark.parametrize("name", ["sgemu-a b", "sgemu-a;reboot", "other-ns", "sgemu-../../etc", "sgemu-\nx"])
def test_namespace_names_are_checked_before_ip_sees_them(name) -> None:
    with pytest.raises(ValueError, match="refusing namespace name"):
        netns.add_namespace(name)


def test_iptables_restore_refuses_foreign_rule_text(tmp_path) -> None:
    plan = build_plan(_topology(tmp_path, "it7-rules"))
    evil = LabPlan(plan.lab, plan.fabric, plan.nodes, plan.veths, plan.enis,
                   (*plan.rulesets, Ruleset(4, "filter", "*filter\n-A INPUT -m comment --comment \"$(id)\" -j ACCEPT\nCOMMIT\n")),
                   plan.views)
    with pytest.raises(ValueError, match="refusing iptables-restore input"):
        hooks.install(evil, "iptables-nft")
    assert all(hooks.RULE_LINE.fullmatch(line) for rs in plan.rulesets for line in rs.text.splitlines())


# --- live -----------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_state_directory_files_and_control_socket_are_root_only(tmp_path) -> None:
    topo = _topology(tmp_path, "it7-perm")
    lab.up(topo)
    try:
        root = state.paths(topo.name).root
        time.sleep(1.2)                                  # health.json rewritten at least once
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
        entries = list(root.rglob("*"))
        assert any(p.name == "state.json" for p in entries) and any(p.name == "health.json" for p in entries)
        loose = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in entries if p.stat().st_mode & 0o077}
        assert loose == {}, f"readable by others: {loose}"
        assert all(p.stat().st_uid == 0 for p in entries)
        sock = root / "control.sock"
        if sock.exists():
            assert sock.is_socket() and stat.S_IMODE(sock.stat().st_mode) == 0o600
    finally:
        lab.down(topo.name)
    assert gone(topo.name) == []


def _capture(filter_expr: str) -> subprocess.Popen:
    """tcpdump in the ROOT namespace on every interface; prints one line per packet seen."""
    process = subprocess.Popen(["tcpdump", "-ni", "any", "-l", "-q", filter_expr], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:                   # wait until it really listens
        line = process.stderr.readline()
        if "listening on" in line:
            return process
    process.kill()
    raise AssertionError("tcpdump did not start")


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_nothing_routes_out_of_a_lab(tmp_path) -> None:
    topo = _topology(tmp_path, "it7-out")
    capture = _capture(f"host {OUTSIDE} or host 2001:db8::1")
    lab.up(topo)
    try:
        plan = build_plan(topo)
        for ns in plan.namespaces:                      # every link of the lab stays among its namespaces
            for link in netns.links(ns.name):
                assert link["ifname"] == "lo" or link.get("ifalias") == plan.marker, (ns.name, link)
        attempts = [["ping", "-c2", "-W1", "-i0.3", OUTSIDE],
                    ["python3", "-c", f"import socket; s=socket.socket(); s.settimeout(1); s.connect_ex(('{OUTSIDE}', 80))"],
                    ["python3", "-c", f"import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('{OUTSIDE}', 53))"],
                    ["ping", "-6", "-c1", "-W1", "2001:db8::1"]]
        for node in ("web", "db", "you"):
            for argv in attempts:
                run_in(topo.name, node, argv)
        fabric = subprocess.run(["ip", "-n", plan.fabric.name, "route", "get", OUTSIDE], capture_output=True, text=True)
        assert fabric.returncode != 0, f"the fabric has a route out: {fabric.stdout}"
        assert_reachability(topo.name, [Case("you", "web", 80, "open")])     # the lab itself works
    finally:
        lab.down(topo.name)
        time.sleep(0.5)
        capture.send_signal(signal.SIGINT)
        seen, _ = capture.communicate(timeout=10)
    assert seen.strip() == "", f"packets for {OUTSIDE} reached the root namespace:\n{seen}"
    assert gone(topo.name) == []


@pytest.mark.integration
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_a_full_run_leaves_the_root_namespace_exactly_as_it_was(tmp_path) -> None:
    before = _root_namespace()
    topo = _topology(tmp_path, "it7-root")
    lab.up(topo)
    try:
        assert_reachability(topo.name, [Case("you", "web", 80, "open"), Case("web", "db", 22, "refused"),
                                        Case("you", "web", 80, "open", ipv6=True)])
        os.kill(lab.status(topo.name).engine.pid, signal.SIGKILL)
    finally:
        lab.down(topo.name)
    after = _root_namespace()
    assert [key for key in before if before[key] != after[key]] == []
    assert gone(topo.name) == []
