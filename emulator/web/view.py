"""What the browser is sent: the engine's decision windows turned into conversations between named nodes.

A conversation is one client, one server, one protocol and service port (ephemeral ports are folded by
the engine's feed), with the verdict at every ENI and direction it crossed in the interval: the request
leaving the client (its egress) and reaching the server (its ingress), and the answer back. The page
animates one conversation as one request and one answer, however many packets it carried, and at most
MAX_CONVERSATIONS per interval, so a busy lab never floods the browser.

Addresses are named from the model generically (every node of every kind with an address field), so a
node kind added to the model later is named without a change here.
"""
from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv6Address

from emulator.model import Instance, Topology

MAX_CONVERSATIONS = 200
# ICMP types that answer a request (echo reply, errors): they travel from the server back to the client.
ICMP_ANSWERS = {"icmp": frozenset((0, 3, 4, 5, 11, 12, 14, 16, 18)), "icmpv6": frozenset((1, 2, 3, 4, 129))}
_LEG_ORDER = {("request", "egress"): 0, ("request", "ingress"): 1, ("reply", "egress"): 2, ("reply", "ingress"): 3}


def node_addresses(topology: Topology) -> dict[str, str]:
    """Every address of every named node in the model, as text -> node name."""
    named: dict[str, str] = {}
    for field in dataclasses.fields(topology):
        items = getattr(topology, field.name)
        if not isinstance(items, tuple):
            continue
        for item in items:
            name = getattr(item, "name", None)
            if not isinstance(name, str) or not dataclasses.is_dataclass(item):
                continue
            for attribute in dataclasses.fields(item):
                value = getattr(item, attribute.name)
                if isinstance(value, IPv4Address | IPv6Address):
                    named.setdefault(str(value), name)
    return named


def sg_names(topology: Topology) -> dict[str, str]:
    return {g.id: g.name for g in topology.security_groups}


def named_text(text: str, groups: dict[str, str], short: bool = False) -> str:
    """SG ids in a verdict's text shown as 'name (id)', or as the name alone when `short`."""
    for sg_id, name in groups.items():
        text = text.replace(sg_id, name if short else f"{name} ({sg_id})")
    return text


class Conversations:
    """Folds decision records into conversations for one interval (`add` each record, then `take`)."""

    def __init__(self, topology: Topology):
        self.retopology(topology)
        self._open: dict[tuple, dict] = {}
        self.overflow_packets = 0

    def retopology(self, topology: Topology) -> None:
        self._names = node_addresses(topology)
        self._groups = sg_names(topology)

    def name(self, address: str) -> str:
        return self._names.get(address, address)

    def add(self, record: dict) -> None:
        proto = record["proto"]
        if record["sport"] is not None:
            answer = True
        elif proto in ICMP_ANSWERS:
            answer = record["icmp_type"] in ICMP_ANSWERS[proto]
        else:
            answer = False
        src, dst = self.name(record["src"]), self.name(record["dst"])
        client, server = (dst, src) if answer else (src, dst)
        port = record["sport"] if answer else record["dport"]
        proto_key = "icmp" if proto in ICMP_ANSWERS else proto
        key = (client, server, proto_key, port, record["family"])
        conversation = self._open.get(key)
        if conversation is None:
            conversation = self._open[key] = {
                "id": f"{client}>{server}/{proto_key}/{port if port is not None else '-'}/{record['family']}",
                "client": client, "server": server, "proto": proto_key, "port": port, "family": record["family"],
                "packets": 0, "bytes": 0, "dropped": False, "last": 0.0, "hops": {}}
        leg = "reply" if answer else "request"
        hop_key = (record["eni"], record["direction"], leg, record["action"], record["reason"])
        hop = conversation["hops"].get(hop_key)
        if hop is None:
            hop = conversation["hops"][hop_key] = {
                "eni": record["eni"], "direction": record["direction"], "leg": leg, "action": record["action"],
                "accepted": record["accepted"], "reason": record["reason"], "packets": 0, "bytes": 0,
                "peer": server if record["eni"] == client else client}     # where the ENI faces
        hop["packets"] += record["packets"]
        hop["bytes"] += record["bytes"]
        hop["sg"] = self._groups.get(record["sg"] or "", record["sg"])
        rule = record["rule"]
        hop["rule"] = named_text(rule, self._groups) if rule else None
        hop["rule_short"] = named_text(rule, self._groups, short=True) if rule else None
        hop["verdict"] = named_text(record["verdict"], self._groups)
        conversation["packets"] += record["packets"]
        conversation["bytes"] += record["bytes"]
        conversation["dropped"] = conversation["dropped"] or not record["accepted"]
        conversation["last"] = max(conversation["last"], record["last"])

    def take(self) -> dict:
        """The interval's conversations (most recent first, at most MAX_CONVERSATIONS) and resets."""
        ordered = sorted(self._open.values(), key=lambda c: (-c["dropped"], -c["last"]))
        kept, rest = ordered[:MAX_CONVERSATIONS], ordered[MAX_CONVERSATIONS:]
        for conversation in kept:
            conversation["hops"] = sorted(conversation["hops"].values(),
                                          key=lambda h: _LEG_ORDER.get((h["leg"], h["direction"]), 9))
        out = {"conversations": kept, "more_conversations": len(rest),
               "more_packets": self.overflow_packets + sum(c["packets"] for c in rest)}
        self._open = {}
        self.overflow_packets = 0
        return out


def instance_details(topology: Topology, instance: Instance) -> dict:
    """An instance's addresses and its SGs with every rule, as the side panel shows them."""
    groups = sg_names(topology)
    sgs = []
    for sg_id in instance.security_groups:
        group = topology.sg(sg_id)
        sgs.append({"id": group.id, "name": group.name, "description": group.description,
                    "rules": [{"id": r.rule_id, "direction": r.direction.value,
                               "text": named_text(r.describe(), groups), "description": r.description}
                              for r in (*group.ingress, *group.egress)]})
    addresses = {"private": instance.private_ip, "public": instance.public_ip, "ipv6": instance.ipv6}
    return {"name": instance.name, "kind": "instance", "subnet": instance.subnet,
            "addresses": {k: str(v) for k, v in addresses.items() if v is not None}, "security_groups": sgs}


def subnet_details(topology: Topology, name: str) -> dict | None:
    """A subnet's blocks and its network ACL's numbered entries in AWS's order (None: no such subnet)."""
    subnet = next((s for s in topology.subnets if s.name == name), None)
    if subnet is None:
        return None
    nacl = topology.nacl_for(name)
    shown = None
    if nacl is not None:
        shown = {"name": nacl.name, "id": nacl.id, "entries": [
            {"direction": e.direction.value, "rule_number": e.rule_number, "action": e.action, "text": e.describe()}
            for e in (*sorted(nacl.ingress, key=lambda e: e.rule_number),
                      *sorted(nacl.egress, key=lambda e: e.rule_number))]}
    blocks = [str(c) for c in (subnet.cidr, subnet.ipv6_cidr) if c is not None]
    members = [i.name for i in topology.instances if i.subnet == name]
    return {"name": name, "kind": "subnet", "blocks": blocks, "instances": members, "nacl": shown}


def node_fields(exported: dict, name: str) -> tuple[str, dict] | None:
    """Any named node of the exported topology (kind = the list it is in), for kinds without a panel of
    their own: internet hosts, and whatever the model grows (NACLs, gateways)."""
    for kind, items in exported.items():
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("name") == name:
                    return kind, item
    return None
