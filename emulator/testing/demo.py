"""`sgemu demo`: bring the built-in labs up one after the other (the three-tier chain, then the
classic ports), try every hop with real clients, tear down.

Each attempt is a real `curl`, `ssh` or `nc` run inside a namespace; its outcome is read from the
client's own exit status and message, timed, and set beside the engine's prediction (`explain`).
"""
from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from emulator.explain import explain
from emulator.lab import lifecycle as labs
from emulator.model import Topology

# Shipped as package data, so `sgemu demo` works from any directory and from an installed wheel.
DEFAULT_TOPOLOGY = Path(str(files("emulator") / "topologies" / "three-tier.yaml"))
CLASSIC_TOPOLOGY = Path(str(files("emulator") / "topologies" / "classic-ports.yaml"))
NAT_TOPOLOGY = Path(str(files("emulator") / "topologies" / "three-tier-nat.yaml"))
CLIENT_TIMEOUT = 3          # seconds each real client waits before giving up


@dataclass(frozen=True)
class Attempt:
    src: str
    dst: str
    port: int
    client: str             # curl (http) | https | ftp (a passive listing, control on 21) | ssh | nc
    story: str              # what the audience should take from it
    private: bool = False   # dial DST's private IP instead of its name (which resolves per source)

    def argv(self, address: str, ipv4: bool = False) -> list[str]:
        """The client's command line; `ipv4` pins it to IPv4 (what the prediction explains) where the
        name also has an IPv6 address the client would otherwise prefer."""
        t = str(CLIENT_TIMEOUT)
        four = ["-4"] if ipv4 else []
        if self.client in ("curl", "https"):
            scheme = "http" if self.client == "curl" else "https"
            return ["curl", *four, "-sS", "-o", "/dev/null", "-w", "HTTP %{http_code}", "--connect-timeout", t,
                    "-m", t, f"{scheme}://{address}:{self.port}/"]
        if self.client == "ftp":       # self.port is the port explained: 21, or a passive data port
            return ["curl", *four, "-sS", "-o", "/dev/null", "-w", "%{num_connects} connections, FTP %{response_code}",
                    "--connect-timeout", t, "-m", t, f"ftp://{address}/"]
        if self.client == "ssh":
            return ["ssh", *four, "-o", f"ConnectTimeout={t}", "-p", str(self.port), address, "hostname"]
        return ["nc", *four, "-v", "-N", "-w", t, address, str(self.port)]

    @property
    def title(self) -> str:
        return f"{self.src} -> {self.dst}:{self.port} ({self.client})"


THREE_TIER = (
    Attempt("you", "alb", 80, "curl", "HTTP from the internet to the load balancer"),
    Attempt("stranger", "alb", 443, "curl", "443 is allowed but nothing listens: the kernel answers RST"),
    Attempt("you", "alb", 22, "ssh", "sshd runs on alb, but alb-sg has no rule for 22: silent drop"),
    Attempt("alb", "app", 8080, "curl", "allowed by an SG reference (alb-sg -> app-sg)"),
    Attempt("app", "db", 3306, "nc", "db answers although db-sg has no outbound rules: tracked reply"),
    Attempt("alb", "db", 3306, "nc", "alb-sg has no egress to 3306, and db-sg only admits app-sg"),
    Attempt("stranger", "db", 3306, "nc", "db has no public IP: even its private address leads nowhere "
            "from the internet", private=True),
    Attempt("db", "app", 8080, "curl", "db-sg has no outbound rules: db can never initiate"),
    Attempt("app", "alb", 80, "curl", "app-sg allows only 3306 out"),
)


CLASSIC = (
    Attempt("you", "web", 443, "https", "a real TLS server: curl verifies the lab CA's certificate, no -k"),
    Attempt("stranger", "web", 443, "https", "443 is open to all; the certificate names web's public DNS "
            "name and IP too"),
    Attempt("stranger", "web", 22, "ssh", "SSH is for the admin's address only: silent drop"),
    Attempt("you", "files", 21, "ftp", "passive FTP: the control connection on 21, then a data connection "
            "to 50000-50100, both allowed for you"),
    Attempt("stranger", "files", 50000, "ftp", "the classic symptom: the control connection logs in, the "
            "passive data connection (50000-50100) is dropped, the listing never comes"),
)
NAT = (
    Attempt("app", "updates", 443, "nc", "app has no public IP: its SYN leaves through nat-a, whose Elastic IP "
            "198.51.100.50 is what updates sees; updates runs no server, so its kernel's RST comes back the "
            "same way: reached"),
    Attempt("db", "updates", 443, "nc", "db-sg allows 443 out, but data-rt has only the local route: the packet "
            "is discarded silently"),
    Attempt("you", "app", 22, "ssh", "app-sg allows 22 from anywhere, yet the internet has no way in: app has "
            "no public IP and nat-a forwards nothing inward", private=True),
    Attempt("alb", "app", 8080, "curl", "inside the VPC the local route carries everything"),
)
ACTS = ((DEFAULT_TOPOLOGY, THREE_TIER, "internet -> alb 80/443 -> app 8080 -> db 3306"),
        (CLASSIC_TOPOLOGY, CLASSIC, "https with the lab's CA, ssh for one address, ftp control and data"),
        (NAT_TOPOLOGY, NAT, "private subnets with route tables: out through a NAT gateway, never in"))


@dataclass(frozen=True)
class Observed:
    outcome: str            # open | refused | timeout
    seconds: float
    detail: str


def classify(client: str, returncode: int, output: str) -> str:
    """A real client's result in the contract's words (curl: exit 7 is a failed connect, which
    after an instant means RST; 28 is its timeout)."""
    if returncode == 0:
        return "open"
    if "refused" in output.lower() or (client in ("curl", "https", "ftp") and returncode == 7):
        return "refused"
    return "timeout"


def attempt(lab: str, step: Attempt, address: str, ipv4: bool = False) -> Observed:
    argv = labs.exec_argv(lab, step.src, step.argv(address, ipv4))
    started = time.monotonic()
    done = subprocess.run(argv, input="", capture_output=True, text=True,
                          timeout=CLIENT_TIMEOUT + 5)
    seconds = time.monotonic() - started
    output = (done.stderr if done.returncode else done.stdout + "\n" + done.stderr).strip()
    return Observed(classify(step.client, done.returncode, output), seconds,
                    output.splitlines()[-1] if output else f"exit {done.returncode}")


def run(topology: Topology, show: Callable[[Attempt, str, Observed, str, str], None],
        progress: Callable[[str], None], steps: tuple[Attempt, ...] = THREE_TIER) -> int:
    """Up, every attempt, down. Returns how many real outcomes disagreed with the engine."""
    status = labs.up(topology, progress)
    disagreements = 0
    try:
        for step in steps:
            # a lab's internet hosts run no server: one that is reached answers RST
            outside = topology.node(step.dst) in topology.internet
            predicted = explain(topology, step.src, step.dst, step.port, listening=False if outside else None)
            address = str(topology.instance(step.dst).private_ip) if step.private else step.dst
            src, dst = topology.node(step.src), topology.node(step.dst)
            dual = not step.private and all(n is not None and n.ipv6 is not None for n in (src, dst))
            seen = attempt(status.lab, step, address, dual)
            disagreements += seen.outcome != predicted.outcome
            show(step, " ".join(step.argv(address, dual)), seen, predicted.outcome, predicted.why)
    finally:
        progress("tearing the lab down")
        labs.down(status.lab)
    return disagreements
