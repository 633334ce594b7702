"""SecurityGroupState: EC2 API semantics of live changes (duplicates, not-found, quotas, ids,
membership) and export."""
from ipaddress import IPv4Address, IPv6Address

import pytest

from emulator.engine.sgstate import SecurityGroupState, rule_id
from emulator.errors import AwsApiError
from emulator.model import Direction, Options, Quotas

from .helpers import ALL_OUT4, ANY4, ANY6, egress, ingress, instance, sg, topology


def state(quotas: Quotas | None = None) -> SecurityGroupState:
    topo = topology([sg("web", [ingress("tcp", 80, ANY4)], [ALL_OUT4]), sg("db"), sg("app")],
                    [instance("w", "10.0.1.1", ["web"], ipv6="fd00:10::1"),
                     instance("d", "10.0.1.2", ["db", "app"], public_ip="198.51.100.2")])
    if quotas is not None:
        from dataclasses import replace
        topo = replace(topo, options=Options(quotas=quotas))
    return SecurityGroupState(topo)


def code_of(call) -> str:
    with pytest.raises(AwsApiError) as caught:
        call()
    return caught.value.code


@pytest.mark.parametrize("ref", ["web", "sg-web"])
def test_group_by_name_or_id(ref):
    assert state().group(ref).id == "sg-web"


def test_unknown_group():
    s = state()
    assert code_of(lambda: s.group("nope")) == "InvalidGroup.NotFound"
    assert code_of(lambda: s.authorize("nope", [ingress("tcp", 1, ANY4)])) == "InvalidGroup.NotFound"
    assert code_of(lambda: s.authorize("web", [ingress("tcp", 1, group="nope")])) == "InvalidGroup.NotFound"


def test_every_rule_has_a_stable_id():
    s = state()
    assert all(r.rule_id.startswith("sgr-") and len(r.rule_id) == 21 for r in s.group("web").ingress)
    assert state().group("web").ingress[0].rule_id == s.group("web").ingress[0].rule_id
    s.authorize("db", [ingress("tcp", 5432, group="app")])
    added = s.group("db").ingress[0]
    assert added.rule_id == rule_id("sg-db", ingress("tcp", 5432, group="sg-app"))
    assert added.rule_id != rule_id("sg-web", ingress("tcp", 5432, group="sg-app"))


def test_given_rule_id_is_kept():
    s = state()
    from dataclasses import replace
    s.authorize("db", [replace(ingress("tcp", 1, ANY4), rule_id="sgr-mine")])
    assert s.group("db").ingress[0].rule_id == "sgr-mine"


def test_authorize_resolves_group_names_and_bumps_version():
    s = state()
    before = s.version
    s.authorize("db", [ingress("tcp", 5432, group="app"), egress("tcp", 443, ANY4)])
    assert s.version == before + 1
    assert s.group("db").ingress[0].group == "sg-app"
    assert s.group("db").egress[0].direction is Direction.EGRESS


@pytest.mark.parametrize("duplicate", [
    ingress("tcp", 80, ANY4), ingress("tcp", "80-80", ANY4), ingress(6, 80, ANY4),
])
def test_duplicate_is_refused_and_nothing_changes(duplicate):
    s = state()
    version = s.version
    assert code_of(lambda: s.authorize("web", [ingress("tcp", 81, ANY4), duplicate])) == \
        "InvalidPermission.Duplicate"
    assert s.version == version and len(s.group("web").ingress) == 1


def test_duplicate_within_one_request():
    s = state()
    assert code_of(lambda: s.authorize("db", [ingress("udp", 1, ANY4)] * 2)) == "InvalidPermission.Duplicate"


@pytest.mark.parametrize("different", [
    ingress("tcp", 80, ANY6), ingress("tcp", 81, ANY4), ingress("udp", 80, ANY4),
    ingress("tcp", 80, "10.0.0.0/8"), egress("tcp", 80, ANY4), ingress("tcp", 80, group="sg-web"),
])
def test_near_duplicates_are_different_permissions(different):
    s = state()
    s.authorize("web", [different])
    assert len(s.group("web").rules(different.direction)) == 2


def test_revoke_removes_matching_permission_whatever_its_id():
    s = state()
    s.revoke("web", [ingress("tcp", 80, ANY4)])
    assert s.group("web").ingress == ()


def test_revoke_missing_is_not_found_and_all_or_nothing():
    s = state()
    assert code_of(lambda: s.revoke("web", [ingress("tcp", 80, ANY4), ingress("tcp", 22, ANY4)])) == \
        "InvalidPermission.NotFound"
    assert len(s.group("web").ingress) == 1


def _v4(n):
    return [ingress("tcp", port, ANY4) for port in range(1000, 1000 + n)]


def _v6(n):
    return [ingress("tcp", port, ANY6) for port in range(1000, 1000 + n)]


def test_r10_sixty_first_ipv4_rule_is_refused_but_ipv6_still_fits():
    s = state()
    s.authorize("db", _v4(60))
    assert code_of(lambda: s.authorize("db", [ingress("tcp", 9, ANY4)])) == "RulesPerSecurityGroupLimitExceeded"
    s.authorize("db", _v6(60))
    assert code_of(lambda: s.authorize("db", [ingress("tcp", 9, ANY6)])) == "RulesPerSecurityGroupLimitExceeded"
    s.authorize("db", [egress("tcp", 9, ANY4)])   # outbound counts separately


def test_group_references_count_as_ipv4():
    s = state()
    s.authorize("db", [*_v4(59), ingress("tcp", 1, group="app")])
    assert code_of(lambda: s.authorize("db", [ingress("tcp", 2, group="web")])) == \
        "RulesPerSecurityGroupLimitExceeded"


def test_quota_is_all_or_nothing():
    s = state()
    assert code_of(lambda: s.authorize("db", _v4(61))) == "RulesPerSecurityGroupLimitExceeded"
    assert s.group("db").ingress == ()


def test_raised_quota():
    s = state(Quotas(rules_per_sg=100))
    s.authorize("db", _v4(100))
    assert code_of(lambda: s.authorize("db", [ingress("tcp", 9, ANY4)])) == "RulesPerSecurityGroupLimitExceeded"


# --- membership -------------------------------------------------------------------------------

def test_members_are_private_ipv4_and_ipv6_never_public():
    s = state()
    assert s.members("sg-web") == {int(IPv4Address("10.0.1.1")), int(IPv6Address("fd00:10::1"))}
    assert s.members("sg-db") == {int(IPv4Address("10.0.1.2"))}
    assert s.member_addresses("sg-web", 6) == {int(IPv6Address("fd00:10::1"))}
    assert s.members("sg-nobody") == frozenset()


def test_set_instance_groups_changes_rules_and_membership():
    s = state()
    version = s.version
    s.set_instance_groups("d", ["web", "sg-web"])
    assert s.version == version + 1
    assert s.instance_groups("d") == ("sg-web",)
    assert int(IPv4Address("10.0.1.2")) in s.members("sg-web")
    assert s.members("sg-db") == frozenset()


@pytest.mark.parametrize("instance_name,refs,code", [
    ("ghost", ["web"], "InvalidInstanceID.NotFound"),
    ("d", ["nope"], "InvalidGroup.NotFound"),
    ("d", [], "MissingParameter"),
])
def test_set_instance_groups_errors(instance_name, refs, code):
    s = state()
    assert code_of(lambda: s.set_instance_groups(instance_name, refs)) == code
    assert s.instance_groups("d") == ("sg-db", "sg-app")


def test_sgs_per_eni_quota():
    s = SecurityGroupState(topology([sg(f"g{i}") for i in range(6)], [instance("x", "10.0.1.9", ["g0"])]))
    s.set_instance_groups("x", [f"g{i}" for i in range(5)])
    assert code_of(lambda: s.set_instance_groups("x", [f"g{i}" for i in range(6)])) == \
        "SecurityGroupsPerInterfaceLimitExceeded"


def test_topology_export_reflects_changes():
    s = state()
    s.authorize("db", [ingress("tcp", 5432, group="app")])
    s.set_instance_groups("w", ["web", "db"])
    exported = s.topology()
    assert exported.sg("db").ingress[0].group == "sg-app"
    assert exported.instance("w").security_groups == ("sg-web", "sg-db")
    assert [g.name for g in exported.security_groups] == ["web", "db", "app"]
    assert exported.sg("web").ingress[0].rule_id.startswith("sgr-")
