"""The live NACL and prefix-list operations the control socket serves (no root): AWS error codes,
refusals that change nothing, the recall of offloaded flows before a NACL change returns, the journal's
mutating set, describe with the `*` rules, prefix lists following into every rule with SG semantics."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.control.api import LabApi, permission
from emulator.control.nacl_ops import MUTATING, NaclOps
from emulator.engine.firewall import build_firewalls
from emulator.engine.naclstate import NaclState
from emulator.engine.packet import parse
from emulator.errors import AwsApiError
from emulator.model import Direction
from emulator.topology import dump
from emulator.topology import parse as parse_topology

from .engine.helpers import tcp

TOPOLOGY = {
    "name": "live", "vpc": {"cidr": "10.0.0.0/16", "ipv6_cidr": "fd00:10::/56"},
    "subnets": [{"name": "public", "cidr": "10.0.1.0/24"}, {"name": "private", "cidr": "10.0.2.0/24"}],
    "prefix_lists": [{"name": "office", "max_entries": 2, "entries": ["203.0.113.0/24"]}],
    "security_groups": [{"name": "web-sg", "ingress": [{"protocol": "tcp", "ports": 22, "prefix_list": "office"},
                                                       {"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0"}]}],
    "network_acls": [{"name": "private-nacl", "subnets": ["private"],
                      "ingress": [{"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}]},
                     {"name": "spare"}],
    "instances": [{"name": "web", "subnet": "public", "private_ip": "10.0.1.10", "security_groups": ["web-sg"]},
                  {"name": "db", "subnet": "private", "private_ip": "10.0.2.10", "security_groups": ["web-sg"]}],
    "options": {"quotas": {"rules_per_sg": 4}},
}
YOU, HOME, WEB = "203.0.113.10", "192.0.2.7", "10.0.1.10"


class Harness:
    def __init__(self, tmp_path: Path):
        self.topology = parse_topology(TOPOLOGY, "test.yaml").topology
        self.sgs, self.firewalls = build_firewalls(self.topology)
        self.nacls = NaclState(self.topology)
        self.persisted: list = []
        self.scopes: list[str] = []          # what each change pulled back from the kernel fast path
        self.live = LabApi("live", self.topology, self.sgs, self.firewalls, 0.0, 1_700_000_000.0,
                           tmp_path / "flowlogs.log", self.persisted.append)
        NaclOps(self.live, self.nacls, self.sgs, self.topology).install()
        self.live.set_recall(self._recall)

    def _recall(self, scope: str, now: float) -> int:
        self.scopes.append(scope)
        return 0

    @property
    def recalls(self) -> int:
        return self.scopes.count("all")

    def op(self, op: str, **args):
        return self.live.handle(op, args, 1.0)

    def code(self, op: str, **args) -> str:
        before = (dump(self.live.topology()), self.nacls.version, self.sgs.version)
        with pytest.raises(AwsApiError) as caught:
            self.op(op, **args)
        assert (dump(self.live.topology()), self.nacls.version, self.sgs.version) == before
        return caught.value.code

    def ingress(self, raw: bytes) -> bool:
        return self.firewalls["web"].decide(parse(raw), Direction.INGRESS, 1.0).accepted


ENTRY = {"rule_action": "deny", "protocol": "tcp", "port": "22", "cidr": "10.0.1.0/24",
         "icmp_type": None, "icmp_code": None}


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_create_replace_delete_change_the_gate_and_the_model_and_recall_offloads(h: Harness) -> None:
    result = h.op("nacl_create_entry", nacl="private-nacl", rule_number=50, egress=False, **ENTRY)
    assert result["entry"] == "rule 50 deny tcp 22 from 10.0.1.0/24" and h.recalls == 1
    assert h.nacls.gate("private").check(parse(tcp(WEB, "10.0.2.10", 40000, 22)), False).rule_number == "50"
    h.op("nacl_replace_entry", nacl="private-nacl", rule_number=50, egress=False, **{**ENTRY, "rule_action": "allow"})
    assert h.nacls.nacl("private-nacl").ingress[0].action == "allow" and h.recalls == 2
    h.op("nacl_delete_entry", nacl="private-nacl", rule_number=50, egress=False)
    assert [e.rule_number for e in h.nacls.nacl("private-nacl").ingress] == [100] and h.recalls == 3
    saved = h.persisted[-1]
    assert [e.rule_number for e in saved.find_nacl("private-nacl").ingress] == [100]


def test_refusals_carry_aws_codes_and_change_nothing(h: Harness) -> None:
    create = {"nacl": "private-nacl", "egress": False, **ENTRY}
    assert h.code("nacl_create_entry", rule_number=100, **create) == "NetworkAclEntryAlreadyExists"
    assert h.code("nacl_create_entry", rule_number=0, **create) == "InvalidParameterValue"
    assert h.code("nacl_create_entry", rule_number=32767, **create) == "InvalidParameterValue"
    assert h.code("nacl_create_entry", rule_number=5, **{**create, "nacl": "acl-0123456789abcdef0"}) == \
        "InvalidNetworkAclID.NotFound"
    assert h.code("nacl_create_entry", rule_number=5, **{**create, "rule_action": None}) == "MissingParameter"
    assert h.code("nacl_create_entry", rule_number=5, **{**create, "cidr": "10.0.0.0"}) == "InvalidParameterValue"
    assert h.code("nacl_create_entry", rule_number=5, **{**create, "port": None}) == "InvalidParameterValue"
    assert h.code("nacl_replace_entry", rule_number=7, **create) == "InvalidNetworkAclEntry.NotFound"
    assert h.code("nacl_delete_entry", nacl="private-nacl", rule_number=7, egress=True) == \
        "InvalidNetworkAclEntry.NotFound"
    assert h.code("nacl_associate", nacl="nope", subnet="public") == "InvalidNetworkAclID.NotFound"
    assert h.code("nacl_associate", nacl="spare", subnet="nope") == "InvalidSubnetID.NotFound"
    assert h.code("prefix_list_modify", prefix_list="pl-0123456789abcdef0", add=[{"cidr": "10.0.0.0/8"}]) == \
        "InvalidPrefixListID.NotFound"
    assert h.code("prefix_list_modify", prefix_list="office", add=[{"cidr": "2001:db8::/32"}]) == \
        "InvalidParameterValue"
    assert h.code("prefix_list_modify", prefix_list="office", add=[{"cidr": "1.0.0.0/8"}, {"cidr": "2.0.0.0/8"}]) \
        == "InvalidParameterValue"                   # 3 entries > max_entries 2
    assert h.code("prefix_list_modify", prefix_list="office", remove=["10.9.0.0/16"]) == "InvalidParameterValue"
    assert h.code("prefix_list_modify", prefix_list="office") == "MissingParameter"


def test_associate_moves_a_subnet_and_answers_a_new_association_id(h: Harness) -> None:
    result = h.op("nacl_associate", nacl="spare", subnet="private")
    assert result["previous"] == h.nacls.nacl("private-nacl").id and result["NewAssociationId"].startswith("aclassoc-")
    assert not h.nacls.gate("private").check(parse(tcp(WEB, "10.0.2.10", 40000, 22)), False).accepted
    assert h.scopes == ["all"]
    exported = dump(h.live.topology())
    assert {n["name"]: n.get("subnets", []) for n in exported["network_acls"]} == \
        {"private-nacl": [], "spare": ["private"]}


def test_describe_shows_the_star_rules_per_family(h: Harness) -> None:
    acls = {a["Name"]: a for a in h.op("nacl_describe")["NetworkAcls"]}
    assert acls["default"]["IsDefault"] and acls["default"]["Associations"][0]["SubnetId"] == "public"
    spare = acls["spare"]
    assert sorted((e["RuleNumber"], e["Egress"]) for e in spare["Entries"]) == \
        [(32767, False), (32767, True), (32768, False), (32768, True)]           # N10 in an IPv6 VPC
    one = h.op("nacl_describe", nacl="private-nacl")["NetworkAcls"]
    assert len(one) == 1 and one[0]["Entries"][0] == {"RuleNumber": 100, "Egress": False, "RuleAction": "allow",
                                                      "Protocol": "-1", "CidrBlock": "0.0.0.0/0"}


def test_the_journal_knows_which_operations_change_the_lab(h: Harness) -> None:
    assert h.live.mutating >= MUTATING
    assert "nacl_describe" not in h.live.mutating and "prefix_list_describe" not in h.live.mutating


def test_a_prefix_list_change_reaches_every_referencing_rule_with_sg_semantics(h: Harness) -> None:
    assert h.ingress(tcp(YOU, WEB, 40000, 22, "S"))                        # opens a tracked flow
    assert not h.ingress(tcp(HOME, WEB, 40001, 22, "S"))
    result = h.op("prefix_list_modify", prefix_list="office", add=[{"cidr": "192.0.2.0/24", "description": "home"}],
                  remove=["203.0.113.0/24"])
    assert h.scopes == ["untracked"]             # SG semantics: only untracked flows must meet the engine
    assert result["entries"] == ["192.0.2.0/24"]
    assert h.ingress(tcp(YOU, WEB, 40000, 22, "A"))                        # tracked: survives
    assert not h.ingress(tcp(YOU, WEB, 40002, 22, "S"))                    # new flows: no entry
    assert h.ingress(tcp(HOME, WEB, 40003, 22, "S"))
    assert h.persisted[-1].prefix_lists[0].entries[0].description == "home"
    listed = h.op("prefix_list_describe")["PrefixLists"][0]
    assert (listed["MaxEntries"], listed["AddressFamily"], listed["Entries"][0]["Cidr"]) == (2, "IPv4", "192.0.2.0/24")


def test_authorize_with_a_prefix_list_counts_its_max_entries(h: Harness) -> None:
    # web-sg inbound IPv4: 80 (1) + office (2) = 3 of 4; another office rule would make 5
    assert h.code("authorize", sg="web-sg", direction="ingress",
                  rules=[permission("tcp", "443", prefix_list="office")]) == "RulesPerSecurityGroupLimitExceeded"
    assert h.code("authorize", sg="web-sg", direction="ingress",
                  rules=[permission("tcp", "443", prefix_list="nowhere")]) == "InvalidPrefixListID.NotFound"
    assert h.code("authorize", sg="web-sg", direction="ingress",
                  rules=[permission("tcp", "22", prefix_list="office")]) == "InvalidPermission.Duplicate"
    result = h.op("authorize", sg="web-sg", direction="egress", rules=[permission("tcp", "443", prefix_list="office")])
    assert result["described"] == [f"egress tcp 443 to {h.sgs.prefix_list('office').id}"]
    h.op("revoke", sg="web-sg", direction="egress", rules=[permission("tcp", "443", prefix_list="office")])


def test_nacl_and_prefix_list_changes_replay_from_the_journal_after_a_restart(h: Harness, tmp_path: Path) -> None:
    """What a restarted engine rebuilds (issue 15's journal): the same NACLs, associations and lists."""
    from emulator.dataplane.journal import Journal, journaled
    journal = Journal(tmp_path / "journal.jsonl", tmp_path / "journal.commit", tmp_path / "journal.base")
    assert journal.load() == (None, [])
    handle = journaled(h.live, journal, lambda: 1.0)
    handle("nacl_create_entry", {"nacl": "private-nacl", "rule_number": 50, "egress": False, **ENTRY})
    handle("nacl_associate", {"nacl": "spare", "subnet": "public"})
    handle("prefix_list_modify", {"prefix_list": "office", "add": [{"cidr": "192.0.2.0/24"}]})
    with pytest.raises(AwsApiError):      # refused: never journaled
        handle("nacl_delete_entry", {"nacl": "private-nacl", "rule_number": 7, "egress": True})
    handle("nacl_describe", {})           # reads are not journaled either
    journal.close()
    again = Harness(tmp_path)             # a new engine from the model as `up` built it
    reopened = Journal(tmp_path / "journal.jsonl", tmp_path / "journal.commit", tmp_path / "journal.base")
    _, changes = reopened.load()
    assert [c.op for c in changes] == ["nacl_create_entry", "nacl_associate", "prefix_list_modify"]
    reopened.replay(changes, again.live, 2.0)
    assert dump(again.live.topology()) == dump(h.live.topology())
    assert again.nacls.gate("public").nacl.name == "spare"
    assert not again.nacls.gate("private").check(parse(tcp(WEB, "10.0.2.10", 40000, 22)), False).accepted
