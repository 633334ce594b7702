"""Network ACLs and prefix lists on real namespaces with real clients: the missing ephemeral range
(SG allows, the client times out; the SYN arrives, the SYN-ACK dies, as the flow logs show), IPv6
needing its own rules, a deny before an allow, the same subnet never filtered, a deny cutting an open
connection on the engine path and on the kernel fast path, and prefix lists changed live."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from emulator.control.client import request
from emulator.lab import lifecycle as labs
from emulator.lab import state
from emulator.testing.probe import probe
from emulator.topology import parse

from .session import LINE_CLIENT, Session

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"
PORT = 7000                     # the `tcp` service: a banner line, then echoes lines


def sgemu(lab: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    words = 2 if args[0] in ("nacl", "prefix-list", "sg") else 1
    result = subprocess.run([sys.executable, "-m", "emulator.cli", *args[:words], "--lab", lab, *args[words:]],
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, f"sgemu {' '.join(args)}: {result.stderr}"
    return result


@pytest.fixture
def ephemeral() -> Iterator[str]:
    data = yaml.safe_load((TOPOLOGIES / "nacl-ephemeral.yaml").read_text())
    data["name"] = "nacl-ephemeral"
    labs.up(parse(data, "nacl-ephemeral.yaml").topology)
    try:
        yield "nacl-ephemeral"
    finally:
        labs.down("nacl-ephemeral")


def test_the_missing_ephemeral_range_times_out_and_the_flow_logs_show_why(ephemeral: str) -> None:
    lab = ephemeral
    assert probe(lab, "you", "web", 80) == "timeout"          # SG and NACL inbound allow it
    assert probe(lab, "web", "app", 8080) == "open"           # replies come back in on rule 120
    time.sleep(0.5)
    logs = request(lab, "flowlogs")
    records = [*logs["records"], *logs["current"]]          # an interval may have closed meanwhile
    web = [r for r in records if r["eni"] == "web" and "203.0.113.10" in (r["srcaddr"], r["dstaddr"])]
    syn = [r for r in web if r["flow-direction"] == "ingress" and r["dstport"] == "80"]
    syn_ack = [r for r in web if r["flow-direction"] == "egress" and r["srcport"] == "80"]
    assert syn and all(r["action"] == "ACCEPT" and r["tcp-flags"] == "2" for r in syn), web
    assert syn_ack and all(r["action"] == "REJECT" and r["reject-reason"] == "SUBNET_ACL_RESTRICTION"
                           and int(r["tcp-flags"]) & 18 == 18 for r in syn_ack), web
    out = sgemu(lab, "nacl", "create-entry", "public-nacl", "--egress", "--rule-number", "120",
                "--rule-action", "allow", "--protocol", "tcp", "--port", "1024-65535", "--cidr", "0.0.0.0/0")
    assert "rule 120 allow tcp 1024-65535 to 0.0.0.0/0: created" in out.stdout
    assert probe(lab, "you", "web", 80) == "open"
    assert probe(lab, "you", "web", 80, ipv6=True) == "timeout"    # IPv4 rules never match IPv6
    sgemu(lab, "nacl", "create-entry", "public-nacl", "--egress", "--rule-number", "121", "--rule-action", "allow",
          "--protocol", "tcp", "--port", "1024-65535", "--cidr", "::/0")
    assert probe(lab, "you", "web", 80, ipv6=True) == "open"
    matrix = json.loads(sgemu(lab, "matrix", "--ports", "22,80,8080", "--json").stdout)
    assert matrix["mismatches"] == [], matrix["mismatches"]        # static and live agree, NACLs included
    again = sgemu(lab, "nacl", "create-entry", "public-nacl", "--egress", "--rule-number", "120",
                  "--rule-action", "allow", "--protocol", "tcp", "--port", "1-2", "--cidr", "0.0.0.0/0", check=False)
    assert again.returncode == 1 and again.stderr.startswith("sgemu: NetworkAclEntryAlreadyExists: ")
    exported = yaml.safe_load(sgemu(lab, "export", "--format", "yaml").stdout)
    public = next(n for n in exported["network_acls"] if n["name"] == "public-nacl")
    assert [e["rule"] for e in public["egress"]] == [100, 120, 121]


def topology(name: str, offload: bool = True):
    """client, client2 in public; server, server2 in private. SGs are tracked (no /0 both ways).
    private-nacl: inbound deny all from the private subnet itself (80, never applies: same subnet),
    deny client2 (90), then allow all (100); outbound allow all."""
    return parse({
        "name": name, "vpc": {"cidr": "10.0.0.0/16"},
        "subnets": [{"name": "public", "cidr": "10.0.1.0/24"}, {"name": "private", "cidr": "10.0.2.0/24"}],
        "security_groups": [{"name": "vpc", "ingress": [{"protocol": "tcp", "ports": "0-65535",
                                                         "cidr": "10.0.0.0/16"}]}],
        "network_acls": [{"name": "private-nacl", "subnets": ["private"],
                          "ingress": [{"rule": 80, "action": "deny", "protocol": "all", "cidr": "10.0.2.0/24"},
                                      {"rule": 90, "action": "deny", "protocol": "all", "cidr": "10.0.1.20/32"},
                                      {"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}],
                          "egress": [{"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}]}],
        "instances": [
            {"name": "client", "subnet": "public", "private_ip": "10.0.1.10", "security_groups": ["vpc"]},
            {"name": "client2", "subnet": "public", "private_ip": "10.0.1.20", "security_groups": ["vpc"]},
            {"name": "server", "subnet": "private", "private_ip": "10.0.2.10", "security_groups": ["vpc"],
             "services": [{"type": "tcp", "port": PORT}]},
            {"name": "server2", "subnet": "private", "private_ip": "10.0.2.20", "security_groups": ["vpc"],
             "services": [{"type": "tcp", "port": PORT}]}],
        "options": {"offload": offload},
    }, "test_nacls").topology


@pytest.fixture
def pair(request) -> Iterator[str]:
    name, offload = getattr(request, "param", ("nacl-pair", True))
    labs.up(topology(name, offload))
    try:
        yield name
    finally:
        labs.down(name)


def test_deny_before_allow_and_the_same_subnet_is_never_filtered(pair: str) -> None:
    assert probe(pair, "client", "server", PORT) == "open"
    assert probe(pair, "client2", "server", PORT) == "timeout"          # rule 90 before rule 100
    assert probe(pair, "server2", "server", PORT) == "open"             # rule 80 would deny: same subnet
    explained = subprocess.run([sys.executable, "-m", "emulator.cli", "explain", "--lab", pair, "client2", "server",
                                "--port", str(PORT)], capture_output=True, text=True, timeout=60)
    assert "network ACL private-nacl" in explained.stdout and "inbound rule 90 deny" in explained.stdout, \
        explained.stdout + explained.stderr




def offloaded(lab: str) -> int:
    now = time.time()
    deadline = now + 5
    while time.time() < deadline:
        health = state.read_health(lab) or {}
        if health.get("updated", 0) > now:
            return int(health.get("offloaded_flows") or 0)
        time.sleep(0.1)
    raise AssertionError("the engine wrote no health update")


@pytest.mark.parametrize("pair", [("nacl-cut", False), ("nacl-cut-kernel", True)], indirect=True,
                         ids=["engine-path", "kernel-offload"])
def test_a_deny_cuts_an_open_tracked_connection_at_its_next_packet(pair: str) -> None:
    session = Session(labs.exec_argv(pair, "client", [sys.executable, "-c", LINE_CLIENT, "10.0.2.10", str(PORT)]))
    try:
        assert session.ask("one", wait=10) == "one"
        for word in ("w1", "w2", "w3", "w4", "w5", "w6"):
            assert session.ask(word) == word
        kernel = pair.endswith("kernel")
        assert offloaded(pair) == (1 if kernel else 0)      # on the fast path, or not, as parametrised
        sgemu(pair, "nacl", "create-entry", "private-nacl", "--ingress", "--rule-number", "50",
              "--rule-action", "deny", "--protocol", "tcp", "--port", str(PORT), "--cidr", "10.0.1.10/32")
        assert offloaded(pair) == 0                         # recalled before the change was acknowledged
        assert session.ask("two") in (None, "FAILED")       # stateless: tracked or not, it is cut
        sgemu(pair, "nacl", "delete-entry", "private-nacl", "--ingress", "--rule-number", "50")
        assert probe(pair, "client", "server", PORT) == "open"
    finally:
        session.close()


def test_prefix_list_changes_apply_to_every_rule_at_once(tmp_path: Path) -> None:
    """PL1: an SSH session from an address of the list survives the entry's removal (tracked);
    new connections time out until the entry is back."""
    name = "nacl-pl"
    topo = parse({
        "name": name, "vpc": {"cidr": "10.0.0.0/16"}, "subnets": [{"name": "public", "cidr": "10.0.1.0/24"}],
        "prefix_lists": [{"name": "office", "max_entries": 4, "entries": ["203.0.113.0/24"]}],
        "security_groups": [{"name": "web-sg", "ingress": [{"protocol": "tcp", "ports": 22, "prefix_list": "office"},
                                                           {"protocol": "tcp", "ports": PORT,
                                                            "prefix_list": "office"}]}],
        "instances": [{"name": "web", "subnet": "public", "public_ip": "198.51.100.20",
                       "security_groups": ["web-sg"], "services": [{"type": "ssh"}, {"type": "tcp", "port": PORT}]}],
        "internet": [{"name": "you", "ip": "203.0.113.10"}, {"name": "home", "ip": "192.0.2.7"}],
    }, "test_nacls").topology
    labs.up(topo)
    session = Session(labs.exec_argv(name, "you", ["ssh", "-T", "web", "while read l; do echo got $l; done"]))
    try:
        assert probe(name, "home", "web", PORT) == "timeout"
        assert session.ask("a", wait=15) == "got a"
        out = sgemu(name, "prefix-list", "remove-entry", "office", "--cidr", "203.0.113.0/24")
        assert "no entries" in out.stdout
        assert session.ask("b") == "got b"                                  # tracked: survives
        assert probe(name, "you", "web", PORT) == "timeout"                  # new flows: no entry
        sgemu(name, "prefix-list", "add-entry", "office", "--cidr", "192.0.2.0/24", "--description", "home")
        assert probe(name, "home", "web", PORT) == "open"
        refused = sgemu(name, "prefix-list", "add-entry", "office", "--cidr", "2001:db8::/32", check=False)
        assert refused.returncode == 1 and refused.stderr.startswith("sgemu: InvalidParameterValue: ")
        missing = sgemu(name, "prefix-list", "add-entry", "pl-0123456789abcdef0", "--cidr", "10.0.0.0/8",
                        check=False)
        assert missing.stderr.startswith("sgemu: InvalidPrefixListID.NotFound: ")
        sgemu(name, "sg", "authorize-ingress", "web-sg", "--protocol", "tcp", "--port", "80", "--prefix-list",
              "office")
        exported = yaml.safe_load(sgemu(name, "export", "--format", "yaml").stdout)
        assert exported["prefix_lists"][0]["entries"] == [{"cidr": "192.0.2.0/24", "description": "home"}]
        assert exported["security_groups"][0]["ingress"][-1] == {"protocol": "tcp", "ports": 80,
                                                                 "prefix_list": "office"}
    finally:
        session.close()
        labs.down(name)


def test_import_up_probe_of_aws_json_with_nacls_and_prefix_lists(tmp_path: Path) -> None:
    """AWS CLI output of a VPC with a custom NACL (missing the ephemeral range) and a prefix list
    imports, comes up and behaves as AWS would: the SG allows, the NACL's missing rule times out."""
    vpc, public, private = "vpc-0a1b2c3d4e5f60718", "subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"
    web_sg, app_sg, office = "sg-0aaaaaaaaaaaaaaa1", "sg-0aaaaaaaaaaaaaaa2", "pl-0aaaaaaaaaaaaaaa1"
    docs = {
        "vpcs.json": {"Vpcs": [{"VpcId": vpc, "CidrBlock": "10.0.0.0/16"}]},
        "subnets.json": {"Subnets": [
            {"SubnetId": public, "VpcId": vpc, "CidrBlock": "10.0.1.0/24", "Tags": [{"Key": "Name", "Value": "pub"}]},
            {"SubnetId": private, "VpcId": vpc, "CidrBlock": "10.0.2.0/24", "Tags": [{"Key": "Name", "Value": "priv"}]}]},
        "sgs.json": {"SecurityGroups": [
            {"GroupId": web_sg, "GroupName": "web", "VpcId": vpc, "OwnerId": "123456789012",
             "IpPermissions": [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT,
                                "IpRanges": [{"CidrIp": "10.0.0.0/16"}],
                                "PrefixListIds": [{"PrefixListId": office}]}],
             "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]},
            {"GroupId": app_sg, "GroupName": "app", "VpcId": vpc, "OwnerId": "123456789012",
             "IpPermissions": [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT,
                                "UserIdGroupPairs": [{"GroupId": web_sg, "UserId": "123456789012"}]}],
             "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]}]},
        "instances.json": {"Reservations": [{"Instances": [
            {"InstanceId": "i-0aaaaaaaaaaaaaaa1", "VpcId": vpc, "SubnetId": public, "PrivateIpAddress": "10.0.1.10",
             "PublicIpAddress": "198.51.100.20", "Tags": [{"Key": "Name", "Value": "web"}],
             "SecurityGroups": [{"GroupId": web_sg, "GroupName": "web"}]},
            {"InstanceId": "i-0aaaaaaaaaaaaaaa2", "VpcId": vpc, "SubnetId": private, "PrivateIpAddress": "10.0.2.10",
             "Tags": [{"Key": "Name", "Value": "app"}], "SecurityGroups": [{"GroupId": app_sg, "GroupName": "app"}]}]}]},
        "nacls.json": {"NetworkAcls": [
            {"NetworkAclId": "acl-0aaaaaaaaaaaaaaa1", "VpcId": vpc, "IsDefault": True, "Associations": [
                {"SubnetId": private, "NetworkAclId": "acl-0aaaaaaaaaaaaaaa1"}],
             "Entries": [{"RuleNumber": 100, "Protocol": "-1", "Egress": e, "RuleAction": "allow",
                          "CidrBlock": "0.0.0.0/0"} for e in (True, False)] +
                        [{"RuleNumber": 32767, "Protocol": "-1", "Egress": e, "RuleAction": "deny",
                          "CidrBlock": "0.0.0.0/0"} for e in (True, False)]},
            {"NetworkAclId": "acl-0aaaaaaaaaaaaaaa2", "VpcId": vpc, "IsDefault": False,
             "Tags": [{"Key": "Name", "Value": "public-nacl"}],
             "Associations": [{"SubnetId": public, "NetworkAclId": "acl-0aaaaaaaaaaaaaaa2"}],
             "Entries": [{"RuleNumber": 100, "Protocol": "6", "Egress": False, "RuleAction": "allow",
                          "CidrBlock": "0.0.0.0/0", "PortRange": {"From": PORT, "To": PORT}},
                         {"RuleNumber": 100, "Protocol": "6", "Egress": True, "RuleAction": "allow",
                          "CidrBlock": "10.0.2.0/24", "PortRange": {"From": PORT, "To": PORT}},
                         {"RuleNumber": 110, "Protocol": "6", "Egress": False, "RuleAction": "allow",
                          "CidrBlock": "10.0.2.0/24", "PortRange": {"From": 1024, "To": 65535}},
                         {"RuleNumber": 32767, "Protocol": "-1", "Egress": True, "RuleAction": "deny",
                          "CidrBlock": "0.0.0.0/0"}]}]},
        "pls.json": {"PrefixLists": [{"PrefixListId": office, "AddressFamily": "IPv4", "PrefixListName": "office",
                                      "MaxEntries": 3, "OwnerId": "123456789012"}]},
        "entries.json": {"Entries": [{"Cidr": "203.0.113.0/24", "Description": "office"}]},
    }
    for name, doc in docs.items():
        (tmp_path / name).write_text(json.dumps(doc))
    out = tmp_path / "imported.yaml"
    files = [str(tmp_path / n) for n in ("vpcs.json", "subnets.json", "sgs.json", "instances.json")]
    result = subprocess.run([sys.executable, "-m", "emulator.cli", "import", "aws", *files,
                             "--network-acls", str(tmp_path / "nacls.json"), "--prefix-lists", str(tmp_path / "pls.json"),
                             "--prefix-list-entries", f"{office}={tmp_path / 'entries.json'}", "-o", str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(out.read_text())
    assert [n["name"] for n in data["network_acls"]] == ["default", "public-nacl"]
    assert data["prefix_lists"][0]["entries"] == [{"cidr": "203.0.113.0/24", "description": "office"}]
    data["name"] = "nacl-imported"
    data["instances"][0]["services"] = [{"type": "tcp", "port": PORT}]
    data["instances"][1]["services"] = [{"type": "tcp", "port": PORT}]
    labs.up(parse(data, str(out)).topology)
    try:
        assert probe("nacl-imported", "web", "app", PORT) == "open"        # replies come back on rule 110
        assert probe("nacl-imported", "you", "web", PORT) == "timeout"     # SG (prefix list) allows; no ephemeral out
        sgemu("nacl-imported", "nacl", "create-entry", "public-nacl", "--egress", "--rule-number", "120",
              "--rule-action", "allow", "--protocol", "tcp", "--port", "1024-65535", "--cidr", "0.0.0.0/0")
        assert probe("nacl-imported", "you", "web", PORT) == "open"
    finally:
        labs.down("nacl-imported")
