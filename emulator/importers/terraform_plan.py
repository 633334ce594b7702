"""The resources of a `terraform show -json` document (a plan or a state; Terraform or OpenTofu), each
with its values, which of them a plan knows only after apply, and its configuration expressions.

What a value means, the same for every attribute an importer reads (`Resource.read`):
- known (a value in `values`, `after_unknown` not true): that value; null, "" and [] mean "not set".
- unknown and configured (`after_unknown` true, the configuration has an expression): the value comes
  from the expression's references, resolved to the resources of this document (through module input
  variables and module outputs, and data sources read at plan time); `Unresolved` when they name
  nothing here.
- unknown and not configured: the provider computes it (an id, AWS's default); each reader says what
  that default is (e.g. the default VPC, no inline rules).
- a resource without `values` (Terraform omits them when nothing is known, e.g. under an unknown
  count): its configuration's constants, every other configured attribute unknown.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .json_source import JsonValue

SHAPE = "give the output of `terraform show -json PLANFILE` or `terraform show -json` (state)"
_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass
class Module:
    """A module instance: its address prefix, its configuration, and how its caller set its variables."""

    prefix: str                                     # "" or "module.net." or 'module.net["a"].'
    config: dict
    parent: Module | None = None
    call: dict = field(default_factory=dict)        # the caller's module_calls.<name>.expressions


def walk(node: object, path: tuple[str | int, ...]) -> object:
    """The value at `path` (keys of objects, indexes of lists) inside a plan's JSON, or None."""
    for step in path:
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return None
    return node


@dataclass
class Resource:
    address: str
    type: str
    mode: str                                       # managed | data
    values: JsonValue
    unknown: object                                 # after_unknown (True: the whole resource)
    module: Module
    configured_only: bool = False                   # no values in the document: read from configuration

    @property
    def key(self) -> str:
        known = self.values.value.get("id") if isinstance(self.values.value, dict) else None
        return known if isinstance(known, str) and known else self.address

    def config(self) -> dict | None:
        """This resource's configuration block, None when the document has none for it."""
        own = _INDEX.sub("", self.address[len(self.module.prefix):])
        return next((r for r in as_list(self.module.config.get("resources"))
                     if isinstance(r, dict) and r.get("address") == own), None)

    def expression(self, *path: str | int) -> object:
        """The configuration expression of an attribute (path through nested blocks), or None."""
        config = self.config()
        return walk(as_dict(config.get("expressions")) if config is not None else None, path)

    def configured(self, *path: str | int) -> bool:
        """Whether the configuration sets this attribute; True when the document has no configuration
        for the resource (an unknown value must then be assumed to matter)."""
        return self.config() is None or self.expression(*path) is not None

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

    def from_configuration(self) -> None:
        """Values Terraform did not write: the configuration's constants; what it computes is unknown."""
        config = self.config()
        expressions = as_dict(config.get("expressions")) if config is not None else {}
        constants = {k: e["constant_value"] for k, e in expressions.items()
                     if isinstance(e, dict) and "constant_value" in e}
        self.values = JsonValue(constants, self.values.path, self.values.source)
        self.unknown = {k: True for k in expressions if k not in constants} if config is not None else True
        self.configured_only = True

    def value(self, name: str) -> object:
        """A top-level value as known now (None when unknown, null, absent or empty)."""
        if self.is_unknown(name):
            return None
        found = self.values.value.get(name) if isinstance(self.values.value, dict) else None
        return None if found in ("", [], {}) else found


@dataclass(frozen=True)
class Unresolved:
    """An unknown value whose references name nothing in this document."""

    references: tuple[str, ...]

    def __str__(self) -> str:
        return ", ".join(self.references) or "an expression without references"


class Plan:
    """Every resource of a plan or state document, and the references between them."""

    def __init__(self, doc: JsonValue):
        self.doc = doc
        self.resources: list[Resource] = []
        config = doc.get("configuration")
        root_config = as_dict(as_dict(config.value if config is not None else None).get("root_module"))
        self.has_configuration = config is not None
        if doc.has("planned_values"):
            unknown = {c.value["address"]: as_dict(c.value.get("change")).get("after_unknown") or {}
                       for c in doc.items("resource_changes")
                       if isinstance(c.value, dict) and isinstance(c.value.get("address"), str)}
            self._walk(doc.need("planned_values").need("root_module"), Module("", root_config), unknown)
            prior = doc.get("prior_state")
            values = prior.get("values") if prior is not None else None
            if values is not None and values.get("root_module") is not None:
                self._walk(values.need("root_module"), Module("", root_config), {}, data_only=True)
        elif doc.has("values"):
            self._walk(doc.need("values").need("root_module"), Module("", root_config), {})
        else:
            doc.fail("has neither planned_values (a plan) nor values (a state)", SHAPE)

    def _walk(self, module: JsonValue, context: Module, unknown: dict, data_only: bool = False) -> None:
        for r in module.items("resources"):
            mode = r.text("mode", "managed") or "managed"
            if data_only and mode != "data":
                continue
            address = r.need_text("address")
            if any(known.address == address for known in self.resources):
                continue
            values = r.get("values")
            resource = Resource(address, r.need_text("type"), mode,
                                values if values is not None else JsonValue({}, r.path, r.source),
                                unknown.get(address, {}), context)
            if values is None:      # Terraform omits values when none is known (e.g. an unknown count)
                resource.from_configuration()
            self.resources.append(resource)
        for child in module.items("child_modules"):
            address = child.need_text("address")                      # module.net or module.net["a"]
            name = _INDEX.sub("", address.rsplit("module.", 1)[-1])
            call = as_dict(as_dict(context.config.get("module_calls")).get(name))
            self._walk(child, Module(address + ".", as_dict(call.get("module")), context,
                                     as_dict(call.get("expressions"))), unknown, data_only)

    # --- references ---------------------------------------------------------------------------

    def targets(self, module: Module, expression: object) -> list[Resource] | Unresolved | None:
        """The resources an expression references (following variables and outputs), Unresolved when
        it references only what this document does not hold, None when there is no expression."""
        if not isinstance(expression, dict):
            return None
        refs = [r for r in as_list(expression.get("references")) if isinstance(r, str)]
        if not refs:
            return Unresolved(()) if "constant_value" not in expression else None
        found: list[Resource] = []
        for ref in refs:
            if not any(other.startswith(ref + "[") for other in refs):   # X[0] is listed with X: X[0] meant
                found += self._reference(module, ref)
        unique = list({id(r): r for r in found}.values())
        return unique if unique else Unresolved(tuple(r for r in refs if not _is_prefix(r, refs)))

    def _reference(self, module: Module, ref: str) -> list[Resource]:
        parts = ref.split(".")
        if parts[0] == "var" and len(parts) > 1:
            if module.parent is None:
                return []
            outer = self.targets(module.parent, module.call.get(parts[1]))
            return outer if isinstance(outer, list) else []
        if parts[0] == "module" and len(parts) > 2:
            return self._output(module, parts[1], parts[2])
        if parts[0] == "data" and len(parts) > 2:
            return self._matching(module, "data." + parts[1] + "." + parts[2], "data")
        if len(parts) >= 2 and "_" in parts[0] and parts[0] not in ("each", "count", "local", "path", "self"):
            return self._matching(module, parts[0] + "." + parts[1], "managed")
        return []

    def _matching(self, module: Module, local: str, mode: str) -> list[Resource]:
        base = module.prefix + local
        return [r for r in self.resources if r.mode == mode and
                (r.address == base or (r.address.startswith(base + "[") and "[" not in local))]

    def _output(self, module: Module, call: str, output: str) -> list[Resource]:
        """module.<call>.<output>: the output's expression inside every instance of that module call."""
        name, bracket, key = call.partition("[")
        config = as_dict(as_dict(module.config.get("module_calls")).get(name))
        expression = as_dict(as_dict(as_dict(config.get("module")).get("outputs")).get(output)).get("expression")
        instance = re.compile(re.escape(module.prefix) + r"module\." + re.escape(name) + r"(\[[^\]]*\])?\.")
        prefixes = dict.fromkeys(m.group(0) for r in self.resources if (m := instance.match(r.module.prefix))
                                 and (not bracket or m.group(1) == "[" + key))
        found: list[Resource] = []
        for prefix in prefixes:
            child = Module(prefix, as_dict(config.get("module")), module, as_dict(config.get("expressions")))
            inner = self.targets(child, expression)
            found += inner if isinstance(inner, list) else []
        return found


def as_dict(value: object) -> dict:
    """A configuration object, {} where the document holds something else (read what is there)."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list:
    return value if isinstance(value, list) else []


def _is_prefix(ref: str, refs: list[str]) -> bool:
    """Terraform lists `aws_x.y.id` and `aws_x.y`; name the longer one only."""
    return any(other != ref and other.startswith(ref + ".") for other in refs)


_OWN_INDEX = re.compile(r"\[([^\]]*)\]$")


def same_instance(res: Resource, expression: object, found: list[Resource]) -> list[Resource]:
    """The instances an expression of `res` means, where it indexes a counted resource by the
    referrer's own count.index (X[count.index], element(X, count.index): element wraps around, so the
    instance at index modulo the count) or a for_each resource by each.key (X[each.key]); otherwise
    `found` unchanged."""
    refs = as_list(expression.get("references")) if isinstance(expression, dict) else []
    own = _OWN_INDEX.search(res.address)
    if own is None or not ({"count.index", "each.key"} & set(refs)):
        return found
    groups: dict[str, list[Resource]] = {}
    for r in found:
        groups.setdefault(_OWN_INDEX.sub("", r.address), []).append(r)
    out: list[Resource] = []
    for members in groups.values():
        indexes = [m.group(1) if (m := _OWN_INDEX.search(r.address)) else None for r in members]
        if "count.index" in refs and own.group(1).isdigit() and all(i is not None and i.isdigit() for i in indexes):
            wanted = str(int(own.group(1)) % len(members))
            out += [r for r, i in zip(members, indexes) if i == wanted]
        elif "each.key" in refs and own.group(1) in indexes:
            out += [r for r, i in zip(members, indexes) if i == own.group(1)]
        else:
            out += members
    return out
