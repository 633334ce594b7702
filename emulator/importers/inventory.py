"""What an importer read, before it becomes a topology: AWS's objects, keyed the way the source keys them.

A key is an AWS id (sg-…, subnet-…, i-…) or, in a Terraform plan where the id is not known yet, the
resource's address (aws_security_group.web). References between objects use these keys.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from .json_source import ImportSourceError

DEFAULT_VPC = "the region's default VPC"   # the VPC of a Terraform resource that names none


class Permission(NamedTuple):
    """What the peers of one permission share: ImportedRule(*permission, where=..., cidr=...)."""

    direction: str
    protocol: str
    from_port: int | None
    to_port: int | None


@dataclass(frozen=True)
class ImportedRule:
    """One permission with exactly one peer, as AWS writes it (FromPort/ToPort carry ICMP type/code)."""

    direction: str                     # ingress | egress
    protocol: str                      # tcp, udp, icmp, icmpv6, -1, all or a number, as written
    from_port: int | None
    to_port: int | None
    where: str                         # file and JSON path, for the report
    cidr: str | None = None
    group: str | None = None           # key of the referenced SG
    description: str = ""
    not_carried: str | None = None     # why the importer already knows it cannot carry it
    prefix_list: str | None = None     # key of the referenced prefix list (the third kind of peer)


@dataclass
class ImportedGroup:
    key: str
    name: str | None
    where: str
    vpc: str | None = None
    description: str = ""
    ingress: list[ImportedRule] = field(default_factory=list)
    egress: list[ImportedRule] = field(default_factory=list)
    has_rules: bool = True             # False: only seen attached to an instance, rules unknown
    owner: str | None = None           # OwnerId: the account the input came from
    default_egress: bool = False       # AWS's default egress applies (EC2-Classic: outbound is not filtered)


@dataclass(frozen=True)
class ImportedVpc:
    key: str
    cidr: str | None
    where: str
    ipv6_cidr: str | None = None
    extra_cidrs: tuple[str, ...] = ()  # secondary IPv4 blocks


@dataclass(frozen=True)
class ImportedSubnet:
    key: str
    where: str
    vpc: str | None = None
    cidr: str | None = None
    ipv6_cidr: str | None = None
    name: str | None = None            # Name tag


@dataclass(frozen=True)
class ImportedInstance:
    key: str
    where: str
    name: str | None = None            # Name tag
    vpc: str | None = None
    subnet: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    ipv6: str | None = None
    groups: tuple[str, ...] = ()       # SG keys, primary ENI


@dataclass(frozen=True)
class ImportedNaclEntry:
    """One NetworkAclEntry as AWS writes it (Protocol a number string; ports/ICMP where given)."""

    rule_number: int
    egress: bool
    action: str
    protocol: str
    cidr: str
    where: str
    from_port: int | None = None
    to_port: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None


@dataclass
class ImportedNacl:
    key: str
    where: str
    vpc: str | None = None
    is_default: bool = False
    name: str | None = None            # Name tag
    entries: list[ImportedNaclEntry] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)      # subnet keys associated with it


@dataclass
class ImportedPrefixList:
    key: str
    where: str
    name: str | None = None
    max_entries: int | None = None
    family: int | None = None
    owner: str | None = None           # "AWS" for AWS-managed lists
    entries: list[tuple[str, str]] | None = None           # (cidr, description); None: not in the inputs


# What a route goes to, as far as a lab can follow it (ImportedRoute.target).
ROUTE_LOCAL, ROUTE_NAT, ROUTE_UNMODELLED, ROUTE_UNKNOWN = "local", "nat", "unmodelled", "unknown"


@dataclass(frozen=True)
class ImportedRoute:
    """One route: a destination and its target, read by either importer.

    target: igw | eigw | blackhole | local | nat (detail: the NAT gateway's key) | unmodelled (detail:
    the real target, e.g. "VPC peering connection pcx-1") | unknown (detail: why the source does not say).
    """

    where: str
    destination: str | None            # IPv4 or IPv6 CIDR; None for a prefix-list destination
    target: str
    detail: str | None = None
    prefix_list: str | None = None     # destination prefix list id


@dataclass
class ImportedRouteTable:
    key: str
    where: str
    vpc: str | None = None
    main: bool = False
    label: str | None = None           # the name it should have in the lab (else its id)
    subnets: list[tuple[str, str]] = field(default_factory=list)    # (subnet key, where associated)
    routes: list[ImportedRoute] = field(default_factory=list)


@dataclass(frozen=True)
class ImportedNatGateway:
    key: str
    where: str
    vpc: str | None = None
    subnet: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    label: str | None = None
    not_carried: str | None = None     # why a lab cannot run it (private, failed, no Elastic IP)


@dataclass
class Inventory:
    """Everything read from the inputs, plus what the reader already knows it cannot carry over.

    `strict`: a bad item refuses the whole import (ImportSourceError); otherwise the item is left out
    and named in `skipped`, and the rest is imported.
    """

    sources: list[str] = field(default_factory=list)
    groups: dict[str, ImportedGroup] = field(default_factory=dict)
    vpcs: dict[str, ImportedVpc] = field(default_factory=dict)
    subnets: dict[str, ImportedSubnet] = field(default_factory=dict)
    instances: list[ImportedInstance] = field(default_factory=list)
    nacls: dict[str, ImportedNacl] = field(default_factory=dict)
    prefix_lists: dict[str, ImportedPrefixList] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    strict: bool = False
    route_tables: dict[str, ImportedRouteTable] = field(default_factory=dict)
    nat_gateways: dict[str, ImportedNatGateway] = field(default_factory=dict)

    def group(self, key: str, name: str | None, where: str, vpc: str | None = None) -> ImportedGroup:
        """The group with that key, created (rules unknown) on first sight."""
        found = self.groups.get(key)
        if found is None:
            found = self.groups[key] = ImportedGroup(key, name, where, vpc, has_rules=False)
        else:
            found.name = found.name or name
            found.vpc = found.vpc or vpc
        return found

    def route_table(self, key: str, where: str) -> ImportedRouteTable:
        """The route table with that key, created on first sight (by a route or an association)."""
        found = self.route_tables.get(key)
        if found is None:
            found = self.route_tables[key] = ImportedRouteTable(key, where)
        return found

    def prefix_list(self, key: str, where: str) -> ImportedPrefixList:
        """The prefix list with that key, created on first sight (by its description or its entries)."""
        found = self.prefix_lists.get(key)
        if found is None:
            found = self.prefix_lists[key] = ImportedPrefixList(key, where)
        return found

    @contextmanager
    def item(self, what: str) -> Iterator[None]:
        """Reads one item: a bad one is left out and named (or, strict, refuses the import)."""
        try:
            yield
        except ImportSourceError as exc:
            if self.strict:
                raise
            self.skipped.append(f"{exc}: {what} not carried over")
