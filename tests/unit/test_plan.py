"""LabPlan: names, interface limits, addresses, routes, queues and hook rulesets (no root)."""
from __future__ import annotations

import dataclasses
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

import pytest

from emulator.model import (
    PROTO_ALL,
    PROTO_TCP,
    Direction,
    Instance,
    InternetHost,
    PortRange,
    Rule,
    SecurityGroup,
    Subnet,
    Topology,
    Vpc,
)
from emulator.plan import IFNAMSIZ, LabPlan, build_plan, device_names
from emulator.topology import parse

EVERYWHERE = IPv4Network("0.0.0.0/0")


def topo(name: str = "three-tier", instances: tuple[Instance, ...] | None = None,
         internet: tuple[InternetHost, ...] | None = None) -> Topology:
    web = SecurityGroup("web-sg", "sg-web", ingress=(
        Rule(Direction.INGRESS, PROTO_TCP, PortRange(80, 80), cidr=EVERYWHERE),),
        egress=(Rule(Direction.EGRESS, PROTO_ALL, cidr=EVERYWHERE),))
    if instances is None:
        instances = (
            Instance("alb", "public", IPv4Address("10.0.1.10"), ("sg-web",),
                     ipv6=IPv6Address("fd00:10:0:1::10"), public_ip=IPv4Address("198.51.100.10")),
            Instance("app", "private", IPv4Address("10.0.2.10"), ("sg-web",)),
            Instance("db", "private", IPv4Address("10.0.2.20"), ("sg-web",)),
        )
    if internet is None:
        internet = (InternetHost("you", IPv4Address("203.0.113.10"), IPv6Address("2001:db8:ff::10")),)
    return Topology(
        name=name,
        vpc=Vpc(IPv4Network("10.0.0.0/16"), IPv6Network("fd00:10::/56")),
        subnets=(Subnet("public", IPv4Network("10.0.1.0/24"), IPv6Network("fd00:10:0:1::/64")),
                 Subnet("private", IPv4Network("10.0.2.0/24"))),
        security_groups=(web,), instances=instances, internet=internet)


def rules(plan: LabPlan, family: int, table: str) -> list[str]:
    """Parse a restore text back: check its framing and return the -A lines."""
    text = next(r.text for r in plan.rulesets if (r.family, r.table) == (family, table))
    lines = text.strip().splitlines()
    assert lines[0] == f"*{table}" and lines[-1] == "COMMIT"
    assert all(re.fullmatch(r":[A-Z]+ ACCEPT \[0:0\]|:SGEMU-[A-Z-]+ - \[0:0\]", line)
               for line in lines[1:] if line.startswith(":"))
    return [line for line in lines if line.startswith("-A ")]


def test_namespace_names_follow_the_lab_and_node_names() -> None:
    plan = build_plan(topo())
    assert plan.fabric.name == "sgemu-three-tier-vpc"
    assert [ns.name for ns in plan.nodes] == ["sgemu-three-tier-alb", "sgemu-three-tier-app",
                                               "sgemu-three-tier-db", "sgemu-three-tier-you"]
    assert [ns.role for ns in plan.namespaces] == ["fabric", "instance", "instance", "instance", "internet"]
    assert plan.marker == "sgemu:three-tier"


def test_enis_get_their_own_device() -> None:
    plan = build_plan(topo())
    assert [(e.instance, e.device) for e in plan.enis] == [("alb", "eni-alb"), ("app", "eni-app"), ("db", "eni-db")]
    assert [(v.device, v.peer_ns, v.peer) for v in plan.veths][-1] == ("igw-you", "sgemu-three-tier-you", "eth0")


def test_long_instance_names_are_cut_and_disambiguated() -> None:
    names = ["frontend-server-a", "frontend-server-b", "frontend-serve", "x"]
    devs = device_names("eni-", names, set())
    assert all(len(d) <= IFNAMSIZ for d in devs.values())
    assert len(set(devs.values())) == len(names)
    assert devs["x"] == "eni-x"
    assert devs["frontend-server-a"] == "eni-frontend-se"
    assert devs["frontend-server-b"] == "eni-frontend-s1"
    assert devs["frontend-serve"] == "eni-frontend-s2"


def test_long_names_in_a_plan_stay_unique_across_enis_and_igw_links() -> None:
    subnet = "public"
    instances = tuple(Instance(f"worker-node-{n}", subnet, IPv4Address(f"10.0.1.{10 + n}"), ("sg-web",))
                      for n in range(12))
    plan = build_plan(topo(instances=instances))
    devices = [v.device for v in plan.veths]
    assert len(set(devices)) == len(devices) and all(len(d) <= IFNAMSIZ for d in devices)
    assert set(plan.fabric.devices) == {*devices, "lo"}


def test_instance_addresses_and_routes() -> None:
    plan = build_plan(topo())
    alb = plan.namespace("alb")
    assert [(a.cidr, a.dev, a.nodad) for a in alb.addresses] == [
        ("10.0.1.10/24", "eth0", False), ("fd00:10:0:1::10/128", "eth0", True)]
    assert [r.args() for r in alb.routes] == [
        ["default", "via", "10.0.1.1", "dev", "eth0"],
        ["fd00:10:0:1::/64", "via", "fe80::1", "dev", "eth0"],
        ["default", "via", "fe80::1", "dev", "eth0"]]
    app = plan.namespace("app")
    assert [a.cidr for a in app.addresses] == ["10.0.2.10/24"]
    assert [r.args() for r in app.routes] == [["default", "via", "10.0.2.1", "dev", "eth0"]]


def test_fabric_is_a_router_with_proxy_arp_and_host_routes() -> None:
    fabric = build_plan(topo()).fabric
    cidrs = {(a.dev, a.cidr) for a in fabric.addresses}
    assert {("eni-alb", "10.0.1.1/32"), ("eni-alb", "fe80::1/64"), ("eni-app", "10.0.2.1/32"),
            ("eni-db", "10.0.2.1/32"), ("igw-you", "169.254.0.1/32"), ("igw-you", "fe80::1/64"),
            ("lo", "10.0.0.2/32"), ("lo", "169.254.169.253/32"), ("lo", "fd00:ec2::253/128")} == cidrs
    routes = {tuple(r.args()) for r in fabric.routes}
    assert ("10.0.1.10/32", "dev", "eni-alb") in routes
    assert ("fd00:10:0:1::10/128", "dev", "eni-alb") in routes
    assert ("203.0.113.10/32", "dev", "igw-you") in routes
    assert ("2001:db8:ff::10/128", "dev", "igw-you") in routes
    sysctls = dict(fabric.sysctls)
    assert sysctls["net.ipv4.ip_forward"] == "1" and sysctls["net.ipv6.conf.all.forwarding"] == "1"
    assert all(sysctls[f"net.ipv4.conf.{d}.proxy_arp"] == "1" for d in ("eni-alb", "eni-app", "eni-db"))
    # Forwarding is a fabric matter only: instances and internet hosts stay plain hosts.
    assert all(not ns.sysctls for ns in build_plan(topo()).nodes)


def test_internet_host_sits_behind_a_link_local_gateway() -> None:
    you = build_plan(topo()).namespace("you")
    assert [a.cidr for a in you.addresses] == ["203.0.113.10/32", "2001:db8:ff::10/128"]
    assert [r.args() for r in you.routes] == [
        ["169.254.0.1/32", "dev", "eth0"], ["default", "via", "169.254.0.1", "dev", "eth0"],
        ["default", "via", "fe80::1", "dev", "eth0"]]


def test_names_come_from_the_lab_dns_and_hosts_files_name_only_the_node_itself() -> None:
    plan = build_plan(topo())
    app, you = plan.namespace("app"), plan.namespace("you")
    assert app.hosts.splitlines() == ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost", "10.0.2.10\tapp"]
    assert app.nameservers == ("10.0.0.2",)                    # app has no IPv6
    assert plan.namespace("alb").nameservers == ("10.0.0.2", "fd00:ec2::253")
    assert you.nameservers == ("169.254.0.1",)
    assert you.hosts.splitlines()[2:] == ["203.0.113.10\tyou", "2001:db8:ff::10\tyou"]
    assert "nameserver 10.0.0.2" in plan.render()


def test_an_ipv6_only_internet_host_has_no_resolver_and_keeps_every_name_in_its_hosts_file() -> None:
    plan = build_plan(topo(internet=(InternetHost("six", ipv6=IPv6Address("2001:db8:ff::6")),)))
    six = plan.namespace("six")
    assert six.nameservers == ()
    assert "fd00:10:0:1::10\talb" in six.hosts.splitlines()


def test_the_internet_may_ask_only_its_dns_at_the_gateway_of_the_fabric() -> None:
    filter4 = next(r.text for r in build_plan(topo()).rulesets if r.table == "filter").splitlines()
    accept = [i for i, line in enumerate(filter4) if "-d 169.254.0.1/32" in line and "--dport 53 -j ACCEPT" in line]
    drop = filter4.index("-A INPUT -i igw-+ -j DROP")
    assert len(accept) == 2 and max(accept) < drop


def test_hosts_views_show_private_addresses_inside_and_public_ones_outside() -> None:
    plan = build_plan(topo())
    assert plan.address("you", "alb") == "198.51.100.10"
    assert plan.address("app", "alb") == "10.0.1.10"
    assert plan.address("you", "alb", 6) == "fd00:10:0:1::10"
    assert plan.address("you", "app") is None


def test_one_queue_hook_per_direction_for_every_eni_without_bypass() -> None:
    plan = build_plan(topo())
    mangle = rules(plan, 4, "mangle")
    assert [r for r in mangle if "NFQUEUE" in r] == ["-A PREROUTING -i eni-+ -j NFQUEUE --queue-num 1",
                                                     "-A POSTROUTING -o eni-+ -j NFQUEUE --queue-num 1"]
    assert not any("bypass" in r for rs in plan.rulesets for r in rs.text.splitlines())
    # Infrastructure exclusions come before every queue rule.
    first_queue = next(i for i, r in enumerate(mangle) if "NFQUEUE" in r)
    assert any("--dst-type LOCAL -j RETURN" in r for r in mangle[:first_queue])


def test_ipv6_hooks_skip_neighbour_discovery_and_link_local_first() -> None:
    mangle6 = rules(build_plan(topo()), 6, "mangle")
    pre = [r for r in mangle6 if r.startswith("-A PREROUTING")]
    first_queue = next(i for i, r in enumerate(pre) if "NFQUEUE" in r)
    for icmp_type in (133, 134, 135, 136, 137):
        assert any(f"--icmpv6-type {icmp_type} -j RETURN" in r for r in pre[:first_queue])
    assert "-A PREROUTING -s fe80::/10 -j RETURN" in pre[:first_queue]
    assert sum("NFQUEUE" in r for r in mangle6) == 2


def test_public_ips_are_one_to_one_nat_and_private_ones_unreachable_from_outside() -> None:
    plan = build_plan(topo())
    nat = rules(plan, 4, "nat")
    assert "-A PREROUTING -d 198.51.100.10/32 -j DNAT --to-destination 10.0.1.10" in nat
    assert "-A POSTROUTING -s 10.0.1.10/32 -o igw-+ -j SNAT --to-source 198.51.100.10" in nat
    assert not any("10.0.2." in r for r in nat)
    filt = rules(plan, 4, "filter")
    assert filt.index("-A FORWARD -i igw-+ -m conntrack --ctstate DNAT,SNAT -j ACCEPT") < \
        filt.index("-A FORWARD -i igw-+ -o eni-+ -j DROP")
    assert filt.index("-A FORWARD -i igw-+ -o eni-+ -j DROP") < filt.index("-A FORWARD -o igw-+ -j SGEMU-TO-IGW")
    assert filt.index("-A SGEMU-TO-IGW -s 10.0.1.10/32 -j ACCEPT") < filt.index("-A SGEMU-TO-IGW -i eni-+ -j DROP")
    # app and db have no public IP: no hairpin through public addresses either.
    assert "-A FORWARD -m conntrack --ctstate DNAT -j SGEMU-DNAT" in filt
    assert "-A SGEMU-DNAT -s 10.0.2.10/32 -j DROP" in filt and "-A SGEMU-DNAT -s 10.0.1.10/32 -j DROP" not in filt


def test_hairpin_connections_are_marked_for_the_engine() -> None:
    mangle = rules(build_plan(topo()), 4, "mangle")
    assert "-A PREROUTING -i eni-+ -m conntrack --ctstate NEW -j SGEMU-HAIRPIN" in mangle
    assert "-A SGEMU-HAIRPIN -d 198.51.100.10/32 -j CONNMARK --set-xmark 0x1/0x1" in mangle
    mark = mangle.index("-A POSTROUTING -m connmark --mark 0x1/0x1 -j MARK --set-xmark 0x1/0x1")
    assert mark < next(i for i, r in enumerate(mangle) if r.startswith("-A POSTROUTING") and "NFQUEUE" in r)


def test_every_address_in_the_rulesets_is_well_formed() -> None:
    for rs in build_plan(topo()).rulesets:
        for token in re.findall(r"-[sd] (\S+)", rs.text):
            assert ip_network(token).version == rs.family


def test_two_labs_with_the_same_address_plan_differ_only_in_names() -> None:
    a, b = build_plan(topo("lab-a")), build_plan(topo("lab-b"))
    assert a.rulesets == b.rulesets and a.enis == b.enis and a.views == b.views
    assert {ns.name for ns in a.namespaces}.isdisjoint(ns.name for ns in b.namespaces)

    def strip(ns):
        return dataclasses.replace(ns, name=ns.name.replace("lab-a", "lab-b"))
    assert tuple(strip(ns) for ns in a.namespaces) == b.namespaces


def test_render_mentions_every_namespace_and_queue() -> None:
    plan = build_plan(topo())
    text = plan.render()
    assert all(ns.name in text for ns in plan.namespaces)
    assert "queue 1: every ENI (3), told apart by interface" in text and "eni db on eni-db" in text and "*mangle" in text


def test_nodes_without_ipv6_get_no_ipv6_names() -> None:
    plan = build_plan(topo(internet=(InternetHost("stranger", IPv4Address("198.51.100.7")),)))
    assert plan.address("stranger", "alb", 6) is None
    assert "fd00:10:0:1::10" not in plan.namespace("stranger").hosts
    assert "fd00:10:0:1::10\talb" in plan.namespace("alb").hosts


def test_fabric_blackholes_every_unknown_destination() -> None:
    """Traffic to an address no node has times out (silent discard), never 'network unreachable'."""
    fabric = build_plan(topo()).fabric
    holes = [r for r in fabric.routes if r.blackhole]
    assert {r.dst for r in holes} == {"0.0.0.0/0", "::/0"}
    assert [r.args() for r in holes] == [["blackhole", "0.0.0.0/0"], ["blackhole", "::/0"]]
    assert all(r.dev is not None for r in fabric.routes if not r.blackhole)


def _fleet(count: int, public: bool) -> Topology:
    return parse({"name": "fleet", "vpc": {"cidr": "10.0.0.0/16"}, "subnets": [{"name": "s", "cidr": "10.0.0.0/20"}],
                  "instances": [{"name": f"n{i}", "subnet": "s",
                                 **({"public_ip": f"198.51.100.{i}"} if public else {})} for i in range(1, count + 1)],
                  "internet": [{"name": "you", "ip": "203.0.113.10"}]}, "fleet.yaml").topology


@pytest.mark.parametrize("public", [False, True])
def test_the_rules_every_packet_walks_do_not_grow_with_instances(public: bool) -> None:
    """Built-in chains hold the same rules for 3 instances as for 200: what grows sits in our
    own chains, which only a connection's first packet, or traffic to the internet, reaches."""
    def walked(count: int) -> dict[tuple[int, str], int]:
        plan = build_plan(_fleet(count, public))
        return {(rs.family, rs.table): sum(1 for r in rules(plan, rs.family, rs.table)
                                           if not r.startswith("-A SGEMU-")) for rs in plan.rulesets
                if rs.table != "nat"}       # nat: only the first packet of a connection
    assert walked(3) == walked(200)
