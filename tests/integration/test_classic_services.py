"""The classic ports on a real lab, each with the real client people use, allowed and blocked:
https (curl, openssl s_client), ftp in passive and active mode (curl), sftp, rdp (nc) and the lab's
DNS at VPC+2 (dig, getent), which neither SGs nor NACLs filter."""
from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.testing.probe import probe

from .reach import run_in, running, topology

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")]

LAB = "it-classic"
TOPOLOGY = """
name: classic
vpc: {cidr: 10.0.0.0/16, ipv6_cidr: "fd00:10::/56"}
subnets:
  - {name: public, cidr: 10.0.1.0/24, ipv6_cidr: "fd00:10:0:1::/64"}
  - {name: data, cidr: 10.0.3.0/24}
network_acls:                     # the data subnet's NACL denies everything, both ways
  - {name: closed, subnets: [data], ingress: [], egress: []}
security_groups:
  - name: web-sg
    ingress:
      - {protocol: tcp, ports: 443, cidr: 203.0.113.10/32}
      - {protocol: tcp, ports: 443, cidr: "2001:db8:ff::10/128"}
      - {protocol: tcp, ports: 443, group: dev-sg}
      - {protocol: tcp, ports: 22, cidr: 203.0.113.10/32}
      - {protocol: tcp, ports: 3389, cidr: 203.0.113.10/32}
  - name: files-sg
    ingress:
      - {protocol: tcp, ports: 21, group: dev-sg}
      - {protocol: tcp, ports: 21, group: ops-sg}
      - {protocol: tcp, ports: "50000-50100", group: dev-sg}     # passive data: dev only
  - name: dev-sg                  # active data: the server connects back to dev's ports
    ingress:
      - {protocol: tcp, ports: "1024-65535", group: files-sg}
  - name: ops-sg
    ingress: []
  - name: db-sg
    ingress: []
    egress: []                    # no outbound rule at all, and a NACL denying everything
instances:
  - name: web
    subnet: public
    private_ip: 10.0.1.10
    ipv6: "fd00:10:0:1::10"
    public_ip: 198.51.100.20
    security_groups: [web-sg]
    services: [{type: https}, {type: ssh}, {type: rdp}]
  - name: files
    subnet: public
    private_ip: 10.0.1.20
    security_groups: [files-sg]
    services: [{type: ftp, passive_ports: "50000-50100"}]
  - {name: dev, subnet: public, private_ip: 10.0.1.30, security_groups: [dev-sg]}
  - {name: ops, subnet: public, private_ip: 10.0.1.40, security_groups: [ops-sg]}
  - {name: db, subnet: data, private_ip: 10.0.3.10, security_groups: [db-sg]}
internet:
  - {name: you, ip: 203.0.113.10, ipv6: "2001:db8:ff::10"}
  - {name: stranger, ip: 198.51.100.7}
"""
RDP_REQUEST = r"\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00"
RDP_CONFIRM = "03 00 00 13 0e d0 00 00 12 34 00 02 00 08 00 00 00 00 00"
CLIENT_TIMEOUT = 4


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = Path(tmp_path_factory.mktemp("classic")) / "classic.yaml"
    path.write_text(TOPOLOGY)
    with running(topology(path, LAB)) as name:
        yield name


def timed(lab: str, node: str, argv: list[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    done = run_in(lab, node, argv, timeout=30)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


# --- https ------------------------------------------------------------------------------------

def test_https_verifies_against_the_lab_ca_by_name_public_name_and_address(lab: str) -> None:
    for url in ("https://web/", "https://ec2-198-51-100-20.compute-1.amazonaws.com/", "https://198.51.100.20/"):
        done = run_in(lab, "you", ["curl", "-sS", "--max-time", "5", url])
        assert done.returncode == 0 and done.stdout == "web\n", f"{url}: {done.stderr}"
    inside = run_in(lab, "dev", ["curl", "-sS", "--max-time", "5", "https://ip-10-0-1-10.ec2.internal/"])
    assert inside.stdout == "web\n", inside.stderr


def test_https_over_ipv6_verifies_too(lab: str) -> None:
    done = run_in(lab, "you", ["curl", "-6", "-sS", "--max-time", "5", "https://web/"])
    assert done.returncode == 0 and done.stdout == "web\n", done.stderr


def test_openssl_s_client_verifies_the_chain(lab: str) -> None:
    done = run_in(lab, "you", ["openssl", "s_client", "-connect", "web:443", "-servername", "web",
                               "-verify_return_error", "-brief"], timeout=15)
    assert "Verification: OK" in done.stderr and "web" in done.stderr, done.stderr


def test_https_blocked_by_the_sg_times_out(lab: str) -> None:
    code, output, seconds = timed(lab, "stranger", ["curl", "-sS", "--max-time", str(CLIENT_TIMEOUT), "https://web/"])
    assert code == 28 and seconds >= CLIENT_TIMEOUT - 0.5, output


# --- ftp --------------------------------------------------------------------------------------

def test_ftp_passive_lists_the_directory_when_the_passive_range_is_allowed(lab: str) -> None:
    done = run_in(lab, "dev", ["curl", "-sS", "--max-time", "10", "ftp://files/"])
    assert done.returncode == 0 and "README.txt" in done.stdout and "pub" in done.stdout, done.stderr
    hello = run_in(lab, "dev", ["curl", "-sS", "--max-time", "10", "ftp://files/pub/hello.txt"])
    assert hello.stdout == "hello from files\n", hello.stderr


def test_ftp_passive_control_connects_but_data_times_out_without_the_passive_range(lab: str) -> None:
    code, output, seconds = timed(lab, "ops", ["curl", "-sS", "-v", "--max-time", str(CLIENT_TIMEOUT), "ftp://files/"])
    assert "230" in output and "Entering extended passive mode" in output, output   # logged in on port 21
    assert code == 28 and seconds >= CLIENT_TIMEOUT - 0.5, output                     # the data SYN is dropped


def test_ftp_active_lists_the_directory_when_the_client_admits_the_server(lab: str) -> None:
    done = run_in(lab, "dev", ["curl", "-sS", "--max-time", "10", "--ftp-port", "-", "ftp://files/"])
    assert done.returncode == 0 and "README.txt" in done.stdout, done.stderr


def test_ftp_active_control_connects_but_data_times_out_without_a_rule_on_the_client(lab: str) -> None:
    code, output, seconds = timed(lab, "ops", ["curl", "-sS", "-v", "--max-time", str(CLIENT_TIMEOUT),
                                               "--ftp-port", "-", "ftp://files/"])
    assert "230" in output and "> EPRT" in output, output          # logged in, asked for an active connection
    assert code == 28 and seconds >= CLIENT_TIMEOUT - 0.5, output


def test_ftp_is_read_only(lab: str) -> None:
    done = run_in(lab, "dev", ["curl", "-sS", "--max-time", "10", "-T", "/etc/hostname", "ftp://files/upload.txt"])
    assert done.returncode != 0 and "550" in done.stderr, done.stderr


# --- sftp -------------------------------------------------------------------------------------

def test_sftp_through_the_instance_sshd(lab: str) -> None:
    code, output = _sftp(lab, "you", "cd /etc\npwd\n")
    assert code == 0 and "Remote working directory: /etc" in output, output


def test_sftp_blocked_by_the_sg_times_out(lab: str) -> None:
    started = time.monotonic()
    code, output = _sftp(lab, "stranger", "ls /\n")
    # ssh reports its last attempt: web's IPv6 address after the IPv4 one timed out (stranger has no IPv6).
    assert code != 0 and "Connection closed" in output and time.monotonic() - started >= 3, output


def _sftp(lab: str, node: str, commands: str) -> tuple[int, str]:
    done = run_in(lab, node, ["sh", "-c", f"printf '{commands}' | sftp -o ConnectTimeout=3 -b - web"], timeout=20)
    return done.returncode, done.stdout + done.stderr


# --- rdp --------------------------------------------------------------------------------------

def test_rdp_answers_with_a_connection_confirm(lab: str) -> None:
    done = run_in(lab, "you", ["bash", "-c", f"printf '{RDP_REQUEST}' | nc -w 3 web 3389 | od -An -tx1"])
    assert " ".join(done.stdout.split()) == RDP_CONFIRM, done.stderr
    assert probe(lab, "you", "web", 3389, "tcp", 2.0) == "open"


def test_rdp_blocked_by_the_sg_times_out(lab: str) -> None:
    assert probe(lab, "stranger", "web", 3389, "tcp", 2.0) == "timeout"


# --- dns --------------------------------------------------------------------------------------

def test_dig_and_getent_resolve_instance_names_to_private_addresses_inside_the_vpc(lab: str) -> None:
    assert run_in(lab, "dev", ["dig", "+short", "web"]).stdout.split() == ["10.0.1.10"]
    # getent goes through nsswitch (files, then the lab DNS). dev has no IPv6, so its resolver asks for
    # no AAAA records (`options no-aaaa`): it is given only the address it can use, even for a dual-stack web.
    assert run_in(lab, "dev", ["getent", "ahostsv4", "web"]).stdout.split()[0] == "10.0.1.10"
    assert run_in(lab, "dev", ["getent", "hosts", "web"]).stdout.split()[0] == "10.0.1.10"
    assert run_in(lab, "dev", ["getent", "hosts", "files"]).stdout.split() == ["10.0.1.20", "files"]
    assert run_in(lab, "dev", ["dig", "+short", "ip-10-0-1-10.ec2.internal"]).stdout.split() == ["10.0.1.10"]
    # A public DNS name resolves to the private address from inside the VPC, as in AWS.
    public = run_in(lab, "dev", ["dig", "+short", "ec2-198-51-100-20.compute-1.amazonaws.com"])
    assert public.stdout.split() == ["10.0.1.10"]
    assert run_in(lab, "dev", ["dig", "+short", "-x", "10.0.1.10"]).stdout.split() == ["ip-10-0-1-10.ec2.internal."]


def test_ipv6_names_and_the_resolver_at_fd00_ec2_253(lab: str) -> None:
    assert run_in(lab, "dev", ["dig", "+short", "AAAA", "web"]).stdout.split() == ["fd00:10:0:1::10"]
    answer = run_in(lab, "web", ["dig", "+short", "+time=2", "@fd00:ec2::253", "files"])
    assert answer.stdout.split() == ["10.0.1.20"], answer.stdout + answer.stderr
    assert "nameserver fd00:ec2::253" in run_in(lab, "web", ["cat", "/etc/resolv.conf"]).stdout
    assert run_in(lab, "you", ["dig", "+short", "AAAA", "web"]).stdout.split() == ["fd00:10:0:1::10"]


def test_internet_hosts_resolve_public_names_only(lab: str) -> None:
    assert run_in(lab, "you", ["dig", "+short", "web"]).stdout.split() == ["198.51.100.20"]
    assert run_in(lab, "you", ["getent", "ahostsv4", "web"]).stdout.split()[0] == "198.51.100.20"
    assert "status: NXDOMAIN" in run_in(lab, "you", ["dig", "files"]).stdout     # no public IP


def test_nothing_outside_the_lab_is_resolved_or_asked(lab: str) -> None:
    done = run_in(lab, "dev", ["dig", "+time=2", "+tries=1", "example.com"])
    assert "status: NXDOMAIN" in done.stdout and "SERVER: 10.0.0.2#53" in done.stdout, done.stdout


def test_dns_at_vpc_plus_2_ignores_sgs_and_nacls(lab: str) -> None:
    # db-sg has no outbound rule and db's subnet NACL denies everything: DNS still answers.
    assert probe(lab, "db", "web", 443, "tcp", 1.5) == "timeout"
    assert run_in(lab, "db", ["dig", "+short", "+time=2", "web"]).stdout.split() == ["10.0.1.10"]
    assert run_in(lab, "db", ["dig", "+short", "+time=2", "@169.254.169.253", "files"]).stdout.split() == ["10.0.1.20"]


def test_the_vpc_resolver_is_not_reachable_from_the_internet(lab: str) -> None:
    done = run_in(lab, "you", ["dig", "+time=1", "+tries=1", "@10.0.0.2", "web"])
    assert done.returncode != 0 and "timed out" in done.stdout, done.stdout
