"""The per-ENI NFQUEUE hooks in the fabric namespace: which iptables front end works on this
kernel, and the atomic install (one restore per table and family, never rule by rule).

The kernel may lack nft's native `queue` expression; `iptables-nft` then still reaches the
NFQUEUE target through xt compat, and `iptables-legacy` uses it directly. Which one works is
checked for real, in a throwaway namespace.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from emulator.errors import LabError
from emulator.plan import LabPlan

from . import netns

FRONTENDS = ("iptables-nft", "iptables-legacy")
NFQUEUE_PROC = Path("/proc/net/netfilter/nfnetlink_queue")
_PROBE_RULES = "*mangle\n-A PREROUTING -i lo -j NFQUEUE --queue-num 1\nCOMMIT\n"


def restore_command(frontend: str, family: int) -> str:
    """iptables-nft -> iptables-nft-restore / ip6tables-nft-restore."""
    return frontend.replace("iptables", "ip6tables" if family == 6 else "iptables", 1) + "-restore"


def kernel_has_nfqueue() -> bool:
    """nfnetlink_queue is there (built in, or loadable: a module kernel loads it on first use only)."""
    if not NFQUEUE_PROC.exists() and shutil.which("modprobe"):
        netns.run(["modprobe", "-q", "nfnetlink_queue"], check=False)
    return NFQUEUE_PROC.exists()


def _works(frontend: str) -> bool:
    if not all(shutil.which(restore_command(frontend, f)) for f in (4, 6)):
        return False
    ns = f"sgemu-probe-{os.getpid()}"
    netns.add_namespace(ns)
    try:
        return all(netns.run(netns.exec_argv(ns, [restore_command(frontend, f)]),
                             stdin=_PROBE_RULES, check=False).returncode == 0 for f in (4, 6))
    finally:
        netns.delete_namespace(ns)


def detect_frontend() -> str:
    """The first iptables front end that installs an NFQUEUE rule in a namespace, for real."""
    if not kernel_has_nfqueue():
        raise LabError("this kernel has no NFQUEUE support (nfnetlink_queue); sgemu cannot enforce SGs")
    for frontend in FRONTENDS:
        if _works(frontend):
            return frontend
    raise LabError("neither iptables-nft nor iptables-legacy can install an NFQUEUE rule here; "
                   "install the iptables package (with xt NFQUEUE support)")


# iptables-restore input is our rule text: names, addresses, marks and options, nothing else.
RULE_LINE = re.compile(r"[A-Za-z0-9 ._:/,*+!\[\]-]*")


def install(plan: LabPlan, frontend: str) -> None:
    """Each table in one restore: the kernel swaps it in atomically."""
    bad = [line for rs in plan.rulesets for line in rs.text.splitlines() if not RULE_LINE.fullmatch(line)]
    if bad:
        raise ValueError(f"refusing iptables-restore input {bad!r}: only names and addresses may reach iptables")
    for ruleset in plan.rulesets:
        where = ruleset.namespace or plan.fabric.name
        netns.run(netns.exec_argv(where, [restore_command(frontend, ruleset.family)]), stdin=ruleset.text)
