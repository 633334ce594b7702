"""The engine's decision feed for live viewers: off until read, bounded, folded per service, read by cursor,
and the lab's generation that tells viewers to redraw after a change."""
from __future__ import annotations

from emulator.control.api import permission
from emulator.control.decisions import DecisionFeed
from emulator.engine.firewall import build_firewalls
from emulator.engine.packet import parse
from emulator.model import Direction
from emulator.topology import parse as parse_topology

from .engine.helpers import tcp
from .test_live import STRANGER, TOPOLOGY, WEB, YOU, Harness


def _records(answer: dict) -> list[dict]:
    return [r for w in answer["windows"] for r in w["records"]]


def test_the_feed_is_off_until_a_viewer_reads(tmp_path):
    h = Harness(tmp_path)
    assert not h.live.decisions.active
    h.packet("web", tcp(YOU, WEB, 40000, 80), egress=False)
    first = h.op("decisions")
    assert _records(first) == [] and first["next"] == 0      # nothing was kept while off
    assert h.live.decisions.active


def test_accepts_and_drops_carry_eni_direction_rule_and_reason(tmp_path):
    h = Harness(tmp_path)
    h.op("decisions")
    assert h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)
    assert not h.packet("web", tcp(STRANGER, WEB, 40001, 22), egress=False)
    answer = h.op("decisions", since=0)
    by_source = {r["src"]: r for r in _records(answer)}
    ok, dropped = by_source[YOU], by_source[STRANGER]
    assert (ok["eni"], ok["direction"], ok["action"], ok["reason"]) == ("web", "ingress", "ACCEPT", "RULE_MATCH")
    assert ok["rule"] == "ingress tcp 22 from 203.0.113.10/32" and ok["sg"] == h.state.group("web-sg").id
    assert ok["rule_id"].startswith("sgr-")
    assert (dropped["action"], dropped["reason"], dropped["rule"]) == ("DROP", "ENI_SG_RULES_MISMATCH", None)
    assert "no security group rule allows it" in dropped["verdict"]
    assert (dropped["src"], dropped["dst"], dropped["sport"]) == (STRANGER, WEB, None)
    assert answer["next"] == 1


def test_connections_to_one_service_fold_into_one_record_per_reason(tmp_path):
    h = Harness(tmp_path)
    h.op("decisions")
    for port in range(40000, 40050):
        h.packet("web", tcp(YOU, WEB, port, 22), egress=False)
        h.packet("web", tcp(WEB, YOU, 22, port, "SA"), egress=True)
    records = _records(h.op("decisions"))
    assert len(records) == 2
    request = next(r for r in records if r["direction"] == "ingress")
    reply = next(r for r in records if r["direction"] == "egress")
    assert (request["dport"], request["sport"], request["packets"]) == (22, None, 50)
    assert (reply["sport"], reply["dport"], reply["reason"]) == (22, None, "TRACKED_RESPONSE")


def test_a_window_holds_at_most_max_keys_and_counts_the_rest():
    _, firewalls = build_firewalls(parse_topology(TOPOLOGY, "t.yaml").topology)
    feed = DecisionFeed(0.0, max_keys=3)
    feed.op_decisions(0.0)
    for n in range(10):
        packet = parse(tcp(f"198.51.100.{n + 1}", WEB, 40000, 80))
        feed.record("web", packet, False, firewalls["web"].decide(packet, Direction.INGRESS, 1.0), 1.0)
    window = feed.op_decisions(2.0)["windows"][0]
    assert len(window["records"]) == 3 and window["overflow_packets"] == 7


def test_readers_follow_a_cursor_and_learn_when_they_missed_windows(tmp_path):
    h = Harness(tmp_path)
    h.live.decisions = DecisionFeed(0.0, kept=2)
    h.op("decisions")
    seqs = []
    for port in (40000, 40001, 40002):
        h.packet("web", tcp(YOU, WEB, port, 80 if port % 2 else 22), egress=False)
        seqs.append(h.op("decisions", since=seqs[-1] if seqs else 0)["next"])
    assert seqs == [1, 2, 3]
    late = h.op("decisions", since=1)
    assert [w["seq"] for w in late["windows"]] == [2, 3] and not late["missed"]
    h.packet("web", tcp(YOU, WEB, 40003, 80), egress=False)
    lost = h.op("decisions", since=1)
    assert [w["seq"] for w in lost["windows"]] == [3, 4] and lost["missed"]


def test_the_feed_turns_off_when_no_viewer_reads_within_the_lease(tmp_path):
    h = Harness(tmp_path)
    h.op("decisions")
    h.now += 5
    h.live.tick(h.now)
    assert h.live.decisions.active
    h.now += 11
    h.live.tick(h.now)
    assert not h.live.decisions.active
    h.packet("web", tcp(YOU, WEB, 40000, 80), egress=False)
    assert _records(h.op("decisions")) == []


def test_infrastructure_traffic_is_not_shown(tmp_path):
    h = Harness(tmp_path)
    h.op("decisions")
    h.packet("web", tcp(WEB, "10.0.1.1", 40000, 53), egress=True)     # the VPC router: infrastructure
    assert all(r["reason"] != "INFRASTRUCTURE" for r in _records(h.op("decisions")))


def test_changes_raise_the_generation_reads_do_not(tmp_path):
    h = Harness(tmp_path)
    assert h.op("decisions")["generation"] == 0
    h.op("conntrack")
    h.op("authorize", sg="web-sg", direction="ingress", rules=[permission("tcp", "443", cidr="0.0.0.0/0")])
    assert h.op("decisions")["generation"] == 1
    h.op("set_sgs", instance="db", groups=["db-sg", "web-sg"])
    assert h.op("decisions")["generation"] == 2


def test_a_viewer_asks_for_one_enis_latest_flow_records_and_a_bounded_connection_table(tmp_path):
    h = Harness(tmp_path)
    for port in range(40000, 40005):
        h.packet("web", tcp(YOU, WEB, port, 22), egress=False)
    h.packet("db", tcp(WEB, "10.0.1.20", 40100, 3306), egress=False)
    assert len(h.op("conntrack", instance="web", limit=2)["web"]) == 2
    assert len(h.op("conntrack", instance="web")["web"]) == 5
    h.now += 700
    h.live.tick(h.now)
    h.packet("web", tcp(STRANGER, WEB, 40200, 22), egress=False)
    answer = h.op("flowlogs", eni="web", last=3)
    assert len(answer["records"]) == 3 and {r["eni"] for r in answer["records"]} == {"web"}
    assert [r["srcport"] for r in answer["records"]] == ["40002", "40003", "40004"]
    assert [r["srcaddr"] for r in answer["current"]] == [STRANGER]
    assert h.op("flowlogs", eni="db", current=True)["current"] == []
    everything = h.op("flowlogs")
    assert len(everything["records"]) == 6, "without filters the answer is unchanged"
