"""`sgemu import aws` readers for network ACLs (`describe-network-acls`) and managed prefix lists
(`describe-managed-prefix-lists`, and `get-managed-prefix-list-entries` whose output names no list, so
it comes with its list id: `--prefix-list-entries PL_ID=FILE`).

The `*` entries (RuleNumber 32767 and 32768) are AWS's own final deny: a lab's NACL has it implicitly,
so they are read past. A list's entries are only in get-managed-prefix-list-entries output; a list
whose entries are not given cannot be carried, and the rules that use it are named.
"""
from __future__ import annotations

from .inventory import ImportedNacl, ImportedNaclEntry, Inventory
from .json_source import JsonValue

STAR_RULES = (32767, 32768)


def read_network_acls(doc: JsonValue, inv: Inventory) -> None:
    for n in doc.items("NetworkAcls"):
        with inv.item("this network ACL"):
            key = n.need_text("NetworkAclId")
            default = n.get("IsDefault")
            nacl = ImportedNacl(key, n.where, n.text("VpcId") or None, default is not None and default.value is True,
                                n.tags().get("Name") or None)
            for e in n.items("Entries"):
                with inv.item("this entry"):
                    entry = _entry(e)
                    if entry is not None:
                        nacl.entries.append(entry)
            nacl.subnets = [s for a in n.items("Associations") if (s := a.text("SubnetId"))]
            inv.nacls[key] = nacl


def _entry(e: JsonValue) -> ImportedNaclEntry | None:
    number = e.integer("RuleNumber")
    if number is None:
        e.fail("has no RuleNumber", "describe-network-acls prints one for every entry")
    if number in STAR_RULES:
        return None
    egress = e.get("Egress")
    cidr = e.text("CidrBlock") or e.text("Ipv6CidrBlock")
    if not cidr:
        e.fail("has neither CidrBlock nor Ipv6CidrBlock", "describe-network-acls prints one for every entry")
    ports, icmp = e.get("PortRange"), e.get("IcmpTypeCode")
    protocol = e.need("Protocol").value
    return ImportedNaclEntry(number, egress is not None and egress.value is True, e.need_text("RuleAction"),
                             str(protocol), cidr, e.where,
                             ports.integer("From") if ports else None, ports.integer("To") if ports else None,
                             icmp.integer("Type") if icmp else None, icmp.integer("Code") if icmp else None)


def read_prefix_lists(doc: JsonValue, inv: Inventory) -> None:
    for p in doc.items("PrefixLists"):
        with inv.item("this prefix list"):
            listed = inv.prefix_list(p.need_text("PrefixListId"), p.where)
            listed.where = p.where
            listed.name = p.text("PrefixListName") or None
            listed.max_entries = p.integer("MaxEntries")
            family = p.text("AddressFamily") or ""
            listed.family = 6 if family.lower() == "ipv6" else 4 if family else None
            listed.owner = p.text("OwnerId") or None


def read_prefix_list_entries(key: str, doc: JsonValue, inv: Inventory) -> None:
    """get-managed-prefix-list-entries output for the list `key`."""
    listed = inv.prefix_list(key, doc.where)
    listed.entries = listed.entries or []
    for e in doc.items("Entries"):
        with inv.item("this entry"):
            listed.entries.append((e.need_text("Cidr"), e.text("Description") or ""))
