"""Inventory -> topology schema data for one VPC: names made safe, addresses placed, every rule
either carried over or listed with the reason, then validated by `topology.parse`."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from ..model import Quotas
from ..topology import Loaded, parse
from ..topology.network import VPC_ID
from ..topology.security_groups import SG_ID
from .inventory import ImportedGroup, ImportedInstance, ImportedRule, ImportedSubnet, Inventory
from .json_source import ImportSourceError
from .names import LAB_NAME_MAX, Names, instance_name, node_name, sg_name, sg_text

DEFAULT_VPC = IPv4Network("10.0.0.0/16")
YOU_CANDIDATES = IPv4Network("203.0.113.0/24")       # TEST-NET-3: "your IP" in AWS's examples
YOU_IPV6 = "2001:db8:ff::10"
GENERATED_PUBLIC = IPv4Network("198.51.100.0/24")    # TEST-NET-2: public IPs for generated instances
PROTOCOL_ALIASES = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
                    "icmpv6": "icmpv6", "58": "icmpv6", "-1": "all", "all": "all"}


@dataclass(frozen=True)
class ImportResult:
    data: dict                         # the topology in the YAML schema
    loaded: Loaded                     # the same, validated
    skipped: tuple[str, ...]           # what could not be carried over, each with its source and reason
    notes: tuple[str, ...]             # what was renamed, guessed or added


def build(inventory: Inventory, lab_name: str, vpc: str | None = None) -> ImportResult:
    """The topology of one VPC (`vpc`, or the only one the inputs mention)."""
    return _Builder(inventory, node_name(lab_name, LAB_NAME_MAX) or "imported").run(vpc)


def cover(networks: list[IPv4Network] | list[IPv6Network]) -> IPv4Network | IPv6Network:
    """The smallest single block containing every network given."""
    block = networks[0]
    while not all(n.subnet_of(block) for n in networks):  # type: ignore[arg-type]
        block = block.supernet()
    return block


class _Builder:
    def __init__(self, inventory: Inventory, lab_name: str):
        self.inv = inventory
        self.lab_name = lab_name
        self.skipped = list(inventory.skipped)
        self.notes = list(inventory.notes)
        self.nodes = Names()
        self.cidr = DEFAULT_VPC

    def skip(self, message: str) -> None:
        self.skipped.append(message)

    # --- which VPC ----------------------------------------------------------------------------

    def _choose_vpc(self, choice: str | None) -> str | None:
        seen = Counter(v for v in (*(g.vpc for g in self.inv.groups.values()),
                                   *(s.vpc for s in self.inv.subnets.values()),
                                   *(i.vpc for i in self.inv.instances)) if v is not None)
        if choice is not None:
            if choice not in seen and choice not in self.inv.vpcs:
                raise ImportSourceError(f"--vpc {choice}: not in the inputs; they hold: "
                                        f"{', '.join(sorted(seen)) or 'no VPC ids'}")
            return choice
        if len(seen) > 1:
            counts = ", ".join(f"{v} ({n} object{'s' if n != 1 else ''})" for v, n in seen.most_common())
            raise ImportSourceError(f"{', '.join(self.inv.sources)}: the inputs span {len(seen)} VPCs: {counts}; "
                                    "a lab is one VPC: choose one with --vpc")
        return next(iter(seen), next(iter(self.inv.vpcs), None))

    def _in_vpc(self, vpc: str | None, chosen: str | None, what: str, where: str) -> bool:
        if vpc is None or chosen is None or vpc == chosen:
            return True
        self.skip(f"{where}: {what} is in {vpc}, not {chosen}: not carried over (a lab is one VPC)")
        return False

    # --- network ------------------------------------------------------------------------------

    def _vpc_blocks(self, chosen: str | None, subnets: list[IPv4Network],
                    subnets_v6: list[IPv6Network]) -> tuple[IPv4Network, IPv6Network | None]:
        record = self.inv.vpcs.get(chosen) if chosen is not None else None
        if record is not None and record.cidr is not None:
            cidr = ip_network(record.cidr, strict=False)
            if record.extra_cidrs:
                self.notes.append(f"{record.where}: {chosen} has secondary blocks "
                                  f"{', '.join(record.extra_cidrs)}; the lab's VPC is one block covering its subnets")
        elif subnets:
            cidr = cover(subnets)
            self.notes.append(f"vpc.cidr {cidr} is the smallest block covering the subnets "
                              "(give --vpcs with describe-vpcs output for the real one)")
        else:
            cidr = DEFAULT_VPC
            self.notes.append(f"vpc.cidr {cidr} is a placeholder: the inputs hold no VPC or subnet blocks")
        if not all(s.subnet_of(cidr) for s in subnets):
            cidr = cover([cidr, *subnets])
        if not 16 <= cidr.prefixlen <= 28:
            raise ImportSourceError(f"{', '.join(self.inv.sources)}: the subnets need the block {cidr}, "
                                    "larger than a VPC's /16: import the subnets of one CIDR block only")
        v6 = ip_network(record.ipv6_cidr) if record is not None and record.ipv6_cidr else None
        if v6 is None and subnets_v6:
            v6 = cover(subnets_v6)
        return cidr, v6  # type: ignore[return-value]

    def _subnets(self, subnets: list[ImportedSubnet], instances: list[ImportedInstance]
                 ) -> dict[str, tuple[str, IPv4Network, IPv6Network | None]]:
        """Subnet key -> (name, IPv4 block, IPv6 block); blocks of unknown subnets guessed from instances."""
        blocks: dict[str, tuple[str | None, IPv4Network, IPv6Network | None]] = {}
        for s in subnets:
            if s.cidr is None:
                continue
            v6 = ip_network(s.ipv6_cidr) if s.ipv6_cidr else None
            blocks[s.key] = (s.name, ip_network(s.cidr), v6)  # type: ignore[assignment]
        known = {s.key for s in subnets}
        for key in dict.fromkeys(i.subnet for i in instances if i.subnet is not None):
            if key in blocks:
                continue
            ips = [IPv4Network(i.private_ip) for i in instances if i.subnet == key and i.private_ip]
            if not ips:
                raise ImportSourceError(f"subnet {key}: its CIDR is unknown and its instances have no private IP; "
                                        "give --subnets with describe-subnets output")
            guess = cover(ips)  # type: ignore[arg-type]
            guess = guess.supernet(new_prefix=24) if guess.prefixlen > 24 else guess
            clash = next((k for k, b in blocks.items() if b[1].overlaps(guess)), None)
            if clash is not None:
                raise ImportSourceError(f"subnet {key}: its CIDR is unknown and the guess {guess} overlaps {clash}; "
                                        "give --subnets with describe-subnets output")
            blocks[key] = (None, guess, None)  # type: ignore[assignment]
            why = "its CIDR is not in the inputs" if key not in known else "it has no CIDR in the inputs"
            self.notes.append(f"subnet {key}: {why}; guessed {guess} from its instances (give --subnets)")
        names = Names(limit=32)
        return {key: (names.claim(node_name(tag or ""), node_name(key) or "subnet"), v4, v6)
                for key, (tag, v4, v6) in blocks.items()}

    # --- rules --------------------------------------------------------------------------------

    def _rule(self, owner: str, r: ImportedRule, sg_names: dict[str, str]) -> dict | None:
        what = f"{owner}: {r.direction} {_describe(r)}"
        if r.not_carried is not None:
            self.skip(f"{r.where}: {what}: not carried over: {r.not_carried}")
            return None
        protocol = PROTOCOL_ALIASES.get(r.protocol.strip().lower())
        out: dict[str, object] = {}
        if protocol is None:
            number = int(r.protocol) if r.protocol.strip().isdigit() else -2
            if not 0 <= number <= 255:
                raise ImportSourceError(f"{r.where}: '{r.protocol}' is not a protocol; "
                                        "AWS allows tcp, udp, icmp, icmpv6, -1 or a number 0-255")
            out["protocol"] = number
        else:
            out["protocol"] = protocol
        if protocol in ("tcp", "udp"):
            low, high = r.from_port, r.to_port
            if low is None or high is None or not 0 <= low <= high <= 65535:
                raise ImportSourceError(f"{r.where}: {protocol} ports {low}-{high} are not a port range; "
                                        "AWS needs 0 <= FromPort <= ToPort <= 65535")
            out["ports"] = low if low == high else f"{low}-{high}"
        elif protocol in ("icmp", "icmpv6"):
            kind = -1 if r.from_port is None else r.from_port
            code = -1 if r.to_port is None else r.to_port
            if not (-1 <= kind <= 255 and -1 <= code <= 255) or (kind == -1 and code != -1):
                raise ImportSourceError(f"{r.where}: ICMP type {kind} code {code} is not valid; "
                                        "FromPort is the type and ToPort the code, -1 = all (a code needs a type)")
            if kind != -1:
                out["icmp_type"] = kind
            if code != -1:
                out["icmp_code"] = code
        if r.cidr is not None:
            try:
                ip_network(r.cidr, strict=False)
            except ValueError:
                raise ImportSourceError(f"{r.where}: '{r.cidr}' is not a CIDR; give an IPv4 or IPv6 block") from None
            out["cidr"] = r.cidr
        elif r.group in sg_names:
            out["group"] = sg_names[r.group]  # type: ignore[index]
        else:
            self.skip(f"{r.where}: {what}: not carried over: {r.group} is not in the imported security groups "
                      "(add its describe-security-groups output, or allow its members' CIDR instead)")
            return None
        if r.description:
            out["description"] = sg_text(r.description)
        return out

    def _group(self, g: ImportedGroup, name: str, sg_names: dict[str, str]) -> dict:
        out: dict[str, object] = {"name": name}
        if SG_ID.fullmatch(g.key):
            out["id"] = g.key
        else:
            self.notes.append(f"{g.where}: {name}: its id is not known yet (known after apply): sgemu generates one")
        if g.description:
            out["description"] = sg_text(g.description)
            if out["description"] != g.description:
                self.notes.append(f"{g.where}: {name}: description characters the schema does not allow "
                                  "replaced by '-'")
        if not g.has_rules:
            self.skip(f"{g.where}: security group {g.key} ({name}) is attached there but its rules are not in "
                      "the inputs: imported with no rules (add its describe-security-groups output)")
        for direction, rules in (("ingress", g.ingress), ("egress", g.egress)):
            carried: list[dict] = []
            for r in rules:
                rule = self._rule(name, r, sg_names)
                if rule is None:
                    continue
                twin = next((c for c in carried if _permission(c) == _permission(rule)), None)
                if twin is not None:
                    self.notes.append(f"{r.where}: {name}: {direction} {_describe(r)} repeats a permission; merged")
                    continue
                carried.append(rule)
            out[direction] = carried
        return out

    # --- instances ----------------------------------------------------------------------------

    def _instance(self, i: ImportedInstance, subnets: dict[str, tuple[str, IPv4Network, IPv6Network | None]],
                  default_subnet: str, sg_names: dict[str, str]) -> dict:
        name = instance_name(self.nodes, i.name, i.key)
        if i.name and i.name != name:
            self.notes.append(f"{i.where}: instance {i.key} (Name {i.name!r}) is named {name}")
        if i.subnet is None:
            self.notes.append(f"{i.where}: instance {name} has no subnet in the inputs: placed in {default_subnet}")
        subnet_name, v4, v6 = subnets[i.subnet] if i.subnet is not None else subnets[default_subnet]
        out: dict[str, object] = {"name": name, "subnet": subnet_name}
        if i.private_ip is not None and ip_address(i.private_ip) in v4:
            out["private_ip"] = i.private_ip
        elif i.private_ip is not None:
            self.skip(f"{i.where}: {name}: private IP {i.private_ip} is outside its subnet {v4}: "
                      "the next free address is used instead")
        if i.public_ip is not None:
            out["public_ip"] = i.public_ip
        if i.ipv6 is not None and v6 is not None and ip_address(i.ipv6) in v6:
            out["ipv6"] = i.ipv6
        elif i.ipv6 is not None:
            self.skip(f"{i.where}: {name}: IPv6 address {i.ipv6} not carried over: its subnet has no "
                      "matching IPv6 block in the inputs (give --subnets and --vpcs)")
        groups = [sg_names[k] for k in i.groups if k in sg_names]
        if groups:
            out["security_groups"] = groups
        else:   # as when launching without SGs: the VPC's default SG applies
            self.notes.append(f"{i.where}: {name}: no security groups given; it gets the VPC's default SG, as in AWS")
        return out

    def _one_per_group(self, names: list[str], subnet: str) -> list[dict]:
        publics = (str(a) for a in GENERATED_PUBLIC.hosts() if int(a) & 0xFF >= 10)
        out = []
        for sg in names:
            out.append({"name": self.nodes.claim(node_name(sg), "instance"), "subnet": subnet,
                        "public_ip": next(publics, None), "security_groups": [sg]})
            if out[-1]["public_ip"] is None:
                del out[-1]["public_ip"]
        self.notes.append(f"no instance data: one instance per security group ({len(out)}), in subnet "
                          f"{subnet}, each with a public IP from {GENERATED_PUBLIC} so its rules can be exercised")
        return out

    # --- the whole lab ------------------------------------------------------------------------

    def run(self, choice: str | None) -> ImportResult:
        chosen = self._choose_vpc(choice)
        groups = [g for g in self.inv.groups.values()
                  if self._in_vpc(g.vpc, chosen, f"security group {g.key} ({g.name})", g.where)]
        subnets = [s for s in self.inv.subnets.values() if self._in_vpc(s.vpc, chosen, f"subnet {s.key}", s.where)]
        instances = [i for i in self.inv.instances if self._in_vpc(i.vpc, chosen, f"instance {i.key}", i.where)]
        blocks = self._subnets(subnets, instances)
        cidr, ipv6_cidr = self._vpc_blocks(chosen, [b[1] for b in blocks.values()],
                                           [b[2] for b in blocks.values() if b[2] is not None])
        for key, (name, v4, v6) in list(blocks.items()):
            if v6 is not None and (ipv6_cidr is None or not v6.subnet_of(ipv6_cidr)):
                self.skip(f"subnet {key}: IPv6 block {v6} is outside the VPC's IPv6 block: not carried over")
                blocks[key] = (name, v4, None)
        self.cidr = cidr
        default_subnet = self._default_subnet(blocks)
        sg_names: dict[str, str] = {}
        sg_name_set = Names(limit=255)
        for g in groups:
            sg_names[g.key] = sg_name(sg_name_set, g.name, g.key)
            if g.name is not None and sg_names[g.key] != g.name:
                self.notes.append(f"{g.where}: security group {g.key} GroupName {g.name!r} is named "
                                  f"{sg_names[g.key]!r} (the schema allows a-z A-Z 0-9 space ._-:/()#,@[]+=;{{}}!$*)")
        data: dict[str, object] = {"name": self.lab_name, "vpc": {"cidr": str(cidr)}}
        if chosen is not None and VPC_ID.fullmatch(chosen):    # kept, so exports round-trip
            data["vpc"]["id"] = chosen  # type: ignore[index]
        if ipv6_cidr is not None:
            data["vpc"]["ipv6_cidr"] = str(ipv6_cidr)  # type: ignore[index]
        data["subnets"] = [{"name": n, "cidr": str(v4), **({"ipv6_cidr": str(v6)} if v6 else {})}
                           for n, v4, v6 in blocks.values()]
        data["security_groups"] = [self._group(g, sg_names[g.key], sg_names) for g in groups]
        if instances:
            data["instances"] = [self._instance(i, blocks, default_subnet, sg_names) for i in instances]
        else:
            data["instances"] = self._one_per_group(list(sg_names.values()), blocks[default_subnet][0])
        data["internet"] = [self._you(data, cidr, ipv6_cidr)]
        quotas = _quotas(data)
        if quotas:
            data["options"] = {"quotas": quotas}
            self.notes.append(f"options.quotas {quotas}: raised above AWS's defaults to fit the imported rules "
                              "(the account must have these quota increases)")
        loaded = parse(data, f"imported topology (from {', '.join(self.inv.sources)})", self.lab_name)
        return ImportResult(data, loaded, tuple(self.skipped), tuple(self.notes))

    def _default_subnet(self, blocks: dict) -> str:
        """Where instances without a subnet go: the first subnet, or a new /24 when there is none."""
        if blocks:
            return next(iter(blocks))
        cidr = self.cidr
        free = next(cidr.subnets(new_prefix=max(24, cidr.prefixlen)))
        blocks["imported"] = ("imported", free, None)
        self.notes.append(f"subnet imported ({free}) added: the inputs hold no subnet")
        return "imported"

    def _you(self, data: dict, cidr: IPv4Network, ipv6_cidr: IPv6Network | None) -> dict:
        used = {str(i.get("public_ip")) for i in data["instances"]}  # type: ignore[union-attr]
        ip = next(str(a) for a in YOU_CANDIDATES.hosts()
                  if int(a) & 0xFF >= 10 and str(a) not in used and a not in cidr)
        name = self.nodes.claim("you", "you")
        host = {"name": name, "ip": ip, **({"ipv6": YOU_IPV6} if ipv6_cidr is not None else {})}
        self.notes.append(f"internet host {name} ({ip}{', ' + YOU_IPV6 if ipv6_cidr else ''}) added "
                          "so the lab can be exercised from outside the VPC")
        return host


def _describe(r: ImportedRule) -> str:
    ports = "" if r.from_port is None else f" {r.from_port}" if r.from_port == r.to_port \
        else f" {r.from_port}-{r.to_port}"
    peer = r.cidr or r.group or "?"
    return f"{r.protocol}{ports} {'from' if r.direction == 'ingress' else 'to'} {peer}"


def _permission(rule: dict) -> tuple:
    """What AWS compares for duplicates: everything but the description; CIDRs canonical."""
    cidr = rule.get("cidr")
    return (rule["protocol"], rule.get("ports"), rule.get("icmp_type"), rule.get("icmp_code"),
            str(ip_network(cidr, strict=False)) if cidr else None, rule.get("group"))


def _quotas(data: dict) -> dict[str, int]:
    """Quotas the imported rules need beyond AWS's defaults (counted per direction and family)."""
    def family(rule: dict) -> int:
        return 6 if ":" in str(rule.get("cidr", "")) else 4
    need_rules = max((sum(1 for r in g[d] if family(r) == fam) for g in data["security_groups"]
                      for d in ("ingress", "egress") for fam in (4, 6)), default=0)
    need_sgs = max((len(i.get("security_groups", ())) for i in data["instances"]), default=0)
    out = {}
    if need_rules > Quotas().rules_per_sg:
        out["rules_per_sg"] = need_rules
    if need_sgs > Quotas().sgs_per_eni:
        out["sgs_per_eni"] = need_sgs
    return out
