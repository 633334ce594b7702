"""An independent reading of AWS CLI and Terraform JSON for the importer tests: what each security group
allows, one peer at a time, straight from the documented output formats (no importer code), and the
JSON path of each, so a test can check that every rule was either carried or named in a warning."""
from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path

SG_ID = re.compile(r"sg-[0-9a-f]{8}([0-9a-f]{9})?")
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "-1": -1, "all": -1}
ANY = "*"                       # a group the plan knows only after apply: any group peer or owner


@dataclass(frozen=True)
class Allowed:
    """One rule: which group, which way, what traffic, and the peer (canonical CIDR, group or pl-)."""

    group: str
    direction: str
    protocol: int | None        # None: not a protocol AWS accepts
    ports: tuple[int, int] | None
    peer: str
    path: str = ""

    def key(self) -> tuple:
        return (self.group, self.direction, self.protocol, self.ports, self.peer)

    def matches(self, other: Allowed) -> bool:
        """The same rule; ANY matches any group; a name matches the name made unique (`web-2`), as
        importers rename groups whose names clash."""
        return all(a == b or (a == ANY and (field != "peer" or "/" not in b))
                   or (field in ("group", "peer") and isinstance(a, str) and re.fullmatch(re.escape(a) + r"-\d+", b))
                   for field, a, b in zip(("group", "direction", "protocol", "ports", "peer"), self.key(), other.key()))


def load(path: Path) -> tuple[object, str]:
    """The JSON of a file as saved (BOMs, UTF-16) and the path prefix a recorded boto3 response adds."""
    raw = path.read_bytes()
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                          (codecs.BOM_UTF16_BE, "utf-16-be")):
        if raw.startswith(bom):
            return json.loads(raw[len(bom):].decode(encoding)), ""
    doc = json.loads(raw.decode("utf-8"))
    if isinstance(doc, dict) and set(doc) == {"status_code", "data"}:
        return doc["data"], "data."
    return doc, ""


def protocol(value: object) -> int | None:
    text = str(value).strip().lower()
    if text in PROTOCOLS:
        return PROTOCOLS[text]
    return int(text) if text.isdigit() and 0 <= int(text) <= 255 else None


def ports(number: int | None, low: object, high: object) -> tuple[int, int] | None:
    if number in (6, 17):
        return (int(low), int(high)) if low is not None and high is not None else (-9, -9)  # type: ignore[arg-type]
    if number in (1, 58):
        return (-1 if low is None else int(low), -1 if high is None else int(high))  # type: ignore[arg-type]
    return None


def cidr(text: str) -> str:
    try:
        return str(ip_network(text.strip(), strict=False))
    except ValueError:
        return "not a CIDR: " + text


def aws_rules(doc: object, prefix: str = "", keep: set[str] | None = None) -> list[Allowed]:
    """describe-security-groups: one Allowed per peer. A group is known by its GroupId when that is an
    AWS id kept by the import (`keep`), else by its GroupName."""
    groups = doc.get("SecurityGroups") or [] if isinstance(doc, dict) else []
    def label(group_id: str, name: str | None = None) -> str:
        if SG_ID.fullmatch(group_id) and (keep is None or group_id in keep):
            return group_id
        return name or next((g.get("GroupName") or group_id for g in groups if g.get("GroupId") == group_id),
                            group_id)
    out = []
    for gi, g in enumerate(groups):
        owner = label(g.get("GroupId") or "", g.get("GroupName"))
        for field, direction in (("IpPermissions", "ingress"), ("IpPermissionsEgress", "egress")):
            for pi, p in enumerate(g.get(field) or []):
                number = protocol(p.get("IpProtocol"))
                try:
                    span = ports(number, p.get("FromPort"), p.get("ToPort"))
                except (TypeError, ValueError):
                    span = (-9, -9)
                where = f"{prefix}SecurityGroups[{gi}].{field}[{pi}]"
                for kind, name in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6")):
                    for ri, r in enumerate(p.get(kind) or []):
                        out.append(Allowed(owner, direction, number, span, cidr(r.get(name) or ""),
                                           f"{where}.{kind}[{ri}]"))
                for ri, r in enumerate(p.get("PrefixListIds") or []):
                    out.append(Allowed(owner, direction, number, span, r.get("PrefixListId") or "",
                                       f"{where}.PrefixListIds[{ri}]"))
                for ri, r in enumerate(p.get("UserIdGroupPairs") or []):
                    out.append(Allowed(owner, direction, number, span, label(r.get("GroupId") or ""),
                                       f"{where}.UserIdGroupPairs[{ri}]"))
    return out


def aws_ids(doc: object) -> set[str]:
    groups = doc.get("SecurityGroups") or [] if isinstance(doc, dict) else []
    return {g["GroupId"] for g in groups if SG_ID.fullmatch(g.get("GroupId") or "")}


def terraform_resources(doc: dict) -> list[tuple[dict, str]]:
    """Every managed resource of a plan (planned_values) or a state (values), with its JSON path."""
    top = "planned_values" if "planned_values" in doc else "values"
    out: list[tuple[dict, str]] = []
    def walk(module: dict, path: str) -> None:
        for i, r in enumerate(module.get("resources") or []):
            if r.get("mode", "managed") == "managed":
                out.append((r, f"{path}.resources[{i}]"))
        for i, child in enumerate(module.get("child_modules") or []):
            walk(child, f"{path}.child_modules[{i}]")
    walk(doc[top]["root_module"], f"{top}.root_module")
    return out


def terraform_rules(doc: dict) -> list[Allowed]:
    """The rules a plan or state declares, as far as they are known before apply: inline blocks of
    aws_security_group / aws_default_security_group, aws_security_group_rule and the VPC rule resources.
    A group whose id is not known yet is known by its name; an owner or peer that only the configuration
    names is ANY."""
    resources = terraform_resources(doc)
    labels = {}
    for r, _ in resources:
        if r["type"] in ("aws_security_group", "aws_default_security_group"):
            v = r.get("values") or {}
            labels[v.get("id") or r["address"]] = _tf_label(r)
    def label(group_id: object) -> str:
        """A group the plan holds by its label; one it only names by an id that is not an AWS id gets the
        name the import gives it (sg_…), as the schema reserves sg- for ids."""
        if not group_id:
            return ANY
        text = str(group_id)
        if text in labels:
            return labels[text]
        return "sg_" + text[3:] if text.startswith("sg-") and not SG_ID.fullmatch(text) else text
    out: list[Allowed] = []
    for r, path in resources:
        v = r.get("values") or {}
        if r["type"] in ("aws_security_group", "aws_default_security_group"):
            own = _tf_label(r)
            for direction in ("ingress", "egress"):
                for bi, block in enumerate(v.get(direction) or []):
                    out += _tf_block(block, own, direction, f"{path}.values.{direction}[{bi}]", label)
        elif r["type"] == "aws_security_group_rule" and v.get("type") in ("ingress", "egress"):
            out += _tf_block(v, label(v.get("security_group_id")), v["type"], f"{path}.values", label)
        elif r["type"] in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
            number = protocol(v.get("ip_protocol"))
            peer = (cidr(v["cidr_ipv4"]) if v.get("cidr_ipv4") else cidr(v["cidr_ipv6"]) if v.get("cidr_ipv6")
                    else v.get("prefix_list_id") or label(v.get("referenced_security_group_id")))
            out.append(Allowed(label(v.get("security_group_id")), r["type"].split("_")[-2], number,
                               ports(number, v.get("from_port"), v.get("to_port")), peer, f"{path}.values"))
    return out


def _tf_label(r: dict) -> str:
    v = r.get("values") or {}
    if SG_ID.fullmatch(str(v.get("id") or "")):
        return v["id"]
    if r["type"] == "aws_default_security_group":
        return "default"
    return v.get("name") or (v.get("name_prefix") or "").rstrip("-_") or r["address"].rsplit(".", 1)[-1].split("[")[0]


def _tf_block(block: dict, own: str, direction: str, path: str, label) -> list[Allowed]:
    number = protocol(block.get("protocol"))
    span = ports(number, block.get("from_port"), block.get("to_port"))
    peers = [cidr(c) for f in ("cidr_blocks", "ipv6_cidr_blocks") for c in block.get(f) or []]
    peers += [str(p) for p in block.get("prefix_list_ids") or []]
    sources = block.get("security_groups") or []
    sources = [sources] if isinstance(sources, str) else list(sources)
    if block.get("source_security_group_id"):
        sources.append(block["source_security_group_id"])
    peers += [label(g) for g in sources]
    if block.get("self") is True:
        peers.append(own)
    return [Allowed(own, direction, number, span, p, path) for p in peers]


def resolve(doc: object, path: str) -> bool:
    """Whether a JSON path (`a.b[2].c`) names a value of the document."""
    node = doc
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if name:
            if not isinstance(node, dict) or name not in node:
                return False
            node = node[name]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                return False
            node = node[int(index)]
    return True
