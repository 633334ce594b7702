"""`sgemu doctor`: can this machine run labs? Each check says what is wrong and how to fix it."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

from emulator import paths as host
from emulator.errors import LabError

from . import hooks, netns, state
from .lifecycle import engine_status

TOOLS = (("ip", "iproute2"), ("sysctl", "procps"), ("curl", "curl"), ("nc", "netcat-openbsd"),
         ("ping", "iputils-ping"), ("ssh", "openssh-client"), ("ssh-keygen", "openssh-client"),
         ("/usr/sbin/sshd", "openssh-server"), ("tcpdump", "tcpdump"), ("iperf3", "iperf3"))


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def checks() -> Iterator[Check]:
    root = os.geteuid() == 0
    yield Check("root", root, "running as root" if root else "labs need root: run with sudo")
    for tool, package in TOOLS:
        found = shutil.which(tool)
        yield Check(f"tool {os.path.basename(tool)}", bool(found), found or f"missing: apt-get install {package}",
                    required=tool in ("ip", "sysctl"))
    yield Check("kernel NFQUEUE", hooks.kernel_has_nfqueue(),
                "nfnetlink_queue is loaded" if hooks.kernel_has_nfqueue()
                else "no /proc/net/netfilter/nfnetlink_queue: `modprobe nfnetlink_queue`")
    if root:
        try:
            yield Check("iptables front end", True, f"{hooks.detect_frontend()} installs NFQUEUE rules "
                        "(nft's native queue is not needed: the xt NFQUEUE target is used)")
        except LabError as exc:
            yield Check("iptables front end", False, str(exc))
    labs = state.recorded_labs() if host.RUN_DIR.exists() else []
    for lab in labs:
        alive = engine_status(lab).alive
        yield Check(f"lab {lab}", alive, "engine up" if alive else
                    f"engine DOWN: its traffic is blocked (fail closed); `sgemu down --lab {lab}`",
                    required=False)
    if not labs:
        yield Check("running labs", True, "none", required=False)
    if root:
        recorded = {f"sgemu-{lab}-" for lab in labs}
        stray = sorted(ns for ns in netns.namespaces()
                       if ns.startswith("sgemu-") and not any(ns.startswith(p) for p in recorded))
        yield Check("stray namespaces", not stray,
                    "none" if not stray else f"{', '.join(stray)}: not from a recorded lab; "
                    "remove with `ip netns delete NAME`", required=False)
