"""`explain` on the shipped seed topologies: the engine's hop-by-hop answer for each seed scenario."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.explain import ExplainError, explain
from emulator.topology import load

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


@pytest.fixture(scope="module")
def three_tier():
    return load(TOPOLOGIES / "three-tier.yaml").topology


@pytest.fixture(scope="module")
def web_server():
    return load(TOPOLOGIES / "web-server.yaml").topology


@pytest.mark.parametrize("src,dst,port,outcome,blocked_at", [
    ("you", "alb", 80, "open", None),                 # T1
    ("stranger", "alb", 80, "open", None),
    ("you", "alb", 443, "refused", None),             # allowed, nothing listens
    ("you", "alb", 22, "timeout", "alb ingress"),     # T2: sshd runs, 22 not allowed
    ("alb", "app", 8080, "open", None),               # T3
    ("you", "app", 8080, "timeout", None),            # T4: no public IP, unreachable
    ("app", "db", 3306, "open", None),                # T5: db answers with no outbound rules
    ("alb", "db", 3306, "timeout", "alb egress"),     # T6: first drop is alb's egress
    ("db", "app", 8080, "timeout", "db egress"),      # T7
    ("app", "alb", 80, "timeout", "app egress"),      # T8
    ("stranger", "db", 3306, "timeout", None),
])
def test_three_tier(three_tier, src, dst, port, outcome, blocked_at):
    e = explain(three_tier, src, dst, port)
    assert e.outcome == outcome, e.why
    hops = (*e.request, *e.reply)
    if blocked_at:
        assert hops[-1].where == blocked_at and not hops[-1].passed
        assert hops[-1].verdict.reason == "ENI_SG_RULES_MISMATCH"
    else:
        assert all(h.passed for h in hops)


def test_three_tier_reply_rides_on_tracking(three_tier):
    e = explain(three_tier, "app", "db", 3306)
    db_egress = next(h for h in e.reply if h.where == "db egress")
    assert db_egress.verdict.reason == "TRACKED_RESPONSE"
    assert e.request[0].verdict.rule is not None and e.request[0].verdict.tracked


def test_three_tier_refused_closed_port_is_a_tracked_rst(three_tier):
    e = explain(three_tier, "alb", "app", 8080, listening=False)   # T9
    assert e.outcome == "refused"
    assert "RST" in e.reply[0].packet


def test_unreachable_private_instance_says_why(three_tier):
    e = explain(three_tier, "you", "db", 3306)
    assert e.outcome == "timeout" and "public IP" in e.why and not e.request


@pytest.mark.parametrize("src,dst,port,proto,ipv6,outcome,tracked", [
    ("you", "web", 22, "tcp", False, "open", True),          # W1
    ("stranger", "web", 22, "tcp", False, "timeout", None),   # W2
    ("stranger", "web", 80, "tcp", False, "open", False),     # W3: untracked
    ("you", "web", 443, "tcp", False, "refused", False),      # W4
    ("you", "web", 8080, "tcp", False, "timeout", None),      # W5
    ("you", "web", 0, "icmp", False, "timeout", None),        # W10
    ("web", "you", 0, "icmp", False, "reply", True),          # W11
    ("you", "web", 80, "tcp", True, "open", False),           # IPv6, ::/0 rule
])
def test_web_server(web_server, src, dst, port, proto, ipv6, outcome, tracked):
    e = explain(web_server, src, dst, port, proto, ipv6)
    assert e.outcome == outcome, e.why
    if tracked is not None:
        assert e.request[0].verdict.tracked is tracked


def test_explain_by_public_address(web_server):
    web = web_server.instance("web")
    assert explain(web_server, "you", str(web.public_ip), 80).outcome == "open"


@pytest.mark.parametrize("args,message", [
    (("nobody", "web", 80), "no instance or internet host named 'nobody'"),
    (("you", "192.0.2.99", 80), "no address of this lab"),
    (("you", "web", 0), "--port is required"),
])
def test_bad_questions(web_server, args, message):
    with pytest.raises(ExplainError, match=message):
        explain(web_server, *args)


def test_double_drop_is_reported(three_tier):
    e = explain(three_tier, "alb", "db", 3306)        # T6: alb's egress and db's ingress
    assert any("db's ingress would drop it as well" in n for n in e.notes)
    assert not any("would drop" in n for n in explain(three_tier, "app", "alb", 80).notes)
