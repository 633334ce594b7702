"""`sgemu explain`: what happens to a first packet and its reply, hop by hop, decided by the engine.

Pure: it builds fresh firewalls from the topology and feeds them the packets a real client and server
would exchange, addressed the way the lab's fabric addresses them (public IPs through 1:1 NAT,
private IPs inside the VPC, IPv6 routed).
"""
from __future__ import annotations

from ipaddress import ip_address

from ..engine.firewall import EniFirewall, build_firewalls
from ..engine.nacl import NaclVerdict
from ..engine.naclstate import NaclState
from ..engine.packet import TCP_ACK, TCP_RST, TCP_SYN, Packet
from ..errors import ExplainError
from ..model import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    Direction,
    Instance,
    InternetHost,
    IPAddress,
    Topology,
)
from ..routes import TARGET_BLACKHOLE, TARGET_EIGW, TARGET_IGW, NatGateway, RouteChoice, route_from, routes_declared
from .result import Explanation, Hop, show, wanted

EPHEMERAL_PORT = 40000
PROTOCOLS = {"tcp": PROTO_TCP, "udp": PROTO_UDP, "icmp": PROTO_ICMP}

Node = Instance | InternetHost


def explain(topology: Topology, src: str, dst: str, port: int = 0, proto: str = "tcp",
            ipv6: bool = False, listening: bool | None = None) -> Explanation:
    """Explain SRC -> DST. `listening` overrides what the topology's services say about DST."""
    if proto not in PROTOCOLS:
        raise ExplainError(f"unknown protocol {proto!r}; use tcp, udp or icmp")
    if proto in ("tcp", "udp") and not 0 < port < 65536:
        raise ExplainError(f"--port is required for {proto} and must be 1-65535")
    src_node = _node(topology, src)
    gateway = _nat_gateway_addressed(topology, dst)
    if gateway is not None:
        # AWS: a NAT gateway answers nothing addressed to it (not even ping) and forwards no
        # connection opened from outside (https://docs.aws.amazon.com/vpc/latest/userguide/nat-gateway-troubleshooting.html)
        return Explanation(src_node.name, gateway.name, proto, port, "timeout",
                           f"{gateway.name} is a NAT gateway ({gateway.id}): it answers nothing addressed to "
                           "it, on its private IP or its Elastic IP, and forwards no connection opened from "
                           "outside the VPC")
    dst_node, dst_literal = _destination(topology, dst)
    _, firewalls = build_firewalls(topology)
    return _Walk(topology, firewalls, src_node, dst_node, dst_literal, proto, port, ipv6,
                 listening, NaclState(topology)).run()


def _node(topology: Topology, name: str) -> Node:
    node = topology.node(name)
    if node is None:
        names = ", ".join(n.name for n in topology.nodes)
        raise ExplainError(f"no instance or internet host named {name!r} (have: {names})")
    return node


def _nat_gateway_addressed(topology: Topology, dst: str) -> NatGateway | None:
    """The NAT gateway DST names (by name, private IP or Elastic IP), if any."""
    for nat in topology.nat_gateways:
        if dst in (nat.name, str(nat.private_ip), str(nat.public_ip)):
            return nat
    return None


def _destination(topology: Topology, dst: str) -> tuple[Node, IPAddress | None]:
    try:
        addr = ip_address(dst)
    except ValueError:
        return _node(topology, dst), None
    for inst in topology.instances:
        if addr in (inst.private_ip, inst.public_ip, inst.ipv6):
            return inst, addr
    for host in topology.internet:
        if addr in host.addresses:
            return host, addr
    raise ExplainError(f"{dst} is no address of this lab's instances or internet hosts")


class _Walk:
    """One question: resolve addresses, then push the request and its answer through the ENIs."""

    def __init__(self, topology: Topology, firewalls: dict[str, EniFirewall], src: Node, dst: Node,
                 dst_literal: IPAddress | None, proto: str, port: int, ipv6: bool,
                 listening: bool | None, nacls: NaclState):
        self.topology, self.firewalls, self.nacls = topology, firewalls, nacls
        self.crossing = True           # set by _route: False between two private addresses of one subnet
        # NACL hops are shown when some NACL of the lab can deny (a lab with AWS's default NACL only
        # explains exactly as before)
        families = (4, 6) if topology.vpc.dual_stack else (4,)
        self.show_nacls = not all(g.open_in[v] and g.open_out[v] for g in nacls.gates.values() for v in families)
        self.src, self.dst, self.proto_name, self.port = src, dst, proto, port
        self.version = 6 if ipv6 or (dst_literal is not None and dst_literal.version == 6) else 4
        self.dst_literal = dst_literal
        self.listening = listening
        self.notes: list[str] = []
        self.now = 0.0
        self.show_routes = routes_declared(topology)  # a lab with the default main table only: as before
        self.route_out: RouteChoice | None = None     # the request leaving the VPC (source's route table)
        self.route_back: RouteChoice | None = None    # the answer leaving the VPC (destination's route table)
        self.nat: NatGateway | None = None            # the NAT gateway the request leaves through

    # --- addressing -------------------------------------------------------------------------

    def _route(self) -> tuple[IPAddress, IPAddress, IPAddress, IPAddress] | str:
        """(src as sent, dst as sent, src as the destination sees it, dst as its ENI sees it), or why not."""
        src, dst = self.src, self.dst
        if self.version == 6:
            s, d = _v6(src), _v6(dst)
            if s is None:
                return f"{src.name} has no IPv6 address"
            if d is None:
                return f"{dst.name} has no IPv6 address"
            if isinstance(src, InternetHost) and isinstance(dst, InternetHost):
                return "both ends are internet hosts; no security group is on the path"
            if isinstance(src, Instance) and isinstance(dst, Instance):
                self.crossing = src.subnet != dst.subnet
            elif isinstance(src, Instance):
                self.route_out = route_from(self.topology, src.subnet, d)
            elif isinstance(dst, Instance):
                self.route_back = route_from(self.topology, dst.subnet, s)
            return s, d, s, d
        if isinstance(src, Instance) and isinstance(dst, Instance):
            if self.dst_literal is not None and self.dst_literal == dst.public_ip:
                if src.public_ip is None:
                    return self._hairpin_through_nat(src, dst, dst.public_ip)
                self.notes.append(f"{dst.name} is reached by its public IP, so it sees {src.name}'s "
                                  f"public IP {src.public_ip}: SG references never match it")
                return src.private_ip, dst.public_ip, src.public_ip, dst.private_ip
            self.crossing = src.subnet != dst.subnet
            return src.private_ip, dst.private_ip, src.private_ip, dst.private_ip
        if isinstance(src, InternetHost) and isinstance(dst, Instance):
            if src.ip is None:
                return f"{src.name} has no IPv4 address"
            if dst.public_ip is None:
                return (f"{dst.name} has no public IP; the internet reaches instances only through "
                        "public IPs (or IPv6)")
            self.route_back = route_from(self.topology, dst.subnet, src.ip)
            return src.ip, dst.public_ip, src.ip, dst.private_ip
        if isinstance(src, Instance) and isinstance(dst, InternetHost):
            if dst.ip is None:
                return f"{dst.name} has no IPv4 address"
            self.route_out = choice = route_from(self.topology, src.subnet, dst.ip)
            nat = self.topology.nat_gateway(choice.target or "")
            if nat is not None:
                self.nat = nat
                self.notes.append(f"through NAT gateway {nat.name} ({nat.id}): {dst.name} sees its Elastic IP "
                                  f"{nat.public_ip}; {src.name}'s SGs see {dst.name}'s real address")
                return src.private_ip, dst.ip, nat.public_ip, dst.ip
            if choice.target == TARGET_IGW and src.public_ip is None:
                return f"{src.name} has no public IP, so it has no route to the internet"
            return src.private_ip, dst.ip, src.public_ip or src.private_ip, dst.ip
        return "both ends are internet hosts; no security group is on the path"

    def _hairpin_through_nat(self, src: Instance, dst: Instance,
                             public: IPAddress) -> tuple[IPAddress, IPAddress, IPAddress, IPAddress] | str:
        """An instance without a public IP to another's public IP: its table decides; only a NAT
        gateway carries it (in labs that have one), and the destination sees the gateway's Elastic IP."""
        choice = route_from(self.topology, src.subnet, public)
        nat = self.topology.nat_gateway(choice.target or "") if self.topology.nat_gateways else None
        if nat is None:
            return (f"{src.name} has no public IP, so it cannot reach {dst.name}'s public IP "
                    "through the internet gateway")
        self.route_out, self.nat = choice, nat
        self.notes.append(f"through NAT gateway {nat.name} ({nat.id}) to {dst.name}'s public IP: {dst.name} sees "
                          f"its Elastic IP {nat.public_ip}: SG references never match it")
        return src.private_ip, public, nat.public_ip, dst.private_ip

    # --- packets ----------------------------------------------------------------------------

    def _proto(self) -> int:
        if self.proto_name == "icmp":
            return PROTO_ICMPV6 if self.version == 6 else PROTO_ICMP
        return PROTOCOLS[self.proto_name]

    def _request(self, src: IPAddress, dst: IPAddress) -> Packet:
        proto = self._proto()
        if proto == PROTO_TCP:
            return Packet.build(self.version, src, dst, proto, EPHEMERAL_PORT, self.port,
                                tcp_flags=TCP_SYN, length=60)
        if proto == PROTO_UDP:
            return Packet.build(self.version, src, dst, proto, EPHEMERAL_PORT, self.port, length=40)
        echo = 128 if self.version == 6 else 8
        return Packet.build(self.version, src, dst, proto, icmp_type=echo, icmp_code=0,
                            icmp_id=4242, length=84)

    def _answer(self, request: Packet, src: IPAddress, dst: IPAddress, listening: bool) -> Packet:
        """What the destination's kernel sends back (src/dst as given)."""
        proto = request.proto
        if proto == PROTO_TCP:
            flags = TCP_SYN | TCP_ACK if listening else TCP_RST | TCP_ACK
            return Packet.build(self.version, src, dst, proto, request.dport, request.sport,
                                tcp_flags=flags, length=60 if listening else 40)
        if proto == PROTO_UDP and listening:
            return Packet.build(self.version, src, dst, proto, request.dport, request.sport, length=40)
        if proto == PROTO_UDP:
            unreachable = (1, 4) if self.version == 6 else (3, 3)
            inner = Packet.build(self.version, dst, src, proto, request.sport, request.dport)
            return Packet.build(self.version, src, dst, PROTO_ICMPV6 if self.version == 6 else PROTO_ICMP,
                                icmp_type=unreachable[0], icmp_code=unreachable[1], length=68,
                                inner=inner)
        reply = 129 if self.version == 6 else 0
        return Packet.build(self.version, src, dst, proto, icmp_type=reply, icmp_code=0,
                            icmp_id=request.icmp_id, length=84)

    def _listens(self) -> bool:
        if self.listening is not None:
            return self.listening
        if isinstance(self.dst, InternetHost) or self.proto_name == "icmp":
            return True
        return self.dst.listens(self._proto(), self.port)

    # --- the walk ---------------------------------------------------------------------------

    def _pass(self, node: Node, direction: Direction, packet: Packet, hops: list[Hop]) -> bool:
        """One ENI's crossing in the order AWS applies: SG egress then the subnet's NACL outbound,
        or the subnet's NACL inbound then SG ingress (NACLs only where the subnet boundary is crossed)."""
        if isinstance(node, InternetHost):
            return True
        if direction is Direction.INGRESS and not self._boundary(node, False, packet, hops):
            return False
        verdict = self.firewalls[node.name].decide(packet, direction, self.now)
        hops.append(Hop(f"{node.name} {direction.value}", show(packet), verdict))
        if not verdict.accepted:
            return False
        return direction is Direction.INGRESS or self._boundary(node, True, packet, hops)

    def _boundary(self, node: Instance, outbound: bool, packet: Packet, hops: list[Hop]) -> bool:
        return not self.crossing or self._subnet_boundary(node.subnet, outbound, packet, hops)

    def _subnet_boundary(self, subnet: str, outbound: bool, packet: Packet, hops: list[Hop]) -> bool:
        gate = self.nacls.gate(subnet)
        verdict = gate.check(packet, outbound)
        if isinstance(verdict, NaclVerdict) and (self.show_nacls or not verdict.accepted):
            where = f"{subnet} subnet {'outbound' if outbound else 'inbound'}"
            hops.append(Hop(where, show(packet), verdict, f"network ACL {gate.nacl.name}"))
        return verdict.accepted

    def _through_nat(self, nat: NatGateway, inside: Packet, outside: Packet, hops: list[Hop], answer: bool) -> bool:
        """The NAT gateway's subnet NACL on both legs: the inside leg (instance <-> internet host) where
        the instance's subnet is another, and the outside leg (gateway <-> internet host). A request
        enters from inside and leaves outside; an answer enters from outside and leaves inside."""
        assert isinstance(self.src, Instance)
        across = self.src.subnet != nat.subnet
        if answer:
            return self._subnet_boundary(nat.subnet, False, outside, hops) and \
                (not across or self._subnet_boundary(nat.subnet, True, inside, hops))
        return (not across or self._subnet_boundary(nat.subnet, False, inside, hops)) and \
            self._subnet_boundary(nat.subnet, True, outside, hops)

    def _why(self, hops: list[Hop], answer: bool) -> str:
        """Where the last hop dropped it, and for a NACL drop of a reply, which rule is missing."""
        hop = hops[-1]
        verdict = hop.verdict
        assert verdict is not None
        what = "the answer is dropped" if answer else "dropped"
        if isinstance(verdict, NaclVerdict):
            text = f"{what} at the {hop.where} boundary: {verdict.describe()}"
            if answer:
                text += (f"; network ACLs are stateless, so the answer needs its own "
                         f"{'outbound' if verdict.outbound else 'inbound'} allow rule for "
                         f"{wanted(hop.packet, self.nat)} in network ACL {verdict.nacl_name}")
            return text
        node, direction = hop.where.rsplit(" ", 1)
        return f"{what} at {node}'s {direction}: {hop.why}"

    def run(self) -> Explanation:
        route = self._route()
        if isinstance(route, str):
            return self._result("timeout", route)
        sent_src, sent_dst, seen_src, seen_dst = route
        request: list[Hop] = []
        out = self._request(sent_src, sent_dst)
        arriving = self._request(seen_src, seen_dst)
        if not self._pass(self.src, Direction.EGRESS, out, request):
            self._note_second_drop(arriving)
            return self._result("timeout", self._why(request, False), request)
        if (dropped := self._routed(self.src, self.route_out, out, request, False)) is not None:
            return self._result("timeout", dropped, request)
        nat = self.nat
        translated = self._request(nat.private_ip, sent_dst) if nat is not None else out
        if nat is not None and not self._through_nat(nat, out, translated, request, False):
            return self._result("timeout", self._why(request, False), request)
        if not self._pass(self.dst, Direction.INGRESS, arriving, request):
            return self._result("timeout", self._why(request, False), request)
        listening = self._listens()
        reply: list[Hop] = []
        self.now += 0.001
        back = self._answer(arriving, seen_dst, seen_src, listening)
        if not self._pass(self.dst, Direction.EGRESS, back, reply):
            return self._result("timeout", self._why(reply, True), request, reply)
        if (dropped := self._routed(self.dst, self.route_back, back, reply, True)) is not None:
            return self._result("timeout", dropped, request, reply)
        returning = self._answer(out, sent_dst, sent_src, listening)
        if nat is not None:
            untranslated = self._answer(translated, sent_dst, nat.private_ip, listening)
            if not self._through_nat(nat, returning, untranslated, reply, True):
                return self._result("timeout", self._why(reply, True), request, reply)
        if not self._pass(self.src, Direction.INGRESS, returning, reply):
            return self._result("timeout", self._why(reply, True), request, reply)
        if not listening:
            what = "TCP RST" if self.proto_name == "tcp" else "ICMP port unreachable"
            return self._result("refused", f"allowed, but nothing listens on {self.dst.name}:"
                                f"{self.port}; its kernel answers {what}", request, reply)
        outcome = "open" if self.proto_name == "tcp" else "reply"
        return self._result(outcome, "allowed both ways", request, reply)

    def _routed(self, node: Node, choice: RouteChoice | None, packet: Packet, hops: list[Hop],
                answer: bool) -> str | None:
        """The routing hop of a packet leaving the VPC; why it is dropped there, or None.
        No route and blackhole routes discard silently; an egress-only gateway carries no answer
        to a connection the internet opened; a NAT gateway carries none either."""
        if choice is None or not isinstance(node, Instance):
            return None
        what = "the answer" if answer else "the packet"
        if choice.target is None or choice.target == TARGET_BLACKHOLE:
            why = f"{what} is discarded silently ({choice.describe()})"
        elif answer and choice.target == TARGET_EIGW:
            why = (f"{what} leaves through the egress-only internet gateway ({choice.describe()}), which "
                   "lets no connection started on the internet through")
        elif answer and choice.target not in (TARGET_IGW, TARGET_EIGW):
            why = (f"{what} leaves through NAT gateway {choice.target} ({choice.describe()}), which "
                   "forwards only connections started inside the VPC")
        else:
            if self.show_routes:
                hops.append(Hop(f"{node.subnet} routing", show(packet), None, choice.describe()))
            return None
        hops.append(Hop(f"{node.subnet} routing", show(packet), None, f"DROP: {choice.describe()}"))
        return why

    def _note_second_drop(self, arriving: Packet) -> None:
        """AWS checks both ENIs: say when the destination would drop the packet too."""
        if isinstance(self.dst, Instance):
            verdict = self.firewalls[self.dst.name].decide(arriving, Direction.INGRESS, self.now)
            if not verdict.accepted:
                self.notes.append(f"{self.dst.name}'s ingress would drop it as well: {verdict.describe()}")

    def _result(self, outcome: str, why: str, request: list[Hop] | None = None,
                reply: list[Hop] | None = None) -> Explanation:
        groups = tuple((g.id, g.name) for g in self.topology.security_groups)
        return Explanation(self.src.name, self.dst.name, self.proto_name, self.port, outcome, why,
                           tuple(request or ()), tuple(reply or ()), tuple(self.notes), groups)


def _v6(node: Node) -> IPAddress | None:
    return node.ipv6
