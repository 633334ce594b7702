"""Terraform resources of other services that hold network interfaces in security groups (load
balancers, databases, functions, caches, ...): each becomes a node with those groups, so the rules
that name them can be exercised (AWS gives such a service one interface per subnet; the lab, one)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .inventory import ImportedInstance
from .terraform_plan import Resource

if TYPE_CHECKING:
    from .terraform import Reader

GROUP_ATTRIBUTES = ("security_groups", "vpc_security_group_ids", "security_group_ids")
SUBNET_ATTRIBUTES = ("subnet_id", "subnets", "subnet_ids")


def holds_groups(rd: Reader, res: Resource) -> bool:
    """Whether the resource puts interfaces in security groups (top level or one nested block down)."""
    if any(res.value(k) or (res.is_unknown(k) and res.expression(k) is not None) for k in GROUP_ATTRIBUTES):
        return True
    return any(_nested(res, k) or _nested_references(rd, res, k) for k in GROUP_ATTRIBUTES)


def read_service(rd: Reader, res: Resource) -> None:
    groups: list[str] = []
    for attr in GROUP_ATTRIBUTES:
        groups += rd.ref(res, attr, "its security groups") or _nested(res, attr) or _nested_references(rd, res, attr)
    subnet = next((s for attr in SUBNET_ATTRIBUTES for s in (rd.ref(res, attr, "its subnets") or _nested(res, attr)
                                                              or _nested_references(rd, res, attr))), None)
    for g in groups:
        rd.inv.group(g, None, res.values.where)
    tags = res.value("tags")
    name = tags.get("Name") if isinstance(tags, dict) and isinstance(tags.get("Name"), str) else None
    rd.inv.notes.append(f"{res.values.where}: {res.address} has network interfaces in security groups: it is a "
                        "node of its own with those groups (one interface, in its first subnet)")
    rd.inv.instances.append(ImportedInstance(res.address, res.values.where, name or res.address, None, subnet,
                                             None, None, None, tuple(dict.fromkeys(groups))))


def _nested(res: Resource, attr: str) -> list[str]:
    """Known ids in nested blocks: vpc_config { security_group_ids }, network_configuration { subnets }."""
    values = res.values.value if isinstance(res.values.value, dict) else {}
    found: list[str] = []
    for nested in values.values():
        for block in nested if isinstance(nested, list) else []:
            ids = block.get(attr) if isinstance(block, dict) else None
            found += [v for v in ids if isinstance(v, str) and v] if isinstance(ids, list) else []
    return found


def _nested_references(rd: Reader, res: Resource, attr: str) -> list[str]:
    """Ids in nested blocks known only after apply, from what their configuration references."""
    config = res.config()
    expressions = config.get("expressions") if config is not None else None
    found: list[str] = []
    for blocks in expressions.values() if isinstance(expressions, dict) else []:
        for block in blocks if isinstance(blocks, list) else []:
            targets = rd.plan.targets(res.module, block.get(attr)) if isinstance(block, dict) else None
            found += [t.key for t in targets] if isinstance(targets, list) else []
    return found
