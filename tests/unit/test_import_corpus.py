"""Every real file of the shared corpus (`../shared/corpus`, skipped when absent; never copied here) and
every fixture of tests/data imports, validates and round-trips (export -> import -> export is stable),
and rule by rule the meaning survives: each rule of the input, read independently (import_reading),
is either in the export or named in a warning; each warning names a real place of an input file."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from emulator.importers import ImportSourceError, import_aws, import_terraform
from emulator.importers.build import ImportResult
from emulator.importers.export import describe_security_groups

from .import_reading import Allowed, aws_ids, aws_rules, cidr, load, resolve, terraform_resources, terraform_rules

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus"
DATA = ROOT / "tests" / "data"
NOT_SG_KINDS = ("PrefixLists", "Entries")
CARRIED_KINDS = {"RouteTables": ("RouteTableId", "route_tables"), "NatGateways": ("NatGatewayId", "nat_gateways")}


def files(folder: str, pattern: str) -> list:
    found = sorted((CORPUS / folder).glob(pattern)) if CORPUS.is_dir() else []
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{CORPUS} is absent"))]
    return [pytest.param(p, id=str(p.relative_to(CORPUS))) for p in found]


def own(pattern: str) -> list:
    return [pytest.param(p, id=str(p.relative_to(DATA))) for p in sorted(DATA.glob(pattern))]


AWS_FILES = files("aws", "**/*.json") + own("aws/*.json")
TERRAFORM_FILES = files("terraform", "*.json") + own("terraform/*.json")


# --- checks shared by every file ------------------------------------------------------------------

def check_messages(result: ImportResult, paths: list[Path]) -> None:
    """No message asks for the unchanged output; each warning names a real place of an input file."""
    docs = {p.name: {"data": doc} if prefix else doc for p in paths for doc, prefix in [load(p)]}
    for line in (*result.skipped, *result.notes, *result.loaded.warnings):
        assert "unchanged" not in line, line
    for line in result.skipped:
        named = re.match(r"(\S+?\.json): (\S+?):? ", line)
        assert named and named.group(1) in docs, f"names no input file: {line}"
        assert resolve(docs[named.group(1)], named.group(2)), f"names no place of {named.group(1)}: {line}"


def check_strict(result: ImportResult, strict) -> None:
    """--strict imports the same lab, or refuses with the first problem the default mode named."""
    try:
        refused = strict()
    except ImportSourceError as exc:
        message = str(exc)
        if "the inputs span" in message:
            assert any("the inputs span" in n for n in result.notes), message
        else:
            place = re.match(r"(\S+?\.json): (\S+?):? ", message)
            assert place and any(line.startswith(f"{place.group(1)}: {place.group(2)}") for line in result.skipped), \
                message
    else:
        assert refused.data == result.data


def named(result: ImportResult, source: str, path: str) -> bool:
    """Whether a warning names this place or one that holds it (its group, permission, resource)."""
    return any(re.search(re.escape(f"{source}: {path[:cut]}") + r"[: ]", line)
               for line in result.skipped for cut in _prefix_ends(path))


def _prefix_ends(path: str) -> list[int]:
    return [m.end() for m in re.finditer(r"\]|(?=\.)", path)] + [len(path)]


def round_trip(result: ImportResult, tmp_path: Path) -> dict:
    """export -> import -> export: the same JSON, and nothing left out the second time."""
    first = describe_security_groups(result.loaded.topology)
    exported = tmp_path / "exported.json"
    exported.write_text(json.dumps(first), encoding="utf-8")
    again = import_aws(files=[exported])
    assert again.skipped == ()
    assert describe_security_groups(again.loaded.topology) == first
    return first


def check_rules(expected: list[Allowed], carried: list[Allowed], result: ImportResult, source: str) -> None:
    for rule in expected:
        assert any(rule.matches(c) for c in carried) or named(result, source, rule.path), \
            f"{source}: {rule.path}: {rule} is neither carried nor named in a warning"


# --- AWS CLI files --------------------------------------------------------------------------------

@pytest.mark.parametrize("path", AWS_FILES)
def test_aws_file(path: Path, tmp_path: Path) -> None:
    doc, prefix = load(path)
    result = import_aws(files=[path])
    check_messages(result, [path])
    check_strict(result, lambda: import_aws(files=[path], strict=True))
    exported = round_trip(result, tmp_path)
    if "SecurityGroups" in doc:
        check_aws_groups(doc, prefix, exported, result, path.name)
    if "Subnets" in doc:
        check_subnets(doc, prefix, result, path.name)
    if "Vpcs" in doc and result.loaded.topology.vpc.id in {v["VpcId"] for v in doc["Vpcs"]}:
        [vpc] = [v for v in doc["Vpcs"] if v["VpcId"] == result.loaded.topology.vpc.id]
        assert str(result.loaded.topology.vpc.cidr) == cidr(vpc["CidrBlock"])
    if "Reservations" in doc:
        check_instances(doc, prefix, result, path.name)
    if "NetworkInterfaces" in doc:          # each interface in use is a node with its address and groups
        lab = {str(i.private_ip): set(i.security_groups) for i in result.loaded.topology.instances}
        for index, eni in enumerate(doc["NetworkInterfaces"]):
            where = f"{prefix}NetworkInterfaces[{index}]"
            carried = lab.get(eni.get("PrivateIpAddress"))
            assert carried == {g["GroupId"] for g in eni.get("Groups") or []} or named(result, path.name, where), eni
    for kind, (id_field, section) in CARRIED_KINDS.items():    # carried with their id, or named
        ids = {item.id for item in getattr(result.loaded.topology, section)}
        for index, item in enumerate(doc.get(kind) or []):
            assert item.get(id_field) in ids or named(result, path.name, f"{prefix}{kind}[{index}]"), item
    if "NetworkAcls" in doc:
        check_nacls(doc, prefix, result, path.name)
    for kind in NOT_SG_KINDS:       # read only to name what a lab leaves out: each object named
        for index, _ in enumerate(doc.get(kind) or []):
            assert named(result, path.name, f"{prefix}{kind}[{index}]"), f"{kind}[{index}] is not named"


def check_aws_groups(doc: dict, prefix: str, exported: dict, result: ImportResult, source: str) -> None:
    keep = aws_ids(doc)
    carried = aws_rules(exported, keep=keep)
    check_rules(aws_rules(doc, prefix, keep), carried, result, source)
    # Nothing invented: every carried rule of an input group is an input rule, or AWS's unfiltered egress
    # of an EC2-Classic group (no VpcId), which the lab writes as its default egress.
    expected = {a.key() for a in aws_rules(doc, prefix, keep)}
    classic = {g.get("GroupId") if g.get("GroupId") in keep else g.get("GroupName")
               for g in doc["SecurityGroups"] if not g.get("VpcId") and not g.get("IpPermissionsEgress")}
    owners = {a.group for a in aws_rules(doc, prefix, keep)} | classic
    for rule in carried:
        if rule.group in owners and rule.key() not in expected:
            assert rule.group in classic and rule.direction == "egress" and rule.protocol == -1, rule
    account = Counter(g.get("OwnerId") for g in doc["SecurityGroups"] if g.get("OwnerId")).most_common(1)
    if account and re.fullmatch(r"\d{12}", account[0][0]):
        assert {g["OwnerId"] for g in exported["SecurityGroups"]} == {account[0][0]}   # the input's account


def check_nacls(doc: dict, prefix: str, result: ImportResult, source: str) -> None:
    """Every NACL of the imported VPC is carried with each numbered entry (the `*` ones are implicit),
    or named; the input's default NACL is the lab's `default`."""
    lab = {n.id: n for n in result.loaded.topology.network_acls}
    for index, nacl in enumerate(doc["NetworkAcls"]):
        where = f"{prefix}NetworkAcls[{index}]"
        if nacl.get("VpcId") != result.loaded.topology.vpc.id and named(result, source, where):
            continue
        carried = lab.get(nacl["NetworkAclId"])
        assert carried is not None, f"{where} is neither carried nor named"
        assert (carried.name == "default") == bool(nacl.get("IsDefault"))
        numbered = [e for e in nacl.get("Entries") or [] if e["RuleNumber"] < 32767]
        for egress, entries in ((False, carried.ingress), (True, carried.egress)):
            expected = sorted(e["RuleNumber"] for e in numbered if e["Egress"] is egress)
            assert [e.rule_number for e in entries] == expected or named(result, source, where)


def check_subnets(doc: dict, prefix: str, result: ImportResult, source: str) -> None:
    lab = {str(s.cidr) for s in result.loaded.topology.subnets}
    for index, subnet in enumerate(doc["Subnets"]):
        assert cidr(subnet["CidrBlock"]) in lab or named(result, source, f"{prefix}Subnets[{index}]"), subnet


def check_instances(doc: dict, prefix: str, result: ImportResult, source: str) -> None:
    t = result.loaded.topology
    ids = {g.id for g in t.security_groups}
    expected, carried_ips = [], {str(i.private_ip) for i in t.instances}
    for ri, reservation in enumerate(doc["Reservations"]):
        for ii, i in enumerate(reservation.get("Instances") or []):
            where = f"{prefix}Reservations[{ri}].Instances[{ii}]"
            if named(result, source, where) and not i.get("PrivateIpAddress"):
                continue
            groups = [g["GroupId"] for g in i.get("SecurityGroups") or reservation.get("Groups") or []]
            expected.append(sorted(g for g in groups if g in ids))
            if i.get("PrivateIpAddress") and i["PrivateIpAddress"] not in carried_ips:
                assert named(result, source, where), f"{where}: private IP neither carried nor named"
    lab = sorted(sorted(g for g in i.security_groups if g in ids) for i in t.instances)
    assert lab == sorted(expected)


# --- Terraform and OpenTofu files -----------------------------------------------------------------

@pytest.mark.parametrize("path", TERRAFORM_FILES)
def test_terraform_file(path: Path, tmp_path: Path) -> None:
    doc, _ = load(path)
    result = import_terraform(path)
    check_messages(result, [path])
    check_strict(result, lambda: import_terraform(path, strict=True))
    exported = round_trip(result, tmp_path)
    keep = {str((r.get("values") or {}).get("id")) for r, _ in terraform_resources(doc)}   # ids the plan knows
    carried = aws_rules(exported, keep=keep)
    check_rules(terraform_rules(doc), carried, result, path.name)
    text = path.read_text(encoding="utf-8")
    for rule in carried:            # nothing invented: every carried CIDR is written in the plan
        if "/" in rule.peer and rule.group != "default":
            assert rule.peer in text or rule.peer.split("/")[0] in text, rule


# --- files that belong together -------------------------------------------------------------------

SETS = {
    "cloudmapper-demo": ["cloudmapper-demo-ec2-describe-security-groups.json", "cloudmapper-demo-ec2-describe-"
                         "instances.json", "cloudmapper-demo-ec2-describe-subnets.json",
                         "cloudmapper-demo-ec2-describe-vpcs.json"],
    "botocore": ["botocore-ec2-describe-security-groups.json", "botocore-ec2-describe-instances.json",
                 "botocore-ec2-describe-subnets.json", "botocore-ec2-describe-vpcs.json",
                 "botocore-ec2-describe-network-acls.json", "botocore-ec2-describe-route-tables.json",
                 "botocore-ec2-describe-network-interfaces.json"],
    "budol": ["budol-describe-security-groups.utf16le-bom-crlf.json", "budol-describe-subnets.json"],
}


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"{CORPUS} is absent")
@pytest.mark.parametrize("name", SETS)
def test_aws_files_of_one_account_import_together(name: str, tmp_path: Path) -> None:
    paths = [CORPUS / "aws" / f for f in SETS[name]]
    result = import_aws(files=paths)
    check_messages(result, paths)
    exported = round_trip(result, tmp_path)
    for path in paths:
        doc, prefix = load(path)
        if "SecurityGroups" in doc:
            check_aws_groups(doc, prefix, exported, result, path.name)
        if "Reservations" in doc:
            check_instances(doc, prefix, result, path.name)
