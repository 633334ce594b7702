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

# (program, Debian/Ubuntu package, needed to run a lab at all?)
TOOLS = (("ip", "iproute2", True), ("sysctl", "procps", True), ("iptables-restore", "iptables", True),
         ("unshare", "util-linux", True), ("dnsmasq", "dnsmasq-base", True), ("openssl", "openssl", True),
         ("curl", "curl", False), ("dig", "bind9-dnsutils", False), ("sftp", "openssh-client", False),
         ("nc", "netcat-openbsd", False), ("ping", "iputils-ping", False), ("ssh", "openssh-client", False),
         ("ssh-keygen", "openssh-client", False),
         ("/usr/sbin/sshd", "openssh-server", False), ("tcpdump", "tcpdump", False), ("iperf3", "iperf3", False),
         ("dot", "graphviz", False), ("ab", "apache2-utils", False), ("busybox", "busybox", False))


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def checks() -> Iterator[Check]:
    root = os.geteuid() == 0
    yield Check("root", root, "running as root" if root else "labs need root: run with sudo")
    missing: list[str] = []
    for tool, package, required in TOOLS:
        found = shutil.which(tool)
        if not found and package not in missing:
            missing.append(package)
        yield Check(f"tool {os.path.basename(tool)}", bool(found), found or f"missing: apt-get install {package}",
                    required=required)
    binding = _nfqueue_binding()
    if binding is not None:
        missing.append("libnetfilter-queue1")
    yield Check("NetfilterQueue binding", binding is None, binding or "the engine's NFQUEUE binding loads")
    yield Check("system packages", not missing, "every package sgemu uses is installed" if not missing else
                f"install what is missing with: apt-get install -y {' '.join(missing)}", required=False)
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
        engine = engine_status(lab)
        restarts = f"; {engine.restarts} restarts, last: {engine.last_reason}" if engine.last_reason else ""
        if engine.alive:
            detail = f"engine up, supervisor {engine.supervisor}{restarts}"
        elif engine.closed_because:
            detail = (f"engine DOWN, the supervisor gave up: {engine.closed_because}; its traffic is blocked "
                      f"(fail closed); `sgemu down --lab {lab}`")
        else:
            detail = (f"engine DOWN (supervisor {engine.supervisor}{restarts}): its traffic is blocked "
                      f"(fail closed); `sgemu down --lab {lab}`")
        yield Check(f"lab {lab}", engine.alive and engine.supervisor == "watching", detail, required=False)
    if not labs:
        yield Check("running labs", True, "none", required=False)
    if root:
        recorded = {f"sgemu-{lab}-" for lab in labs}
        stray = sorted(ns for ns in netns.namespaces()
                       if ns.startswith("sgemu-") and not any(ns.startswith(p) for p in recorded))
        yield Check("stray namespaces", not stray,
                    "none" if not stray else f"{', '.join(stray)}: not from a recorded lab; "
                    "remove with `ip netns delete NAME`", required=False)


def _nfqueue_binding() -> str | None:
    """Why the engine's NFQUEUE binding cannot load, or None when it can."""
    try:
        import netfilterqueue  # noqa: F401  (only whether it loads matters here)
    except ImportError as exc:
        return f"the NetfilterQueue module does not load ({exc}): apt-get install -y libnetfilter-queue1"
    return None
