"""The lab's network ACLs, live: entries and associations changed with EC2 API semantics.

One SubnetGate per subnet, shared with the queue handlers; a change reloads the affected gates in
place, so it applies to the next packet of every flow, open or not (NACLs are stateless). Every
refusal is an AwsApiError raised before anything changed. Error codes: EC2 API Reference,
"Error codes for the Amazon EC2 API" (NetworkAclEntryAlreadyExists, NetworkAclEntryLimitExceeded,
InvalidNetworkAclEntry.NotFound, InvalidNetworkAclID.NotFound).
"""
from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_network

from emulator.errors import AwsApiError
from emulator.ids import nacl_id_for
from emulator.model import DEFAULT_NACL, NACL_ALLOW, PROTO_ALL, Direction, NaclEntry, NetworkAcl, Topology

from .nacl import SubnetGate
from .packet import Packet
from .verdict import Verdict

_EVERYWHERE = {4: "0.0.0.0/0", 6: "::/0"}


def allow_all(topology: Topology) -> NetworkAcl:
    """The default NACL of a model that declares none (AWS's untouched default)."""
    entries = {d: tuple(NaclEntry(100 + n, d, NACL_ALLOW, PROTO_ALL, ip_network(_EVERYWHERE[v]))
                        for n, v in enumerate((4, 6) if topology.vpc.dual_stack else (4,)))
               for d in Direction}
    return NetworkAcl(DEFAULT_NACL, nacl_id_for(DEFAULT_NACL), (), entries[Direction.INGRESS],
                      entries[Direction.EGRESS])


class NaclState:
    def __init__(self, topology: Topology):
        self._topology = topology
        self._limit = topology.options.quotas.rules_per_nacl
        nacls = topology.network_acls or (allow_all(topology),)
        self._nacls: dict[str, NetworkAcl] = {n.id: n for n in nacls}
        self._names = {n.name: n.id for n in nacls}
        default = self._names.get(DEFAULT_NACL, nacls[0].id)
        self._default = default
        self._association: dict[str, str] = {}
        for subnet in topology.subnets:
            explicit = next((n.id for n in nacls if subnet.name in n.subnets), None)
            self._association[subnet.name] = explicit or default
        dns = int(topology.vpc.dns_ip)
        self.gates: dict[str, SubnetGate] = {
            s: SubnetGate(s, self._nacls[n], dns) for s, n in self._association.items()}
        self.version = 0

    # --- reads ------------------------------------------------------------------------------

    def nacl(self, ref: str) -> NetworkAcl:
        """A NACL by id or name."""
        found = self._nacls.get(self._names.get(ref, ref))
        if found is None:
            raise AwsApiError("InvalidNetworkAclID.NotFound", f"The networkAcl ID '{ref}' does not exist "
                              f"(known: {', '.join(sorted(self._names))})")
        return found

    def gate(self, subnet: str) -> SubnetGate:
        """The boundary of `subnet` (instances, and any other node in it such as a NAT gateway)."""
        return self.gates[subnet]

    def check(self, subnet: str, packet: Packet, outbound: bool) -> Verdict:
        return self.gates[subnet].check(packet, outbound)

    def network_acls(self) -> tuple[NetworkAcl, ...]:
        """The current NACLs, each listing the subnets associated with it (the default NACL lists
        none: it takes every subnet no other NACL lists)."""
        return tuple(replace(n, subnets=() if n.id == self._default else
                             tuple(s for s, a in self._association.items() if a == n.id))
                     for n in self._nacls.values())

    def association(self, subnet: str) -> NetworkAcl:
        return self._nacls[self._association[subnet]]

    def topology(self, base: Topology) -> Topology:
        """`base` with the current NACLs (a model that declared none keeps declaring none while
        nothing changed)."""
        if not self._topology.network_acls and self.version == 0:
            return base
        return replace(base, network_acls=self.network_acls())

    # --- changes (each all-or-nothing) ------------------------------------------------------

    def create_entry(self, ref: str, entry: NaclEntry) -> NetworkAcl:
        nacl = self.nacl(ref)
        entries = nacl.entries(entry.direction)
        if any(e.rule_number == entry.rule_number for e in entries):
            raise AwsApiError("NetworkAclEntryAlreadyExists",
                              f"The network acl entry identified by {entry.rule_number} already exists "
                              f"({nacl.id} {_bound(entry.direction)})")
        family = sum(1 for e in entries if e.cidr.version == entry.cidr.version)
        if family + 2 > self._limit:       # the new entry and the `*` rule
            raise AwsApiError("NetworkAclEntryLimitExceeded",
                              f"{nacl.id} already has {family} IPv{entry.cidr.version} {_bound(entry.direction)} "
                              f"rules; with the `*` rule the limit is {self._limit}")
        return self._store(nacl, entry.direction, (*entries, entry))

    def replace_entry(self, ref: str, entry: NaclEntry) -> NetworkAcl:
        nacl = self.nacl(ref)
        entries = nacl.entries(entry.direction)
        old = self._find(nacl, entry.direction, entry.rule_number)
        if old.cidr.version != entry.cidr.version:
            family = sum(1 for e in entries if e.cidr.version == entry.cidr.version)
            if family + 2 > self._limit:
                raise AwsApiError("NetworkAclEntryLimitExceeded",
                                  f"{nacl.id} already has {family} IPv{entry.cidr.version} "
                                  f"{_bound(entry.direction)} rules; with the `*` rule the limit is {self._limit}")
        return self._store(nacl, entry.direction, tuple(entry if e is old else e for e in entries))

    def delete_entry(self, ref: str, direction: Direction, rule_number: int) -> NetworkAcl:
        nacl = self.nacl(ref)
        old = self._find(nacl, direction, rule_number)
        return self._store(nacl, direction, tuple(e for e in nacl.entries(direction) if e is not old))

    def associate(self, ref: str, subnet: str) -> tuple[str, str]:
        """ReplaceNetworkAclAssociation: the subnet moves to `ref`; returns (old id, new id)."""
        nacl = self.nacl(ref)
        if subnet not in self._association:
            raise AwsApiError("InvalidSubnetID.NotFound", f"The subnet ID '{subnet}' does not exist "
                              f"(subnets: {', '.join(self._association)})")
        old = self._association[subnet]
        self._association[subnet] = nacl.id
        self.gates[subnet].load(nacl)
        self.version += 1
        return old, nacl.id

    def _find(self, nacl: NetworkAcl, direction: Direction, number: int) -> NaclEntry:
        found = next((e for e in nacl.entries(direction) if e.rule_number == number), None)
        if found is None:
            raise AwsApiError("InvalidNetworkAclEntry.NotFound",
                              f"The network acl entry identified by {number} does not exist "
                              f"({nacl.id} {_bound(direction)})")
        return found

    def _store(self, nacl: NetworkAcl, direction: Direction, entries: tuple[NaclEntry, ...]) -> NetworkAcl:
        ordered = tuple(sorted(entries, key=lambda e: e.rule_number))
        changed = replace(nacl, ingress=ordered) if direction is Direction.INGRESS else replace(nacl, egress=ordered)
        self._nacls[nacl.id] = changed
        for subnet, nacl_id in self._association.items():
            if nacl_id == nacl.id:
                self.gates[subnet].load(changed)
        self.version += 1
        return changed


def _bound(direction: Direction) -> str:
    return "inbound" if direction is Direction.INGRESS else "outbound"
