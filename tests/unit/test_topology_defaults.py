"""What the loader fills in and normalises: default SG and egress, addresses, ids, protocols, warnings, quotas."""
from __future__ import annotations

import re
from ipaddress import ip_address, ip_network

import pytest

from emulator.errors import TopologyError
from emulator.model import PROTO_ALL, ConntrackTimeouts, Direction, Options, PortRange, Quotas, Rule
from emulator.topology import parse, rule_id_for, sg_id_for

from .test_topology_support import DELETE, SOURCE, assert_problem, base_doc, edit, load_doc

R0 = "security_groups[0].ingress[0]"


def rules_of(doc: dict, direction: str = "ingress", sg: str = "web-sg") -> tuple[Rule, ...]:
    return getattr(load_doc(doc).topology.sg(sg), direction)


def v4_only(doc: dict) -> dict:
    return edit(doc, {"vpc.ipv6_cidr": DELETE, "subnets[0].ipv6_cidr": DELETE, "internet[0].ipv6": DELETE})


# --- the default SG and default egress ---

def test_default_sg_always_exists_first_with_aws_rules():
    t = load_doc(base_doc()).topology
    default = t.security_groups[0]
    assert (default.name, default.id) == ("default", sg_id_for("default"))
    assert [(r.protocol, r.group, r.cidr) for r in default.ingress] == [(PROTO_ALL, default.id, None)]
    assert [(r.protocol, str(r.cidr)) for r in default.egress] == [(PROTO_ALL, "0.0.0.0/0"), (PROTO_ALL, "::/0")]


def test_default_sg_egress_is_ipv4_only_in_an_ipv4_vpc():
    default = load_doc(v4_only(base_doc())).topology.sg("default")
    assert [str(r.cidr) for r in default.egress] == ["0.0.0.0/0"]


def test_instance_without_security_groups_gets_default():
    t = load_doc(edit(base_doc(), {"instances[1].security_groups": DELETE})).topology
    assert t.instance("app").security_groups == (sg_id_for("default"),)


def test_declaring_default_redefines_it_in_place():
    doc = edit(base_doc(), {"security_groups[2]": {"name": "default", "ingress": [], "egress": []}})
    t = load_doc(doc).topology
    assert [g.name for g in t.security_groups] == ["web-sg", "app-sg", "default"]
    assert t.sg("default").id == sg_id_for("default")
    assert t.sg("default").ingress == () and t.sg("default").egress == ()


def test_redefined_default_keeps_a_given_id():
    doc = edit(base_doc(), {"security_groups[2]": {"name": "default", "id": "sg-0123abcd"}})
    t = load_doc(doc).topology
    assert t.sg("default").id == "sg-0123abcd"
    assert t.instance("web").security_groups == (sg_id_for("web-sg"),)


@pytest.mark.parametrize("dual_stack,egress_ipv6,expected", [
    (True, True, ["0.0.0.0/0", "::/0"]),
    (True, False, ["0.0.0.0/0"]),
    (False, True, ["0.0.0.0/0"]),
])
def test_omitted_egress_is_aws_default(dual_stack, egress_ipv6, expected):
    doc = edit(base_doc(), {"options": {"default_egress_ipv6": egress_ipv6}})
    egress = rules_of(doc if dual_stack else v4_only(doc), "egress")
    assert [(r.protocol, r.ports, str(r.cidr)) for r in egress] == [(PROTO_ALL, None, c) for c in expected]


def test_empty_egress_means_none_and_omitted_ingress_means_none():
    doc = edit(base_doc(), {"security_groups[1].ingress": DELETE})
    assert rules_of(doc, "egress", "app-sg") == () and rules_of(doc, "ingress", "app-sg") == ()


# --- addresses ---

def test_private_ips_skip_reserved_and_explicit_addresses_in_file_order():
    doc = edit(base_doc(), {"instances": [
        {"name": "a", "subnet": "public"},
        {"name": "b", "subnet": "public", "private_ip": "10.0.1.5"},
        {"name": "c", "subnet": "public"},
        {"name": "d", "subnet": "private", "private_ip": "10.0.2.4"},
        {"name": "e", "subnet": "private"},
    ]})
    t = load_doc(doc).topology
    assert [str(i.private_ip) for i in t.instances] == ["10.0.1.4", "10.0.1.5", "10.0.1.6", "10.0.2.4", "10.0.2.5"]


def test_a_full_subnet_is_reported():
    instances = [{"name": f"n{k}", "subnet": "tiny"} for k in range(12)]   # a /28 has 16 - 5 usable
    doc = edit(base_doc(), {"subnets[2]": {"name": "tiny", "cidr": "10.0.9.0/28"}, "instances": instances})
    assert_problem(doc, "instances[11]", "subnet 'tiny' (10.0.9.0/28) has no free address left")
    ok = edit(doc, {"instances": instances[:11]})
    assert str(load_doc(ok).topology.instance("n10").private_ip) == "10.0.9.14"


# --- ids ---

def test_generated_ids_are_stable_and_aws_shaped():
    assert re.fullmatch(r"sg-[0-9a-f]{17}", sg_id_for("web-sg"))
    assert sg_id_for("web-sg") == sg_id_for("web-sg") != sg_id_for("app-sg")
    first, second = load_doc(base_doc()).topology, load_doc(base_doc()).topology
    rule = first.sg("web-sg").ingress[0]
    assert re.fullmatch(r"sgr-[0-9a-f]{17}", rule.rule_id)
    assert rule.rule_id == second.sg("web-sg").ingress[0].rule_id == rule_id_for(sg_id_for("web-sg"), rule)
    assert first.sg("web-sg").id == sg_id_for("web-sg")


def test_rule_id_depends_on_permission_and_group_not_description():
    rule = Rule(Direction.INGRESS, 6, PortRange(80, 80), cidr=ip_network("0.0.0.0/0"))
    described = Rule(Direction.INGRESS, 6, PortRange(80, 80), cidr=ip_network("0.0.0.0/0"), description="web")
    other_port = Rule(Direction.INGRESS, 6, PortRange(81, 81), cidr=ip_network("0.0.0.0/0"))
    assert rule_id_for("sg-0123abcd", rule) == rule_id_for("sg-0123abcd", described)
    assert rule_id_for("sg-0123abcd", rule) != rule_id_for("sg-0123abcd", other_port)
    assert rule_id_for("sg-0123abcd", rule) != rule_id_for("sg-4567abcd", rule)


def test_group_references_resolve_to_ids_by_name_or_id():
    by_id = edit(base_doc(), {"security_groups[1].ingress[0].group": sg_id_for("web-sg")})
    for doc in (base_doc(), by_id):
        assert rules_of(doc, "ingress", "app-sg")[0].group == sg_id_for("web-sg")


# --- protocols, ports and ICMP ---

@pytest.mark.parametrize("written,number", [
    ("tcp", 6), ("TCP", 6), ("6", 6), (6, 6), ("udp", 17), ("17", 17), ("icmp", 1), ("1", 1),
    ("icmpv6", 58), ("ICMPv6", 58), ("58", 58), ("all", PROTO_ALL), ("-1", PROTO_ALL), (-1, PROTO_ALL),
    (47, 47), ("0", 0), (255, 255),
])
def test_protocols_normalise_to_numbers(written, number):
    rule = {"protocol": written, "cidr": "0.0.0.0/0"}
    if number in (6, 17):
        rule["ports"] = 80
    assert rules_of(edit(base_doc(), {R0: rule}))[0].protocol == number


@pytest.mark.parametrize("ports,expected", [(80, PortRange(80, 80)), ("80", PortRange(80, 80)),
                                            ("1000-2000", PortRange(1000, 2000)), ("0-65535", PortRange(0, 65535)),
                                            (" 22 - 23 ", PortRange(22, 23))])
def test_port_ranges(ports, expected):
    assert rules_of(edit(base_doc(), {f"{R0}.ports": ports}))[0].ports == expected


@pytest.mark.parametrize("protocol", ["all", "-1", 47])
def test_ports_are_ignored_with_a_warning_where_aws_ignores_them(protocol):
    loaded = load_doc(edit(base_doc(), {f"{R0}.protocol": protocol, f"{R0}.ports": "1000-2000"}))
    assert loaded.topology.sg("web-sg").ingress[0].ports is None
    name = "all" if protocol in ("all", "-1") else "47"
    assert loaded.warnings == (f"{SOURCE}: {R0}.ports: ignored for protocol {name} (AWS ignores ports for it: "
                               "the rule covers all of its traffic)",)


def test_icmp_rules_keep_type_and_code_and_warn_about_ports():
    loaded = load_doc(edit(base_doc(), {R0: {"protocol": "icmp", "ports": 8, "icmp_type": 8, "icmp_code": 0,
                                             "cidr": "0.0.0.0/0"}}))
    rule = loaded.topology.sg("web-sg").ingress[0]
    assert (rule.protocol, rule.ports, rule.icmp_type, rule.icmp_code) == (1, None, 8, 0)
    assert loaded.warnings == (f"{SOURCE}: {R0}.ports: not used for icmp (use icmp_type and icmp_code)",)


def test_icmp_type_and_code_default_to_all():
    rule = rules_of(edit(base_doc(), {R0: {"protocol": "icmpv6", "cidr": "::/0"}}))[0]
    assert (rule.protocol, rule.icmp_type, rule.icmp_code) == (58, -1, -1)


# --- CIDR canonicalisation and address-family warnings ---

def test_non_canonical_cidr_is_canonicalised_with_a_warning():
    loaded = load_doc(edit(base_doc(), {f"{R0}.cidr": "10.0.0.5/16"}))
    assert loaded.topology.sg("web-sg").ingress[0].cidr == ip_network("10.0.0.0/16")
    assert loaded.warnings == (f"{SOURCE}: {R0}.cidr: '10.0.0.5/16' canonicalised to 10.0.0.0/16 "
                               "(AWS stores the network address)",)


def test_ipv6_rule_in_an_ipv4_vpc_is_allowed_with_a_warning():
    loaded = load_doc(v4_only(edit(base_doc(), {f"{R0}.cidr": "::/0"})))
    assert loaded.topology.sg("web-sg").ingress[0].cidr == ip_network("::/0")
    assert loaded.warnings == (f"{SOURCE}: {R0}.cidr: ::/0 is IPv6 but the VPC is IPv4-only: this rule can never match",)


def test_icmp_with_an_ipv6_cidr_warns_it_never_matches():
    loaded = load_doc(edit(base_doc(), {R0: {"protocol": "icmp", "cidr": "::/0"}}))
    assert "this rule can never match" in loaded.warnings[0]


# --- quotas ---

def _rules(count: int, family: int, start: int = 1) -> list[dict]:
    cidr = (lambda n: f"10.{n // 250}.{n % 250}.0/24") if family == 4 else (lambda n: f"2001:db8:{n:x}::/48")
    return [{"protocol": "tcp", "ports": 22, "cidr": cidr(n)} for n in range(start, start + count)]


@pytest.mark.parametrize("direction", ["ingress", "egress"])
@pytest.mark.parametrize("family", [4, 6])
def test_sixty_rules_per_family_fit_and_sixty_one_do_not(direction, family):
    bound = "inbound" if direction == "ingress" else "outbound"
    assert len(rules_of(edit(base_doc(), {f"security_groups[0].{direction}": _rules(60, family)}), direction)) == 60
    doc = edit(base_doc(), {f"security_groups[0].{direction}": _rules(61, family)})
    assert_problem(doc, f"security_groups[0].{direction}",
                   f"61 IPv{family} {bound} rules exceed the quota of 60 {bound} rules per security group "
                   "per address family; "
                   "remove rules or raise options.quotas.rules_per_sg")


def test_families_and_directions_are_counted_separately():
    doc = edit(base_doc(), {"security_groups[0].ingress": _rules(60, 4) + _rules(60, 6),
                            "security_groups[0].egress": _rules(60, 4)})
    sg = load_doc(doc).topology.sg("web-sg")
    assert (len(sg.ingress), len(sg.egress)) == (120, 60)


def test_group_rules_count_as_ipv4():
    groups = [{"protocol": "tcp", "ports": p, "group": "app-sg"} for p in range(1, 3)]
    assert_problem(edit(base_doc(), {"security_groups[0].ingress": _rules(59, 4) + groups}),
                   "security_groups[0].ingress", "61 IPv4 inbound rules")


def test_rule_quota_can_be_raised():
    doc = edit(base_doc(), {"security_groups[0].ingress": _rules(61, 4),
                            "options": {"quotas": {"rules_per_sg": 61}}})
    assert len(rules_of(doc)) == 61


def test_sg_quota_per_instance_at_five_and_raised():
    sgs = [{"name": f"sg{n}"} for n in range(6)]
    five = edit(base_doc(), {"security_groups": sgs, "instances[0].security_groups": [f"sg{n}" for n in range(5)],
                             "instances[1].security_groups": DELETE})
    assert len(load_doc(five).topology.instance("web").security_groups) == 5
    six = edit(five, {"instances[0].security_groups": [f"sg{n}" for n in range(6)],
                      "options": {"quotas": {"sgs_per_eni": 6}}})
    assert len(load_doc(six).topology.instance("web").security_groups) == 6


# --- options, timeouts, names ---

def test_options_map_to_the_model():
    doc = edit(base_doc(), {"options": {
        "related_icmp": False, "default_egress_ipv6": False, "conntrack_allowance": 10, "standby": False,
        "timeouts": {"tcp_syn_sent": 5, "udp": 20}, "quotas": {"rules_per_sg": 100, "sgs_per_eni": 10}}})
    options = load_doc(doc).topology.options
    assert options == Options(related_icmp=False, default_egress_ipv6=False, conntrack_allowance=10, standby=False,
                              timeouts=ConntrackTimeouts(tcp_syn_sent=5, udp=20),
                              quotas=Quotas(rules_per_sg=100, sgs_per_eni=10))
    assert Options().standby


def test_standby_must_be_a_boolean_and_round_trips_through_export():
    from emulator.errors import TopologyError
    from emulator.topology.dump import dump
    with pytest.raises(TopologyError) as info:
        load_doc(edit(base_doc(), {"options": {"standby": "no"}}))
    assert any("options.standby" in p for p in info.value.problems)
    off = load_doc(edit(base_doc(), {"options": {"standby": False}})).topology
    assert dump(off)["options"] == {"standby": False}
    assert "options" not in dump(load_doc(base_doc()).topology)


def test_instance_conntrack_overrides_aws_timeouts_over_lab_timeouts():
    doc = edit(base_doc(), {"instances[0].conntrack": {"tcp_established": 60, "udp": 45, "udp_stream": 90},
                            "options": {"timeouts": {"icmp": 7, "udp": 50}}})
    t = load_doc(doc).topology
    assert t.instance("web").conntrack == ConntrackTimeouts(tcp_established=60, udp=45, udp_stream=90, icmp=7)
    assert t.instance("app").conntrack == ConntrackTimeouts(icmp=7, udp=50)


def test_services_ssh_defaults_to_22_and_proxy_targets_an_instance():
    doc = edit(base_doc(), {"instances[0].services": [
        {"type": "ssh"}, {"type": "http-proxy", "port": 80, "to": "app:8080"}, {"type": "udp-echo", "port": 80}]})
    services = load_doc(doc).topology.instance("web").services
    assert [(s.type, s.port, s.to) for s in services] == [("ssh", 22, None), ("http-proxy", 80, "app:8080"),
                                                         ("udp-echo", 80, None)]


def test_internet_hosts_and_public_addresses():
    t = load_doc(base_doc()).topology
    assert t.instance("web").public_ip == ip_address("198.51.100.10")
    assert t.node("you").addresses == (ip_address("203.0.113.10"), ip_address("2001:db8::10"))


def test_name_defaults_to_the_given_default():
    doc = edit(base_doc(), {"name": DELETE})
    assert parse(doc, SOURCE, "from-stem").topology.name == "from-stem"
    with pytest.raises(TopologyError) as caught:
        parse(doc, SOURCE, "Not Valid")
    assert caught.value.problems[0].startswith(
        f"{SOURCE}: name: is missing and the default 'Not Valid' is not a valid lab name; add name:")


def test_topology_remembers_its_source():
    assert load_doc(base_doc()).topology.source == SOURCE


def test_vpc_id_is_generated_from_the_lab_name_or_kept_as_given():
    from emulator.ids import vpc_id_for
    from emulator.topology import dump
    generated = load_doc(base_doc()).topology
    assert generated.vpc.id == vpc_id_for("t") and re.fullmatch(r"vpc-[0-9a-f]{17}", generated.vpc.id)
    assert "id" not in dump(generated)["vpc"]
    given = load_doc(edit(base_doc(), {"vpc.id": "vpc-0a1b2c3d4e5f60718"})).topology
    assert given.vpc.id == "vpc-0a1b2c3d4e5f60718"
    assert load_doc(dump(given)).topology == given


@pytest.mark.parametrize("value", ["vpc-xyz", "sg-0a1b2c3d", "vpc-0a1b2c3d4"])
def test_bad_vpc_id(value):
    assert_problem(edit(base_doc(), {"vpc.id": value}), "vpc.id", "is not a VPC id")
