"""Every validation rule of the topology schema: one case each, with its exact path and message."""
from __future__ import annotations

import pytest

from emulator.topology import sg_id_for

from .test_topology_support import DELETE, SOURCE, assert_problem, base_doc, edit, problems_of

SG0, SG1 = "security_groups[0]", "security_groups[1]"
R0 = f"{SG0}.ingress[0]"
I0, I1 = "instances[0]", "instances[1]"
SIX_SGS = [{"name": f"sg{n}"} for n in range(6)]

C = pytest.param
CASES = [
    # top level
    C({"subnet": []}, "subnet", "unknown key (did you mean 'subnets'?)", id="top-unknown-key"),
    C({"vpc": DELETE}, "vpc", "is missing", id="top-vpc-missing"),
    C({"subnets": DELETE}, "subnets", "is missing", id="top-subnets-missing"),
    C({"name": "Web_Lab"}, "name", "'Web_Lab' is not a valid lab name; use 1-16 of a-z 0-9 and -", id="name-chars"),
    C({"name": "a" * 17}, "name", "is not a valid lab name", id="name-too-long"),
    C({"name": 7}, "name", "expected a string, got 7 (an integer)", id="name-type"),
    # vpc
    C({"vpc.cidr": "10.0.0.0/8"}, "vpc.cidr", "/8 is not a valid block size; AWS allows /16 to /28", id="vpc-too-big"),
    C({"vpc.cidr": "10.0.0.0/29"}, "vpc.cidr", "/29 is not a valid block size", id="vpc-too-small"),
    C({"vpc.cidr": "10.0.0.5/16"}, "vpc.cidr", "'10.0.0.5/16' has host bits set; write the network address: 10.0.0.0/16",
      id="vpc-host-bits"),
    C({"vpc.cidr": "10.0.0.0"}, "vpc.cidr", "has no prefix length", id="vpc-no-prefix"),
    C({"vpc.cidr": "fd00::/56"}, "vpc.cidr", "is an IPv6 CIDR", id="vpc-wrong-family"),
    C({"vpc.cidr": "banana/16"}, "vpc.cidr", "is not a valid IPv4 CIDR", id="vpc-garbage"),
    C({"vpc.cidr": "127.0.0.0/16"}, "vpc.cidr", "overlaps 127.0.0.0/8 (loopback)", id="vpc-loopback"),
    C({"vpc.cidrs": "x"}, "vpc.cidrs", "did you mean 'cidr'", id="vpc-unknown-key"),
    C({"vpc.ipv6_cidr": "fd00:10::/80"}, "vpc.ipv6_cidr", "smaller than a subnet's /64", id="vpc6-too-small"),
    C({"vpc.ipv6_cidr": "10.0.0.0/16"}, "vpc.ipv6_cidr", "is an IPv4 CIDR", id="vpc6-wrong-family"),
    C({"vpc.ipv6_cidr": "fe80::/56"}, "vpc.ipv6_cidr", "link-local", id="vpc6-link-local"),
    # subnets
    C({"subnets": []}, "subnets", "is empty", id="subnets-empty"),
    C({"subnets[1].name": "public"}, "subnets[1].name", "'public' is already the name of subnets[0]", id="subnet-dup-name"),
    C({"subnets[1].name": "Private_1"}, "subnets[1].name", "is not a valid subnet name", id="subnet-name-chars"),
    C({"subnets[1].cidr": "10.1.0.0/24"}, "subnets[1].cidr", "10.1.0.0/24 is not inside vpc.cidr 10.0.0.0/16",
      id="subnet-outside-vpc"),
    C({"subnets[1].cidr": "10.0.1.128/25"}, "subnets[1].cidr", "overlaps subnet 'public' (10.0.1.0/24)",
      id="subnet-overlap"),
    C({"subnets[1].cidr": "10.0.2.0/29"}, "subnets[1].cidr", "/29 is not a valid block size", id="subnet-too-small"),
    C({"subnets[1].cidr": "10.0.2.1/24"}, "subnets[1].cidr", "has host bits set", id="subnet-host-bits"),
    C({"subnets[1].ipv6_cidr": "fd00:10:0:1::/64"}, "subnets[1].ipv6_cidr",
      "already the ipv6_cidr of subnet 'public'", id="subnet6-dup"),
    C({"subnets[1].ipv6_cidr": "fd00:10:0:2::/80"}, "subnets[1].ipv6_cidr", "is not a /64 inside vpc.ipv6_cidr",
      id="subnet6-not-64"),
    C({"subnets[1].ipv6_cidr": "fd00:99::/64"}, "subnets[1].ipv6_cidr", "is not a /64 inside vpc.ipv6_cidr",
      id="subnet6-outside"),
    C({"vpc.ipv6_cidr": DELETE}, "subnets[0].ipv6_cidr", "the VPC is IPv4-only", id="subnet6-needs-dual-stack"),
    C({"subnets[1].cidr": DELETE}, "subnets[1].cidr", "is missing", id="subnet-cidr-missing"),
    # security groups
    C({f"{SG0}.name": "sg-web"}, f"{SG0}.name", "starts with sg-", id="sg-name-prefix"),
    C({f"{SG1}.name": "web-sg"}, f"{SG1}.name", "'web-sg' is already the name of security_groups[0]", id="sg-dup-name"),
    C({f"{SG0}.name": ""}, f"{SG0}.name", "is empty", id="sg-name-empty"),
    C({f"{SG0}.name": "x" * 256}, f"{SG0}.name", "is 256 characters long", id="sg-name-too-long"),
    C({f"{SG0}.name": "café"}, f"{SG0}.name", "characters AWS does not allow", id="sg-name-chars"),
    C({f"{SG0}.id": "sg-123"}, f"{SG0}.id", "'sg-123' is not a security group id", id="sg-id-format"),
    C({f"{SG0}.id": "sg-0123456789ABCDEF0"}, f"{SG0}.id", "is not a security group id", id="sg-id-uppercase"),
    C({f"{SG0}.id": "sg-0123abcd", f"{SG1}.id": "sg-0123abcd"}, f"{SG1}.id",
      "'sg-0123abcd' is already the id of security_groups[0]", id="sg-id-dup"),
    C({f"{SG0}.id": sg_id_for("default")}, f"{SG0}.id", "is the id of the VPC's default security group",
      id="sg-id-default-clash"),
    C({f"{SG0}.description": "x" * 256}, f"{SG0}.description", "is 256 characters long", id="sg-description-long"),
    C({f"{SG0}.description": "naïve"}, f"{SG0}.description", "characters AWS does not allow", id="sg-description-chars"),
    C({f"{SG0}.egres": []}, f"{SG0}.egres", "did you mean 'egress'", id="sg-unknown-key"),
    C({f"{SG0}.ingress": "all"}, f"{SG0}.ingress", "expected a list of rules", id="sg-ingress-not-list"),
    C({f"{SG0}.name": DELETE}, f"{SG0}.name", "is missing", id="sg-name-missing"),
    # rules
    C({f"{R0}.protocol": "tcpp"}, f"{R0}.protocol", "'tcpp' is not a protocol; use tcp, udp, icmp, icmpv6, all, -1",
      id="rule-protocol-name"),
    C({f"{R0}.protocol": 256}, f"{R0}.protocol", "256 (an integer) is not a protocol", id="rule-protocol-range"),
    C({f"{R0}.protocol": True}, f"{R0}.protocol", "is not a protocol", id="rule-protocol-bool"),
    C({f"{R0}.protocol": DELETE}, f"{R0}.protocol", "is missing", id="rule-protocol-missing"),
    C({f"{R0}.ports": "80-70"}, f"{R0}.ports",
      "'80-70' has low > high; use N or \"N-M\" with 0 <= N <= M <= 65535", id="rule-ports-reversed"),
    C({f"{R0}.ports": 70000}, f"{R0}.ports", "'70000' is out of range", id="rule-ports-range"),
    C({f"{R0}.ports": "http"}, f"{R0}.ports", "'http' is not a port or port range", id="rule-ports-garbage"),
    C({f"{R0}.ports": DELETE}, f"{R0}.ports", "tcp rules need ports", id="rule-ports-missing-tcp"),
    C({f"{R0}.protocol": "udp", f"{R0}.ports": DELETE}, f"{R0}.ports", "udp rules need ports",
      id="rule-ports-missing-udp"),
    C({f"{R0}.icmp_type": 8}, f"{R0}.icmp_type", "does not apply to protocol tcp", id="rule-icmp-on-tcp"),
    C({f"{R0}.protocol": "icmp", f"{R0}.ports": DELETE, f"{R0}.icmp_type": 256}, f"{R0}.icmp_type",
      "256 is out of range", id="rule-icmp-type-range"),
    C({f"{R0}.protocol": "icmpv6", f"{R0}.ports": DELETE, f"{R0}.icmp_code": -2}, f"{R0}.icmp_code",
      "-2 is out of range", id="rule-icmp-code-range"),
    C({f"{R0}.protocol": "icmp", f"{R0}.ports": DELETE, f"{R0}.icmp_code": 0}, f"{R0}.icmp_code",
      "0 needs a specific icmp_type; AWS requires icmp_code -1 when icmp_type is -1", id="rule-icmp-code-without-type"),
    C({f"{R0}.group": "app-sg"}, R0, "has both cidr and group", id="rule-both-peers"),
    C({f"{R0}.cidr": DELETE}, R0, "has neither cidr nor group", id="rule-no-peer"),
    C({f"{R0}.cidr": "203.0.113.10"}, f"{R0}.cidr", "has no prefix length", id="rule-cidr-no-prefix"),
    C({f"{R0}.cidr": "300.0.0.0/8"}, f"{R0}.cidr", "is not a valid CIDR", id="rule-cidr-garbage"),
    C({f"{R0}.cidr": DELETE, f"{R0}.group": "nope"}, f"{R0}.group",
      "no security group named or with id 'nope' in this file; use one of: app-sg, default, web-sg", id="rule-group-unknown"),
    C({f"{R0}.cidr": DELETE, f"{R0}.group": "123456789012/sg-0123abcd"}, f"{R0}.group",
      "another account or peered VPC; a lab has one VPC", id="rule-group-cross-account"),
    C({f"{R0}.cidr": DELETE, f"{R0}.group": "pl-12345678"}, f"{R0}.group", "is a prefix list", id="rule-prefix-list"),
    C({f"{SG0}.ingress[1]": {"protocol": "6", "ports": "80", "cidr": "0.0.0.0/0", "description": "again"}},
      f"{SG0}.ingress[1]", "InvalidPermission.Duplicate: the same permission as security_groups[0].ingress[0]",
      id="rule-duplicate"),
    C({f"{R0}.cidr": "10.0.0.0/16", f"{SG0}.ingress[1]": {"protocol": "tcp", "ports": 80, "cidr": "10.0.0.5/16"}},
      f"{SG0}.ingress[1]", "InvalidPermission.Duplicate", id="rule-duplicate-after-canonicalisation"),
    C({f"{R0}.description": "a<b"}, f"{R0}.description", "characters AWS does not allow", id="rule-description"),
    C({f"{R0}.port": 80}, f"{R0}.port", "did you mean 'ports'", id="rule-unknown-key"),
    C({f"{R0}": "tcp 80"}, R0, "expected a mapping", id="rule-not-mapping"),
    # instances
    C({f"{I0}.name": "Web"}, f"{I0}.name", "'Web' is not a valid name; use 1-32 of a-z 0-9 and -", id="instance-name-case"),
    C({f"{I0}.name": "-web"}, f"{I0}.name", "is not a valid name", id="instance-name-start"),
    C({f"{I0}.name": "w" * 33}, f"{I0}.name", "is not a valid name", id="instance-name-long"),
    C({f"{I0}.name": "vpc"}, f"{I0}.name", "reserved for the lab's VPC router", id="instance-name-vpc"),
    # strings meant to reach a shell, `ip -batch` or iptables never get past validation
    C({"name": "lab;reboot"}, "name", "is not a valid lab name", id="name-shell"),
    C({f"{I0}.name": "web\nlink del eth0"}, f"{I0}.name", "is not a valid name", id="instance-name-newline"),
    C({f"{I0}.name": "$(id)"}, f"{I0}.name", "is not a valid name", id="instance-name-subst"),
    C({"internet[0].name": "you `id`"}, "internet[0].name", "is not a valid name", id="host-name-backtick"),
    C({f"{I0}.private_ip": "10.0.1.10 dev lo"}, f"{I0}.private_ip", "is not an IPv4 address", id="private-ip-words"),
    C({f"{I1}.name": "web"}, f"{I1}.name", "'web' is already the name of instances[0]", id="instance-dup-name"),
    C({"internet[0].name": "web"}, "internet[0].name", "already the name of instances[0]", id="host-name-clash"),
    C({f"{I0}.subnet": "nope"}, f"{I0}.subnet", "no subnet named 'nope'; use one of: public, private",
      id="instance-subnet-unknown"),
    C({f"{I0}.subnet": DELETE}, f"{I0}.subnet", "is missing", id="instance-subnet-missing"),
    C({f"{I0}.private_ip": "10.0.2.5"}, f"{I0}.private_ip", "is not inside subnet 'public' (10.0.1.0/24)",
      id="private-ip-outside"),
    *[C({f"{I0}.private_ip": ip}, f"{I0}.private_ip", "is reserved by AWS", id=f"private-ip-reserved-{ip}")
      for ip in ("10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255")],
    C({f"{I0}.private_ip": "10.0.1.9", f"{I1}.subnet": "public", f"{I1}.private_ip": "10.0.1.9"}, f"{I1}.private_ip",
      "10.0.1.9 is already used by instances[0].private_ip", id="private-ip-dup"),
    C({f"{I0}.private_ip": "fd00::1"}, f"{I0}.private_ip", "'fd00::1' is not an IPv4 address", id="private-ip-family"),
    C({f"{I1}.ipv6": "fd00:10:0:2::10"}, f"{I1}.ipv6", "subnet 'private' has no ipv6_cidr", id="ipv6-needs-subnet6"),
    C({f"{I0}.ipv6": "fd00:10:0:2::10"}, f"{I0}.ipv6", "is not inside subnet 'public'", id="ipv6-outside"),
    *[C({f"{I0}.ipv6": ip}, f"{I0}.ipv6", "is reserved by AWS", id=f"ipv6-reserved-{ip}")
      for ip in ("fd00:10:0:1::", "fd00:10:0:1::3", "fd00:10:0:1:ffff:ffff:ffff:ffff")],
    C({f"{I0}.ipv6": "fd00:10:0:1::9", f"{I1}.subnet": "public", f"{I1}.ipv6": "fd00:10:0:1::9"}, f"{I1}.ipv6",
      "already used by instances[0].ipv6", id="ipv6-dup"),
    C({f"{I0}.public_ip": "10.0.5.5"}, f"{I0}.public_ip", "10.0.5.5 is inside the VPC (10.0.0.0/16)",
      id="public-ip-in-vpc"),
    C({f"{I0}.public_ip": "224.0.0.1"}, f"{I0}.public_ip", "is a multicast address", id="public-ip-multicast"),
    C({f"{I0}.public_ip": "127.0.0.1"}, f"{I0}.public_ip", "is a loopback address", id="public-ip-loopback"),
    C({f"{I0}.public_ip": "0.0.0.0"}, f"{I0}.public_ip", "is a unspecified address", id="public-ip-unspecified"),
    C({f"{I1}.public_ip": "198.51.100.10"}, f"{I1}.public_ip", "already used by instances[0].public_ip",
      id="public-ip-dup"),
    C({"internet[0].ip": "198.51.100.10"}, "internet[0].ip", "already used by instances[0].public_ip",
      id="public-ip-vs-host"),
    C({f"{I0}.security_groups": ["nope"]}, f"{I0}.security_groups[0]", "no security group named or with id 'nope'",
      id="instance-sg-unknown"),
    C({f"{I0}.security_groups": ["web-sg", sg_id_for("web-sg")]}, f"{I0}.security_groups[1]", "is listed twice",
      id="instance-sg-dup"),
    C({f"{I0}.security_groups": []}, f"{I0}.security_groups", "is empty", id="instance-sg-empty"),
    C({"security_groups": SIX_SGS, f"{I0}.security_groups": [g["name"] for g in SIX_SGS], f"{I1}.security_groups": DELETE},
      f"{I0}.security_groups", "6 security groups exceed the quota of 5 per network interface; "
      "remove some or raise options.quotas.sgs_per_eni", id="instance-sg-quota"),
    C({f"{I0}.services[0].type": "gopher"}, f"{I0}.services[0].type",
      "'gopher' is not a service type; use one of: http, https, tcp", id="service-type"),
    C({f"{I0}.services[0].port": DELETE}, f"{I0}.services[0].port", "is missing; http services need a port",
      id="service-port-missing"),
    C({f"{I0}.services[0].port": 0}, f"{I0}.services[0].port", "0 is out of range", id="service-port-range"),
    C({f"{I0}.services[0].type": "http-proxy"}, f"{I0}.services[0].to", "is missing", id="proxy-to-missing"),
    C({f"{I0}.services[0]": {"type": "http-proxy", "port": 80, "to": "nobody:80"}}, f"{I0}.services[0].to",
      "no instance named 'nobody'", id="proxy-to-unknown"),
    C({f"{I0}.services[0]": {"type": "http-proxy", "port": 80, "to": "app"}}, f"{I0}.services[0].to",
      "'app' is not instance:port", id="proxy-to-format"),
    C({f"{I0}.services[0].to": "app:8080"}, f"{I0}.services[0].to", "does not apply to http", id="to-on-http"),
    C({f"{I0}.services[1]": {"type": "tcp", "port": 80}}, f"{I0}.services[1]",
      "tcp port 80 is already used by instances[0].services[0]", id="service-port-clash"),
    C({f"{I0}.services[1]": {"type": "ssh"}, f"{I0}.services[2]": {"type": "tcp", "port": 22}}, f"{I0}.services[2]",
      "tcp port 22 is already used by instances[0].services[1]", id="service-ssh-default-port-clash"),
    C({f"{I0}.services[1]": {"type": "ftp", "passive_ports": "79-90"}}, f"{I0}.services[1].passive_ports",
      "'79-90' is out of range or has low > high; use \"N-M\" with 1024 <= N <= M <= 65535", id="passive-privileged"),
    C({f"{I0}.services[1]": {"type": "ftp", "passive_ports": "50100-50000"}}, f"{I0}.services[1].passive_ports",
      "low > high", id="passive-reversed"),
    C({f"{I0}.services[1]": {"type": "ftp", "passive_ports": 50000}}, f"{I0}.services[1].passive_ports",
      "50000 (an integer) is not a port range", id="passive-not-a-range"),
    C({f"{I0}.services[1]": {"type": "ftp", "passive_ports": "50000-70000"}}, f"{I0}.services[1].passive_ports",
      "out of range", id="passive-above-65535"),
    C({f"{I0}.services[1]": {"type": "tcp", "port": 50050, "passive_ports": "50000-50100"}},
      f"{I0}.services[1].passive_ports", "does not apply to tcp services; only ftp has passive ports",
      id="passive-on-tcp"),
    C({f"{I0}.services[1]": {"type": "ftp"}, f"{I0}.services[2]": {"type": "tcp", "port": 50050}},
      f"{I0}.services[2]", "tcp port 50050 is already used by instances[0].services[1].passive_ports "
      "(passive_ports 50000-50100)", id="port-inside-default-passive-range"),
    C({f"{I0}.services[1]": {"type": "tcp", "port": 2100},
       f"{I0}.services[2]": {"type": "ftp", "passive_ports": "2000-3000"}},
      f"{I0}.services[2].passive_ports", "2000-3000 include tcp port 2100, already used by instances[0].services[1]",
      id="passive-range-over-a-port"),
    C({f"{I0}.services[1]": {"type": "ftp", "passive_ports": "2000-2100"},
       f"{I0}.services[2]": {"type": "ftp", "port": 2121, "passive_ports": "2050-2200"}},
      f"{I0}.services[2].passive_ports", "2050-2200 include tcp port 2050, already used by "
      "instances[0].services[1].passive_ports (passive_ports 2000-2100)", id="passive-ranges-overlap"),
    C({f"{I0}.services[1]": {"type": "ftp", "port": 2100, "passive_ports": "2000-2200"}},
      f"{I0}.services[1].passive_ports", "2000-2200 include tcp port 2100, already used by instances[0].services[1]",
      id="passive-range-over-its-own-port"),
    C({f"{I0}.services[1]": {"type": "https"}, f"{I0}.services[2]": {"type": "tcp", "port": 443}}, f"{I0}.services[2]",
      "tcp port 443 is already used by instances[0].services[1]", id="https-default-port-clash"),
    C({f"{I0}.services[1]": {"type": "rdp"}, f"{I0}.services[2]": {"type": "http", "port": 3389}}, f"{I0}.services[2]",
      "tcp port 3389 is already used by instances[0].services[1]", id="rdp-default-port-clash"),
    C({f"{I0}.conntrack": {"tcp_established": 59}}, f"{I0}.conntrack.tcp_established",
      "59 is out of range; use an integer of seconds from 60 to 432000", id="conntrack-tcp-low"),
    C({f"{I0}.conntrack": {"tcp_established": 432001}}, f"{I0}.conntrack.tcp_established", "out of range",
      id="conntrack-tcp-high"),
    C({f"{I0}.conntrack": {"udp": 61}}, f"{I0}.conntrack.udp", "from 30 to 60", id="conntrack-udp"),
    C({f"{I0}.conntrack": {"udp_stream": 59}}, f"{I0}.conntrack.udp_stream", "from 60 to 180", id="conntrack-udp-stream"),
    C({f"{I0}.conntrack": {"udp_stream": "90"}}, f"{I0}.conntrack.udp_stream", "expected an integer",
      id="conntrack-type"),
    C({f"{I0}.conntrack": {"icmp": 30}}, f"{I0}.conntrack.icmp",
      "unknown key; allowed keys: tcp_established, udp, udp_stream", id="conntrack-unknown"),
    # internet hosts
    C({"internet[0].ip": DELETE, "internet[0].ipv6": DELETE}, "internet[0]", "has neither ip nor ipv6",
      id="host-no-address"),
    C({"internet[0].ip": "10.0.0.7"}, "internet[0].ip", "is inside the VPC", id="host-ip-in-vpc"),
    C({"internet[0].ipv6": "fd00:10:0:5::1"}, "internet[0].ipv6", "is inside the VPC (fd00:10::/56)",
      id="host-ipv6-in-vpc"),
    C({"internet[0].ip": "fd00::1"}, "internet[0].ip", "is not an IPv4 address", id="host-ip-family"),
    C({"internet[1]": {"name": "them", "ip": "203.0.113.10"}}, "internet[1].ip", "already used by internet[0].ip",
      id="host-ip-dup"),
    C({"internet[0].ip": "169.254.1.1"}, "internet[0].ip", "is a link-local address", id="host-ip-link-local"),
    # options
    C({"options": {"related_icmp": "yes"}}, "options.related_icmp", "expected true or false", id="option-bool"),
    C({"options": {"conntrack_allowance": 0}}, "options.conntrack_allowance", "0 is out of range", id="option-allowance"),
    C({"options": {"timeouts": {"tcp_syn_sent": 0}}}, "options.timeouts.tcp_syn_sent", "0 is out of range",
      id="option-timeout-range"),
    C({"options": {"timeouts": {"tcp_syn": 5}}}, "options.timeouts.tcp_syn", "did you mean", id="option-timeout-key"),
    C({"options": {"quotas": {"rules_per_sg": 1001}}}, "options.quotas.rules_per_sg", "from 1 to 1000",
      id="option-rules-quota"),
    C({"options": {"quotas": {"sgs_per_eni": 17}}}, "options.quotas.sgs_per_eni", "from 1 to 16", id="option-sgs-quota"),
    C({"options": {"quotas": {"rules_per_sg": 100, "sgs_per_eni": 16}}}, "options.quotas",
      "rules_per_sg x sgs_per_eni = 1600; AWS caps the product at 1000", id="option-quota-product"),
    C({"options": {"related_icmps": True}}, "options.related_icmps", "did you mean 'related_icmp'",
      id="option-unknown"),
]


@pytest.mark.parametrize("edits,path,fragment", CASES)
def test_rule(edits, path, fragment):
    assert_problem(edit(base_doc(), edits), path, fragment)


def test_the_base_document_is_valid():
    from .test_topology_support import load_doc
    assert load_doc(base_doc()).warnings == ()


@pytest.mark.parametrize("doc,path,fragment", [
    (None, "(file)", "is empty"),
    ([1, 2], "(file)", "expected a mapping, got a list"),
    ("vpc: 10.0.0.0/16", "(file)", "expected a mapping"),
])
def test_document_shape(doc, path, fragment):
    assert_problem(doc, path, fragment)


def test_every_problem_is_reported_at_once():
    doc = edit(base_doc(), {
        "name": "Bad Name",
        "subnets[1].cidr": "10.9.0.0/24",
        f"{R0}.ports": "80-70",
        f"{SG1}.ingress[0].group": "nope",
        f"{I0}.public_ip": "10.0.0.9",
        "internet[0].ip": "nonsense",
        "options": {"related_icmp": 1},
    })
    found = problems_of(doc)
    expected = ["name", "subnets[1].cidr", f"{R0}.ports", f"{SG1}.ingress[0].group", f"{I0}.public_ip",
                "internet[0].ip", "options.related_icmp"]
    for path in expected:
        assert any(p.startswith(f"{SOURCE}: {path}: ") for p in found), (path, found)
    assert len(found) == len(expected), found
