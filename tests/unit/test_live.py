"""The engine's live operations (what the control socket serves): rules built from CLI options by the
loader's own checks, EC2 refusals that change nothing, set-sgs, set-conntrack, export of the changed
state, the connection table and flow logs, with AWS semantics for open flows."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.control.api import LabApi, permission
from emulator.engine.firewall import build_firewalls
from emulator.engine.packet import parse
from emulator.errors import AwsApiError
from emulator.model import Direction, Topology
from emulator.topology import parse as parse_topology
from emulator.topology import rule_id_for

from .engine.helpers import tcp

TOPOLOGY = {
    "name": "live",
    "vpc": {"cidr": "10.0.0.0/16"},
    "subnets": [{"name": "public", "cidr": "10.0.1.0/24"}],
    "security_groups": [
        {"name": "web-sg", "ingress": [{"protocol": "tcp", "ports": 22, "cidr": "203.0.113.10/32"},
                                       {"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0"}]},
        {"name": "db-sg", "ingress": [{"protocol": "tcp", "ports": 3306, "group": "web-sg"}], "egress": []},
    ],
    "instances": [{"name": "web", "subnet": "public", "private_ip": "10.0.1.10", "security_groups": ["web-sg"]},
                  {"name": "db", "subnet": "public", "private_ip": "10.0.1.20", "security_groups": ["db-sg"]}],
    "options": {"quotas": {"rules_per_sg": 3}},
}
YOU, STRANGER, WEB, DB = "203.0.113.10", "198.51.100.7", "10.0.1.10", "10.0.1.20"


class Harness:
    def __init__(self, tmp_path: Path):
        self.topology: Topology = parse_topology(TOPOLOGY, "test.yaml").topology
        self.state, self.firewalls = build_firewalls(self.topology)
        self.persisted: list[Topology] = []
        self.file = tmp_path / "flowlogs.log"
        self.live = LabApi("live", self.topology, self.state, self.firewalls, 0.0, 1_700_000_000.0, self.file,
                            self.persisted.append)
        self.now = 1.0

    def op(self, op: str, **args):
        return self.live.handle(op, args, self.now)

    def code(self, op: str, **args) -> str:
        with pytest.raises(AwsApiError) as caught:
            self.op(op, **args)
        return caught.value.code

    def packet(self, eni: str, raw: bytes, egress: bool):
        """Through the ENI's firewall, telling the live side like the queue handler does."""
        packet = parse(raw)
        direction = Direction.EGRESS if egress else Direction.INGRESS
        verdict = self.firewalls[eni].decide(packet, direction, self.now)
        self.live.observe(eni, packet, egress, verdict, self.now)
        return verdict.accepted


@pytest.fixture
def h(tmp_path) -> Harness:
    return Harness(tmp_path)


def test_permission_keeps_only_the_options_given():
    assert permission("tcp", "22", cidr="1.2.3.4/32") == {"protocol": "tcp", "ports": "22", "cidr": "1.2.3.4/32"}
    assert permission("icmp", icmp_type=8, icmp_code=-1, group="web-sg", description="ping") == {
        "protocol": "icmp", "icmp_type": 8, "icmp_code": -1, "group": "web-sg", "description": "ping"}


def test_authorize_builds_the_rule_like_the_loader_and_gives_its_stable_id(h):
    result = h.op("authorize", sg="web-sg", direction="ingress",
                  rules=[permission("tcp", "8000-8080", cidr="198.51.100.7/32", description="alt")])
    rule = h.state.group("web-sg").ingress[-1]
    assert (rule.protocol, str(rule.ports), str(rule.cidr), rule.description) == (6, "8000-8080", "198.51.100.7/32",
                                                                                   "alt")
    assert rule.rule_id == rule_id_for(h.state.group("web-sg").id, rule)
    assert result["rules"] == [rule.rule_id]
    assert result["described"] == ["ingress tcp 8000-8080 from 198.51.100.7/32"]
    assert h.persisted[-1].sg("web-sg").ingress[-1].rule_id == rule.rule_id


def test_a_group_peer_by_name_becomes_its_id(h):
    h.op("authorize", sg="db-sg", direction="ingress", rules=[permission("tcp", "5432", group="web-sg")])
    assert h.state.group("db-sg").ingress[-1].group == h.state.group("web-sg").id


def test_non_canonical_cidr_is_a_duplicate_and_a_warning(h):
    assert h.code("authorize", sg="web-sg", direction="ingress",
                  rules=[permission("tcp", "22", cidr="203.0.113.10/32")]) == "InvalidPermission.Duplicate"
    result = h.op("authorize", sg="web-sg", direction="egress", rules=[permission("tcp", "443", cidr="10.0.1.7/16")])
    assert "canonicalised to 10.0.0.0/16" in result["warnings"][0]


@pytest.mark.parametrize(("op", "sg", "rule", "code"), [
    ("authorize", "web-sg", permission("tcp", "22", cidr="203.0.113.10/32"), "InvalidPermission.Duplicate"),
    ("revoke", "web-sg", permission("tcp", "23", cidr="203.0.113.10/32"), "InvalidPermission.NotFound"),
    ("authorize", "nope", permission("tcp", "22", cidr="0.0.0.0/0"), "InvalidGroup.NotFound"),
    ("authorize", "web-sg", permission("tcp", "22", group="nope"), "InvalidGroup.NotFound"),
    ("authorize", "web-sg", permission("tcp", "x", cidr="0.0.0.0/0"), "InvalidParameterValue"),
    ("authorize", "web-sg", permission("tcp", cidr="0.0.0.0/0"), "InvalidParameterValue"),
    ("authorize", "web-sg", permission("tcp", "1", cidr="0.0.0.0/0", group="db-sg"), "InvalidParameterValue"),
    ("authorize", "web-sg", permission("icmp", icmp_code=3, cidr="0.0.0.0/0"), "InvalidParameterValue"),
    ("authorize", "web-sg", permission("bogus", "1", cidr="0.0.0.0/0"), "InvalidParameterValue"),
])
def test_refusals_have_aws_codes_and_change_nothing(h, op, sg, rule, code):
    before = h.live.topology()
    assert h.code(op, sg=sg, direction="ingress", rules=[rule]) == code
    assert h.live.topology() == before and h.persisted == []


def test_the_rules_per_sg_quota(h):
    h.op("authorize", sg="web-sg", direction="ingress", rules=[permission("tcp", "443", cidr="0.0.0.0/0")])
    assert h.code("authorize", sg="web-sg", direction="ingress",
                  rules=[permission("tcp", "444", cidr="0.0.0.0/0")]) == "RulesPerSecurityGroupLimitExceeded"
    # IPv6 rules count separately.
    h.op("authorize", sg="web-sg", direction="ingress", rules=[permission("tcp", "444", cidr="::/0")])


def test_unknown_ops_and_arguments_are_refused(h):
    assert h.code("format_disk") == "InvalidAction"
    assert h.code("set_sgs", instance="web") == "InvalidParameterValue"
    assert h.code("conntrack", everything=True) == "InvalidParameterValue"


def test_revoke_keeps_tracked_flows_and_cuts_untracked_ones(h):
    # SSH from YOU is tracked (narrow source); HTTP from anyone is untracked (0.0.0.0/0 both ways).
    assert h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)
    assert h.packet("web", tcp(WEB, YOU, 22, 40000, "SA"), egress=True)
    assert h.packet("web", tcp(STRANGER, WEB, 40001, 80), egress=False)
    assert h.packet("web", tcp(WEB, STRANGER, 80, 40001, "SA"), egress=True)
    h.op("revoke", sg="web-sg", direction="ingress", rules=[permission("tcp", "22", cidr="203.0.113.10/32")])
    h.op("revoke", sg="web-sg", direction="ingress", rules=[permission("tcp", "80", cidr="0.0.0.0/0")])
    h.now += 1
    assert h.packet("web", tcp(YOU, WEB, 40000, 22, "A"), egress=False)           # survives
    assert not h.packet("web", tcp(YOU, WEB, 40002, 22), egress=False)            # new login: dropped
    assert not h.packet("web", tcp(STRANGER, WEB, 40001, 80, "A"), egress=False)  # cut at once


def test_set_sgs_applies_to_new_flows_and_is_checked(h):
    assert not h.packet("db", tcp(STRANGER, DB, 40000, 80), egress=False)
    assert h.op("set_sgs", instance="db", groups=["web-sg", "db-sg"])["groups"] == [
        h.state.group("web-sg").id, h.state.group("db-sg").id]
    assert h.packet("db", tcp(STRANGER, DB, 40001, 80), egress=False)
    assert h.persisted[-1].instance("db").security_groups == (h.state.group("web-sg").id,
                                                               h.state.group("db-sg").id)
    assert h.code("set_sgs", instance="nope", groups=["web-sg"]) == "InvalidInstanceID.NotFound"
    assert h.code("set_sgs", instance="db", groups=["nope"]) == "InvalidGroup.NotFound"
    assert h.code("set_sgs", instance="db", groups=[]) == "MissingParameter"


def test_membership_changes_follow_set_sgs(h):
    # db allows 3306 from web-sg members: web is one; after moving web out, new flows from it drop.
    assert h.packet("db", tcp(WEB, DB, 40000, 3306), egress=False)
    h.op("set_sgs", instance="web", groups=["db-sg"])
    assert not h.packet("db", tcp(WEB, DB, 40001, 3306), egress=False)
    assert h.packet("db", tcp(WEB, DB, 40000, 3306, "A"), egress=False)          # the open one is tracked


@pytest.mark.parametrize(("args", "ok"), [
    ({"tcp_established": 60}, True), ({"tcp_established": 59}, False), ({"tcp_established": 432001}, False),
    ({"udp": 30, "udp_stream": 180}, True), ({"udp": 61}, False), ({"udp_stream": 59}, False),
    ({"udp": "45"}, False), ({}, False), ({"tcp_syn_sent": 5}, False),
])
def test_set_conntrack_takes_aws_ranges(h, args, ok):
    if ok:
        result = h.op("set_conntrack", instance="web", **args)
        assert all(result[k] == v for k, v in args.items())
        assert all(getattr(h.persisted[-1].instance("web").conntrack, k) == v for k, v in args.items())
    else:
        assert h.code("set_conntrack", instance="web", **args) == "InvalidParameterValue"


def test_set_conntrack_shortens_open_flows_at_their_next_packet(h):
    assert h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)
    assert h.packet("web", tcp(WEB, YOU, 22, 40000, "SA"), egress=True)
    assert h.packet("web", tcp(YOU, WEB, 40000, 22, "A"), egress=False)
    h.op("set_conntrack", instance="web", tcp_established=60)
    assert h.packet("web", tcp(YOU, WEB, 40000, 22, "A"), egress=False)
    [entry] = h.op("conntrack", instance="web")["web"]
    assert entry["state"] == "ESTABLISHED" and entry["idle_left"] == 60.0
    h.op("revoke", sg="web-sg", direction="ingress", rules=[permission("tcp", "22", cidr="203.0.113.10/32")])
    h.now += 61
    assert not h.packet("web", tcp(YOU, WEB, 40000, 22, "A"), egress=False)      # idled out, rule gone


def test_export_is_the_changed_state_and_round_trips(h):
    h.op("authorize", sg="db-sg", direction="egress", rules=[permission("udp", "53", cidr="10.0.0.0/16")])
    h.op("set_sgs", instance="web", groups=["web-sg", "db-sg"])
    h.op("set_conntrack", instance="db", udp=45)
    data = h.op("export")
    again = parse_topology(data, "export").topology
    assert [str(r.ports) for r in again.sg("db-sg").egress] == ["53"]
    assert again.instance("web").security_groups == (again.sg("web-sg").id, again.sg("db-sg").id)
    assert again.instance("db").conntrack.udp == 45
    assert again.security_groups == h.live.topology().security_groups


def test_conntrack_lists_each_enis_entries(h):
    h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)
    h.packet("web", tcp(WEB, YOU, 22, 40000, "SA"), egress=True)
    h.packet("web", tcp(STRANGER, WEB, 40001, 80), egress=False)
    tables = h.op("conntrack")
    assert set(tables) == {"web", "db"} and tables["db"] == []
    by_port = {e["local_port"]: e for e in tables["web"]}
    ssh, http = by_port[22], by_port[80]
    assert (ssh["remote"], ssh["remote_port"], ssh["initiator"], ssh["tracked"], ssh["state"]) == (
        YOU, 40000, "ingress", True, "SYN_RECV")
    assert (ssh["packets_in"], ssh["packets_out"]) == (1, 1)
    assert http["tracked"] is False
    assert h.code("conntrack", instance="nope") == "InvalidInstanceID.NotFound"


def test_flowlogs_serve_the_open_interval_and_append_closed_ones_to_the_file(h):
    h.packet("web", tcp(STRANGER, WEB, 40000, 22), egress=False)
    answer = h.op("flowlogs")
    assert answer["records"] == [] and [r["action"] for r in answer["current"]] == ["REJECT"]
    h.live.tick(5.0)                          # interval not over: nothing closes
    assert not h.file.exists()
    h.live.tick(10.0)
    [line] = h.file.read_text().splitlines()
    assert line.split()[3:7] + line.split()[12:] == [STRANGER, WEB, "40000", "22", "REJECT", "OK"]
    answer = h.op("flowlogs", since=0, current=True)
    assert len(answer["records"]) == 1 and answer["current"] == [] and answer["next"] == 1
    assert h.op("flowlogs", since=1)["records"] == []


def test_counters_show_recent_drops_with_their_reason(h):
    h.packet("web", tcp(STRANGER, WEB, 40000, 22), egress=False)
    counters = h.op("counters")
    assert counters["enis"]["web"]["counters"]["dropped"] == 1
    [drop] = counters["recent_drops"]
    assert (drop["eni"], drop["direction"], drop["src"], drop["dport"], drop["reason"]) == (
        "web", "ingress", STRANGER, 22, "ENI_SG_RULES_MISMATCH")
