"""The lab's service server (emulator.guest.servers) and the service helpers that need no root,
exercised with real sockets on 127.0.0.1 and ephemeral ports."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from emulator.errors import LabError
from emulator.lab import processes, services
from emulator.lab.services import listening_ports, prepare_ssh, start_services, stop_services
from emulator.model import PROTO_TCP, PROTO_UDP, Instance, Service, Subnet, Topology, Vpc

HOST = "127.0.0.1"


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextmanager
def server(name: str, spec: list[dict], tmp_path: Path, *extra: str) -> Iterator[subprocess.Popen]:
    """Runs the server module bound to 127.0.0.1 until every listener is up; kills it after."""
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "emulator.guest.servers", "--name", name,
                                 "--bind", HOST, "--spec", json.dumps(spec), *extra],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while log.read_text().count("listening on port") < len(spec):
            assert proc.poll() is None, f"server exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"server not listening: {log.read_text()}"
            time.sleep(0.02)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def http_get(port: int, path: str = "/", timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one HTTP response framed by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(4096)
    return head, body


# --- http -------------------------------------------------------------------------------------

def test_http_get_answers_200_with_the_instance_name(tmp_path: Path) -> None:
    port = free_port()
    with server("web", [{"type": "http", "port": port}], tmp_path):
        with urllib.request.urlopen(f"http://{HOST}:{port}/any/path", timeout=5) as response:
            assert response.status == 200
            assert response.read() == b"web\n"


def test_http_head_has_length_but_no_body(tmp_path: Path) -> None:
    port = free_port()
    with server("web", [{"type": "http", "port": port}], tmp_path):
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.sendall(b"HEAD / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(4096):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Length: 4" in head
    assert body == b""


def test_http_keeps_the_connection_open_between_requests(tmp_path: Path) -> None:
    port = free_port()
    with server("web", [{"type": "http", "port": port}], tmp_path):
        with socket.create_connection((HOST, port), timeout=5) as sock:
            for _ in range(3):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: web\r\n\r\n")
                head, body = read_response(sock)
                assert b"Connection: keep-alive" in head
                assert body == b"web\n"
            sock.sendall(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            head, body = read_response(sock)
            assert b"Connection: close" in head
            assert sock.recv(4096) == b""          # the server closed after the last answer


def test_http_refuses_other_methods_and_garbage(tmp_path: Path) -> None:
    port = free_port()
    with server("web", [{"type": "http", "port": port}], tmp_path):
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        conn.request("POST", "/", body=b"x=1")
        response = conn.getresponse()
        assert (response.status, response.getheader("Allow")) == (405, "GET, HEAD")
        conn.close()
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.sendall(b"NONSENSE\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 400 Bad Request")


# --- tcp and udp ------------------------------------------------------------------------------

def test_tcp_sends_a_banner_then_echoes_lines(tmp_path: Path) -> None:
    port = free_port()
    with server("db", [{"type": "tcp", "port": port}], tmp_path):
        with socket.create_connection((HOST, port), timeout=5) as sock:
            reader = sock.makefile("rb")
            assert reader.readline() == f"db tcp {port} ready\n".encode()
            for line in (b"hello\n", b"second line\n"):
                sock.sendall(line)
                assert reader.readline() == line


def test_udp_echo_returns_each_datagram(tmp_path: Path) -> None:
    port = free_port(socket.SOCK_DGRAM)
    with server("dns", [{"type": "udp-echo", "port": port}], tmp_path):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            for payload in (b"ping", b"\x00\x01binary"):
                sock.sendto(payload, (HOST, port))
                data, addr = sock.recvfrom(4096)
                assert (data, addr) == (payload, (HOST, port))


# --- http-proxy -------------------------------------------------------------------------------

def test_http_proxy_forwards_to_its_target_by_name(tmp_path: Path) -> None:
    app_port, proxy_port = free_port(), free_port()
    with server("app", [{"type": "http", "port": app_port}], tmp_path), \
            server("web", [{"type": "http-proxy", "port": proxy_port, "to": f"localhost:{app_port}"}],
                   tmp_path):
        status, headers, body = http_get(proxy_port, "/orders")
    assert (status, body) == (200, b"app\n")
    assert headers["Via"] == "1.1 web"
    assert headers["Server"] == "sgemu/app"


def test_http_proxy_answers_502_when_the_target_refuses(tmp_path: Path) -> None:
    closed, proxy_port = free_port(), free_port()
    with server("web", [{"type": "http-proxy", "port": proxy_port, "to": f"{HOST}:{closed}"}],
                tmp_path):
        status, _, body = http_get(proxy_port)
    assert status == 502
    assert body == f"web: upstream {HOST}:{closed} refused the connection\n".encode()


def test_http_proxy_answers_504_when_the_target_never_accepts(tmp_path: Path) -> None:
    # A full accept queue makes the kernel drop further SYNs: the proxy's connect times out,
    # as it does when a security group drops them.
    with socket.socket() as upstream, socket.socket() as filler:
        upstream.bind((HOST, 0))
        upstream.listen(0)
        filler.connect(upstream.getsockname())
        proxy_port = free_port()
        spec = [{"type": "http-proxy", "port": proxy_port, "to": f"{HOST}:{upstream.getsockname()[1]}"}]
        with server("web", spec, tmp_path, "--connect-timeout", "0.5"):
            started = time.monotonic()
            status, _, body = http_get(proxy_port)
            elapsed = time.monotonic() - started
    assert status == 504
    assert b"did not answer the connection within 0.5 s" in body
    assert elapsed < 3


def test_http_proxy_answers_504_when_the_target_never_responds(tmp_path: Path) -> None:
    with socket.socket() as upstream:
        upstream.bind((HOST, 0))
        upstream.listen(8)                          # accepts in the kernel, never answers
        proxy_port = free_port()
        spec = [{"type": "http-proxy", "port": proxy_port, "to": f"{HOST}:{upstream.getsockname()[1]}"}]
        with server("web", spec, tmp_path, "--response-timeout", "0.5"):
            status, _, body = http_get(proxy_port)
    assert status == 504
    assert b"sent no response within 0.5 s" in body


# --- process lifecycle ------------------------------------------------------------------------

def test_sigterm_exits_cleanly_with_a_connection_open(tmp_path: Path) -> None:
    port = free_port()
    with server("web", [{"type": "http", "port": port}], tmp_path) as proc:
        with socket.create_connection((HOST, port), timeout=5):
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
    assert "web: stopping" in (tmp_path / "web.log").read_text()


def test_a_port_in_use_makes_the_server_exit_with_status_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        spec = json.dumps([{"type": "tcp", "port": port}])
        result = subprocess.run([sys.executable, "-m", "emulator.guest.servers", "--name", "db",
                                 "--bind", HOST, "--spec", spec],
                                capture_output=True, text=True, timeout=10)
    assert result.returncode == 1
    assert f"db: cannot listen for tcp on port {port}" in result.stderr


def test_ssh_is_not_served_by_the_python_server() -> None:
    result = subprocess.run([sys.executable, "-m", "emulator.guest.servers", "--name", "web",
                             "--spec", '[{"type": "ssh", "port": 22}]'],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert "service type 'ssh' is not served here" in result.stderr


# --- services.py helpers that need no root ----------------------------------------------------

PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1
"""
PROC_NET_UDP6 = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000
"""


def test_listening_ports_reads_tcp_listeners_and_bound_udp_sockets() -> None:
    found = listening_ports({"tcp": PROC_NET_TCP, "udp6": PROC_NET_UDP6})
    # 8080 (0x1F90) is an established connection, not a listener.
    assert found == {(PROTO_TCP, 80), (PROTO_UDP, 53)}


def test_listening_ports_of_this_process_sees_a_real_listener() -> None:
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert (PROTO_TCP, port) in services._ports_seen_by(os.getpid())
    assert (PROTO_TCP, port) not in services._ports_seen_by(os.getpid())


def spawn(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_stop_services_terminates_servers_and_ignores_gone_pids(tmp_path: Path) -> None:
    port = free_port()
    with server("web", [{"type": "http", "port": port}], tmp_path) as proc:
        gone = spawn(["true"])
        gone.wait()
        started = time.monotonic()
        stop_services([proc.pid, gone.pid])
        assert time.monotonic() - started < 2
        assert proc.poll() is not None
        assert not processes.alive(proc.pid)


def test_stop_services_kills_a_server_that_ignores_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "STOP_GRACE", 0.3)
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
         "print('ready', flush=True); time.sleep(60)", "emulator.guest.servers"],
        start_new_session=True, stdout=subprocess.PIPE)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    started = time.monotonic()
    stop_services([stubborn.pid])
    assert time.monotonic() - started >= 0.3        # SIGTERM alone did not end it
    assert not Path(f"/proc/{stubborn.pid}").exists()   # SIGKILL did (and it was reaped)
    stubborn.stdout.close()


def test_stop_services_leaves_processes_that_are_not_services_alone() -> None:
    other = spawn(["sleep", "30"])
    try:
        stop_services([other.pid])
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def topology_with(instance: Instance) -> Topology:
    return Topology(name="t", vpc=Vpc(IPv4Network("10.0.0.0/16")),
                    subnets=(Subnet("a", IPv4Network("10.0.1.0/24")),), security_groups=(),
                    instances=(instance,))


def test_start_services_rejects_a_proxy_to_an_unknown_instance(tmp_path: Path) -> None:
    web = Instance("web", "a", IPv4Address("10.0.1.10"), (),
                   services=(Service("http-proxy", 80, to="nowhere:8080"),))
    with pytest.raises(LabError, match=r"instance web: http-proxy on port 80 forwards to 'nowhere:8080'"):
        start_services("t", web, "sgemu-t-web", tmp_path, topology_with(web))
    assert not (tmp_path / "logs").exists()     # nothing was started


@pytest.mark.skipif(shutil.which("ssh-keygen") is None or shutil.which("ssh") is None,
                    reason="needs the OpenSSH client tools")
def test_prepare_ssh_writes_private_keys_and_configs(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services, "NETNS_ETC", tmp_path / "netns")
    monkeypatch.setattr(services, "SSHD_PRIVSEP_DIR", tmp_path / "sshd")
    state = tmp_path / "state"
    created = prepare_ssh("t", state, ["sgemu-t-web", "sgemu-t-you"])
    assert all(p.exists() for p in created)
    assert (state / "ssh").stat().st_mode & 0o777 == 0o700
    assert (state / "ssh" / "id_ed25519").stat().st_mode & 0o777 == 0o600
    assert (state / "ssh" / "authorized_keys").read_text() == \
        (state / "ssh" / "id_ed25519.pub").read_text()
    for ns in ("sgemu-t-web", "sgemu-t-you"):
        config = tmp_path / "netns" / ns / "ssh" / "ssh_config"
        assert config in created and tmp_path / "netns" / ns in created
        assert f"IdentityFile {state / 'ssh' / 'id_ed25519'}" in config.read_text()
    # ssh itself accepts the client config and resolves it as intended.
    config = tmp_path / "netns" / "sgemu-t-web" / "ssh" / "ssh_config"
    effective = subprocess.run(["ssh", "-G", "-F", str(config), "web"], capture_output=True,
                               text=True, check=True).stdout
    assert "user root" in effective and "stricthostkeychecking false" in effective
    assert "batchmode yes" in effective


def test_open_files_limit_is_raised_as_far_as_allowed():
    import resource

    from emulator.guest.servers import raise_open_files_limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        got = raise_open_files_limit()
        assert got == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert got >= min(hard, 65536) if hard != resource.RLIM_INFINITY else got >= 65536
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, max(hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1])))
