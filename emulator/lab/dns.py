"""The lab's DNS, served by dnsmasq in the fabric namespace.

AWS: the Amazon DNS server (Route 53 Resolver) answers at the VPC's base + 2, at 169.254.169.253
and, on Nitro, at fd00:ec2::253 (docs.aws.amazon.com/vpc/latest/userguide/AmazonDNS-concepts.html);
security groups do not filter traffic to or from it, and neither do network ACLs
(docs.aws.amazon.com/vpc/latest/userguide/vpc-network-acls.html: "Amazon DNS" is among the traffic
NACLs do not filter). Inside the VPC an instance's public DNS name resolves to its private IP.

Two views, one dnsmasq each, on addresses of the fabric's lo (traffic to the fabric itself never
meets the engine's queues):
  vpc       instance names and ip-A-B-C-D.ec2.internal -> private IPs (and IPv6), ec2-...
            public names -> private IPs, internet hosts -> their addresses
  internet  instance names and public names -> public IPs (and IPv6), internet hosts -> theirs
Nothing is forwarded: a name outside the lab is NXDOMAIN, and no upstream server is ever asked.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from emulator.errors import LabError
from emulator.ids import PRIVATE_DOMAIN, private_dns_name, public_dns_name
from emulator.model import Topology
from emulator.plan import INTERNET_DNS, VPC_DNS_LINK_LOCAL, VPC_DNS_V6, LabPlan

from . import netns
from .state import private

DNSMASQ = "dnsmasq"
DNS_PORT = 53
TTL = 60                       # seconds, as the Resolver gives EC2 names
NSSWITCH = Path("/etc/nsswitch.conf")
START_TIMEOUT = 10.0
STARTED = "started, version"  # dnsmasq logs it once its sockets are bound


@dataclass(frozen=True)
class HostRecord:
    names: tuple[str, ...]     # the first is what a reverse lookup answers
    ipv4: str | None
    ipv6: str | None

    def option(self) -> str:
        return f"--host-record={','.join(self.names)},{self.ipv4 or ''},{self.ipv6 or ''},{TTL}"


@dataclass(frozen=True)
class ResolverView:
    name: str                  # vpc | internet
    listen: tuple[str, ...]    # addresses on the fabric's lo
    records: tuple[HostRecord, ...]

    def argv(self, dnsmasq: str) -> list[str]:
        # Logs go to stderr, which `start_resolvers` points at a root-only file it opened: given a log
        # file, dnsmasq would hand it to its unprivileged user and make it group-readable.
        return [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--no-poll", "--bind-interfaces", *(f"--listen-address={a}" for a in self.listen),
                f"--port={DNS_PORT}", "--pid-file=", "--log-facility=-", "--log-queries",
                "--domain-needed", "--bogus-priv", "--local=/#/", *(r.option() for r in self.records)]


def _str(address: object) -> str | None:
    return str(address) if address is not None else None


def vpc_view(topology: Topology) -> ResolverView:
    listen = [str(topology.vpc.dns_ip), str(VPC_DNS_LINK_LOCAL)]
    if topology.vpc.ipv6_cidr is not None:
        listen.append(str(VPC_DNS_V6))
    records = [HostRecord((private_dns_name(i.private_ip), i.name,
                           *([public_dns_name(i.public_ip)] if i.public_ip is not None else [])),
                          str(i.private_ip), _str(i.ipv6)) for i in topology.instances]
    records += [HostRecord((h.name,), _str(h.ip), _str(h.ipv6)) for h in topology.internet]
    return ResolverView("vpc", tuple(listen), tuple(records))


def internet_view(topology: Topology) -> ResolverView:
    records = [HostRecord((public_dns_name(i.public_ip), i.name), str(i.public_ip), _str(i.ipv6))
               for i in topology.instances if i.public_ip is not None]
    records += [HostRecord((i.name,), None, str(i.ipv6))
                for i in topology.instances if i.public_ip is None and i.ipv6 is not None]
    records += [HostRecord((h.name,), _str(h.ip), _str(h.ipv6)) for h in topology.internet]
    return ResolverView("internet", (str(INTERNET_DNS),), tuple(records))


def views(topology: Topology) -> tuple[ResolverView, ...]:
    """The resolvers a lab runs: the VPC's when it has instances, the internet's when an internet
    host has IPv4 (an IPv6-only one reads names from its hosts file)."""
    found = []
    if topology.instances:
        found.append(vpc_view(topology))
    if any(h.ip is not None for h in topology.internet):
        found.append(internet_view(topology))
    return tuple(found)


def resolv_conf(nameservers: tuple[str, ...], instance: bool, ipv6: bool = True) -> str:
    """A node's resolv.conf. A node without IPv6 asks for no AAAA records (glibc >= 2.36 `no-aaaa`),
    so a client tries only the addresses it can use and a dropped SYN reads as the timeout it is,
    not as "Network is unreachable" from an IPv6 address it could never reach."""
    lines = ["# sgemu: the lab's DNS (see `sgemu plan`); nothing outside the lab is resolved"]
    lines += [f"nameserver {a}" for a in nameservers]
    if instance:           # the VPC's default DHCP options: domain-name ec2.internal
        lines.append(f"search {PRIVATE_DOMAIN}")
    lines.append("options timeout:2 attempts:2" + ("" if ipv6 else " no-aaaa"))
    return "\n".join(lines) + "\n"


def nsswitch_text(host_text: str) -> str:
    """The host's nsswitch.conf with hosts from files then DNS only: no mDNS, no
    systemd-resolved (which would answer from the host's namespace)."""
    lines = [line for line in host_text.splitlines() if not line.strip().startswith("hosts:")]
    return "\n".join([*lines, "hosts:          files dns"]) + "\n"


def write_node_files(plan: LabPlan, netns_etc: Path) -> None:
    """resolv.conf and nsswitch.conf in /etc/netns/<ns>/ of every node with a resolver (the
    directories exist and are recorded for removal)."""
    try:
        host_nsswitch = NSSWITCH.read_text()
    except OSError:
        host_nsswitch = ""
    for ns in plan.nodes:
        if not ns.nameservers:
            continue
        ipv6 = any(a.family == 6 for a in ns.addresses)
        (netns_etc / ns.name / "resolv.conf").write_text(resolv_conf(ns.nameservers, ns.role == "instance", ipv6))
        (netns_etc / ns.name / "nsswitch.conf").write_text(nsswitch_text(host_nsswitch))


def require_dnsmasq() -> str:
    found = shutil.which(DNSMASQ) or next((p for p in ("/usr/sbin/dnsmasq",) if Path(p).exists()), None)
    if found is None:
        raise LabError("the lab's DNS needs dnsmasq; install dnsmasq-base (scripts/setup does)")
    return found


def start_resolvers(topology: Topology, plan: LabPlan, logs: Path) -> list[tuple[str, int]]:
    """Starts each view's dnsmasq in the fabric and waits until it serves; returns (role, pid)
    pairs to record. A dnsmasq that exits or stays silent is a LabError naming its log."""
    dnsmasq = require_dnsmasq()
    started: list[tuple[str, int]] = []
    for view in views(topology):
        log = logs / f"dns-{view.name}.log"
        with private(log, "ab") as out:     # its own start-up errors; dnsmasq then logs here too
            process = subprocess.Popen(netns.exec_argv(plan.fabric.name, view.argv(dnsmasq)),
                                       stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
        started.append((f"dns:{view.name}", process.pid))
        _wait_started(view, process, log)
    return started


def _wait_started(view: ResolverView, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if STARTED in text:
            return
        if process.poll() is not None:
            tail = text.strip().splitlines()[-1:]
            raise LabError(f"the lab's {view.name} DNS (dnsmasq on {', '.join(view.listen)}) exited with "
                           f"status {process.returncode}: {tail[0] if tail else 'no output'} (log: {log})")
        if time.monotonic() > deadline:
            raise LabError(f"the lab's {view.name} DNS did not start within {START_TIMEOUT:g} s (log: {log})")
        time.sleep(0.05)
