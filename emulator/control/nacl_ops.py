"""Live network-ACL and prefix-list operations for the control socket, with EC2 API semantics.

NACL changes go to the lab's NaclState (the gates the queue handlers hold), so they apply to the
next packet of every flow, open or not: NACLs are stateless. Before such an operation is applied
(so before the CLI hears "done"), LabApi pulls every offloaded flow back from the kernel (its
recall scope RECALL_ALL); a prefix-list change pulls back the untracked ones (SG semantics).
Prefix-list changes go to the SG state, where every referencing rule
follows at once with SG semantics (tracked flows survive, untracked ones are re-checked).
Refusals are AwsApiErrors raised before anything changed.
"""
from __future__ import annotations

from collections.abc import Callable
from ipaddress import ip_network

from emulator.engine.naclstate import NaclState
from emulator.engine.sgstate import SecurityGroupState
from emulator.errors import AwsApiError, TopologyError
from emulator.ids import nacl_association_id_for
from emulator.importers.export import nacl_json
from emulator.model import (
    NACL_RULE_MAX,
    Direction,
    IPNetwork,
    NaclEntry,
    NetworkAcl,
    PrefixList,
    PrefixListEntry,
    Topology,
)
from emulator.topology.nacls import build_entry

from .api import RECALL_ALL, RECALL_UNTRACKED, LabApi

MUTATING = frozenset({"nacl_create_entry", "nacl_replace_entry", "nacl_delete_entry", "nacl_associate",
                      "prefix_list_modify"})


def entry_fields(rule_number: int, rule_action: str | None, protocol: str | None, port: str | None,
                 icmp_type: int | None, icmp_code: int | None, cidr: str | None) -> dict[str, object]:
    """An entry as CLI options give it, in the topology file's shape (checked by the loader's code)."""
    given = {"rule": rule_number, "action": rule_action, "protocol": protocol, "ports": port,
             "icmp_type": icmp_type, "icmp_code": icmp_code, "cidr": cidr}
    return {k: v for k, v in given.items() if v is not None}


association_id = nacl_association_id_for


class NaclOps:
    def __init__(self, api: LabApi, nacls: NaclState, sgs: SecurityGroupState, topology: Topology):
        self._api = api
        self._nacls = nacls
        self._sgs = sgs
        self._dual_stack = topology.vpc.dual_stack
        self._subnets = [s.name for s in topology.subnets]
        self.ops: dict[str, Callable[..., object]] = {
            "nacl_create_entry": self.op_create_entry, "nacl_replace_entry": self.op_replace_entry,
            "nacl_delete_entry": self.op_delete_entry, "nacl_associate": self.op_associate,
            "nacl_describe": self.op_describe, "prefix_list_modify": self.op_prefix_list_modify,
            "prefix_list_describe": self.op_prefix_list_describe,
        }

    def install(self) -> None:
        """Add the operations to the lab's API (the journal sees the mutating ones)."""
        self._api.add_ops(self.ops, mutating=MUTATING, recall={
            **dict.fromkeys(MUTATING, RECALL_ALL), "prefix_list_modify": RECALL_UNTRACKED})
        self._api.model_parts.append(self._nacls.topology)

    def _entry(self, nacl: str, rule_number: int, egress: bool, fields: dict[str, object]) -> NaclEntry:
        found = self._nacls.nacl(nacl)        # InvalidNetworkAclID.NotFound comes first
        if isinstance(rule_number, bool) or not isinstance(rule_number, int) or \
                not 1 <= rule_number <= NACL_RULE_MAX:
            raise AwsApiError("InvalidParameterValue", f"rule number {rule_number!r} is out of range: "
                              f"use 1-{NACL_RULE_MAX} (32767 and up are AWS's own)")
        missing = [name for name, key in (("--rule-action", "action"), ("--protocol", "protocol"),
                                          ("--cidr", "cidr")) if key not in fields]
        if missing:
            raise AwsApiError("MissingParameter", f"{', '.join(missing)} required for an entry of {found.id}")
        direction = Direction.EGRESS if egress else Direction.INGRESS
        try:
            return build_entry(fields, direction, self._dual_stack, f"{found.name} {direction.value} entry")
        except TopologyError as exc:
            raise AwsApiError("InvalidParameterValue", "; ".join(exc.problems)) from None

    def _done(self, nacl: NetworkAcl, what: str, entry: NaclEntry | None) -> dict[str, object]:
        self._api.changed()
        return {"nacl": nacl.id, "name": nacl.name, "done": what,
                "entry": entry.describe() if entry is not None else None}

    def op_create_entry(self, now: float, nacl: str, rule_number: int, egress: bool, **fields: object) -> dict:
        # why the ignore below: the fields come from the control protocol and entry_fields validates each
        entry = self._entry(nacl, rule_number, egress, entry_fields(rule_number, **fields))  # type: ignore[arg-type]
        return self._done(self._nacls.create_entry(nacl, entry), "created", entry)

    def op_replace_entry(self, now: float, nacl: str, rule_number: int, egress: bool, **fields: object) -> dict:
        # why the ignore below: the fields come from the control protocol and entry_fields validates each
        entry = self._entry(nacl, rule_number, egress, entry_fields(rule_number, **fields))  # type: ignore[arg-type]
        return self._done(self._nacls.replace_entry(nacl, entry), "replaced", entry)

    def op_delete_entry(self, now: float, nacl: str, rule_number: int, egress: bool) -> dict:
        direction = Direction.EGRESS if egress else Direction.INGRESS
        before = self._nacls.nacl(nacl)
        gone = next((e for e in before.entries(direction) if e.rule_number == rule_number), None)
        return self._done(self._nacls.delete_entry(nacl, direction, rule_number), "deleted", gone)

    def op_associate(self, now: float, nacl: str, subnet: str) -> dict:
        old, new = self._nacls.associate(nacl, subnet)
        result = self._done(self._nacls.nacl(new), "associated", None)
        result.update({"subnet": subnet, "previous": old, "NewAssociationId": association_id(new, subnet)})
        return result

    def op_describe(self, now: float, nacl: str | None = None) -> dict:
        chosen = [self._nacls.nacl(nacl)] if nacl else None
        out = []
        default = self._nacls.association  # subnet -> its NACL
        for current in self._nacls.network_acls():
            if chosen is not None and current.id != chosen[0].id:
                continue
            subnets = [s for s in self._subnets if default(s).id == current.id]
            out.append(nacl_json(current, subnets, current.name == "default", self._dual_stack))
        return {"NetworkAcls": out}

    def op_prefix_list_modify(self, now: float, prefix_list: str, add: list[dict] | None = None,
                              remove: list[str] | None = None) -> dict:
        if not add and not remove:
            raise AwsApiError("MissingParameter", "give an entry to add or to remove")
        added = [PrefixListEntry(_cidr(e.get("cidr")), str(e.get("description") or "")) for e in add or []]
        removed = [_cidr(c) for c in remove or []]
        changed = self._sgs.modify_prefix_list(prefix_list, added, removed)
        self._api.changed()
        return {"prefix_list": changed.id, "name": changed.name, "entries": [str(c) for c in changed.cidrs],
                "max_entries": changed.max_entries}

    def op_prefix_list_describe(self, now: float) -> dict:
        lists: tuple[PrefixList, ...] = self._sgs.topology().prefix_lists
        return {"PrefixLists": [{"PrefixListId": pl.id, "PrefixListName": pl.name, "MaxEntries": pl.max_entries,
                                 "AddressFamily": f"IPv{pl.family}",
                                 "Entries": [{"Cidr": str(e.cidr), "Description": e.description}
                                             for e in pl.entries]} for pl in lists]}


def _cidr(value: object) -> IPNetwork:
    try:
        return ip_network(str(value), strict=False)
    except ValueError:
        raise AwsApiError("InvalidParameterValue", f"{value!r} is not a CIDR (e.g. 203.0.113.0/24)") from None
