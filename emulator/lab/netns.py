"""Namespaces, veths, addresses, routes and sysctls through iproute2 (one `ip -batch` per
namespace), and the few queries cleanup and status need."""
from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path

import emulator
from emulator.errors import LabError
from emulator.plan import Namespace, Veth


def run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a tool; a failure becomes a LabError naming the command and its stderr."""
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(argv)}` failed: {detail[-1] if detail else f'exit {result.returncode}'}")
    return result


def package_env() -> dict[str, str]:
    """Environment for our own `python -m emulator...` children (engine, servers): the package stays
    importable when sgemu runs from a source tree rather than an installed copy."""
    root = str(Path(emulator.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """`ip netns exec` applies the /etc/netns/<ns> bind mounts (the lab's hosts file)."""
    return ["ip", "netns", "exec", ns, *argv]


# Defence in depth behind topology validation: what reaches `ip` is our names and addresses only.
NAMESPACE = re.compile(r"sgemu-[a-z0-9][a-z0-9-]*")
BATCH_LINE = re.compile(r"[A-Za-z0-9 ._:/@-]+")


def _checked_namespace(name: str) -> str:
    if not NAMESPACE.fullmatch(name):
        raise ValueError(f"refusing namespace name {name!r}: not an sgemu-<lab>-<node> name")
    return name


def batch(ns: str, commands: list[str], family: int = 0, tolerate: bool = False) -> None:
    """One `ip -batch` run; every line is checked, so no topology string can add a command.
    `family` 6 runs `ip -6` (`ip rule` does not infer IPv6 from its addresses); `tolerate` runs
    every line even when one fails (removing what may be gone already)."""
    bad = [c for c in commands if not BATCH_LINE.fullmatch(c)]
    if bad:
        raise ValueError(f"refusing ip -batch input {bad!r}: only names and addresses may reach ip")
    if commands:
        run(["ip", *(["-6"] if family == 6 else []), *(["-force"] if tolerate else []), "-n",
             _checked_namespace(ns), "-batch", "-"], stdin="\n".join(commands) + "\n", check=not tolerate)


def namespaces() -> set[str]:
    out = run(["ip", "-j", "netns", "list"], check=False).stdout.strip()
    return {entry["name"] for entry in json.loads(out)} if out else set()


def add_namespace(name: str) -> None:
    run(["ip", "netns", "add", _checked_namespace(name)])
    batch(name, ["link set lo up"])


def delete_namespace(name: str) -> None:
    run(["ip", "netns", "delete", name], check=False)


def links(ns: str) -> list[dict]:
    """`ip -j link` of a namespace (each with ifname and, when set, ifalias)."""
    result = run(["ip", "-n", ns, "-j", "link", "show"], check=False)
    return json.loads(result.stdout) if result.returncode == 0 and result.stdout.strip() else []


def pids(ns: str) -> list[int]:
    return pids_in([ns]).get(ns, [])


def pids_in(names: list[str]) -> dict[str, list[int]]:
    """Processes inside each named namespace, found in one pass over /proc (what `ip netns pids`
    does per namespace: a lab of 1000 namespaces would scan /proc a thousand times)."""
    wanted: dict[tuple[int, int], str] = {}
    for name in names:
        try:
            found = os.stat(NETNS_RUN / name)
        except OSError:
            continue
        wanted[(found.st_dev, found.st_ino)] = name
    inside: dict[str, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            found = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:         # gone, or a kernel thread
            continue
        owner = wanted.get((found.st_dev, found.st_ino))
        if owner is not None:
            inside.setdefault(owner, []).append(int(entry.name))
    return inside


NETNS_RUN = Path("/run/netns")      # where `ip netns add` mounts a namespace
_PEER_IN_TRANSIT = "sgemu-peer"     # the peer's name until it moves to its namespace


def add_veth(fabric: str, veth: Veth, marker: str) -> None:
    """Created inside the fabric, so the root namespace never holds an end; both ends are
    marked in the same `ip` run that creates them (cleanup deletes only marked namespaces, so
    an interrupt between creating and marking would strand them), then the peer moves."""
    batch(fabric, [f"link add {veth.device} type veth peer name {_PEER_IN_TRANSIT}",
                   f"link set {veth.device} alias {marker}",
                   f"link set {_PEER_IN_TRANSIT} alias {marker}",
                   f"link set {_PEER_IN_TRANSIT} netns {veth.peer_ns} name {veth.peer}"])


def configure(ns: Namespace) -> None:
    """Sysctls, then links up, addresses and routes, in that order."""
    if ns.sysctls:
        run(exec_argv(ns.name, ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in ns.sysctls)]))
    commands = [f"link set {dev} up" for dev in ns.devices]
    commands += [f"addr add {a.cidr} dev {a.dev}{' nodad' if a.nodad else ''}" for a in ns.addresses]
    commands += [f"route add {' '.join(r.args())}" for r in ns.routes]
    batch(ns.name, commands)
    for family in (4, 6):
        batch(ns.name, [f"rule add {rule}" for rule in ns.rules if (":" in rule) == (family == 6)], family)
