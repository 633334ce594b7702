"""The live lab: `up` builds it from a LabPlan (rolling back on any failure or interrupt),
`down` tears it down from recorded state, `status` reports it, `exec_argv` runs inside it."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from emulator.errors import LabError, PermissionRequired
from emulator.model import PROTO_TCP, Instance, Topology
from emulator.paths import NETNS_ETC
from emulator.plan import LabPlan, build_plan
from emulator.routes import NatGateway

from . import cleanup, dns, hooks, netns, state, supervisor, tls
from .services import prepare_ssh, start_services
from .state import LabState

REQUIRED_TOOLS = ("ip", "sysctl")
READY_TIMEOUT = 15.0
SERVICE_STARTERS = 16           # instances whose services start at the same time
HEALTH_STALE = 5.0              # seconds without a health update before the engine counts as down

Progress = Callable[[str], None]


@dataclass(frozen=True)
class NodeStatus:
    name: str
    kind: str                   # instance | internet | nat gateway
    namespace: str
    private_ip: str | None = None
    public_ip: str | None = None
    ipv6: str | None = None
    security_groups: tuple[str, ...] = ()
    tcp_ports: tuple[int, ...] = ()       # where its services listen


@dataclass(frozen=True)
class EngineStatus:
    alive: bool
    pid: int | None
    started: float | None
    counters: dict[str, int] = field(default_factory=dict)     # summed over ENIs
    enis: dict[str, dict] = field(default_factory=dict)         # per instance: counters, flows
    offloaded: int | None = None                                # flows the kernel fast-paths now
    restarts: int = 0                                           # by the supervisor since `up`
    last_reason: str | None = None                              # why the engine last died
    supervisor: str = "not running"                             # watching | restarting | gave up | ...
    closed_because: str | None = None                           # why the lab stays closed for good
    replayed_changes: int = 0                                   # by the running engine at its start
    restored_flows: int = 0


@dataclass(frozen=True)
class LabStatus:
    lab: str
    source: str
    frontend: str | None
    fabric: str
    engine: EngineStatus
    nodes: tuple[NodeStatus, ...]
    offload: bool = True        # established flows take the kernel fast path

    @property
    def offload_text(self) -> str:
        if not self.offload:
            return "offload off"
        flows = self.engine.offloaded
        return "offload on" + (f" ({flows} flows in the kernel)" if self.engine.alive and flows is not None else "")


def _require_root() -> None:
    if os.geteuid() != 0:
        raise PermissionRequired("building a lab touches namespaces and netfilter: run as root (sudo)")


def _require_tools() -> None:
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)}; install iproute2 and procps")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """During `up`, SIGTERM rolls back like Ctrl-C does."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:          # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    try:
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:          # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _build_network(plan: LabPlan, record: LabState, progress: Progress) -> None:
    progress(f"namespaces: {len(plan.namespaces)}")
    # Recorded all at once before any is created: teardown removes only those that exist and
    # carry the lab's marker (`up` has refused names that already existed).
    record.add_namespaces([ns.name for ns in plan.namespaces])
    for ns in plan.namespaces:
        netns.add_namespace(ns.name)
    directories = [NETNS_ETC / ns.name for ns in plan.nodes]
    left = next((d for d in directories if d.exists()), None)
    if left is not None:
        raise LabError(f"{left} already exists (left by an earlier run?); remove it and retry")
    record.add_netns_dirs(directories)
    for ns, directory in zip(plan.nodes, directories):
        directory.mkdir(parents=True)
        (directory / "hosts").write_text(ns.hosts)
    dns.write_node_files(plan, NETNS_ETC)
    progress(f"links: {len(plan.veths)} veth pairs")
    for veth in plan.veths:
        netns.add_veth(plan.fabric.name, veth, plan.marker)
    for ns in plan.namespaces:
        netns.configure(ns)


def _start_resolvers(topology: Topology, plan: LabPlan, record: LabState, progress: Progress) -> None:
    progress("dns: dnsmasq at the VPC's base + 2" + (" and for the internet" if topology.internet else ""))
    record.paths.logs.mkdir(parents=True, exist_ok=True)
    for role, pid in dns.start_resolvers(topology, plan, record.paths.logs):
        record.add_pid(role, pid)


def _trust_lab_ca(plan: LabPlan, record: LabState, progress: Progress) -> None:
    progress("tls: the lab's CA, trusted in every lab namespace")
    ca = tls.create_ca(record.lab, record.paths.ca)
    for ns in plan.nodes:
        tls.install_trust(ca, NETNS_ETC / ns.name)


def _start_engine(record: LabState, standby: bool, progress: Progress) -> None:
    """Start the lab's supervisor (emulator/lab/supervisor.py), which starts the engine and keeps
    it running (with a standby engine unless `standby` is off); return once the engine has bound
    every queue."""
    progress("engine: binding queues")
    paths = record.paths
    with state.private(paths.logs / "supervisor.log", "ab") as out:
        # umask 077: everything the engine writes in the state directory is root's alone.
        process = subprocess.Popen([sys.executable, "-m", supervisor.SUPERVISOR_MODULE, record.lab,
                                    *([] if standby else [supervisor.NO_STANDBY])],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True, env=netns.package_env(), umask=0o077)
    record.add_pid("supervisor", process.pid)
    deadline = time.monotonic() + READY_TIMEOUT
    while not paths.ready.exists():
        if process.poll() is not None:
            tail = (paths.logs / "engine.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise LabError(f"the engine exited during start-up: "
                           f"{tail[0] if tail else 'no output'} (log: {paths.logs / 'engine.log'})")
        if time.monotonic() > deadline:
            raise LabError(f"the engine did not bind its queues within {READY_TIMEOUT:g} s "
                           f"(log: {paths.logs / 'engine.log'})")
        time.sleep(0.05)


def _start_services(topology: Topology, plan: LabPlan, record: LabState, progress: Progress) -> None:
    with_services = [i for i in topology.instances if i.services]
    if not with_services:
        return
    progress(f"services: {sum(len(i.services) for i in with_services)} on {len(with_services)} instances")
    if any(s.type == "ssh" for i in with_services for s in i.services):
        prepare_ssh(record.lab, record.paths.root, [ns.name for ns in plan.nodes])
    # Started side by side (each mostly waits for its listeners): a lab of 1000 sshds starts in
    # seconds, not minutes. A failure stops the rest; teardown kills whatever runs in the lab.
    with ThreadPoolExecutor(max_workers=SERVICE_STARTERS) as pool:
        started = {inst.name: pool.submit(start_services, record.lab, inst, plan.namespace(inst.name).name,
                                          record.paths.root, topology) for inst in with_services}
        pids: dict[str, int] = {}
        try:
            for name, future in started.items():
                pids.update({f"service:{name}:{n}": pid for n, pid in enumerate(future.result())})
        finally:
            for future in started.values():
                future.cancel()
            record.add_pids(pids)


def up(topology: Topology, progress: Progress = lambda message: None, enforce: bool = True) -> LabStatus:
    """Build and enforce the lab; returns once every hook is served. On any failure or
    interrupt, removes everything it created and re-raises. `enforce=False` (the benchmark's
    baseline only) installs no SG hook at all."""
    _require_root()
    _require_tools()
    lab = topology.name
    if state.paths(lab).root.exists():
        raise LabError(f"lab {lab!r} is already running (or was left behind); "
                       f"run `sgemu down --lab {lab}` first")
    plan = build_plan(topology, enforce)
    clash = sorted({ns.name for ns in plan.namespaces} & netns.namespaces())
    if clash:
        raise LabError(f"namespaces already exist: {', '.join(clash)}; they are not from a recorded lab, "
                       f"remove them with `ip netns delete`")
    frontend = hooks.detect_frontend()
    record = state.create(lab, plan.marker, topology.source, topology)
    try:
        with _sigterm_interrupts():
            _build_network(plan, record, progress)
            _start_resolvers(topology, plan, record, progress)
            _trust_lab_ca(plan, record, progress)
            progress(f"hooks: {frontend}, {len(plan.enis)} ENIs on one queue")
            record.frontend = frontend
            record.save()
            hooks.install(plan, frontend)
            _start_engine(record, topology.options.standby, progress)
            _start_services(topology, plan, record, progress)
    except BaseException:
        progress("failed: rolling back")
        with _signals_ignored():     # a second Ctrl-C must not leave half a lab behind
            cleanup.teardown(record)
        raise
    return status(lab)


def wait_foreground(lab: str) -> None:
    """Block until Ctrl-C or SIGTERM (then tear down), or until the lab is downed elsewhere."""
    with _sigterm_interrupts():
        try:
            while state.paths(lab).state.exists():
                time.sleep(0.5)
        finally:
            down(lab)


def down(lab: str) -> list[str]:
    """Tear a lab down from its recorded state; idempotent. Returns what was left alone."""
    _require_root()
    record = state.load(lab) or cleanup.recovered(lab)
    return cleanup.teardown(record)


def running_labs() -> list[str]:
    return state.recorded_labs()


def resolve_lab(name: str | None) -> str:
    labs = running_labs()
    if name is not None:
        if name not in labs:
            raise LabError(f"no lab named {name!r} is running" + (f" (running: {', '.join(labs)})" if labs else ""))
        return name
    if not labs:
        raise LabError("no lab is running; start one with `sgemu up FILE`")
    if len(labs) > 1:
        raise LabError(f"several labs are running ({', '.join(labs)}); choose one with --lab")
    return labs[0]


def engine_status(lab: str) -> EngineStatus:
    paths = state.paths(lab)
    pid = state.read_pid(paths.engine_pid)
    health = state.read_health(lab) or {}
    fresh = time.time() - health.get("updated", 0) < HEALTH_STALE
    alive = pid is not None and cleanup.is_engine(pid, lab) and fresh
    enis = health.get("enis", {})
    counters: dict[str, int] = {}
    for eni in enis.values():
        for key, value in eni.get("counters", {}).items():
            counters[key] = counters.get(key, 0) + value
    account = supervisor.read_account(paths) or {}
    watching = account.get("state", "not running")
    if watching not in ("gave up", "stopped") and not any(cleanup.is_supervisor(p, lab)
                                                          for p in [account.get("pid", 0)] if p):
        watching = "not running"
    return EngineStatus(alive, pid, health.get("started"), counters, enis, health.get("offloaded_flows"),
                        account.get("restarts", 0), account.get("last_reason"), watching, account.get("gave_up"),
                        health.get("replayed_changes", 0), health.get("restored_flows", 0))


def _node_status(topology: Topology, plan: LabPlan, node: str) -> NodeStatus:
    found = topology.node(node)
    if found is None:
        raise LabError(f"lab {topology.name!r} has no node {node!r}")
    namespace = plan.namespace(node).name
    if isinstance(found, Instance):
        groups = tuple(topology.sg(g).name if topology.find_sg(g) else g for g in found.security_groups)
        return NodeStatus(node, "instance", namespace, str(found.private_ip),
                          str(found.public_ip) if found.public_ip else None,
                          str(found.ipv6) if found.ipv6 else None, groups,
                          tuple(sv.port for sv in found.services if sv.transport == PROTO_TCP))
    return NodeStatus(node, "internet", namespace, None, str(found.ip) if found.ip else None,
                      str(found.ipv6) if found.ipv6 else None)


def _gateway_status(plan: LabPlan, nat: NatGateway) -> NodeStatus:
    return NodeStatus(nat.name, "nat gateway", plan.namespace(nat.name).name, str(nat.private_ip), str(nat.public_ip))


def status(lab: str) -> LabStatus:
    record = state.load(lab)
    if record is None:
        raise LabError(f"no lab named {lab!r} is running")
    topology = state.load_topology(lab)
    plan = build_plan(topology)
    nodes = tuple(_node_status(topology, plan, ns.node) for ns in plan.nodes) + \
        tuple(_gateway_status(plan, nat) for nat in topology.nat_gateways)
    return LabStatus(lab, record.source, record.frontend, plan.fabric.name, engine_status(lab), nodes,
                     topology.options.offload)


def lab_plan(lab: str) -> LabPlan:
    return build_plan(state.load_topology(lab))


def exec_argv(lab: str, node: str, argv: list[str], own_hostname: bool = False) -> list[str]:
    """argv running `argv` inside NODE's namespace, with the lab's /etc/netns files applied;
    `own_hostname` also gives it NODE's name as hostname (a shell prompt shows where you are)."""
    plan = lab_plan(lab)
    try:
        ns = plan.namespace(node)
    except KeyError:
        names = ", ".join(n.node for n in plan.nodes)
        raise LabError(f"lab {lab!r} has no node {node!r} (nodes: {names})") from None
    if ns.role == "fabric":
        raise LabError(f"{node!r} is the VPC fabric, not an instance or internet host")
    if own_hostname:
        argv = ["unshare", "--uts", sys.executable, "-m", "emulator.guest.hostname", node, *argv]
    return netns.exec_argv(ns.name, argv)
