"""Route tables, NAT gateways and the egress-only gateway: route selection (longest prefix match),
the loader's checks and warnings, and the plan (policy routing, NAT gateway namespaces)."""
from __future__ import annotations

import copy
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulator.errors import TopologyError
from emulator.plan import build_plan
from emulator.plan.routing import route_changes
from emulator.routes import RouteEntry, RouteTable, choose, longest_match, route_from
from emulator.topology import parse

NAT_FILE = Path(__file__).resolve().parents[2] / "topologies" / "three-tier-nat.yaml"


def doc() -> dict[str, Any]:
    return yaml.safe_load(NAT_FILE.read_text())


def load(data: dict[str, Any]):
    return parse(data, "t.yaml")


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(TopologyError) as info:
        load(data)
    return info.value.problems


# --- route selection -----------------------------------------------------------------------

def table(*routes: tuple[str, str]) -> RouteTable:
    return RouteTable("t", "rtb-1", tuple(RouteEntry(ip_network(d), t) for d, t in routes))


def test_longest_prefix_wins_whatever_the_order() -> None:
    t = table(("0.0.0.0/0", "nat-a"), ("203.0.113.0/24", "igw"), ("203.0.113.80/32", "blackhole"))
    assert longest_match(t.routes, ip_address("203.0.113.80")).target == "blackhole"
    assert longest_match(t.routes, ip_address("203.0.113.10")).target == "igw"
    assert longest_match(t.routes, ip_address("198.51.100.7")).target == "nat-a"


def test_ipv4_and_ipv6_routes_never_cover_each_other() -> None:
    t = table(("0.0.0.0/0", "igw"))
    assert longest_match(t.routes, ip_address("2001:db8::1")) is None
    assert longest_match(table(("::/0", "eigw")).routes, ip_address("203.0.113.1")) is None


def test_local_route_covers_the_vpc_and_no_route_is_none() -> None:
    topo = load(doc()).topology
    data_rt = topo.route_table_of("data")
    assert choose(topo, data_rt, ip_address("10.0.2.10")).target == "local"
    assert choose(topo, data_rt, ip_address("fd00:20:0:2::10")).target == "local"
    missing = choose(topo, data_rt, ip_address("203.0.113.80"))
    assert missing.target is None and not missing.forwards
    assert missing.describe().endswith("data-rt (" + data_rt.id + "): no route")


def test_subnets_use_their_table_or_the_main_one() -> None:
    topo = load(doc()).topology
    assert route_from(topo, "private", ip_address("203.0.113.80")).target == "nat-a"
    assert route_from(topo, "private", ip_address("2001:db8:ff::80")).target == "eigw"
    assert route_from(topo, "public", ip_address("203.0.113.80")).target == "igw"
    assert topo.route_table_of("public").main
    assert route_from(topo, "private", ip_address("203.0.113.80")).describe() == \
        f"route table private-rt ({topo.route_table_of('private').id}): 0.0.0.0/0 -> nat-a"


def test_a_file_without_route_tables_keeps_every_subnet_public() -> None:
    data = doc()
    del data["route_tables"], data["nat_gateways"]
    topo = load(data).topology
    assert [t.name for t in topo.route_tables] == ["main"]
    for subnet in ("public", "private", "data"):
        assert route_from(topo, subnet, ip_address("203.0.113.80")).target == "igw"
        assert route_from(topo, subnet, ip_address("2001:db8:ff::80")).target == "igw"


def test_a_declared_main_table_redefines_it() -> None:
    data = doc()
    data["route_tables"].append({"name": "main", "routes": [{"destination": "203.0.113.0/24", "target": "igw"}]})
    topo = load(data).topology
    assert topo.routing[0].name == "main" and topo.routing[0].main
    assert route_from(topo, "public", ip_address("198.51.100.7")).target is None
    assert route_from(topo, "public", ip_address("203.0.113.10")).target == "igw"


# --- the loader ----------------------------------------------------------------------------

def with_routes(*routes: dict[str, object]) -> dict[str, Any]:
    data = doc()
    data["route_tables"][0]["routes"] = list(routes)
    return data


@pytest.mark.parametrize(("data", "path", "message"), [
    (with_routes({"destination": "0.0.0.0/0", "target": "nat-b"}), "route_tables[0].routes[0].target",
     "no gateway named 'nat-b'; use one of: igw, eigw, blackhole, nat-a"),
    (with_routes({"destination": "0.0.0.0/0", "target": "igw"}, {"destination": "0.0.0.0/0", "target": "nat-a"}),
     "route_tables[0].routes[1].destination", "0.0.0.0/0 is already routed at route_tables[0].routes[0]"),
    (with_routes({"destination": "::/0", "target": "nat-a"}), "route_tables[0].routes[0].target",
     "a NAT gateway takes IPv4 traffic only"),
    (with_routes({"destination": "0.0.0.0/0", "target": "eigw"}), "route_tables[0].routes[0].target",
     "an egress-only internet gateway takes IPv6 traffic only"),
    (with_routes({"destination": "10.0.5.0/24", "target": "igw"}), "route_tables[0].routes[0].destination",
     "10.0.5.0/24 is inside the VPC's 10.0.0.0/16, which the local route covers"),
    (with_routes({"destination": "169.254.169.0/24", "target": "igw"}), "route_tables[0].routes[0].destination",
     "inside a range AWS reserves"),
    (with_routes({"destination": "203.0.113.5/24", "target": "igw"}), "route_tables[0].routes[0].destination",
     "has host bits set; write the network address: 203.0.113.0/24"),
    (with_routes({"destination": "0.0.0.0/0"}), "route_tables[0].routes[0].target", "is missing"),
], ids=["unknown-target", "duplicate-destination", "nat-ipv6", "eigw-ipv4", "inside-vpc", "reserved", "host-bits",
        "no-target"])
def test_route_problems(data: dict[str, Any], path: str, message: str) -> None:
    found = problems(data)
    assert any(f"t.yaml: {path}: " in p and message in p for p in found), found


def test_a_subnet_in_two_tables_is_refused() -> None:
    data = doc()
    data["route_tables"][1]["subnets"] = ["data", "private"]
    assert any("route_tables[1].subnets[1]: subnet 'private' is already associated at route_tables[0].subnets[0]"
               in p for p in problems(data))


def test_nat_gateway_problems() -> None:
    data = doc()
    data["nat_gateways"] = [{"name": "app", "subnet": "nowhere", "public_ip": "10.0.1.5"},
                            {"name": "nat-b", "subnet": "public", "public_ip": "198.51.100.10",
                             "private_ip": "10.0.2.9"}]
    found = problems(data)
    assert any("nat_gateways[0].subnet: no subnet named 'nowhere'" in p for p in found)
    assert any("nat_gateways[0].public_ip: 10.0.1.5 is inside the VPC" in p for p in found)
    assert any("nat_gateways[1].public_ip: 198.51.100.10 is already used by instances[0].public_ip" in p
               for p in found)
    assert any("nat_gateways[1].private_ip: 10.0.2.9 is not a usable address of subnet 'public'" in p for p in found)


def test_nat_gateway_names_are_node_names_and_addresses_are_assigned() -> None:
    data = doc()
    data["nat_gateways"][0]["name"] = "app"
    assert any("nat_gateways[0].name: 'app' is already the name of instances[1]" in p for p in problems(data))
    data = doc()
    del data["nat_gateways"][0]["private_ip"]
    nat = load(data).topology.nat_gateways[0]
    assert str(nat.private_ip) == "10.0.1.4" and nat.id.startswith("nat-") and len(nat.id) == 21


def test_public_ip_or_nat_gateway_without_an_igw_route_is_accepted_with_a_warning() -> None:
    data = doc()
    data["route_tables"].append({"name": "main", "routes": []})
    loaded = load(data)
    assert any("nat_gateways[0]: NAT gateway 'nat-a' is in subnet 'public', whose route table has no IPv4 route "
               "to the internet gateway" in w for w in loaded.warnings)
    assert any("instances[0]: instance 'alb' has public IP 198.51.100.10 but subnet 'public' has no IPv4 route"
               in w for w in loaded.warnings)
    assert load(doc()).warnings == ()


# --- the plan ------------------------------------------------------------------------------

def test_policy_rules_put_the_local_route_first_then_each_subnet_then_a_silent_discard() -> None:
    plan = build_plan(load(doc()).topology)
    rules = plan.fabric.rules
    assert rules[:2] == ("to 10.0.0.0/16 lookup main pref 1000", "to fd00:20::/56 lookup main pref 1001")
    assert "from 10.0.2.0/24 lookup 101 pref 2007" in rules
    assert "from 10.0.2.0/24 blackhole pref 2008" in rules
    assert "from fd00:20:0:2::/64 fwmark 0x10/0x10 lookup 201 pref 2009" in rules
    assert "from 10.0.3.0/24 blackhole pref 2014" in rules


def test_tables_hold_each_internet_address_as_routed() -> None:
    plan = build_plan(load(doc()).topology)
    routes = {" ".join(r.args()) for r in plan.fabric.routes if r.table}
    assert "203.0.113.80/32 via 10.0.1.20 dev ngw-nat-a onlink table 101" in routes      # private -> NAT
    assert "203.0.113.80/32 dev igw-updates table 100" in routes                         # public -> IGW
    assert "2001:db8:ff::80/128 dev igw-updates table 101" in routes                     # eigw, outbound
    assert "blackhole 2001:db8:ff::80/128 table 201" in routes                           # eigw, inbound replies
    assert not any(r.endswith("table 102") for r in routes)                              # data: no route at all


def test_nat_gateway_is_a_namespace_with_the_kernels_nat() -> None:
    plan = build_plan(load(doc()).topology)
    nat = plan.namespace("nat-a")
    assert nat.role == "natgw" and nat.name == "sgemu-three-tier-nat-nat-a"
    assert [a.cidr for a in nat.addresses] == ["10.0.1.20/24"]
    assert dict(nat.sysctls)["net.netfilter.nf_conntrack_tcp_timeout_established"] == "350"
    assert nat not in plan.nodes and nat in plan.namespaces
    texts = {rs.table: rs.text for rs in plan.rulesets if rs.namespace == nat.name}
    assert "-j SNAT --to-source 10.0.1.20:1024-65535" in texts["nat"]
    assert "-A INPUT -j DROP" in texts["filter"]
    fabric = {(rs.family, rs.table): rs.text for rs in plan.rulesets if not rs.namespace}
    assert "-A PREROUTING -d 198.51.100.50/32 -j DNAT --to-destination 10.0.1.20" in fabric[(4, "nat")]
    assert "-A POSTROUTING -s 10.0.1.20/32 -o igw-+ -j SNAT --to-source 198.51.100.50" in fabric[(4, "nat")]
    assert ("ngw-nat-a", "sgemu-three-tier-nat-nat-a", "eth0") in {(v.device, v.peer_ns, v.peer) for v in plan.veths}


def test_the_nat_gateways_eni_is_on_the_engines_queue_both_ways() -> None:
    plan = build_plan(load(doc()).topology)
    assert [(g.gateway, g.device, g.subnet, g.private_ip, g.public_ip) for g in plan.gateway_enis] == \
        [("nat-a", "ngw-nat-a", "public", "10.0.1.20", "198.51.100.50")]
    mangle = next(rs.text for rs in plan.rulesets if (rs.family, rs.table, rs.namespace) == (4, "mangle", ""))
    assert "-A PREROUTING -i ngw-+ -j NFQUEUE --queue-num 1" in mangle
    assert "-A POSTROUTING -o ngw-+ -j NFQUEUE --queue-num 1" in mangle
    # no fast path on it: every packet meets the NACL and the flow log
    assert not [line for line in mangle.splitlines() if "ngw-+" in line and "ACCEPT" in line]
    assert "eni nat-a on ngw-nat-a (NAT gateway: no security group; network ACL of public)" in plan.render()


def test_without_nat_gateways_or_enforcement_nothing_of_it_is_queued() -> None:
    data = doc()
    data["route_tables"][0]["routes"] = [{"destination": "0.0.0.0/0", "target": "igw"}]
    del data["nat_gateways"]
    assert not build_plan(load(data).topology).gateway_enis
    for plan in (build_plan(load(data).topology), build_plan(load(doc()).topology, enforce=False)):
        assert all("ngw-+ -j NFQUEUE" not in rs.text for rs in plan.rulesets)


def test_an_instance_without_a_public_ip_routes_public_ips_by_its_table() -> None:
    """AWS: a private instance reaches another's public IP through its NAT gateway (the destination
    sees the Elastic IP); through the IGW it cannot. The lab: such a hairpin is not translated at the
    fabric but routed by the source's table; labs without NAT gateways are as before."""
    plan = build_plan(load(doc()).topology)
    routes = {(r.table, r.dst): r for r in plan.fabric.routes if r.dst == "198.51.100.10/32"}
    private, data, main = 101, 102, 100
    assert (routes[(private, "198.51.100.10/32")].dev, routes[(private, "198.51.100.10/32")].via) == \
        ("ngw-nat-a", "10.0.1.20")
    assert (data, "198.51.100.10/32") not in routes and (main, "198.51.100.10/32") not in routes   # discarded
    nat = next(rs.text for rs in plan.rulesets if (rs.family, rs.table, rs.namespace) == (4, "nat", ""))
    lines = nat.splitlines()
    routed = lines.index("-A PREROUTING -i eni-+ -m connmark --mark 0x1/0x1 -j SGEMU-ROUTED")
    assert routed < lines.index("-A PREROUTING -d 198.51.100.10/32 -j DNAT --to-destination 10.0.1.10")
    assert {"-A SGEMU-ROUTED -s 10.0.2.10/32 -j ACCEPT", "-A SGEMU-ROUTED -s 10.0.3.10/32 -j ACCEPT"} <= set(lines)
    assert "-A SGEMU-ROUTED -s 10.0.1.10/32 -j ACCEPT" not in lines                  # alb hairpins as before
    assert "-A POSTROUTING -s 10.0.1.20/32 -m conntrack --ctstate DNAT -j SNAT --to-source 198.51.100.50" in lines
    mangle = next(rs.text for rs in plan.rulesets if (rs.family, rs.table, rs.namespace) == (4, "mangle", ""))
    assert "-A PREROUTING -i ngw-+ -m conntrack --ctstate NEW -j SGEMU-HAIRPIN" in mangle
    data_doc = doc()
    data_doc["route_tables"][0]["routes"] = [{"destination": "0.0.0.0/0", "target": "igw"}]
    del data_doc["nat_gateways"]
    without = build_plan(load(data_doc).topology)
    assert not [r for r in without.fabric.routes if r.dst == "198.51.100.10/32" and r.table]
    assert all("SGEMU-ROUTED" not in rs.text for rs in without.rulesets)


def test_explain_a_private_instance_to_a_public_ip_through_its_nat_gateway() -> None:
    from emulator.explain import explain
    data = doc()
    data["security_groups"][1]["egress"].append({"protocol": "tcp", "ports": 80, "cidr": "0.0.0.0/0"})
    topology = load(data).topology
    e = explain(topology, "app", "198.51.100.10", 80)
    assert e.outcome == "open"
    assert e.request[-1].packet.startswith("198.51.100.50:")      # alb sees nat-a's Elastic IP
    assert any("through NAT gateway nat-a" in n for n in e.notes)
    db = explain(topology, "db", "198.51.100.10", 80)               # data-rt: no route out
    assert db.outcome == "timeout" and "no public IP" in db.why
    del data["route_tables"], data["nat_gateways"]
    assert explain(load(data).topology, "app", "198.51.100.10", 80).outcome == "timeout"   # as before


def test_a_route_change_is_a_diff_of_host_routes() -> None:
    data = doc()
    before = build_plan(load(data).topology).fabric.routes
    changed = copy.deepcopy(data)
    changed["route_tables"][0]["routes"] = [{"destination": "203.0.113.80/32", "target": "blackhole"}]
    after = build_plan(load(changed).topology).fabric.routes
    assert route_changes(before, after) == [
        "route replace blackhole 203.0.113.80/32 table 101",
        "route del 198.51.100.10/32 via 10.0.1.20 dev ngw-nat-a onlink table 101",   # alb's public IP
        "route del 203.0.113.10/32 via 10.0.1.20 dev ngw-nat-a onlink table 101",
        "route del 2001:db8:ff::10/128 dev igw-you table 101",
        "route del 2001:db8:ff::80/128 dev igw-updates table 101",
        "route del blackhole 2001:db8:ff::10/128 table 201",
        "route del blackhole 2001:db8:ff::80/128 table 201"]
    assert route_changes(before, before) == []


# --- matrix, graph ---------------------------------------------------------------------------

def test_matrix_shows_internet_destinations_reached_through_nat() -> None:
    from emulator.matrix import grid, predict
    cells = {(c.src, c.dst): c for c in predict(load(doc()).topology, [443])}
    app_out = cells[("app", "updates")]
    assert (app_out.predicted, app_out.via) == ("refused", "nat-a")     # reached: the host's kernel answers RST
    assert app_out.reason.startswith("through NAT gateway nat-a: ")
    assert cells[("db", "updates")].predicted == "timeout" and cells[("db", "updates")].via == ""
    assert ("you", "updates") not in cells                               # internet to internet: no VPC path
    rows = {line.split()[0]: line.split()[1:] for line in grid(list(cells.values()), "predicted")[2:5]}
    assert rows["app"].count("N") == 2 and "N" not in rows["db"]
    data = doc()
    del data["route_tables"], data["nat_gateways"]
    assert all(c.dst not in ("you", "updates") for c in predict(load(data).topology, [443]))  # as before


def test_graph_labels_each_subnet_with_its_route_table() -> None:
    from emulator.graph import to_dot
    dot = to_dot(load(doc()).topology)
    assert "routes private-rt: 0.0.0.0/0 -> nat-a, ::/0 -> eigw" in dot
    assert "routes data-rt: local only" in dot
    assert '"nat-a" [shape=hexagon' in dot
    data = doc()
    del data["route_tables"], data["nat_gateways"]
    assert "routes " not in to_dot(load(data).topology)
