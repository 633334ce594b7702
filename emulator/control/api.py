"""The daemon's live side: SG changes with EC2 API semantics, connection tables, flow logs and
counters, as control-socket operations. Runs in the engine's single thread (no locks).

Changes go to the lab's shared SecurityGroupState, so AWS semantics come from the engine: tracked
flows continue until idle, untracked flows are re-checked at their next packet, membership changes
apply to new flows. Every refusal is an AwsApiError raised before anything changed.
"""
from __future__ import annotations

import inspect
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv6Address
from itertools import islice
from pathlib import Path

from emulator.control.decisions import DecisionFeed
from emulator.engine.conntrack import ConntrackEntry
from emulator.engine.firewall import ACCEPT, EniFirewall, SecurityGroupState
from emulator.engine.flowlog import DEFAULT_FORMAT, EniIdentity, FlowLog, render
from emulator.engine.gateway import GatewayPort
from emulator.engine.packet import Packet
from emulator.engine.verdict import Verdict
from emulator.errors import AwsApiError, TopologyError
from emulator.model import (
    AWS_TIMEOUTS,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    TIMEOUT_RANGES,
    ConntrackTimeouts,
    Direction,
    Rule,
    Topology,
    protocol_name,
)
from emulator.topology import dump
from emulator.topology.rules import build_rule

# How far a change reaches into the flows the kernel fast-paths (offload): before it is
# acknowledged, the flows whose verdict it could alter are pulled back to the engine.
RECALL_NONE = "none"              # no verdict changes (new rules only add, timeouts stay the engine's)
RECALL_UNTRACKED = "untracked"    # SG rules and memberships: tracked flows survive them (AWS)
RECALL_ALL = "all"                # stateless checks (NACLs): every packet is evaluated again
RECALL_SCOPES = (RECALL_NONE, RECALL_UNTRACKED, RECALL_ALL)
# (scope, now) -> flows pulled back; installed by the daemon when offload is on.
Recall = Callable[[str, float], int]

RECENT_DROPS = 50
CLOSED_RECORDS_KEPT = 100_000

log = logging.getLogger("sgemu.engine")


def _address(version: int, value: int) -> str:
    return str(IPv4Address(value) if version == 4 else IPv6Address(value))


def permission(protocol: str, port: str | None = None, icmp_type: int | None = None,
               icmp_code: int | None = None, cidr: str | None = None, group: str | None = None,
               description: str | None = None, prefix_list: str | None = None) -> dict[str, object]:
    """A rule as CLI options give it, in the topology file's shape (validated by the engine
    with the loader's own checks, so a live rule and a file rule obey the same rules)."""
    given = {"protocol": protocol, "ports": port, "icmp_type": icmp_type, "icmp_code": icmp_code,
             "cidr": cidr, "group": group, "prefix_list": prefix_list, "description": description}
    return {k: v for k, v in given.items() if v is not None}


def entry_json(entry: ConntrackEntry, now: float) -> dict[str, object]:
    """A table entry as `sgemu conntrack` shows it (ICMP ports are the key's encoded id/kind)."""
    proto = entry.proto
    ported = proto == PROTO_TCP or proto == PROTO_UDP
    return {
        "proto": protocol_name(proto), "family": entry.version,
        "local": _address(entry.version, entry.local_addr), "local_port": entry.local_port if ported else None,
        "remote": _address(entry.version, entry.remote_addr),
        "remote_port": entry.remote_port if ported else None,
        "icmp_id": entry.local_port if proto in (PROTO_ICMP, PROTO_ICMPV6) and entry.local_port < 0x10000
        else None,
        "initiator": entry.initiator.value, "tracked": entry.tracked, "state": entry.state,
        "idle_left": round(max(0.0, entry.expires - now), 1), "age": round(now - entry.first_seen, 1),
        "packets_out": entry.packets_egress, "bytes_out": entry.bytes_egress,
        "packets_in": entry.packets_ingress, "bytes_in": entry.bytes_ingress,
        "rule": entry.rule.describe() if entry.rule is not None else None, "sg": entry.sg_id,
    }


class LabApi:
    """The engine's operations, by name: the control socket calls `handle(op, args, now)`.

    `ops` is the whole API as data (h11's dispatch-as-table habit); another part of the VPC path adds
    its operations with `add_ops` instead of growing this class."""

    def __init__(self, lab: str, topology: Topology, state: SecurityGroupState,
                 firewalls: dict[str, EniFirewall], now: float, wall_offset: float, flowlog_file: Path,
                 persist: Callable[[Topology], None]):
        self.lab = lab
        self._topology = topology
        self._state = state
        self._firewalls = firewalls
        self._wall_offset = wall_offset
        self._persist = persist
        self._timeouts = {i.name: i.conntrack for i in topology.instances}
        account, vpc_id = topology.options.account_id, topology.vpc.id
        identities = {i.name: EniIdentity.of(lab, i.name, i.subnet, account, vpc_id) for i in topology.instances}
        identities.update({n.name: EniIdentity.of_gateway(lab, n.name, n.subnet, account, vpc_id, int(n.private_ip))
                           for n in topology.nat_gateways})
        vpc = tuple(n for n in (topology.vpc.cidr, topology.vpc.ipv6_cidr) if n is not None)
        self.flowlog = FlowLog(identities, vpc, topology.options.flow_log_interval, wall_offset, now)
        self._flowlog_file = flowlog_file
        self._closed: deque[tuple[int, dict[str, str]]] = deque(maxlen=CLOSED_RECORDS_KEPT)
        self._seq = 0
        self._drops: deque[tuple] = deque(maxlen=RECENT_DROPS)
        self.decisions = DecisionFeed(wall_offset)      # live viewers' feed, off until read
        self.generation = 0                             # mutating operations done: viewers redraw on change
        self.ops: dict[str, Callable[..., object]] = {
            "authorize": self.op_authorize, "revoke": self.op_revoke, "set_sgs": self.op_set_sgs,
            "set_conntrack": self.op_set_conntrack, "export": self.op_export, "conntrack": self.op_conntrack,
            "flowlogs": self.op_flowlogs, "counters": self.op_counters,
            "decisions": self.op_decisions,
        }
        # the operations that change the lab (what a journal must keep); the rest only read
        self.mutating: set[str] = {"authorize", "revoke", "set_sgs", "set_conntrack"}
        # other parts of the VPC path put their live state into the current model (export, persist)
        self.model_parts: list[Callable[[Topology], Topology]] = []
        # what each of them pulls back from the kernel fast path (a mutating op not named: all)
        self.recall_scopes: dict[str, str] = {"authorize": RECALL_NONE, "revoke": RECALL_UNTRACKED,
                                              "set_sgs": RECALL_UNTRACKED, "set_conntrack": RECALL_NONE}
        self._recall: Recall | None = None
        self.recalled = 0
        self.gateways: dict[str, GatewayPort] = {}    # NAT gateways' ENIs (counters; the daemon sets them)

    def add_ops(self, ops: dict[str, Callable[..., object]], mutating: set[str] | frozenset[str] = frozenset(),
                recall: dict[str, str] | None = None) -> None:
        """More operations (each called as `op(now=..., **args)`); a name may be taken only once.
        `mutating` names those among them that change the lab; `recall` what each pulls back
        from the kernel fast path before it is acknowledged (RECALL_*; default RECALL_ALL)."""
        taken = set(ops) & set(self.ops)
        if taken:
            raise ValueError(f"operations defined twice: {sorted(taken)}")
        if not mutating <= set(ops):
            raise ValueError(f"mutating operations not among those added: {sorted(set(mutating) - set(ops))}")
        scopes = recall or {}
        if not set(scopes) <= set(mutating) or not set(scopes.values()) <= set(RECALL_SCOPES):
            raise ValueError(f"recall scopes must name mutating operations and be one of {RECALL_SCOPES}: {scopes}")
        self.ops.update(ops)
        self.mutating |= mutating
        self.recall_scopes.update(scopes)

    def set_recall(self, recall: Recall) -> None:
        """The offload's pull-back, called before every mutating operation that could alter the
        verdict on an offloaded flow (see RECALL_*)."""
        self._recall = recall

    # --- the packet path and the clock --------------------------------------------------------

    def observe(self, eni: str, packet: Packet, egress: bool, verdict: Verdict, now: float) -> None:
        """Called by the queue handler for every decided packet."""
        self.flowlog.record(eni, packet, egress, verdict, now)
        if verdict.action != ACCEPT:
            self._drops.append((now, eni, egress, packet.version, packet.proto, packet.src, packet.sport,
                                packet.dst, packet.dport, verdict.reason))
        if self.decisions.active:
            self.decisions.record(eni, packet, egress, verdict, now)

    def tick(self, now: float) -> None:
        """Once a second: close the flow-log interval when it is due; idle viewers' feed turns off."""
        self.decisions.expire(now)
        if not self.flowlog.due(now):
            return
        records = self.flowlog.close(now)
        if not records:
            return
        for record in records:
            self._seq += 1
            self._closed.append((self._seq, record))
        with open(self._flowlog_file, "a") as out:
            out.writelines(render(r, DEFAULT_FORMAT) + "\n" for r in records)

    # --- the current model --------------------------------------------------------------------

    def topology(self) -> Topology:
        current = self._state.topology()
        current = replace(current, instances=tuple(replace(i, conntrack=self._timeouts[i.name])
                                                   for i in current.instances))
        for part in self.model_parts:
            current = part(current)
        return current

    def changed(self) -> None:
        """Persist the current model after a change (for operations added with add_ops)."""
        self._changed()

    def _changed(self) -> None:
        try:
            self._persist(self.topology())
        except OSError as exc:      # status would show the old model; the change itself stands
            log.error("could not persist the current topology: %s", exc)

    # --- operations ---------------------------------------------------------------------------

    def handle(self, op: str, args: dict[str, object], now: float) -> object:
        handler = self.ops.get(op)
        if handler is None:
            raise AwsApiError("InvalidAction", f"unknown operation {op!r}")
        try:
            inspect.signature(handler).bind(now=now, **args)
        except TypeError as exc:
            raise AwsApiError("InvalidParameterValue", f"{op}: {exc}") from None
        if op in self.mutating:
            self._pull_back(op, now)
        result = handler(now=now, **args)
        if op in self.mutating:
            self.generation += 1
        return result

    def _pull_back(self, op: str, now: float) -> None:
        """Before the change: the engine's single thread serves no packet until it is
        acknowledged, so every packet after the change meets the engine's new state."""
        scope = self.recall_scopes.get(op, RECALL_ALL)
        if self._recall is not None and scope != RECALL_NONE:
            self.recalled += self._recall(scope, now)

    def _rules(self, sg: str, direction: Direction, permissions: list[dict]) -> tuple[list, list[str]]:
        group = self._state.group(sg)
        refs = {ref: g.id for g in self._topology.security_groups for ref in (g.name, g.id)}
        rules: list[Rule] = []
        warnings: list[str] = []
        for fields in permissions:
            ref = fields.get("group")
            if isinstance(ref, str):
                self._state.group(ref)             # InvalidGroup.NotFound for an unknown peer
            listed = fields.get("prefix_list")
            if isinstance(listed, str):
                self._state.prefix_list(listed)    # InvalidPrefixListID.NotFound for an unknown list
            try:
                rule, warned = build_rule(fields, direction, group.id, refs, self._state.vpc.dual_stack,
                                          f"{group.name} {direction.value} rule",
                                          self._state.prefix_lists_by_ref())
            except TopologyError as exc:
                raise AwsApiError("InvalidParameterValue", "; ".join(exc.problems)) from None
            rules.append(rule)
            warnings += warned
        return rules, warnings

    def op_authorize(self, now: float, sg: str, direction: str, rules: list[dict]) -> dict:
        built, warnings = self._rules(sg, Direction(direction), rules)
        self._state.authorize(sg, built)
        self._changed()
        return {"sg": self._state.group(sg).id, "rules": [r.rule_id for r in built],
                "described": [r.describe() for r in built], "warnings": warnings}

    def op_revoke(self, now: float, sg: str, direction: str, rules: list[dict]) -> dict:
        built, warnings = self._rules(sg, Direction(direction), rules)
        group = self._state.group(sg)
        gone = [next((r.rule_id for r in group.rules(b.direction) if b.same_permission(r)), b.rule_id)
                for b in built]
        self._state.revoke(sg, built)
        self._changed()
        return {"sg": group.id, "rules": gone, "described": [r.describe() for r in built],
                "warnings": warnings}

    def op_set_sgs(self, now: float, instance: str, groups: list[str]) -> dict:
        self._state.set_instance_groups(instance, groups)
        self._changed()
        return {"instance": instance, "groups": list(self._state.instance_groups(instance))}

    def op_set_conntrack(self, now: float, instance: str, **seconds: int) -> dict:
        firewall = self._firewall(instance)
        given = {k: v for k, v in seconds.items() if v is not None}
        unknown = sorted(set(given) - set(AWS_TIMEOUTS))
        if unknown or not given:
            raise AwsApiError("InvalidParameterValue", f"give one or more of {', '.join(AWS_TIMEOUTS)}"
                              + (f" (not {', '.join(unknown)})" if unknown else ""))
        for name, value in given.items():
            low, high = TIMEOUT_RANGES[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise AwsApiError("InvalidParameterValue",
                                  f"{name} {value!r} is out of range: AWS allows {low}-{high} seconds")
        timeouts: ConntrackTimeouts = replace(self._timeouts[instance], **given)
        firewall.set_timeouts(timeouts)
        self._timeouts[instance] = timeouts
        self._changed()
        return {"instance": instance, **{n: getattr(timeouts, n) for n in AWS_TIMEOUTS}}

    def _firewall(self, instance: str) -> EniFirewall:
        firewall = self._firewalls.get(instance)
        if firewall is None:
            raise AwsApiError("InvalidInstanceID.NotFound", f"The instance '{instance}' does not exist "
                              f"(instances: {', '.join(self._firewalls)})")
        return firewall

    def op_export(self, now: float) -> dict:
        return dump(self.topology())

    def op_conntrack(self, now: float, instance: str | None = None, limit: int | None = None) -> dict:
        """Each ENI's live entries; `limit` bounds what is rendered per ENI (a viewer's panel on a busy lab)."""
        names = [instance] if instance else list(self._firewalls)
        tables = {}
        for name in names:
            firewall = self._firewall(name)
            live = (e for e in firewall.table if e.expires > now)
            tables[name] = [entry_json(e, now) for e in islice(live, limit)]
        return tables

    def op_flowlogs(self, now: float, since: int = 0, current: bool = True, eni: str | None = None,
                    last: int | None = None) -> dict:
        """Closed records after `since` (optionally only `eni`'s, only the `last` ones) and the open
        interval's; the filters keep a viewer's question cheap on a busy lab."""
        closed = [r for seq, r in self._closed if seq > since and (eni is None or r["eni"] == eni)]
        if last is not None:
            closed = closed[-last:] if last > 0 else []
        return {"records": closed, "next": self._seq,
                "current": self.flowlog.current(eni) if current else [],
                "interval": self.flowlog.interval}

    def op_decisions(self, now: float, since: int = 0) -> dict:
        """The decision feed after `since` (see control/decisions.py) and the lab's generation."""
        return {**self.decisions.op_decisions(now, since), "generation": self.generation}

    def op_counters(self, now: float) -> dict:
        enis = {name: {"counters": dict(fw.counters), "tracked": fw.table.tracked,
                       "untracked": fw.table.untracked} for name, fw in self._firewalls.items()}
        enis.update({name: {"counters": dict(port.counters), "tracked": 0, "untracked": 0}
                     for name, port in self.gateways.items()})
        drops = [{"time": round(t + self._wall_offset, 3), "eni": eni,
                  "direction": "egress" if egress else "ingress", "proto": protocol_name(proto),
                  "src": _address(version, src), "sport": sport, "dst": _address(version, dst), "dport": dport,
                  "reason": reason}
                 for t, eni, egress, version, proto, src, sport, dst, dport, reason in self._drops]
        return {"enis": enis, "recent_drops": drops, "time": now + self._wall_offset}
