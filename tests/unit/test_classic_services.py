"""The classic ports without root: TLS from the lab's CA, the RDP first exchange, the ftp server's
command line and the lab's DNS views (records, dnsmasq arguments, resolv.conf)."""
from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from pathlib import Path

import pytest
from cryptography import x509

from emulator.guest.rdp import confirm
from emulator.lab import dns, ftp, tls
from emulator.model import Instance, InternetHost, PortRange, Service, Subnet, Topology, Vpc

from .test_servers import HOST, free_port, server

WEB = Instance("web", "public", IPv4Address("10.0.1.10"), (), ipv6=IPv6Address("fd00:10:0:1::10"),
               public_ip=IPv4Address("198.51.100.20"), services=(Service("https", 443),))
DB = Instance("db", "public", IPv4Address("10.0.1.20"), ())
YOU = InternetHost("you", IPv4Address("203.0.113.10"))
SIX = InternetHost("six", ipv6=IPv6Address("2001:db8::6"))


def lab(*internet: InternetHost, ipv6: bool = True) -> Topology:
    return Topology(name="t", vpc=Vpc(IPv4Network("10.0.0.0/16"), IPv6Network("fd00:10::/56") if ipv6 else None),
                    subnets=(Subnet("public", IPv4Network("10.0.1.0/24")),), security_groups=(),
                    instances=(WEB, DB), internet=internet)


# --- TLS --------------------------------------------------------------------------------------

def test_certificates_name_the_instance_privately_and_publicly(tmp_path: Path) -> None:
    ca = tls.create_ca("t", tmp_path / "ca")
    cert_path, key_path = tls.issue(ca, WEB)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [
        "web", "ip-10-0-1-10.ec2.internal", "ec2-198-51-100-20.compute-1.amazonaws.com"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ip_address("10.0.1.10"), ip_address("198.51.100.20"), ip_address("fd00:10:0:1::10")]
    assert cert.issuer == ca.cert.subject
    assert (key_path.stat().st_mode & 0o777) == 0o600 and ((tmp_path / "ca" / "ca.key").stat().st_mode & 0o777) == 0o600
    assert tls.load_ca(tmp_path / "ca").cert == ca.cert


def test_trust_files_make_the_lab_ca_the_bundle_and_a_hashed_entry(tmp_path: Path) -> None:
    ca = tls.create_ca("t", tmp_path / "ca")
    tls.install_trust(ca, tmp_path / "netns")
    certs = tmp_path / "netns" / "ssl" / "certs"
    assert (certs / "ca-certificates.crt").read_bytes() == ca.pem
    hashed = certs / f"{ca.subject_hash}.0"
    assert hashed.is_symlink() and hashed.read_bytes() == ca.pem
    # OpenSSL itself finds the CA in the hashed directory and verifies an issued certificate with it.
    cert_path, _ = tls.issue(ca, WEB)
    done = subprocess.run(["openssl", "verify", "-CApath", str(certs), str(cert_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_https_serves_with_the_issued_certificate_and_verifies_against_the_lab_ca(tmp_path: Path) -> None:
    ca = tls.create_ca("t", tmp_path / "ca")
    cert, key = tls.issue(ca, WEB)
    port = free_port()
    with server("web", [{"type": "https", "port": port}], tmp_path, "--tls-cert", str(cert), "--tls-key", str(key)):
        context = ssl.create_default_context(cafile=str(tmp_path / "ca" / "ca.pem"))
        with socket.create_connection((HOST, port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="ec2-198-51-100-20.compute-1.amazonaws.com") as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"\r\n\r\nweb\n")
        # Another name than the instance's fails verification: the certificate is really checked.
        with socket.create_connection((HOST, port), timeout=5) as raw, pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="db")


def test_https_without_a_certificate_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "emulator.guest.servers", "--name", "web",
                           "--spec", '[{"type": "https", "port": 443}]'], capture_output=True, text=True)
    assert done.returncode == 2 and "https services need --tls-cert and --tls-key" in done.stderr


# --- RDP --------------------------------------------------------------------------------------

# What nmap's RDP probe and mstsc send: TPKT, X.224 CR, RDP_NEG_REQ asking for TLS and CredSSP.
NEGOTIATING = bytes.fromhex("030000130ee000000000000100080003000000")
COOKIE = b"\x03\x00\x00\x23\x1e\xe0\x00\x00\x00\x00\x00Cookie: mstshash=admin\r\n"


def test_rdp_confirms_a_negotiating_client_with_standard_rdp_security() -> None:
    assert confirm(NEGOTIATING) == bytes.fromhex("030000130ed000001234000200080000000000")


def test_rdp_confirms_a_legacy_client_without_negotiation() -> None:
    assert confirm(COOKIE) == bytes.fromhex("0300000b06d00000123400")


@pytest.mark.parametrize("request_bytes", [b"GET / HTTP/1.1\r\n\r\n", b"\x03\x00\x00\x13" + b"\x0e\xd0" + b"\x00" * 13,
                                           NEGOTIATING[:-1], b"\x03\x00\x00\x05\x00"],
                         ids=["http", "a-confirm-not-a-request", "short", "tiny"])
def test_rdp_ignores_what_is_not_a_connection_request(request_bytes: bytes) -> None:
    assert confirm(request_bytes) is None


def test_rdp_listener_answers_over_tcp_then_closes(tmp_path: Path) -> None:
    port = free_port()
    with server("win", [{"type": "rdp", "port": port}], tmp_path), \
            socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(NEGOTIATING)
        answer = b""
        deadline = time.monotonic() + 5
        while (chunk := sock.recv(64)) and time.monotonic() < deadline:
            answer += chunk
        assert answer == confirm(NEGOTIATING)


# --- FTP --------------------------------------------------------------------------------------

def test_ftp_runs_pyftpdlib_read_only_on_its_port_and_passive_range(tmp_path: Path) -> None:
    service = Service("ftp", 2121, passive_ports=PortRange(50000, 50100))
    argv = ftp.spawn_argv(DB, service, tmp_path / "share")
    assert argv[1:3] == ["-m", "pyftpdlib"] and "--write" not in argv
    assert argv[argv.index("--port") + 1] == "2121" and argv[argv.index("--range") + 1] == "50000-50100"
    assert argv[argv.index("--interface") + 1] == "0.0.0.0"            # db has no IPv6
    assert ftp.spawn_argv(WEB, service, tmp_path / "w")[4] == "::"
    assert (tmp_path / "share" / "pub" / "hello.txt").read_text() == "hello from db\n"


# --- DNS --------------------------------------------------------------------------------------

def records(view: dns.ResolverView) -> dict[str, tuple[str | None, str | None]]:
    return {name: (r.ipv4, r.ipv6) for r in view.records for name in r.names}


def test_inside_the_vpc_names_and_public_names_resolve_to_private_addresses() -> None:
    view = dns.vpc_view(lab(YOU))
    assert view.listen == ("10.0.0.2", "169.254.169.253", "fd00:ec2::253")
    found = records(view)
    assert found["web"] == found["ip-10-0-1-10.ec2.internal"] == ("10.0.1.10", "fd00:10:0:1::10")
    assert found["ec2-198-51-100-20.compute-1.amazonaws.com"] == ("10.0.1.10", "fd00:10:0:1::10")
    assert found["you"] == ("203.0.113.10", None)
    # A reverse lookup of a private address answers the EC2 private name (the first of the record).
    assert view.records[0].names[0] == "ip-10-0-1-10.ec2.internal"


def test_from_the_internet_only_public_addresses_resolve() -> None:
    view = dns.internet_view(lab(YOU))
    found = records(view)
    assert view.listen == ("169.254.0.1",)
    assert found["web"] == ("198.51.100.20", "fd00:10:0:1::10")
    assert "db" not in found                         # no public IP, no IPv6: nothing to reach
    assert found["you"] == ("203.0.113.10", None)


def test_dnsmasq_forwards_nothing_and_answers_only_its_records() -> None:
    argv = dns.vpc_view(lab(ipv6=False)).argv("/usr/sbin/dnsmasq")
    for option in ("--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--local=/#/", "--bind-interfaces",
                   "--log-facility=-",
                   "--listen-address=10.0.0.2", "--keep-in-foreground"):
        assert option in argv
    assert not any(a.startswith("--server") for a in argv)
    assert "--host-record=ip-10-0-1-20.ec2.internal,db,10.0.1.20,,60" in argv


def test_views_run_where_someone_can_ask() -> None:
    assert [v.name for v in dns.views(lab(YOU))] == ["vpc", "internet"]
    assert [v.name for v in dns.views(lab(SIX))] == ["vpc"]    # an IPv6-only host reads its hosts file


def test_resolv_conf_and_nsswitch() -> None:
    text = dns.resolv_conf(("10.0.0.2",), instance=True)
    assert "nameserver 10.0.0.2\nsearch ec2.internal\n" in text
    assert "search" not in dns.resolv_conf(("169.254.0.1",), instance=False)
    assert "no-aaaa" in dns.resolv_conf(("169.254.0.1",), instance=False, ipv6=False)
    assert "no-aaaa" not in dns.resolv_conf(("169.254.0.1",), instance=False, ipv6=True)
    switched = dns.nsswitch_text("passwd: files\nhosts: files mdns4_minimal [NOTFOUND=return] resolve dns\n")
    assert switched.splitlines() == ["passwd: files", "hosts:          files dns"]
