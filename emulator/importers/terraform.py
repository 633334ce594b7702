"""`sgemu import terraform`: `terraform show -json` of a plan (planned_values, resource_changes with
after_unknown, configuration) or of a state (values.root_module, child_modules included).

Values a plan knows only after apply are explained. References between resources that are unknown
in a plan (security_group_id = aws_security_group.web.id) are resolved through the configuration's
expression references, following module input variables one level up at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from ipaddress import IPv4Network

from .build import ImportResult, build
from .inventory import ImportedInstance, ImportedRule, ImportedSubnet, ImportedVpc, Inventory
from .json_source import JsonValue, read_json

SHAPE = "give the output of `terraform show -json PLANFILE` or `terraform show -json` (state)"
PLACEHOLDER_PUBLIC = IPv4Network("198.51.100.128/25")


@dataclass
class _Module:
    """A module instance: its address prefix, its configuration, and how its caller set its variables."""

    prefix: str                                     # "" or "module.net."
    config: dict
    parent: _Module | None = None
    call: dict = field(default_factory=dict)        # the caller's module_calls.<name>.expressions


@dataclass
class _Resource:
    address: str
    type: str
    values: JsonValue
    unknown: dict
    module: _Module

    @property
    def key(self) -> str:
        known = self.values.value.get("id") if isinstance(self.values.value, dict) else None
        return known if isinstance(known, str) and known else self.address

    def expression(self, *path: str | int) -> object:
        """The configuration expression of an attribute (path through nested blocks)."""
        config = next((r for r in self.module.config.get("resources", [])
                       if self.address.startswith(self.module.prefix + r.get("address", "\0"))), {})
        node: object = config.get("expressions", {})
        for step in path:
            if isinstance(node, dict) and isinstance(step, str):
                node = node.get(step)
            elif isinstance(node, list) and isinstance(step, int) and step < len(node):
                node = node[step]
            else:
                return None
        return node

    def is_unknown(self, *path: str | int) -> bool:
        node: object = self.unknown
        for step in path:
            if node is True:
                return True
            if isinstance(node, dict) and isinstance(step, str):
                node = node.get(step)
            elif isinstance(node, list) and isinstance(step, int) and step < len(node):
                node = node[step]
            else:
                return False
        return node is True or (isinstance(node, list) and any(n is True for n in node))


class _Reader:
    def __init__(self, doc: JsonValue):
        self.doc = doc
        self.inv = Inventory(sources=[doc.source])
        self.resources: list[_Resource] = []
        self.publics = (str(a) for a in PLACEHOLDER_PUBLIC.hosts())

    # --- resources of a plan or a state -------------------------------------------------------

    def collect(self) -> None:
        config = self.doc.get("configuration")
        root_config = config.value.get("root_module", {}) if config is not None and isinstance(config.value, dict) \
            else {}
        if self.doc.has("planned_values"):
            unknown = {c.value.get("address"): (c.value.get("change") or {}).get("after_unknown") or {}
                       for c in self.doc.items("resource_changes") if isinstance(c.value, dict)}
            self._walk(self.doc.need("planned_values").need("root_module"), _Module("", root_config), unknown)
        elif self.doc.has("values"):
            self._walk(self.doc.need("values").need("root_module"), _Module("", root_config), {})
        else:
            self.doc.fail("has neither planned_values (a plan) nor values (a state)", SHAPE)

    def _walk(self, module: JsonValue, context: _Module, unknown: dict) -> None:
        for r in module.items("resources"):
            if r.text("mode", "managed") != "managed":
                continue
            address = r.need_text("address")
            self.resources.append(_Resource(address, r.need_text("type"), r.need("values"),
                                            unknown.get(address, {}), context))
        for child in module.items("child_modules"):
            address = child.need_text("address")                      # module.net or module.net["a"]
            name = address.rsplit("module.", 1)[-1].split("[")[0]
            call = context.config.get("module_calls", {}).get(name, {})
            self._walk(child, _Module(address + ".", call.get("module", {}), context, call.get("expressions", {})),
                       unknown)

    # --- references ---------------------------------------------------------------------------

    def _targets(self, module: _Module, expression: object) -> list[str] | None:
        """Keys of the resources an expression references (following var.X to the caller), or None."""
        refs = expression.get("references") if isinstance(expression, dict) else None
        if not refs:
            return None
        keys: list[str] = []
        for ref in refs:
            parts = ref.split(".")
            if parts[0] == "var" and module.parent is not None:
                keys += self._targets(module.parent, module.call.get(parts[1])) or []
            elif len(parts) >= 2 and parts[0].startswith("aws_"):
                base = f"{module.prefix}{parts[0]}.{parts[1]}"
                keys += [r.key for r in self.resources if r.address == base or r.address.startswith(base + "[")]
        return list(dict.fromkeys(keys)) or None

    def ref(self, res: _Resource, attr: str, what: str) -> list[str] | None:
        """An id-valued attribute (string or list) as keys: its value, else what its expression references."""
        value = res.values.value.get(attr)
        if not res.is_unknown(attr) and value not in (None, "", []):
            return [value] if isinstance(value, str) else [str(v) for v in value]
        targets = self._targets(res.module, res.expression(attr))
        if targets is None and (res.is_unknown(attr) or value not in (None, "", [])):
            self.inv.skipped.append(f"{res.values.where}: {res.address}: {attr} ({what}) is known only after "
                                    "apply and references no resource of this plan: not carried over")
        return targets

    def after_apply(self, res: _Resource, attr: str, consequence: str) -> None:
        if res.is_unknown(attr):
            self.inv.notes.append(f"{res.values.where}: {res.address}: {attr} is known only after apply; "
                                  f"{consequence}")

    # --- resource types -----------------------------------------------------------------------

    def read(self) -> Inventory:
        self.collect()
        handlers = {"aws_vpc": self._vpc, "aws_subnet": self._subnet, "aws_security_group": self._group,
                    "aws_security_group_rule": self._group_rule,
                    "aws_vpc_security_group_ingress_rule": self._vpc_rule,
                    "aws_vpc_security_group_egress_rule": self._vpc_rule, "aws_instance": self._instance}
        for kind in handlers:                         # groups before the rules and instances naming them
            for res in (r for r in self.resources if r.type == kind):
                handlers[kind](res)
        return self.inv

    def _first(self, res: _Resource, attr: str, what: str) -> str | None:
        keys = self.ref(res, attr, what)
        return keys[0] if keys else None

    def _vpc(self, res: _Resource) -> None:
        v = res.values
        self.after_apply(res, "ipv6_cidr_block", "the lab's VPC gets no IPv6 block from it")
        self.inv.vpcs[res.key] = ImportedVpc(res.key, v.text("cidr_block"), v.where, v.text("ipv6_cidr_block") or None)

    def _subnet(self, res: _Resource) -> None:
        v = res.values
        self.after_apply(res, "ipv6_cidr_block", "the subnet stays IPv4-only in the lab")
        tags = v.value.get("tags") or {}
        self.inv.subnets[res.key] = ImportedSubnet(res.key, v.where, self._first(res, "vpc_id", "the VPC"),
                                                   v.text("cidr_block"), v.text("ipv6_cidr_block") or None,
                                                   tags.get("Name") if isinstance(tags, dict) else None)

    def _group(self, res: _Resource) -> None:
        v = res.values
        name = v.text("name")
        if name is None:
            name = (v.text("name_prefix") or "").rstrip("-_") or res.address.rsplit(".", 1)[-1].split("[")[0]
            self.after_apply(res, "name", f"the lab calls it {name}")
        group = self.inv.group(res.key, name, v.where, self._first(res, "vpc_id", "the VPC"))
        group.has_rules, group.where, group.description = True, v.where, v.text("description", "") or ""
        for direction in ("ingress", "egress"):
            if res.is_unknown(direction) and not v.items(direction):
                self.inv.skipped.append(f"{v.where}: {res.address}: {direction} is known only after apply: "
                                        "its rules are not carried over")
            for index, block in enumerate(v.items(direction)):
                (group.ingress if direction == "ingress" else group.egress).extend(
                    self._legacy_rules(res, block, direction, res.key, (direction, index)))

    def _legacy_rules(self, res: _Resource, block: JsonValue, direction: str, own: str,
                      path: tuple[str | int, ...]) -> list[ImportedRule]:
        """A rule in the aws_security_group / aws_security_group_rule shape: one per peer."""
        base = dict(direction=direction, protocol=str(block.need("protocol").value),
                    from_port=block.integer("from_port"), to_port=block.integer("to_port"),
                    description=block.text("description", "") or "")
        rules = [ImportedRule(**base, where=block.where, cidr=str(c))
                 for field_name in ("cidr_blocks", "ipv6_cidr_blocks") for c in block.value.get(field_name) or []]
        for field_name in ("cidr_blocks", "ipv6_cidr_blocks"):
            if res.is_unknown(*path, field_name):
                self.inv.skipped.append(f"{block.where}: {res.address}: {direction} {base['protocol']} "
                                        f"{base['from_port']}: {field_name} is known only after apply: not carried "
                                        "over (import the state after apply)")
        rules += [ImportedRule(**base, where=block.where, group=str(p),
                               not_carried=f"prefix list {p} needs its CIDRs: run `aws ec2 get-managed-prefix-list-"
                                           f"entries --prefix-list-id {p}` and add one rule per CIDR")
                  for p in block.value.get("prefix_list_ids") or []]
        groups: list[str] = []
        for attr in ("security_groups", "source_security_group_id"):
            if attr not in block.value and not res.is_unknown(*path, attr):
                continue
            value = block.value.get(attr)
            known = [value] if isinstance(value, str) else list(value or [])
            if res.is_unknown(*path, attr) or (not known and self._targets(res.module, res.expression(*path, attr))):
                known = self._targets(res.module, res.expression(*path, attr)) or []
                if not known:
                    self.inv.skipped.append(f"{block.where}: {res.address}: {attr} is known only after apply and "
                                            "references no resource of this plan: not carried over")
            groups += known
        if block.value.get("self") is True:
            groups.append(own)
        for g in groups:
            cross = "/" in g
            rules.append(ImportedRule(**base, where=block.where, group=g, not_carried=(
                f"it references {g} of another account; a lab holds one account's VPC: allow its CIDRs instead"
                if cross else None)))
        return rules

    def _group_rule(self, res: _Resource) -> None:
        owner = self._first(res, "security_group_id", "the security group")
        if owner is None:
            return
        direction = res.values.need_text("type")
        group = self.inv.group(owner, None, res.values.where)
        rules = self._legacy_rules(res, res.values, direction, owner, ())
        (group.ingress if direction == "ingress" else group.egress).extend(rules)

    def _vpc_rule(self, res: _Resource) -> None:
        v = res.values
        owner = self._first(res, "security_group_id", "the security group")
        if owner is None:
            return
        direction = "ingress" if res.type.endswith("ingress_rule") else "egress"
        base = dict(direction=direction, protocol=str(v.need("ip_protocol").value), from_port=v.integer("from_port"),
                    to_port=v.integer("to_port"), where=v.where, description=v.text("description", "") or "")
        if v.text("cidr_ipv4") or v.text("cidr_ipv6"):
            rule = ImportedRule(**base, cidr=v.text("cidr_ipv4") or v.text("cidr_ipv6"))
        elif v.text("prefix_list_id"):
            p = v.text("prefix_list_id")
            rule = ImportedRule(**base, group=p, not_carried=f"prefix list {p} needs its CIDRs: run `aws ec2 "
                                f"get-managed-prefix-list-entries --prefix-list-id {p}` and add one rule per CIDR")
        else:
            target = self._first(res, "referenced_security_group_id", "the referenced security group")
            if target is None:
                if not res.is_unknown("referenced_security_group_id"):
                    v.fail("has none of cidr_ipv4, cidr_ipv6, prefix_list_id, referenced_security_group_id", SHAPE)
                return
            rule = ImportedRule(**base, group=target, not_carried=(
                f"it references {target} of another account; allow its CIDRs instead" if "/" in target else None))
        group = self.inv.group(owner, None, v.where)
        (group.ingress if direction == "ingress" else group.egress).append(rule)

    def _instance(self, res: _Resource) -> None:
        v = res.values
        groups = self.ref(res, "vpc_security_group_ids", "its security groups") or []
        by_name = {g.name: g.key for g in self.inv.groups.values()}
        for name in v.value.get("security_groups") or []:  # names, as the default VPC allows
            if by_name.get(name) not in groups:
                groups.append(by_name.get(name, name))
        for g in groups:
            self.inv.group(g, None, v.where)
        self.after_apply(res, "private_ip", "the lab assigns the next free address of its subnet")
        public_ip = v.text("public_ip") or None
        if public_ip is None and res.is_unknown("public_ip") and v.value.get("associate_public_ip_address") is True:
            public_ip = next(self.publics)
            self.inv.notes.append(f"{v.where}: {res.address}: public_ip is known only after apply; "
                                  f"the lab gives it {public_ip}")
        ipv6 = [str(a) for a in v.value.get("ipv6_addresses") or []]
        if not ipv6 and res.is_unknown("ipv6_addresses") and (v.value.get("ipv6_address_count") or 0) > 0:
            self.inv.notes.append(f"{v.where}: {res.address}: ipv6_addresses are known only after apply; "
                                  "the instance has no IPv6 address in the lab")
        tags = v.value.get("tags") or {}
        self.inv.instances.append(ImportedInstance(
            res.key, v.where, tags.get("Name") if isinstance(tags, dict) else None, None,
            self._first(res, "subnet_id", "its subnet"), v.text("private_ip") or None, public_ip,
            ipv6[0] if ipv6 else None, tuple(groups)))


def import_terraform(path: str | os.PathLike, lab_name: str = "imported", vpc: str | None = None) -> ImportResult:
    """A validated topology of one VPC from `terraform show -json` (plan or state)."""
    return build(_Reader(read_json(path)).read(), lab_name, vpc)
