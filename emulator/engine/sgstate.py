"""The lab-wide live Security Group world: rules and memberships, changed with EC2 API semantics.

Shared by every EniFirewall of a lab. Each change bumps `version`; firewalls recompile their
rules lazily when they see it move, so a change applies to the very next packet.
"""
from __future__ import annotations

from dataclasses import replace

from emulator.errors import AwsApiError
from emulator.ids import rule_id_for as rule_id
from emulator.model import Direction, Instance, IPNetwork, PrefixList, PrefixListEntry, Rule, SecurityGroup, Topology


class SecurityGroupState:
    def __init__(self, topology: Topology):
        self._topology = topology
        self.vpc = topology.vpc
        self._quotas = topology.options.quotas
        self._groups: dict[str, SecurityGroup] = {
            g.id: replace(g, ingress=self._with_ids(g.id, g.ingress), egress=self._with_ids(g.id, g.egress))
            for g in topology.security_groups}
        self._names = {g.name: g.id for g in topology.security_groups}
        self._instances: dict[str, Instance] = {i.name: i for i in topology.instances}
        self._instance_groups: dict[str, tuple[str, ...]] = {
            i.name: i.security_groups for i in topology.instances}
        self._members: dict[tuple[str, int], frozenset[int]] = {}
        self._prefix_lists: dict[str, PrefixList] = {pl.id: pl for pl in topology.prefix_lists}
        self._pl_names = {pl.name: pl.id for pl in topology.prefix_lists}
        self._prefix_entries: dict[tuple[str, int], tuple[tuple[int, int], ...]] = {}
        self.version = 0

    @staticmethod
    def _with_ids(sg_id: str, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        return tuple(r if r.rule_id else replace(r, rule_id=rule_id(sg_id, r)) for r in rules)

    def _changed(self) -> None:
        self._members.clear()
        self._prefix_entries.clear()
        self.version += 1

    def _weight(self, rule: Rule) -> tuple[int, int]:
        """(family, quota cost): group rules one IPv4 rule, prefix-list rules their max_entries (AWS)."""
        if rule.prefix_list is not None:
            found = self._prefix_lists.get(rule.prefix_list)
            return (found.family, found.max_entries) if found is not None else (4, 1)
        return (rule.cidr.version if rule.cidr is not None else 4), 1

    # --- reads ------------------------------------------------------------------------------

    def group(self, ref: str) -> SecurityGroup:
        """An SG by id or name."""
        group = self._groups.get(self._names.get(ref, ref))
        if group is None:
            raise AwsApiError("InvalidGroup.NotFound", f"The security group '{ref}' does not exist "
                              f"(known: {', '.join(sorted(self._names))})")
        return group

    def instance_groups(self, instance: str) -> tuple[str, ...]:
        """The SG ids on the instance's ENI now."""
        return self._instance_groups[instance]

    def groups_of(self, instance: str) -> tuple[SecurityGroup, ...]:
        return tuple(self._groups[g] for g in self._instance_groups[instance])

    def member_addresses(self, sg_id: str, version: int) -> frozenset[int]:
        """Private addresses of one family of the ENIs in `sg_id` (never public IPs)."""
        key = (sg_id, version)
        found = self._members.get(key)
        if found is None:
            found = frozenset(int(address) for name, groups in self._instance_groups.items()
                              if sg_id in groups for address in self._instances[name].addresses
                              if address.version == version)
            self._members[key] = found
        return found

    def members(self, sg_id: str) -> frozenset[int]:
        """Private IPv4 and IPv6 addresses (as ints) of the ENIs in `sg_id`."""
        return self.member_addresses(sg_id, 4) | self.member_addresses(sg_id, 6)

    def prefix_list(self, ref: str) -> PrefixList:
        """A prefix list by id or name."""
        found = self._prefix_lists.get(self._pl_names.get(ref, ref))
        if found is None:
            raise AwsApiError("InvalidPrefixListID.NotFound", f"The prefix list ID '{ref}' does not exist "
                              f"(known: {', '.join(sorted(self._pl_names)) or 'none'})")
        return found

    def prefix_lists_by_ref(self) -> dict[str, PrefixList]:
        return {ref: pl for pl in self._prefix_lists.values() for ref in (pl.name, pl.id)}

    def prefix_entries(self, pl_id: str, version: int) -> tuple[tuple[int, int], ...]:
        """(network, mask) of the list's current entries of that family (what rules compile)."""
        key = (pl_id, version)
        found = self._prefix_entries.get(key)
        if found is None:
            pl = self._prefix_lists.get(pl_id)
            found = () if pl is None else tuple((int(e.cidr.network_address), int(e.cidr.netmask))
                                                 for e in pl.entries if e.cidr.version == version)
            self._prefix_entries[key] = found
        return found

    def topology(self) -> Topology:
        """The current state as a model (for export)."""
        return replace(self._topology, prefix_lists=tuple(self._prefix_lists.values()),
                       security_groups=tuple(self._groups[g.id] for g in self._topology.security_groups),
                       instances=tuple(replace(i, security_groups=self._instance_groups[i.name])
                                       for i in self._topology.instances))

    # --- changes (each all-or-nothing) ------------------------------------------------------

    def _resolved(self, rule: Rule) -> Rule:
        """The rule with a group or prefix-list reference given by name turned into its id."""
        if rule.prefix_list is not None:
            return replace(rule, prefix_list=self.prefix_list(rule.prefix_list).id)
        if rule.group is None:
            return rule
        return replace(rule, group=self.group(rule.group).id)

    def authorize(self, sg_ref: str, rules: list[Rule]) -> None:
        group = self.group(sg_ref)
        added: list[Rule] = []
        for rule in map(self._resolved, rules):
            if any(rule.same_permission(r) for r in (*group.rules(rule.direction), *added)):
                raise AwsApiError("InvalidPermission.Duplicate",
                                  f"the specified rule \"{rule.describe()}\" already exists in {group.id}")
            added.append(rule if rule.rule_id else replace(rule, rule_id=rule_id(group.id, rule)))
        for rule in added:
            if rule.prefix_list is not None:
                self.prefix_list(rule.prefix_list)      # InvalidPrefixListID.NotFound
        for direction in Direction:
            for family in (4, 6):
                count = sum(n for f, n in (self._weight(r) for r in (*group.rules(direction), *added)
                                           if r.direction is direction) if f == family)
                if count > self._quotas.rules_per_sg:
                    raise AwsApiError("RulesPerSecurityGroupLimitExceeded",
                                      f"{group.id} would have {count} IPv{family} {direction.value} rules; "
                                      f"the limit is {self._quotas.rules_per_sg}")
        self._groups[group.id] = replace(
            group,
            ingress=group.ingress + tuple(r for r in added if r.direction is Direction.INGRESS),
            egress=group.egress + tuple(r for r in added if r.direction is Direction.EGRESS))
        self._changed()

    def revoke(self, sg_ref: str, rules: list[Rule]) -> None:
        group = self.group(sg_ref)
        doomed: list[Rule] = []
        for rule in map(self._resolved, rules):
            existing = next((r for r in group.rules(rule.direction) if rule.same_permission(r)), None)
            if existing is None:
                raise AwsApiError("InvalidPermission.NotFound",
                                  f"the specified rule \"{rule.describe()}\" does not exist in {group.id}")
            doomed.append(existing)
        self._groups[group.id] = replace(
            group,
            ingress=tuple(r for r in group.ingress if r not in doomed),
            egress=tuple(r for r in group.egress if r not in doomed))
        self._changed()

    def set_instance_groups(self, instance: str, sg_refs: list[str]) -> None:
        """ModifyInstanceAttribute --groups: replace the SGs of the instance's ENI."""
        if instance not in self._instances:
            raise AwsApiError("InvalidInstanceID.NotFound", f"The instance '{instance}' does not exist")
        ids = tuple(dict.fromkeys(self.group(ref).id for ref in sg_refs))
        if not ids:
            raise AwsApiError("MissingParameter", "an ENI needs at least one security group")
        if len(ids) > self._quotas.sgs_per_eni:
            raise AwsApiError("SecurityGroupsPerInterfaceLimitExceeded",
                              f"{len(ids)} security groups; the limit per ENI is {self._quotas.sgs_per_eni}")
        self._instance_groups[instance] = ids
        self._changed()

    def modify_prefix_list(self, ref: str, add: list[PrefixListEntry], remove: list[IPNetwork]) -> PrefixList:
        """ModifyManagedPrefixList: removals apply before additions; every referencing rule follows at
        once (what open flows do then follows the SG rules: tracked flows survive, untracked ones are
        re-checked at their next packet). [CHOICE] refusals the API reference leaves unnamed are
        InvalidParameterValue."""
        pl = self.prefix_list(ref)
        current = {e.cidr: e for e in pl.entries}
        for cidr in remove:
            if cidr not in current:
                raise AwsApiError("InvalidParameterValue", f"{cidr} is not an entry of {pl.id} ({pl.name})")
            del current[cidr]
        for entry in add:
            if entry.cidr.version != pl.family and (pl.entries or current):
                raise AwsApiError("InvalidParameterValue", f"{entry.cidr} is IPv{entry.cidr.version} but "
                                  f"{pl.id} ({pl.name}) is an IPv{pl.family} prefix list")
            if entry.cidr in current:
                raise AwsApiError("InvalidParameterValue", f"{entry.cidr} is already an entry of {pl.id} ({pl.name})")
            current[entry.cidr] = entry
        if len(current) > pl.max_entries:
            raise AwsApiError("InvalidParameterValue", f"{pl.id} ({pl.name}) would have {len(current)} entries; "
                              f"its max_entries is {pl.max_entries}")
        family = next(iter(current.values())).cidr.version if current else pl.family
        changed = replace(pl, entries=tuple(current.values()), family=family)
        self._prefix_lists[pl.id] = changed
        self._changed()
        return changed
