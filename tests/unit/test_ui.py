"""`sgemu ui` without a lab: decision records folded into conversations between named nodes, node kinds
named generically, and the HTTP server's gate (token, cookie, Host), routes and event stream, served on
loopback from a hub whose engine is a fake answering like LabApi."""
from __future__ import annotations

import dataclasses
import http.client
import json
import shutil
import threading
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from emulator.graph import to_dot
from emulator.model import Topology
from emulator.topology import dump, load, parse
from emulator.web.hub import Hub
from emulator.web.server import UiServer
from emulator.web.view import MAX_CONVERSATIONS, Conversations, node_addresses, node_fields

THREE_TIER = load(Path(__file__).resolve().parents[2] / "topologies" / "three-tier.yaml").topology
APP_SG = THREE_TIER.sg("app-sg").id


def record(eni: str, direction: str, src: str, dst: str, sport: int | None, dport: int | None, action: str = "ACCEPT",
           reason: str = "RULE_MATCH", rule: str | None = None, sg: str | None = None, packets: int = 1,
           proto: str = "tcp", icmp_type: int | None = None) -> dict:
    return {"eni": eni, "direction": direction, "family": 4, "proto": proto, "src": src, "dst": dst, "sport": sport,
            "dport": dport, "icmp_type": icmp_type, "action": action, "accepted": action == "ACCEPT",
            "reason": reason, "sg": sg, "rule": rule, "rule_id": None, "tracked": True,
            "verdict": f"{action} by {sg} {rule}" if rule else f"{action}: {reason}", "packets": packets,
            "bytes": 60 * packets, "first": 100.0, "last": 100.5}


@dataclasses.dataclass(frozen=True)
class Gateway:                             # a node kind the model may grow: shown without a change
    name: str
    subnet: str
    public_ip: IPv4Address


def grown_topology() -> Topology:
    grown = dataclasses.make_dataclass("Grown", [("gateways", tuple, dataclasses.field(default=()))],
                                       bases=(type(THREE_TIER),), frozen=True)
    return grown(**{f.name: getattr(THREE_TIER, f.name) for f in dataclasses.fields(THREE_TIER)},
                 gateways=(Gateway("gw", "public", IPv4Address("198.51.100.99")),))


def test_every_named_node_with_an_address_is_named_whatever_its_kind():
    names = node_addresses(THREE_TIER)
    assert names["10.0.1.10"] == names["198.51.100.10"] == "alb"
    assert names["203.0.113.10"] == "you" and names["10.0.3.10"] == "db"
    assert node_addresses(grown_topology())["198.51.100.99"] == "gw"


def test_the_graph_draws_a_new_node_kind_in_its_subnet_and_a_subnets_own_nacl():
    dot = to_dot(grown_topology())
    public = dot[dot.index("subgraph cluster_subnet_0"):dot.index("subgraph cluster_subnet_1")]
    assert '"gw" [shape=hexagon, style=dashed, label="gw\\ngateway\\n198.51.100.99"];' in public
    assert 'id="subnet:public";' in public and "NACL" not in dot, "the default NACL that allows all is not shown"
    data = dump(THREE_TIER)
    data["network_acls"] = [{"name": "data-acl", "subnets": ["data"],
                             "ingress": [{"rule": 100, "action": "allow", "protocol": "tcp", "ports": 3306,
                                          "cidr": "10.0.2.0/24"}], "egress": []}]
    guarded = to_dot(parse(data, "t.yaml").topology)
    assert 'label="data 10.0.3.0/24\\nNACL data-acl"' in guarded


def test_a_request_and_its_answer_are_one_conversation_with_every_hop_in_order():
    c = Conversations(THREE_TIER)
    c.add(record("db", "egress", "10.0.3.10", "10.0.2.10", 3306, None, reason="TRACKED_RESPONSE"))
    c.add(record("app", "egress", "10.0.2.10", "10.0.3.10", None, 3306, rule=f"egress tcp 3306 to {APP_SG}",
                 sg=APP_SG, packets=3))
    c.add(record("db", "ingress", "10.0.2.10", "10.0.3.10", None, 3306))
    update = c.take()
    (conversation,) = update["conversations"]
    assert (conversation["client"], conversation["server"], conversation["port"]) == ("app", "db", 3306)
    assert [(h["eni"], h["direction"], h["leg"]) for h in conversation["hops"]] == [
        ("app", "egress", "request"), ("db", "ingress", "request"), ("db", "egress", "reply")]
    first = conversation["hops"][0]
    assert first["sg"] == "app-sg" and first["rule_short"] == "egress tcp 3306 to app-sg"
    assert first["rule"] == f"egress tcp 3306 to app-sg ({APP_SG})" and first["peer"] == "db"
    assert conversation["hops"][1]["peer"] == "app" and conversation["packets"] == 5
    assert c.take()["conversations"] == [], "take starts a new interval"


def test_drops_are_marked_and_listed_first_and_unknown_addresses_stay_addresses():
    c = Conversations(THREE_TIER)
    c.add(record("alb", "ingress", "203.0.113.10", "10.0.1.10", None, 80))
    c.add(record("alb", "ingress", "192.0.2.1", "10.0.1.10", None, 22, action="DROP", reason="ENI_SG_RULES_MISMATCH"))
    first, second = c.take()["conversations"]
    assert (first["client"], first["dropped"], second["dropped"]) == ("192.0.2.1", True, False)


def test_an_echo_reply_belongs_to_its_request():
    c = Conversations(THREE_TIER)
    c.add(record("alb", "ingress", "203.0.113.10", "10.0.1.10", None, None, proto="icmp", icmp_type=8))
    c.add(record("alb", "egress", "10.0.1.10", "203.0.113.10", None, None, proto="icmp", icmp_type=0,
                 reason="TRACKED_RESPONSE"))
    (conversation,) = c.take()["conversations"]
    assert (conversation["client"], conversation["server"]) == ("you", "alb")
    assert [h["leg"] for h in conversation["hops"]] == ["request", "reply"]


def test_a_busy_interval_sends_at_most_max_conversations_and_counts_the_rest():
    c = Conversations(THREE_TIER)
    for n in range(MAX_CONVERSATIONS + 30):
        c.add(record("alb", "ingress", f"192.0.{n // 250}.{n % 250 + 1}", "10.0.1.10", None, 80, packets=2))
    c.overflow_packets = 7
    update = c.take()
    assert len(update["conversations"]) == MAX_CONVERSATIONS
    assert (update["more_conversations"], update["more_packets"]) == (30, 30 * 2 + 7)


def test_node_fields_finds_any_kind_of_node_in_the_export():
    exported = {**dump(THREE_TIER), "nat_gateways": [{"name": "nat", "subnet": "public"}]}
    assert node_fields(exported, "nat") == ("nat_gateways", {"name": "nat", "subnet": "public"})
    assert node_fields(exported, "you")[0] == "internet"
    assert node_fields(exported, "nobody") is None


class FakeEngine:
    """Answers the control operations the hub uses, like LabApi does."""

    def __init__(self) -> None:
        self.generation = 0
        self.windows = [{"seq": 1, "start": 99.0, "end": 100.0, "overflow_packets": 0, "records": [
            record("alb", "ingress", "198.51.100.7", "10.0.1.10", None, 22, action="DROP",
                   reason="ENI_SG_RULES_MISMATCH")]}]

    def __call__(self, lab: str, op: str, **args: object) -> object:
        if op == "decisions":
            since = int(args.get("since", 0))  # type: ignore[call-overload]
            return {"windows": [w for w in self.windows if w["seq"] > since], "next": 1, "missed": False,
                    "time": 100.0, "generation": self.generation}
        if op == "export":
            return dump(THREE_TIER)
        if op == "flowlogs":
            return {"records": [], "next": 0, "current": [], "interval": 10}
        if op == "conntrack":
            return {args["instance"]: []}
        raise AssertionError(f"unexpected operation {op}")


@pytest.fixture
def served() -> Iterator[UiServer]:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (scripts/setup installs it)")
    hub = Hub("three-tier", ask=FakeEngine())
    hub.poll()
    server = UiServer(hub, 0, token="secret-token")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def get(server: UiServer, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", path, headers=headers or {})
    return connection.getresponse()


def test_no_token_no_page(served):
    for path in ("/", "/api/graph", "/api/events", "/static/app.js", "/api/node/alb"):
        assert get(served, path).status == 403
    assert get(served, "/api/graph?token=wrong").status == 403
    assert get(served, "/api/graph", {"Cookie": f"{served.cookie}=wrong"}).status == 403


def test_the_token_becomes_a_strict_cookie_and_leaves_the_address_bar(served):
    answer = get(served, "/?token=secret-token")
    assert answer.status == 303 and answer.getheader("Location") == "/"
    cookie = answer.getheader("Set-Cookie")
    assert cookie.startswith(f"{served.cookie}=secret-token;") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = get(served, "/", {"Cookie": f"{served.cookie}=secret-token"})
    assert page.status == 200 and b"/static/app.js" in page.read()
    assert "default-src 'self'" in page.getheader("Content-Security-Policy")


def test_another_host_name_is_refused_even_with_the_token(served):
    assert get(served, "/api/graph?token=secret-token", {"Host": f"evil.example:{served.port}"}).status == 403
    assert get(served, "/api/graph?token=secret-token", {"Host": f"localhost:{served.port}"}).status == 200


def test_graph_details_and_explain(served):
    token = "?token=secret-token"
    graph = get(served, f"/api/graph{token}")
    assert graph.getheader("Content-Type") == "image/svg+xml" and b"<title>alb</title>" in graph.read()
    alb = json.loads(get(served, f"/api/node/alb{token}").read())
    assert alb["kind"] == "instance" and alb["security_groups"][0]["name"] == "alb-sg"
    assert json.loads(get(served, f"/api/node/you{token}").read())["kind"] == "internet"
    assert get(served, f"/api/node/nobody{token}").status == 404
    explained = json.loads(get(served, f"/api/explain{token}&client=stranger&server=alb&proto=tcp&port=22").read())
    assert explained["outcome"] == "timeout" and "alb's ingress" in explained["why"]
    assert "no security group rule allows it" in explained["request"][0]["verdict"]["text"]
    assert "error" in json.loads(get(served, f"/api/explain{token}&client=nobody&server=alb&port=22").read())


def test_the_event_stream_starts_with_the_recent_flows(served):
    answer = get(served, "/api/events?token=secret-token")
    assert answer.getheader("Content-Type") == "text/event-stream"
    assert answer.fp is not None
    assert answer.fp.readline() == b"event: hello\n"
    hello = json.loads(answer.fp.readline().removeprefix(b"data: "))
    (conversation,) = hello["history"][0]["conversations"]
    assert (conversation["client"], conversation["server"], conversation["dropped"]) == ("stranger", "alb", True)
    answer.close()


def test_a_change_in_the_lab_redraws_the_graph():
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (scripts/setup installs it)")
    engine = FakeEngine()
    hub = Hub("three-tier", ask=engine)
    hub.poll()
    updates = hub.subscribe()
    before = hub.graph_version
    hub.poll()
    assert hub.graph_version == before, "no change, no redraw"
    engine.generation = 1
    hub.poll()
    assert hub.graph_version == before + 1
    assert ("topology", {"version": before + 1}) == updates.get_nowait()
