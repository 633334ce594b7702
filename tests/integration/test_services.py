"""Real services in real namespaces, reached with real clients (curl, nc, ssh).

Two namespaces joined by a veth pair, no lab: `sgemu-svctest-a` is the client, `-b` the
instance. Everything created here is removed again, /etc/netns entries included.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path

import pytest

from emulator.errors import LabError
from emulator.lab.services import prepare_ssh, start_services, stop_services
from emulator.model import Instance, Service, Subnet, Topology, Vpc
from emulator.paths import NETNS_ETC

LAB = "svctest"
NS_A, NS_B = f"sgemu-{LAB}-a", f"sgemu-{LAB}-b"
IP_A, IP_B = "10.99.0.1", "10.99.0.2"
IP6_A, IP6_B = "fd99::1", "fd99::2"
# Not under /tmp: sshd's StrictModes rejects an authorized_keys below a world-writable directory.
STATE = Path(f"/run/sgemu-{LAB}")
HOSTS = f"127.0.0.1 localhost\n{IP_B} b\n{IP6_B} b\n{IP_A} a\n"

B = Instance("b", "s", IPv4Address(IP_B), (), ipv6=IPv6Address(IP6_B), services=(
    Service("http", 80), Service("tcp", 3306), Service("udp-echo", 53), Service("ssh", 22),
    Service("http-proxy", 8080, to="b:80"), Service("http-proxy", 8081, to="b:1"),
))
TOPOLOGY = Topology(name=LAB, vpc=Vpc(IPv4Network("10.99.0.0/16")),
                    subnets=(Subnet("s", IPv4Network("10.99.0.0/24")),), security_groups=(),
                    instances=(B,))


def sh(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def in_a(*argv: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", NS_A, *argv, check=check, timeout=timeout)


def ns_pids(ns: str) -> list[int]:
    return [int(p) for p in sh("ip", "netns", "pids", ns).stdout.split()]


def remove_everything() -> None:
    for ns in (NS_A, NS_B):
        for pid in ns_pids(ns) if Path(f"/run/netns/{ns}").exists() else []:
            os.kill(pid, 9)
        sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(NETNS_ETC / ns, ignore_errors=True)
    shutil.rmtree(STATE, ignore_errors=True)


def build_namespaces() -> None:
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        (NETNS_ETC / ns).mkdir(parents=True, exist_ok=True)
        (NETNS_ETC / ns / "hosts").write_text(HOSTS)
    sh("ip", "link", "add", "sgemu-svct-a", "netns", NS_A, "type", "veth",
       "peer", "sgemu-svct-b", "netns", NS_B)
    for ns, dev, ip4, ip6 in ((NS_A, "sgemu-svct-a", IP_A, IP6_A), (NS_B, "sgemu-svct-b", IP_B, IP6_B)):
        sh("ip", "-n", ns, "addr", "add", f"{ip4}/24", "dev", dev)
        sh("ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", dev, "nodad")
        sh("ip", "-n", ns, "link", "set", dev, "up")


@dataclass
class Running:
    pids: list[int]
    created: list[Path]


@pytest.fixture(scope="module")
def running() -> Iterator[Running]:
    remove_everything()              # leftovers of an interrupted run
    pids: list[int] = []
    try:
        build_namespaces()
        created = prepare_ssh(LAB, STATE, [NS_A, NS_B])
        pids = start_services(LAB, B, NS_B, STATE, TOPOLOGY)
        yield Running(pids, created)
    finally:
        stop_services(pids)
        remove_everything()
    assert not any(Path(f"/run/netns/{ns}").exists() for ns in (NS_A, NS_B))
    assert not any((NETNS_ETC / ns).exists() for ns in (NS_A, NS_B))


def test_services_run_detached_inside_the_instance_namespace(running: Running) -> None:
    assert len(running.pids) == 2                      # one server process, one sshd
    assert set(running.pids) <= set(ns_pids(NS_B))
    assert all(os.getsid(pid) == pid for pid in running.pids)
    assert all(path.exists() for path in running.created)


@pytest.mark.parametrize("url", ["http://b/", f"http://{IP_B}/", f"http://[{IP6_B}]/"])
def test_curl_gets_the_instance_name_over_ipv4_and_ipv6(running: Running, url: str) -> None:
    assert in_a("curl", "-sS", "-m", "5", url).stdout == "b\n"


def test_nc_gets_the_tcp_banner_and_its_echo(running: Running) -> None:
    out = subprocess.run(["ip", "netns", "exec", NS_A, "nc", "-q", "1", "-w", "5", IP_B, "3306"],
                         input="hello\n", capture_output=True, text=True, timeout=20).stdout
    assert out == "b tcp 3306 ready\nhello\n"


@pytest.mark.parametrize("family, address", [(socket.AF_INET, IP_B), (socket.AF_INET6, IP6_B)])
def test_a_udp_datagram_comes_back(running: Running, family: socket.AddressFamily, address: str) -> None:
    code = (f"import socket; s = socket.socket({int(family)}, socket.SOCK_DGRAM); s.settimeout(5); "
            f"s.sendto(b'ping', ({address!r}, 53)); print(s.recvfrom(100)[0].decode())")
    assert in_a("python3", "-c", code).stdout == "ping\n"


def test_http_proxy_resolves_its_target_through_the_namespace_hosts_file(running: Running) -> None:
    out = in_a("curl", "-sS", "-i", "-m", "5", f"http://{IP_B}:8080/").stdout
    assert out.startswith("HTTP/1.1 200 OK")
    assert "Via: 1.1 b" in out and out.endswith("\n\nb\n")     # text mode folds \r\n


def test_http_proxy_answers_502_quickly_when_the_target_refuses(running: Running) -> None:
    started = time.monotonic()
    out = in_a("curl", "-sS", "-m", "5", "-w", "%{http_code}", "-o", "/dev/null",
               f"http://{IP_B}:8081/").stdout
    assert out == "502"
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("target", [IP_B, "b", IP6_B])
def test_ssh_logs_in_as_root_without_prompts(running: Running, target: str) -> None:
    result = in_a("ssh", target, "id -un; hostname", check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "root\nb\n"                # the instance's name, not the host's
    assert socket.gethostname() != "b"                  # ... and the host keeps its own
    assert result.stderr == ""                         # LogLevel ERROR: no host-key chatter


def test_ssh_refuses_a_key_that_is_not_the_labs(running: Running, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger))
    # -F /dev/null: without the lab's client config (IdentityFile options accumulate).
    result = in_a("ssh", "-F", "/dev/null", "-i", str(stranger), "-o", "IdentitiesOnly=yes",
                  "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                  "-o", "UserKnownHostsFile=/dev/null", f"root@{IP_B}", "true", check=False, timeout=30)
    assert result.returncode == 255
    assert "Permission denied" in result.stderr


def test_stop_services_leaves_no_process_in_the_namespace(running: Running) -> None:
    a = Instance("a", "s", IPv4Address(IP_A), (), services=(Service("tcp", 7000), Service("ssh", 2222)))
    pids = start_services(LAB, a, NS_A, STATE, TOPOLOGY)
    assert len(pids) == 2 and set(pids) <= set(ns_pids(NS_A))
    stop_services(pids)
    assert ns_pids(NS_A) == []


def test_a_service_that_cannot_listen_fails_with_its_name_and_leaves_nothing(running: Running) -> None:
    clash = Instance("a", "s", IPv4Address(IP_A), (), services=(Service("http", 80), Service("tcp", 80)))
    with pytest.raises(LabError, match=r"instance a: service server for service http \(tcp port 80\), "
                                       r"service tcp \(tcp port 80\) exited with status 1"):
        start_services(LAB, clash, NS_A, STATE, TOPOLOGY)
    assert ns_pids(NS_A) == []
