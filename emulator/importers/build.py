"""Inventory -> topology schema data for one VPC: names made safe, addresses placed, every rule
either carried over or listed with the reason, then validated by `topology.parse`.

Without `strict`, an item the lab cannot hold (a rule AWS would refuse, an object of another VPC, an
address AWS reserves) is left out or replaced and named in `skipped`; with it, the import is refused.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Network

from ..topology import Loaded, parse
from ..topology.network import VPC_ID
from ..topology.options import ACCOUNT_ID
from ..topology.security_groups import SG_ID
from .inventory import DEFAULT_VPC, ImportedGroup, ImportedRule, Inventory
from .json_source import ImportSourceError
from .names import LAB_NAME_MAX, Names, node_name, sg_name, sg_text
from .network import Blocks, subnet_blocks, vpc_blocks
from .placement import Placement
from .routing import routing_section
from .rules import convert, describe, permission, quotas
from .vpc_path_build import entries_missing, nacl_quota, network_acls, prefix_lists


@dataclass(frozen=True)
class ImportResult:
    data: dict                         # the topology in the YAML schema
    loaded: Loaded                     # the same, validated
    skipped: tuple[str, ...]           # what could not be carried over, each with its source and reason
    notes: tuple[str, ...]             # what was renamed, guessed or added


def build(inventory: Inventory, lab_name: str, vpc: str | None = None) -> ImportResult:
    """The topology of one VPC (`vpc`, or the only one the inputs mention, or without strict the largest)."""
    return _Builder(inventory, node_name(lab_name, LAB_NAME_MAX) or "imported").run(vpc)


class _Builder:
    def __init__(self, inventory: Inventory, lab_name: str):
        self.inv = inventory
        self.lab_name = lab_name
        self.pl_names: dict[str, str] = {}      # prefix list key -> its name in the lab

    def skip(self, message: str) -> None:
        self.inv.skipped.append(message)

    def note(self, message: str) -> None:
        self.inv.notes.append(message)

    # --- which VPC ----------------------------------------------------------------------------

    def _instance_vpcs(self) -> list[str | None]:
        """Each instance's VPC: its own, else its subnet's, else its groups'."""
        out = []
        for i in self.inv.instances:
            subnet = self.inv.subnets.get(i.subnet) if i.subnet is not None else None
            groups = (self.inv.groups[g].vpc for g in i.groups if g in self.inv.groups)
            out.append(i.vpc or (subnet.vpc if subnet is not None else None) or next((v for v in groups if v), None))
        return out

    def _choose_vpc(self, choice: str | None, instance_vpcs: list[str | None]) -> str | None:
        seen = Counter(v for v in (*(g.vpc for g in self.inv.groups.values()),
                                   *(s.vpc for s in self.inv.subnets.values()), *instance_vpcs) if v is not None)
        for v in self.inv.vpcs:
            seen.setdefault(v, 0)
        if len(seen) > 1:     # the default VPC may be any of them: its objects join the one imported
            seen.pop(DEFAULT_VPC, None)
        if choice is not None:
            if choice not in seen:
                raise ImportSourceError(f"--vpc {choice}: not in the inputs; they hold: "
                                        f"{', '.join(sorted(seen)) or 'no VPC ids'}")
            return choice
        if len(seen) <= 1:
            return next(iter(seen), None)
        counts = ", ".join(f"{v} ({n} object{'s' if n != 1 else ''})" for v, n in seen.most_common())
        if self.inv.strict:
            raise ImportSourceError(f"{', '.join(self.inv.sources)}: the inputs span {len(seen)} VPCs: {counts}; "
                                    "a lab is one VPC: choose one with --vpc")
        chosen = seen.most_common(1)[0][0]
        self.note(f"the inputs span {len(seen)} VPCs: {counts}; imported {chosen} (the most objects); "
                  "choose another with --vpc")
        return chosen

    def _in_vpc(self, vpc: str | None, chosen: str | None, what: str, where: str) -> bool:
        if vpc is None or chosen is None or vpc == chosen:
            return True
        if vpc == DEFAULT_VPC:
            self.note(f"{where}: {what} names no VPC, so it is in the region's default VPC: placed in {chosen}")
            return True
        self.skip(f"{where}: {what} is in {vpc}, not {chosen}: not carried over (a lab is one VPC; "
                  f"import that VPC with --vpc)")
        return False

    # --- rules --------------------------------------------------------------------------------

    def _rule(self, owner: str, r: ImportedRule, sg_names: dict[str, str]) -> dict | None:
        what = f"{owner}: {r.direction} {describe(r)}"
        if r.not_carried is not None:
            self.skip(f"{r.where}: {what}: not carried over: {r.not_carried}")
            return None
        try:
            out = convert(r)
        except ImportSourceError as exc:
            if self.inv.strict:
                raise
            self.skip(f"{exc}: {what} not carried over")
            return None
        if r.prefix_list is not None:
            if r.prefix_list not in self.pl_names:
                self.skip(f"{r.where}: {what}: not carried over: {entries_missing(r.prefix_list)}")
                return None
            out["prefix_list"] = self.pl_names[r.prefix_list]
        elif r.cidr is None and r.group in sg_names:
            out["group"] = sg_names[r.group]
        elif r.cidr is None:
            elsewhere = self.inv.groups.get(r.group or "")
            why = (f"{r.group} is in {elsewhere.vpc}, another VPC" if elsewhere is not None and elsewhere.vpc
                   else f"{r.group} is not in the imported security groups (add its describe-security-groups "
                        "output, or allow its members' CIDR instead)")
            self.skip(f"{r.where}: {what}: not carried over: {why}")
            return None
        if r.description:
            out["description"] = sg_text(r.description)
        return out

    def _group(self, g: ImportedGroup, name: str, sg_names: dict[str, str]) -> dict:
        out: dict[str, object] = {"name": name}
        if SG_ID.fullmatch(g.key):
            out["id"] = g.key
        elif g.key.startswith("sg-"):
            self.note(f"{g.where}: {name}: {g.key} is not an AWS group id (sg- and 8 or 17 hex digits): "
                      "sgemu generates one")
        else:
            self.note(f"{g.where}: {name}: its id is not known yet (known after apply): sgemu generates one")
        if g.description:
            out["description"] = sg_text(g.description)
            if out["description"] != g.description:
                self.note(f"{g.where}: {name}: description characters the schema does not allow replaced by '-'")
        if not g.has_rules and (g.ingress or g.egress):
            self.skip(f"{g.where}: security group {g.key} ({name}) is not in the inputs, only rules added to it: "
                      "its other rules are not carried over (add its describe-security-groups output)")
        elif not g.has_rules:
            self.skip(f"{g.where}: security group {g.key} ({name}) is attached there but its rules are not in "
                      "the inputs: imported with no rules (add its describe-security-groups output)")
        for direction, rules in (("ingress", g.ingress), ("egress", g.egress)):
            carried: list[dict] = []
            for r in rules:
                rule = self._rule(name, r, sg_names)
                if rule is None:
                    continue
                twin = next((c for c in carried if permission(c) == permission(rule)), None)
                if twin is not None:
                    self.note(f"{r.where}: {name}: {direction} {describe(r)} repeats a permission; merged")
                    continue
                carried.append(rule)
            if direction == "ingress" or carried or not g.default_egress:
                out[direction] = carried       # omitted egress: AWS's default (all out)
        return out

    # --- the whole lab ------------------------------------------------------------------------

    def run(self, choice: str | None) -> ImportResult:
        instance_vpcs = self._instance_vpcs()
        chosen = self._choose_vpc(choice, instance_vpcs)
        groups = [g for g in self.inv.groups.values()
                  if self._in_vpc(g.vpc, chosen, f"security group {g.key} ({g.name})", g.where)]
        subnets = [s for s in self.inv.subnets.values() if self._in_vpc(s.vpc, chosen, f"subnet {s.key}", s.where)]
        instances = [i for i, v in zip(self.inv.instances, instance_vpcs)
                     if self._in_vpc(v, chosen, f"instance {i.key}", i.where)]
        blocks = subnet_blocks(self.inv, subnets, instances)
        cidr, ipv6_cidr = vpc_blocks(self.inv, self.inv.vpcs.get(chosen) if chosen else None, blocks)
        sg_names = self._sg_names(groups)
        data: dict[str, object] = {"name": self.lab_name, "vpc": {"cidr": str(cidr)}}
        if chosen is not None and VPC_ID.fullmatch(chosen):    # kept, so exports round-trip
            # why the ignore below: data['vpc'] is the dict built just above
            data["vpc"]["id"] = chosen  # type: ignore[index]
        if ipv6_cidr is not None:
            # why the ignore below: data['vpc'] is the dict built just above
            data["vpc"]["ipv6_cidr"] = str(ipv6_cidr)  # type: ignore[index]
        default_subnet = self._default_subnet(blocks, cidr)
        data["subnets"] = [{"name": n, "cidr": str(v4), **({"ipv6_cidr": str(v6)} if v6 else {})}
                           for n, v4, v6 in blocks.values()]
        lists, self.pl_names = prefix_lists(self.inv, self.skip)
        if lists:
            data["prefix_lists"] = lists
        data["security_groups"] = [self._group(g, sg_names[g.key], sg_names) for g in groups]
        vpc_cidrs = tuple(str(b) for b in (cidr, ipv6_cidr) if b is not None)
        routing = routing_section(self.inv, chosen, {key: n for key, (n, _, _) in blocks.items()}, vpc_cidrs)
        data.update({k: v for k, v in routing.items() if v})
        nacls = [n for n in self.inv.nacls.values()
                 if self._in_vpc(n.vpc, chosen, f"network ACL {n.key}", n.where)]
        if nacls:
            data["network_acls"] = network_acls(self.inv, nacls, blocks, self.skip)
        place = Placement(self.inv, blocks, default_subnet, cidr, sg_names)
        place.nodes.taken.update(str(n["name"]) for n in routing["nat_gateways"])   # NAT gateways are nodes too
        data["instances"] = ([place.instance(i) for i in instances] if instances
                             else place.one_per_group(list(sg_names.values())))
        # why the ignore below: data['instances'] is the list of instance mappings built just above
        data["internet"] = [place.you(data["instances"], ipv6_cidr)]  # type: ignore[arg-type]
        options = self._options(groups, data)
        if options:
            data["options"] = options
        loaded = parse(data, f"imported topology (from {', '.join(self.inv.sources)})", self.lab_name)
        return ImportResult(data, loaded, tuple(self.inv.skipped), tuple(self.inv.notes))

    def _sg_names(self, groups: list[ImportedGroup]) -> dict[str, str]:
        sg_names: dict[str, str] = {}
        taken = Names(limit=255)
        for g in groups:
            sg_names[g.key] = sg_name(taken, g.name, g.key)
            if g.name is not None and sg_names[g.key] != g.name:
                self.note(f"{g.where}: security group {g.key} GroupName {g.name!r} is named "
                          f"{sg_names[g.key]!r} (the schema allows a-z A-Z 0-9 space ._-:/()#,@[]+=;{{}}!$*)")
        return sg_names

    def _options(self, groups: list[ImportedGroup], data: dict) -> dict[str, object]:
        out: dict[str, object] = {}
        owners = Counter(g.owner for g in groups if g.owner)
        if owners:
            account, _ = owners.most_common(1)[0]
            if ACCOUNT_ID.fullmatch(account):
                out["account_id"] = account      # exports print it as OwnerId, flow logs as account-id
            else:
                self.note(f"OwnerId {account!r} is not a 12-digit AWS account id: the lab uses its default account")
            if len(owners) > 1:
                self.note(f"the groups belong to {len(owners)} accounts ({', '.join(owners)}): the lab is {account}'s")
        needed = quotas(data)
        if (nacl_rules := nacl_quota(data.get("network_acls", []))) is not None:
            needed["rules_per_nacl"] = nacl_rules
        if needed:
            out["quotas"] = needed
            self.note(f"options.quotas {needed}: raised above AWS's defaults to fit the imported rules "
                      "(the account must have these quota increases)")
        return out

    def _default_subnet(self, blocks: Blocks, cidr: IPv4Network) -> str:
        """Where instances without a subnet go: the first subnet, or a new /24 when there is none."""
        if blocks:
            return next(iter(blocks))
        free = next(cidr.subnets(new_prefix=max(24, cidr.prefixlen)))
        blocks["imported"] = ("imported", free, None)
        self.note(f"subnet imported ({free}) added: the inputs hold no subnet")
        return "imported"

