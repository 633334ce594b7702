"""Imported instances placed in the lab: subnet, addresses and SGs, each checked the way the topology
schema (and AWS) checks them, so one bad value is replaced or left out and named, not fatal."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address

from ..topology.addresses import subnet_reserved, unroutable
from .inventory import ImportedInstance, Inventory
from .json_source import ImportSourceError
from .names import Names, instance_name, node_name
from .network import Blocks

YOU_CANDIDATES = IPv4Network("203.0.113.0/24")       # TEST-NET-3: "your IP" in AWS's examples
YOU_IPV6 = "2001:db8:ff::10"
GENERATED_PUBLIC = IPv4Network("198.51.100.0/24")    # TEST-NET-2: public IPs for generated instances
MAX_SGS = 16                                          # AWS's highest security-groups-per-ENI quota


class Placement:
    def __init__(self, inv: Inventory, blocks: Blocks, default_subnet: str, cidr: IPv4Network,
                 sg_names: dict[str, str]):
        self.inv = inv
        self.blocks = blocks
        self.default_subnet = default_subnet
        self.cidr = cidr
        self.sg_names = sg_names
        self.nodes = Names()
        self.taken: set[str] = set()             # every address handed out (private, public, IPv6)

    def _refuse(self, message: str) -> None:
        """An address the lab cannot give the instance: named, or with strict the import is refused."""
        if self.inv.strict:
            raise ImportSourceError(message.split(": not carried over", 1)[0])
        self.inv.skipped.append(message)

    def _claim(self, address: str) -> bool:
        if address in self.taken:
            return False
        self.taken.add(address)
        return True

    def instance(self, i: ImportedInstance) -> dict:
        name = instance_name(self.nodes, i.name, i.key)
        if i.name and i.name != name:
            self.inv.notes.append(f"{i.where}: instance {i.key} (Name {i.name!r}) is named {name}")
        subnet = i.subnet if i.subnet in self.blocks else self.default_subnet
        if i.subnet is None:
            self.inv.notes.append(f"{i.where}: instance {name} has no subnet in the inputs: placed in "
                                  f"{self.blocks[subnet][0]}")
        elif subnet != i.subnet:
            self.inv.notes.append(f"{i.where}: instance {name}: its subnet {i.subnet} is not in the lab: placed in "
                                  f"{self.blocks[subnet][0]}")
        subnet_name, v4, v6 = self.blocks[subnet]
        out: dict[str, object] = {"name": name, "subnet": subnet_name}
        if i.private_ip is not None:
            self._private_ip(i, name, v4, out)
        if i.public_ip is not None:
            self._public_ip(i, name, out)
        if i.ipv6 is not None:
            self._ipv6(i, name, v6, out)
        groups: list[str] = []
        for key in i.groups:
            if key not in self.sg_names:
                where = self.inv.groups[key].vpc if key in self.inv.groups else None
                self.inv.skipped.append(f"{i.where}: {name}: security group {key} not carried over"
                                        f"{f' (it is in {where}, another VPC)' if where else ''}: the instance is "
                                        "imported without it")
            elif len(groups) == MAX_SGS:
                self.inv.skipped.append(f"{i.where}: {name}: security group {key} not carried over: AWS allows "
                                        f"at most {MAX_SGS} per interface")
            elif self.sg_names[key] not in groups:
                groups.append(self.sg_names[key])
        if groups:
            out["security_groups"] = groups
        else:   # as when launching without SGs: the VPC's default SG applies
            self.inv.notes.append(f"{i.where}: {name}: no security groups given; it gets the VPC's default SG, "
                                  "as in AWS")
        return out

    def _private_ip(self, i: ImportedInstance, name: str, v4: IPv4Network, out: dict) -> None:
        why = None
        try:
            # why the ignore below: a None address raises the ValueError handled below, as a malformed one does
            addr = ip_address(i.private_ip)  # type: ignore[arg-type]
        except ValueError:
            addr, why = None, "is not an IPv4 address"
        if addr is not None and addr not in v4:
            why = f"is outside its subnet {v4}"
        elif addr is not None and subnet_reserved(v4, addr):
            why = f"is reserved by AWS in {v4} (the first four and the last address of a subnet)"
        elif addr is not None and not self._claim(str(addr)):
            why = "is already another instance's"
        if why is None:
            out["private_ip"] = str(addr)
        else:
            self._refuse(f"{i.where}: {name}: private IP {i.private_ip} {why}: not carried over, "
                         "the next free address is used instead")

    def _public_ip(self, i: ImportedInstance, name: str, out: dict) -> None:
        why = None
        try:
            # why the ignore below: a None address raises the ValueError handled below, as a malformed one does
            addr = ip_address(i.public_ip)  # type: ignore[arg-type]
        except ValueError:
            addr, why = None, "is not an IPv4 address"
        if isinstance(addr, IPv4Address) and (bad := unroutable(addr)):
            why = f"is a {bad} address"
        elif addr is not None and addr in self.cidr:
            why = f"is inside the VPC ({self.cidr})"
        elif addr is not None and not self._claim(str(addr)):
            why = "is already another node's"
        if why is None:
            out["public_ip"] = str(addr)
        else:
            self._refuse(f"{i.where}: {name}: public IP {i.public_ip} {why}: not carried over")

    def _ipv6(self, i: ImportedInstance, name: str, v6: IPv6Network | None, out: dict) -> None:
        try:
            # why the ignore below: a None address raises the ValueError handled below, as a malformed one does
            addr = ip_address(i.ipv6)  # type: ignore[arg-type]
        except ValueError:
            addr = None
        if addr is not None and v6 is not None and addr in v6 and not subnet_reserved(v6, addr) \
                and self._claim(str(addr)):
            out["ipv6"] = str(addr)
        else:
            self.inv.skipped.append(f"{i.where}: {name}: IPv6 address {i.ipv6} not carried over: it is not a free "
                                    "address of its subnet's IPv6 block in the inputs (give describe-subnets and "
                                    "describe-vpcs output)")

    def one_per_group(self, names: list[str]) -> list[dict]:
        subnet = self.blocks[self.default_subnet][0]
        publics = (str(a) for a in GENERATED_PUBLIC.hosts() if int(a) & 0xFF >= 10)
        out = []
        for sg in names:
            out.append({"name": self.nodes.claim(node_name(sg), "instance"), "subnet": subnet,
                        "public_ip": next(publics, None), "security_groups": [sg]})
            if out[-1]["public_ip"] is None:
                del out[-1]["public_ip"]
        if out:
            self.inv.notes.append(f"no instance of this VPC in the inputs: one instance per security group "
                                  f"({len(out)}), in subnet {subnet}, each with a public IP from {GENERATED_PUBLIC} "
                                  "so its rules can be exercised")
        return out

    def you(self, instances: list[dict], ipv6_cidr: IPv6Network | None) -> dict:
        used = {str(i.get("public_ip")) for i in instances}
        ip = next(str(a) for a in YOU_CANDIDATES.hosts()
                  if int(a) & 0xFF >= 10 and str(a) not in used and a not in self.cidr)
        name = self.nodes.claim("you", "you")
        host = {"name": name, "ip": ip, **({"ipv6": YOU_IPV6} if ipv6_cidr is not None else {})}
        self.inv.notes.append(f"internet host {name} ({ip}{', ' + YOU_IPV6 if ipv6_cidr else ''}) added "
                              "so the lab can be exercised from outside the VPC")
        return host
