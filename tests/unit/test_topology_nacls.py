"""network_acls and prefix_lists in topology files: defaults, every validation message with its path,
quotas (the `*` rule counts; prefix lists count max_entries), and export round trips."""
from __future__ import annotations

from ipaddress import ip_network

import pytest

from emulator.ids import nacl_id_for, prefix_list_id_for
from emulator.model import NACL_ALLOW, NACL_DENY, PROTO_ALL, PROTO_TCP, Direction, PortRange
from emulator.topology import dump, parse

from .test_topology_support import DELETE, SOURCE, assert_problem, base_doc, edit, load_doc, problems_of

N0 = "network_acls[0]"
E0 = f"{N0}.ingress[0]"
P0 = "prefix_lists[0]"


def nacl_doc(**extra: object) -> dict:
    """base_doc with a prefix list and a custom NACL on the private subnet."""
    doc = base_doc()
    doc["prefix_lists"] = [{"name": "office", "max_entries": 3, "entries": ["203.0.113.0/24",
                                                                           {"cidr": "198.51.100.7/32",
                                                                            "description": "home"}]}]
    doc["network_acls"] = [{
        "name": "private-nacl", "subnets": ["private"],
        "ingress": [{"rule": 100, "action": "allow", "protocol": "tcp", "ports": 8080, "cidr": "10.0.1.0/24"},
                    {"rule": 90, "action": "deny", "protocol": "all", "cidr": "198.51.100.7/32"}],
        "egress": [{"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}],
    }]
    doc["security_groups"][0]["ingress"].append({"protocol": "tcp", "ports": 22, "prefix_list": "office"})
    doc.update(extra)
    return doc


def test_a_file_without_nacls_gets_aws_default_nacl_allowing_all():
    topology = load_doc(base_doc()).topology
    [default] = topology.network_acls
    assert default.name == "default" and default.id == nacl_id_for("default")
    for direction in Direction:
        rules = [(e.rule_number, e.action, e.protocol, str(e.cidr)) for e in default.entries(direction)]
        assert rules == [(100, NACL_ALLOW, PROTO_ALL, "0.0.0.0/0"), (101, NACL_ALLOW, PROTO_ALL, "::/0")]
    assert topology.nacl_for("public") is default and topology.nacl_for("private") is default


def test_ipv4_only_default_nacl_has_no_rule_101():
    doc = edit(base_doc(), {"vpc.ipv6_cidr": DELETE, "subnets[0].ipv6_cidr": DELETE, "internet[0].ipv6": DELETE})
    [default] = load_doc(doc).topology.network_acls
    assert [e.rule_number for e in default.ingress] == [100]


def test_custom_nacl_entries_sorted_by_rule_number_and_associated():
    topology = load_doc(nacl_doc()).topology
    default, custom = topology.network_acls
    assert custom.name == "private-nacl" and custom.id == nacl_id_for("private-nacl")
    assert [(e.rule_number, e.action) for e in custom.ingress] == [(90, NACL_DENY), (100, NACL_ALLOW)]
    assert custom.ingress[1].ports == PortRange(8080, 8080) and custom.ingress[1].protocol == PROTO_TCP
    assert topology.nacl_for("private") is custom and topology.nacl_for("public") is default


def test_omitted_directions_mean_nothing_but_the_final_deny():
    doc = nacl_doc()
    doc["network_acls"][0] = {"name": "empty", "subnets": ["private"]}
    custom = load_doc(doc).topology.network_acls[1]
    assert custom.ingress == () and custom.egress == ()


def test_declared_default_redefines_it():
    doc = nacl_doc()
    doc["network_acls"].append({"name": "default", "ingress": [
        {"rule": 10, "action": "deny", "protocol": "all", "cidr": "0.0.0.0/0"}]})
    topology = load_doc(doc).topology
    assert [n.name for n in topology.network_acls] == ["private-nacl", "default"]
    assert topology.nacl_for("public").ingress[0].action == NACL_DENY


def test_prefix_list_parsed_with_its_family_and_quota_weight():
    topology = load_doc(nacl_doc()).topology
    [office] = topology.prefix_lists
    assert office.id == prefix_list_id_for("office") and office.max_entries == 3 and office.family == 4
    assert office.cidrs == (ip_network("203.0.113.0/24"), ip_network("198.51.100.7/32"))
    assert office.entries[1].description == "home"
    rule = topology.sg("web-sg").ingress[-1]
    assert rule.prefix_list == office.id and rule.cidr is None and rule.peer == office.id


def test_max_entries_defaults_to_the_number_of_entries():
    doc = nacl_doc()
    del doc["prefix_lists"][0]["max_entries"]
    assert load_doc(doc).topology.prefix_lists[0].max_entries == 2


def test_prefix_list_rule_counts_max_entries_toward_the_sg_quota():
    doc = nacl_doc(options={"quotas": {"rules_per_sg": 4}})     # 80 (1) + office (3) = 4: fits
    load_doc(doc)
    doc["prefix_lists"][0]["max_entries"] = 4                   # 1 + 4 = 5 > 4
    assert_problem(doc, "security_groups[0].ingress", "5 IPv4 inbound rules (prefix lists count their max_entries) "
                                                      "exceed the quota of 4")


def test_nacl_quota_counts_the_star_rule_per_family():
    entries = [{"rule": n, "action": "allow", "protocol": "tcp", "ports": n, "cidr": "0.0.0.0/0"}
               for n in range(1, 20)]
    doc = nacl_doc()
    doc["network_acls"][0]["ingress"] = entries                 # 19 + * = 20: fits
    load_doc(doc)
    doc["network_acls"][0]["ingress"] = [*entries, {"rule": 20, "action": "allow", "protocol": "all",
                                                    "cidr": "::/0"}]
    load_doc(doc)                                               # the IPv6 rules are counted apart
    doc["network_acls"][0]["ingress"] = [*entries, {"rule": 20, "action": "allow", "protocol": "all",
                                                    "cidr": "10.0.0.0/8"}]
    assert_problem(doc, f"{N0}.ingress", "20 IPv4 inbound rules plus the `*` rule exceed the quota of 20")
    doc["options"] = {"quotas": {"rules_per_nacl": 21}}
    load_doc(doc)


def test_export_round_trips_nacls_and_prefix_lists():
    topology = load_doc(nacl_doc()).topology
    data = dump(topology)
    assert [n["name"] for n in data["network_acls"]] == ["private-nacl"]      # the untouched default is implied
    assert data["security_groups"][0]["ingress"][-1]["prefix_list"] == "office"
    assert parse(data, SOURCE, "t").topology == topology
    assert "network_acls" not in dump(load_doc(base_doc()).topology)


C = pytest.param
CASES = [
    C({"network_acls": {}}, "network_acls", "expected a list of network ACLs", id="nacls-type"),
    C({f"{N0}.name": DELETE}, f"{N0}.name", "is missing", id="nacl-name-missing"),
    C({f"{N0}.name": "Private_NACL"}, f"{N0}.name", "is not a valid network ACL name", id="nacl-name-chars"),
    C({"network_acls[1]": {"name": "private-nacl"}}, "network_acls[1].name",
      "'private-nacl' is already the name of network_acls[0]", id="nacl-dup-name"),
    C({f"{N0}.id": "acl-xyz"}, f"{N0}.id", "'acl-xyz' is not a network ACL id", id="nacl-id-shape"),
    C({f"{N0}.id": nacl_id_for("default")}, f"{N0}.id", "is the id of the VPC's default network ACL",
      id="nacl-id-default"),
    C({"network_acls[1]": {"name": "b", "id": "acl-0a1b2c3d"}, f"{N0}.id": "acl-0a1b2c3d"}, "network_acls[1].id",
      "'acl-0a1b2c3d' is already the id of network_acls[0]", id="nacl-dup-id"),
    C({f"{N0}.subnets": ["nowhere"]}, f"{N0}.subnets[0]", "no subnet named 'nowhere'", id="nacl-subnet-unknown"),
    C({"network_acls[1]": {"name": "b", "subnets": ["private"]}}, "network_acls[1].subnets[0]",
      "subnet 'private' is already associated with network_acls[0]", id="subnet-in-two-nacls"),
    C({f"{N0}.egres": []}, f"{N0}.egres", "did you mean 'egress'", id="nacl-unknown-key"),
    C({f"{E0}.rule": 0}, f"{E0}.rule", "0 is out of range; use an integer from 1 to 32766", id="rule-zero"),
    C({f"{E0}.rule": 32767}, f"{E0}.rule", "32767 is out of range", id="rule-star"),
    C({f"{E0}.rule": "100"}, f"{E0}.rule", "expected an integer", id="rule-type"),
    C({f"{N0}.ingress[1].rule": 100}, f"{N0}.ingress[1].rule",
      "NetworkAclEntryAlreadyExists: rule 100 is already network_acls[0].ingress[0]", id="rule-repeated"),
    C({f"{E0}.action": "reject"}, f"{E0}.action", "'reject' is not a NACL action; use allow or deny",
      id="action-bad"),
    C({f"{E0}.action": DELETE}, f"{E0}.action", "is missing", id="action-missing"),
    C({f"{E0}.protocol": "gre"}, f"{E0}.protocol", "'gre' is not a protocol", id="protocol-bad"),
    C({f"{E0}.ports": DELETE}, f"{E0}.ports", "tcp NACL rules need ports", id="ports-missing"),
    C({f"{E0}.ports": "90-80"}, f"{E0}.ports", "has low > high", id="ports-reversed"),
    C({f"{E0}.ports": 70000}, f"{E0}.ports", "is out of range", id="ports-range"),
    C({f"{E0}.icmp_type": 8}, f"{E0}.icmp_type", "does not apply to protocol tcp", id="icmp-on-tcp"),
    C({f"{E0}.protocol": "icmp", f"{E0}.ports": DELETE, f"{E0}.icmp_code": 0}, f"{E0}.icmp_code",
      "0 needs a specific icmp_type", id="icmp-code-without-type"),
    C({f"{E0}.protocol": "icmp", f"{E0}.ports": DELETE, f"{E0}.icmp_type": 300}, f"{E0}.icmp_type",
      "300 is out of range", id="icmp-type-range"),
    C({f"{E0}.cidr": DELETE}, f"{E0}.cidr", "is missing", id="cidr-missing"),
    C({f"{E0}.cidr": "10.0.1.0"}, f"{E0}.cidr", "has no prefix length", id="cidr-no-prefix"),
    C({f"{E0}.group": "web-sg"}, f"{E0}.group", "unknown key", id="nacl-no-sg-peer"),
    C({f"{E0}.prefix_list": "office"}, f"{E0}.prefix_list", "unknown key", id="nacl-no-prefix-list-peer"),
    # prefix lists
    C({"prefix_lists": "office"}, "prefix_lists", "expected a list of prefix lists", id="pls-type"),
    C({f"{P0}.name": "com.amazonaws.s3"}, f"{P0}.name", "is not a valid prefix list name", id="pl-name-reserved"),
    C({"prefix_lists[1]": {"name": "office"}}, "prefix_lists[1].name",
      "'office' is already the name of prefix_lists[0]", id="pl-dup-name"),
    C({f"{P0}.id": "pl-1"}, f"{P0}.id", "'pl-1' is not a prefix list id", id="pl-id-shape"),
    C({f"{P0}.max_entries": 1}, f"{P0}.entries", "2 entries exceed max_entries 1", id="pl-over-max"),
    C({f"{P0}.max_entries": 1001}, f"{P0}.max_entries", "1001 is out of range", id="pl-max-range"),
    C({f"{P0}.entries[1]": "2001:db8::/32"}, f"{P0}.entries[1]",
      "2001:db8::/32 is IPv6 but prefix_lists[0].entries[0] is IPv4", id="pl-mixed-families"),
    C({f"{P0}.entries[1]": "203.0.113.0/24"}, f"{P0}.entries[1]", "203.0.113.0/24 is already prefix_lists[0].entries[0]",
      id="pl-dup-entry"),
    C({f"{P0}.entries[1].cidr": "nope/24"}, f"{P0}.entries[1].cidr", "is not a valid CIDR", id="pl-entry-cidr"),
    C({"security_groups[0].ingress[1].prefix_list": "nowhere"}, "security_groups[0].ingress[1].prefix_list",
      "no prefix list named or with id 'nowhere' in this file", id="sg-unknown-prefix-list"),
    C({"security_groups[0].ingress[1].cidr": "10.0.0.0/8"}, "security_groups[0].ingress[1]",
      "has both cidr and prefix_list", id="sg-two-peers"),
    C({"security_groups[0].ingress[1].group": "pl-0a1b2c3d", "security_groups[0].ingress[1].prefix_list": DELETE},
      "security_groups[0].ingress[1].group", "'pl-0a1b2c3d' is a prefix list; write it as prefix_list:",
      id="sg-prefix-list-as-group"),
]


@pytest.mark.parametrize(("edits", "path", "fragment"), CASES)
def test_validation(edits, path, fragment):
    assert_problem(edit(nacl_doc(), edits), path, fragment)


def test_every_problem_at_once():
    doc = edit(nacl_doc(), {f"{E0}.rule": 0, f"{P0}.id": "pl-1", f"{N0}.subnets": ["nowhere"]})
    found = problems_of(doc)
    assert len([p for p in found if "network_acls" in p or "prefix_lists" in p]) == 3


def test_warnings_for_rules_that_can_never_match():
    doc = edit(nacl_doc(), {f"{E0}.protocol": "icmp", f"{E0}.ports": DELETE, f"{E0}.cidr": "::/0"})
    warnings = load_doc(doc).warnings
    assert any(w.startswith(f"{SOURCE}: {E0}.cidr: protocol icmp never carries IPv6") for w in warnings)
    doc = edit(nacl_doc(), {f"{E0}.cidr": "10.0.1.9/24"})
    assert any("canonicalised to 10.0.1.0/24" in w for w in load_doc(doc).warnings)
    doc = edit(nacl_doc(), {f"{E0}.protocol": "all"})
    assert any(f"{E0}.ports: ignored for protocol all" in w for w in load_doc(doc).warnings)
