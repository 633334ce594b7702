"""Renderings of live data: conntrack lines and tables (IPv6 brackets survive rich markup), the
entries live explain picks, and the watch view's rates."""
from __future__ import annotations

from rich.console import Console

from emulator.render.live import conntrack_table, entry_line, matching_entries, watch_view


def entry(**changes) -> dict:
    e = {"proto": "tcp", "family": 4, "local": "10.0.1.10", "local_port": 22, "remote": "203.0.113.10",
         "remote_port": 40000, "icmp_id": None, "initiator": "ingress", "tracked": True, "state": "ESTABLISHED",
         "idle_left": 59.6, "age": 1.0, "packets_out": 2, "bytes_out": 150, "packets_in": 3, "bytes_in": 160,
         "rule": None, "sg": None}
    return {**e, **changes}


def text(renderable) -> str:
    console = Console(width=200, record=True, force_terminal=False)
    console.print(renderable)
    return console.export_text()


def test_entry_line_reads_like_conntrack():
    assert entry_line("web", entry()) == (
        "web: tcp 10.0.1.10:22 <- 203.0.113.10:40000 ESTABLISHED tracked (opened by the peer), "
        "idle timeout in 60s, out 2 pkts/150 B, in 3 pkts/160 B")


def test_table_keeps_ipv6_brackets():
    out = text(conntrack_table({"web": [entry(local="fd00:10:0:1::10", remote="2001:db8:ff::10", tracked=False)]}))
    assert "[fd00:10:0:1::10]:22" in out and "[2001:db8:ff::10]:40000" in out and "1 flow(s) on 1 ENI(s)" in out


def test_matching_entries_need_the_peer_and_the_port():
    tables = {"web": [entry(), entry(local_port=80, remote_port=40001), entry(remote="198.51.100.7")]}
    lines = list(matching_entries(tables, "tcp", 22, {"web": {"203.0.113.10"}}))
    assert len(lines) == 1 and "10.0.1.10:22 <- 203.0.113.10:40000" in lines[0]
    icmp = {"web": [entry(proto="icmp", local_port=None, remote_port=None, icmp_id=7)]}
    assert len(list(matching_entries(icmp, "icmp", 0, {"web": {"203.0.113.10"}}))) == 1


def test_watch_rates_are_per_second_since_the_last_sample():
    def sample(accepted, dropped):
        return {"time": 1_700_000_000.0, "recent_drops": [], "enis": {"web": {
            "counters": {"accepted": accepted, "dropped": dropped}, "tracked": 1, "untracked": 0}}}
    out = text(watch_view("lab", sample(30, 4), sample(10, 0), 2.0))
    row = next(line for line in out.splitlines() if line.strip().startswith("web"))
    assert row.split() == ["web", "30", "10.0", "4", "2.0", "1", "0", "0"]
    assert "(none)" in out
