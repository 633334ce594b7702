"""Real services inside instance namespaces: the lab's ssh keys and configs, starting an
instance's listeners (guest/servers.py for http/https/tcp/udp-echo/http-proxy/rdp, OpenSSH
for ssh and sftp, pyftpdlib for ftp) and stopping them. Root only: everything runs through
`ip netns exec`, so the /etc/netns/<ns>/ bind mounts (hosts, resolv.conf, ssh, ssl) apply.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from emulator.errors import LabError
from emulator.model import PROTO_TCP, PROTO_UDP, Instance, Service, Topology
from emulator.paths import NETNS_ETC, LabPaths

from . import netns, processes, tls
from .ftp import spawn_argv as ftp_argv
from .state import private

SSHD = "/usr/sbin/sshd"
SSHD_PRIVSEP_DIR = Path("/run/sshd")   # sshd refuses to start without it

START_TIMEOUT = 10.0
STOP_GRACE = 3.0
POLL = 0.05
SSH_CONNECT_TIMEOUT = 5                # a blocked SYN should read as a timeout, not a hang
TCP_LISTEN = "0A"                      # /proc/net/tcp state column
# In the cmdline of every process we start (dnsmasq: the lab's DNS, lab/dns.py).
SERVICE_MARKERS = (b"emulator.guest.servers", b"sshd", b"pyftpdlib", b"dnsmasq")


@dataclass(frozen=True)
class SshFiles:
    """The lab's ssh material under state_dir/ssh/."""

    dir: Path

    @classmethod
    def of(cls, state_dir: Path) -> SshFiles:
        return cls(state_dir / "ssh")

    @property
    def client_key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def host_key(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def authorized_keys(self) -> Path:
        return self.dir / "authorized_keys"

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"


def sshd_config_text(ssh: SshFiles) -> str:
    return "\n".join([
        "# sgemu lab sshd: root with the lab key only",
        f"HostKey {ssh.host_key}",
        f"AuthorizedKeysFile {ssh.authorized_keys}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PidFile none",
        "Subsystem sftp internal-sftp",
        "",
    ])


def ssh_config_text(ssh: SshFiles) -> str:
    return "\n".join([
        "# sgemu lab ssh client: `ssh <instance>` logs in as root with the lab key, no prompts",
        "Host *",
        "    User root",
        f"    IdentityFile {ssh.client_key}",
        "    IdentitiesOnly yes",
        "    BatchMode yes",
        "    StrictHostKeyChecking no",
        "    UserKnownHostsFile /dev/null",
        "    GlobalKnownHostsFile /dev/null",
        "    LogLevel ERROR",
        f"    ConnectTimeout {SSH_CONNECT_TIMEOUT}",
        "",
    ])


def _run(argv: list[str], what: str) -> None:
    try:
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    except FileNotFoundError:
        raise LabError(f"{what}: {argv[0]} not found; install OpenSSH (openssh-client/openssh-server)") from None
    except subprocess.CalledProcessError as exc:
        raise LabError(f"{what} failed: {exc.stderr.strip() or exc}") from None


def _keygen(key: Path, comment: str) -> None:
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)],
         f"generating {key}")


def _write(path: Path, text: str, mode: int, created: list[Path]) -> None:
    path.write_text(text)
    path.chmod(mode)
    created.append(path)


def _mkdir(path: Path, mode: int, created: list[Path]) -> None:
    if not path.is_dir():
        path.mkdir(mode=mode, parents=True)
        created.append(path)


def prepare_ssh(lab: str, state_dir: Path, namespaces: list[str]) -> list[Path]:
    """Generates the lab's client key and sshd host key under state_dir/ssh/ (0700), the sshd
    config for instances, and per namespace /etc/netns/<ns>/ssh/ssh_config (bind-mounted over
    /etc/ssh by `ip netns exec`) so `ssh <instance>` logs in as root without prompts.

    Returns the paths it created in creation order (remove them in reverse); /etc/netns/<ns>
    is among them only if it did not exist. /etc/netns and /run/sshd are created when missing
    but not returned: they are the system's, and other labs may need them.
    """
    created: list[Path] = []
    ssh = SshFiles.of(state_dir)
    _mkdir(ssh.dir, 0o700, created)
    ssh.dir.chmod(0o700)
    _keygen(ssh.client_key, f"sgemu-{lab}")
    created += [ssh.client_key, ssh.client_key.with_suffix(".pub")]
    _keygen(ssh.host_key, f"sgemu-{lab}-host")
    created += [ssh.host_key, ssh.host_key.with_suffix(".pub")]
    _write(ssh.authorized_keys, ssh.client_key.with_suffix(".pub").read_text(), 0o600, created)
    _write(ssh.sshd_config, sshd_config_text(ssh), 0o600, created)
    SSHD_PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    for ns in namespaces:
        _mkdir(NETNS_ETC / ns, 0o755, created)
        etc = NETNS_ETC / ns / "ssh"
        _mkdir(etc, 0o755, created)
        _write(etc / "ssh_config", ssh_config_text(ssh), 0o644, created)
    return created


@dataclass
class _Started:
    """One process we launched and the listeners it must open."""

    label: str
    process: subprocess.Popen[bytes]
    services: tuple[Service, ...]
    log: Path


def _spawn(ns: str, argv: list[str], label: str, services: tuple[Service, ...], log: Path) -> _Started:
    with private(log, "ab") as out:
        process = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=netns.package_env())
    return _Started(label, process, services, log)


def _check_proxy_targets(lab: str, instance: Instance, topology: Topology) -> None:
    for service in instance.services:
        if service.type != "http-proxy":
            continue
        host, _, port = (service.to or "").rpartition(":")
        if not port.isdigit() or (topology.node(host) is None and not _is_address(host)):
            raise LabError(f"lab {lab}: instance {instance.name}: http-proxy on port {service.port} "
                           f"forwards to {service.to!r}; give an instance name or address and a port, "
                           f"e.g. app:8080")


def _is_address(text: str) -> bool:
    try:
        ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def start_services(lab: str, instance: Instance, ns: str, state_dir: Path,
                   topology: Topology) -> list[int]:
    """Starts the instance's services inside `ns`, detached from our session, and waits until
    each one listens. Returns the pids to record; on failure stops what it started and raises
    a LabError naming the instance and service."""
    _check_proxy_targets(lab, instance, topology)
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    served = tuple(s for s in instance.services if s.type not in ("ssh", "ftp"))
    started: list[_Started] = []
    try:
        if served:
            started.append(_spawn(ns, _server_argv(instance, served, LabPaths(state_dir)),
                                  "service server", served, logs / f"{instance.name}.log"))
        for service in instance.services:
            if service.type == "ssh":
                started.append(_spawn_sshd(lab, instance, ns, state_dir, service, logs))
            elif service.type == "ftp":
                argv = ftp_argv(instance, service, LabPaths(state_dir).ftp / instance.name)
                started.append(_spawn(ns, argv, "ftp server (pyftpdlib)", (service,),
                                      logs / f"{instance.name}-ftp-{service.port}.log"))
        _wait_listening(lab, instance, ns, started)
    except BaseException:
        stop_services([s.process.pid for s in started])
        raise
    return [s.process.pid for s in started]


def _server_argv(instance: Instance, served: tuple[Service, ...], paths: LabPaths) -> list[str]:
    spec = json.dumps([{"type": s.type, "port": s.port, "to": s.to} for s in served])
    argv = [sys.executable, "-m", "emulator.guest.servers", "--name", instance.name, "--spec", spec]
    if any(s.type == "https" for s in served):
        cert, key = tls.issue(tls.load_ca(paths.ca), instance)
        argv += ["--tls-cert", str(cert), "--tls-key", str(key)]
    return argv


def _spawn_sshd(lab: str, instance: Instance, ns: str, state_dir: Path, service: Service,
                logs: Path) -> _Started:
    ssh = SshFiles.of(state_dir)
    if not ssh.sshd_config.is_file():
        raise LabError(f"lab {lab}: instance {instance.name}: ssh needs the lab's ssh files in "
                       f"{ssh.dir}; prepare_ssh was not run for this lab")
    if not os.access(SSHD, os.X_OK):
        raise LabError(f"lab {lab}: instance {instance.name}: ssh needs {SSHD}; install openssh-server")
    # Its own UTS namespace: logins see the instance's name as hostname, the host keeps its own.
    argv = ["unshare", "--uts", sys.executable, "-m", "emulator.guest.hostname", instance.name,
            SSHD, "-D", "-e", "-f", str(ssh.sshd_config), "-p", str(service.port)]
    return _spawn(ns, argv, "sshd", (service,), logs / f"{instance.name}-sshd-{service.port}.log")


def listening_ports(proc_net: dict[str, str]) -> set[tuple[int, int]]:
    """(transport, port) pairs bound for listening, from the text of /proc/net/{tcp,tcp6,udp,udp6}
    keyed by file name: TCP sockets in LISTEN, every bound UDP socket."""
    found: set[tuple[int, int]] = set()
    for name, text in proc_net.items():
        transport = PROTO_TCP if name.startswith("tcp") else PROTO_UDP
        for line in text.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 4 or (transport == PROTO_TCP and fields[3] != TCP_LISTEN):
                continue
            found.add((transport, int(fields[1].rpartition(":")[2], 16)))
    return found


def _same_netns(pid: int, ns: str) -> bool:
    try:
        mine, theirs = os.stat(f"/proc/{pid}/ns/net"), os.stat(f"/run/netns/{ns}")
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def _ports_seen_by(pid: int) -> set[tuple[int, int]]:
    """Listening ports in the network namespace of `pid` (/proc/<pid>/net is that namespace's)."""
    texts: dict[str, str] = {}
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            texts[name] = Path(f"/proc/{pid}/net/{name}").read_text()
        except OSError:       # no IPv6 in the namespace, or the process is gone
            continue
    return listening_ports(texts)


def _describe(service: Service) -> str:
    transport = "udp" if service.transport == PROTO_UDP else "tcp"
    return f"service {service.type} ({transport} port {service.port})"


def _log_tail(log: Path, lines: int = 3) -> str:
    try:
        tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    return " | ".join(tail)


def _wait_listening(lab: str, instance: Instance, ns: str, started: list[_Started]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    waiting = list(started)
    while waiting:
        for unit in list(waiting):
            code = unit.process.poll()
            if code is not None:
                raise LabError(
                    f"lab {lab}: instance {instance.name}: {unit.label} for "
                    f"{', '.join(map(_describe, unit.services))} exited with status {code} before "
                    f"listening: {_log_tail(unit.log) or 'no output'} (log: {unit.log})")
            pid = unit.process.pid
            if _same_netns(pid, ns):
                ports = _ports_seen_by(pid)
                if all((s.transport, s.port) in ports for s in unit.services):
                    waiting.remove(unit)
        if not waiting:
            return
        if time.monotonic() > deadline:
            missing = [s for u in waiting for s in u.services]
            raise LabError(f"lab {lab}: instance {instance.name}: "
                           f"{', '.join(map(_describe, missing))} not listening after "
                           f"{START_TIMEOUT:g} s (log: {waiting[0].log})")
        time.sleep(POLL)


def _is_ours(pid: int) -> bool:
    """Guards against pid reuse: only processes we could have started get signals."""
    argv = "\0".join(processes.cmdline(pid)).encode()
    return any(marker in argv for marker in SERVICE_MARKERS)


def stop_services(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL after a grace period; pids already gone (or reused by a process
    that is not one of our services) are ignored."""
    processes.stop([pid for pid in pids if processes.alive(pid) and _is_ours(pid)], STOP_GRACE)
