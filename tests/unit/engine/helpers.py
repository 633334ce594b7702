"""Model builders, scapy packet builders and a fake network joining firewalls by links.

A packet from instance A to instance B passes A's EGRESS then B's INGRESS, each through
packet.parse of the real bytes; internet hosts have no firewall.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.packet import Packet as ScapyPacket
from scapy.packet import Raw

from emulator.engine.firewall import EniFirewall, Verdict, build_firewalls
from emulator.engine.packet import Packet, parse
from emulator.model import (
    PROTOCOL_NAMES,
    ConntrackTimeouts,
    Direction,
    Instance,
    Options,
    PortRange,
    Rule,
    SecurityGroup,
    Subnet,
    Topology,
    Vpc,
)

VPC = Vpc(ip_network("10.0.0.0/16"), ip_network("fd00:10::/56"))
SUBNET = Subnet("main", ip_network("10.0.0.0/16"), ip_network("fd00:10::/64"))
ANY4, ANY6 = "0.0.0.0/0", "::/0"
INT = "198.51.100.7"           # an internet host
YOU = "203.0.113.10"           # "your IP"
INT6 = "2001:db8:ff::7"


# --- model builders ---------------------------------------------------------------------------

def rule(direction: Direction, protocol: str | int, ports: int | str | tuple[int, int] | None = None,
         cidr: str | None = None, group: str | None = None, icmp_type: int = -1,
         icmp_code: int = -1) -> Rule:
    number = PROTOCOL_NAMES[protocol] if isinstance(protocol, str) else protocol
    if isinstance(ports, int):
        ports = PortRange(ports, ports)
    elif isinstance(ports, str):
        low, _, high = ports.partition("-")
        ports = PortRange(int(low), int(high or low))
    elif isinstance(ports, tuple):
        ports = PortRange(*ports)
    return Rule(direction, number, ports, icmp_type, icmp_code,
                ip_network(cidr) if cidr is not None else None, group)


def ingress(protocol, ports=None, cidr=None, group=None, icmp_type=-1, icmp_code=-1) -> Rule:
    return rule(Direction.INGRESS, protocol, ports, cidr, group, icmp_type, icmp_code)


def egress(protocol, ports=None, cidr=None, group=None, icmp_type=-1, icmp_code=-1) -> Rule:
    return rule(Direction.EGRESS, protocol, ports, cidr, group, icmp_type, icmp_code)


ALL_OUT4 = egress("all", cidr=ANY4)
ALL_OUT6 = egress("all", cidr=ANY6)


def sg(name: str, ingress_rules=(), egress_rules=()) -> SecurityGroup:
    return SecurityGroup(name, f"sg-{name}", ingress=tuple(ingress_rules), egress=tuple(egress_rules))


def instance(name: str, ip: str, groups: list[str], ipv6: str | None = None,
             public_ip: str | None = None, **timeouts: int) -> Instance:
    return Instance(name, "main", ip_address(ip), tuple(f"sg-{g}" for g in groups),
                    ipv6=ip_address(ipv6) if ipv6 else None,
                    public_ip=ip_address(public_ip) if public_ip else None,
                    conntrack=ConntrackTimeouts(**timeouts))


def topology(groups: list[SecurityGroup], instances: list[Instance], **options) -> Topology:
    return Topology("test", VPC, (SUBNET,), tuple(groups), tuple(instances), options=Options(**options))


# --- packets ----------------------------------------------------------------------------------

def ip_layer(src: str, dst: str) -> ScapyPacket:
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def tcp(src: str, dst: str, sport: int, dport: int, flags: str = "S", payload: bytes = b"") -> bytes:
    return bytes(ip_layer(src, dst) / TCP(sport=sport, dport=dport, flags=flags) / Raw(payload))


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"q") -> bytes:
    return bytes(ip_layer(src, dst) / UDP(sport=sport, dport=dport) / Raw(payload))


def icmp(src: str, dst: str, icmp_type: int = 8, code: int = 0, ident: int = 1, payload=b"") -> bytes:
    if ":" in src:
        message = (ICMPv6EchoRequest(id=ident) if icmp_type == 128 else
                   ICMPv6EchoReply(id=ident) if icmp_type == 129 else None)
        if message is None:
            raise ValueError("use scapy directly for other ICMPv6 types")
        return bytes(IPv6(src=src, dst=dst) / message / Raw(payload))
    return bytes(IP(src=src, dst=dst) / ICMP(type=icmp_type, code=code, id=ident) / Raw(payload))


def proto_packet(src: str, dst: str, proto: int, payload: bytes = b"data") -> bytes:
    layer = IPv6(src=src, dst=dst, nh=proto) if ":" in src else IP(src=src, dst=dst, proto=proto)
    return bytes(layer / Raw(payload))


# --- the fake network -------------------------------------------------------------------------

@dataclass
class Trip:
    """What happened to one packet: each SG hop's verdict, and whether it arrived."""

    verdicts: list[tuple[str, Verdict]]

    @property
    def delivered(self) -> bool:
        return all(v.accepted for _, v in self.verdicts)

    @property
    def last(self) -> Verdict:
        return self.verdicts[-1][1]

    def at(self, where: str) -> Verdict:
        return dict(self.verdicts)[where]


class Net:
    """All firewalls of a topology; packets go sender egress -> receiver ingress."""

    def __init__(self, topo: Topology):
        self.topology = topo
        self.state, self.firewalls = build_firewalls(topo)
        self.now = 1000.0
        self._owner: dict[str, str] = {}
        for inst in topo.instances:
            for address in inst.addresses:
                self._owner[str(address)] = inst.name
        self._next_port = 40000

    def fw(self, name: str) -> EniFirewall:
        return self.firewalls[name]

    def ip(self, node: str, v6: bool = False) -> str:
        """An instance's private address (by name), or the address given."""
        inst = next((i for i in self.topology.instances if i.name == node), None)
        if inst is None:
            return node
        address = inst.ipv6 if v6 else inst.private_ip
        assert address is not None, f"{node} has no IPv{6 if v6 else 4} address"
        return str(address)

    def port(self) -> int:
        self._next_port += 1
        return self._next_port

    def wait(self, seconds: float) -> None:
        self.now += seconds

    def send(self, data: bytes | ScapyPacket) -> Trip:
        raw = bytes(data)
        packet = parse(raw)
        assert isinstance(packet, Packet), packet
        verdicts: list[tuple[str, Verdict]] = []
        sender = self._owner.get(str(packet.src_ip))
        receiver = self._owner.get(str(packet.dst_ip))
        if sender is not None:
            verdict = self.firewalls[sender].decide(packet, Direction.EGRESS, self.now)
            verdicts.append((f"{sender} egress", verdict))
            if not verdict.accepted:
                return Trip(verdicts)
        if receiver is not None:
            verdicts.append((f"{receiver} ingress",
                             self.firewalls[receiver].decide(packet, Direction.INGRESS, self.now)))
        return Trip(verdicts)

    def connect(self, client: str, server: str, port: int, listening: bool = True,
                v6: bool = False) -> Connection:
        """A TCP handshake the way real stacks do it; `outcome` is open, refused or timeout."""
        conn = Connection(self, self.ip(client, v6), self.ip(server, v6), self.port(), port)
        if not conn.client_sends("S").delivered or not conn.server_sends("SA" if listening else "RA").delivered:
            conn.outcome = "timeout"
        elif not listening:
            conn.outcome = "refused"
        elif not conn.client_sends("A").delivered:
            conn.outcome = "timeout"
        else:
            conn.outcome = "open"
        return conn

    def ping(self, src: str, dst: str, ident: int = 7, v6: bool = False,
             request: int | None = None) -> str:
        """One echo (or other query) exchange: 'reply' or 'timeout'."""
        a, b = self.ip(src, v6), self.ip(dst, v6)
        kind = request if request is not None else (128 if v6 else 8)
        if not self.send(icmp(a, b, kind, 0, ident)).delivered:
            return "timeout"
        return "reply" if self.send(icmp(b, a, kind + 1 if v6 or kind != 8 else 0, 0, ident)).delivered \
            else "timeout"

    def udp_exchange(self, src: str, dst: str, port: int, answer: bool = True,
                     sport: int | None = None) -> str:
        a, b = self.ip(src), self.ip(dst)
        sport = sport or self.port()
        if not self.send(udp(a, b, sport, port)).delivered:
            return "timeout"
        if not answer:
            return "sent"
        return "reply" if self.send(udp(b, a, port, sport)).delivered else "timeout"


class Connection:
    """One TCP connection between two addresses through the fake network."""

    def __init__(self, net: Net, client: str, server: str, cport: int, port: int):
        self.net, self.client, self.server, self.cport, self.port = net, client, server, cport, port
        self.outcome = ""

    def client_sends(self, flags: str = "PA", payload: bytes = b"") -> Trip:
        return self.net.send(tcp(self.client, self.server, self.cport, self.port, flags, payload))

    def server_sends(self, flags: str = "PA", payload: bytes = b"") -> Trip:
        return self.net.send(tcp(self.server, self.client, self.port, self.cport, flags, payload))

    def exchange(self) -> bool:
        """A request and its response both arrive."""
        return self.client_sends("PA", b"GET").delivered and self.server_sends("PA", b"200").delivered
