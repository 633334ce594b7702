"""The lab-wide live Security Group world: rules and memberships, changed with EC2 API semantics.

Shared by every EniFirewall of a lab. Each change bumps `version`; firewalls recompile their
rules lazily when they see it move, so a change applies to the very next packet.
"""
from __future__ import annotations

from dataclasses import replace

from emulator.errors import AwsApiError
from emulator.ids import rule_id_for as rule_id
from emulator.model import Direction, Instance, Rule, SecurityGroup, Topology


def _family(rule: Rule) -> int:
    """Quota family: group references count as IPv4 (AWS)."""
    return rule.cidr.version if rule.cidr is not None else 4


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
        self.version = 0

    @staticmethod
    def _with_ids(sg_id: str, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
        return tuple(r if r.rule_id else replace(r, rule_id=rule_id(sg_id, r)) for r in rules)

    def _changed(self) -> None:
        self._members.clear()
        self.version += 1

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

    def topology(self) -> Topology:
        """The current state as a model (for export)."""
        return replace(self._topology,
                       security_groups=tuple(self._groups[g.id] for g in self._topology.security_groups),
                       instances=tuple(replace(i, security_groups=self._instance_groups[i.name])
                                       for i in self._topology.instances))

    # --- changes (each all-or-nothing) ------------------------------------------------------

    def _resolved(self, rule: Rule) -> Rule:
        """The rule with a group reference given by name turned into the SG id."""
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
        for direction in Direction:
            for family in (4, 6):
                count = sum(1 for r in (*group.rules(direction), *added)
                            if r.direction is direction and _family(r) == family)
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
