"""The fabric's hook rulesets as iptables-restore text: the NFQUEUE hooks that send every ENI's
packets to the engine, the marks of the fast paths, hairpin and IGW reachability. Pure text; the plan
(plan/__init__.py) carries it and lab/hooks.py installs it atomically, once, at `up`."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..model import TIMEOUT_RANGES, Instance, Topology
from . import (
    DECIDED_MARK,
    ENI_PREFIX,
    ENI_QUEUE,
    HAIRPIN_MARK,
    IGW_PREFIX,
    INTERNET_DNS,
    KERNEL_TIMEOUT_MARGIN,
    ND_TYPES,
    OFFLOAD_MARK,
    PULLBACK_MARK,
    Eni,
    Ruleset,
)
from .routing import NGW_PREFIX

if TYPE_CHECKING:
    from .routing import RoutingPlan

# -- hook rulesets (fabric namespace) -------------------------------------------------------

def _table(name: str, chains: tuple[str, ...], rules: list[str], own: tuple[str, ...] = ()) -> str:
    """`chains`: the table's built-in chains (policy ACCEPT); `own`: our chains the rules jump to."""
    head = [f"*{name}", *(f":{c} ACCEPT [0:0]" for c in chains), *(f":{c} - [0:0]" for c in own)]
    return "\n".join([*head, *rules, "COMMIT"]) + "\n"


MANGLE_CHAINS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
NAT_CHAINS = ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
FILTER_CHAINS = ("INPUT", "FORWARD", "OUTPUT")


def _queue_rules(enis: tuple[Eni, ...], gateways: bool) -> tuple[list[str], list[str]]:
    """PREROUTING -i eni-X is X's egress check; POSTROUTING -o eni-X is X's ingress check.
    One rule per direction for every ENI, to one queue: the engine tells the ENI by the
    packet's interface (NFQUEUE hands it over), so a packet's cost does not grow with the
    number of ENIs (a rule per ENI, walked in order, did: scripts/bench --scale).
    No --queue-bypass: with no engine bound, packets are dropped (fail closed).
    Between two instances (no NAT on the way) the engine decides the destination's ingress
    together with the source's egress and says so with DECIDED_MARK: one queue trip, not two.
    Packet marks never cross namespaces, so no instance can forge it.
    A NAT gateway's ENI (`gateways`) goes to the same queue, every packet: its subnet's NACL
    applies there, and each packet is a flow-log record of that ENI (no SG, no fast path)."""
    pre, post = [], []
    if enis:
        decided = f"0x{DECIDED_MARK:x}"
        pre = [f"-A PREROUTING -i {ENI_PREFIX}+ -j NFQUEUE --queue-num {ENI_QUEUE}"]
        post = [f"-A POSTROUTING -o {ENI_PREFIX}+ -m mark --mark {decided}/{decided} -j ACCEPT",
                f"-A POSTROUTING -o {ENI_PREFIX}+ -j NFQUEUE --queue-num {ENI_QUEUE}"]
    if gateways:
        pre.append(f"-A PREROUTING -i {NGW_PREFIX}+ -j NFQUEUE --queue-num {ENI_QUEUE}")
        post.append(f"-A POSTROUTING -o {NGW_PREFIX}+ -j NFQUEUE --queue-num {ENI_QUEUE}")
    return pre, post


HAIRPIN_CHAIN = "SGEMU-HAIRPIN"      # mangle: marks connections to public IPs from inside
ROUTED_CHAIN = "SGEMU-ROUTED"        # nat: sources without a public IP: their table routes public IPs
TO_INTERNET_CHAIN = "SGEMU-TO-IGW"   # filter: who may leave through the IGW
DNAT_CHAIN = "SGEMU-DNAT"            # filter: which instances a DNATed connection may reach


def _hairpin_rules(public: list[Instance], mark: str, gateways: bool) -> tuple[list[str], list[str]]:
    """(PREROUTING jumps, chain rules): a rule per public IP, walked only by a connection's
    first packet (the mark stays on the connection), so later packets pay nothing per instance.
    A NAT gateway's connections to public IPs are marked too: the engine shows its Elastic IP."""
    if not public:
        return [], []
    devices = [ENI_PREFIX, *([NGW_PREFIX] if gateways else [])]
    return ([f"-A PREROUTING -i {d}+ -m conntrack --ctstate NEW -j {HAIRPIN_CHAIN}" for d in devices],
            [f"-A {HAIRPIN_CHAIN} -d {i.public_ip}/32 -j CONNMARK --set-xmark {mark}" for i in public])


def _routed_rules(private_only: list[Instance], routing: RoutingPlan, mark: str) -> list[str]:
    """nat PREROUTING, before the public IPs' DNAT: a hairpin connection from an instance without a
    public IP is not translated (the IGW would not carry it) but routed by its subnet's table, which
    sends it through a NAT gateway or discards it (plan/routing.py `public_ips`). Walked only by the
    first packet of a hairpin connection."""
    if not routing.public_ips or not private_only:
        return []
    return [f"-A PREROUTING -i {ENI_PREFIX}+ -m connmark --mark {mark} -j {ROUTED_CHAIN}",
            *(f"-A {ROUTED_CHAIN} -s {i.private_ip}/32 -j ACCEPT" for i in private_only)]


def _internet_rules(public: list[Instance], private_only: list[Instance]) -> list[str]:
    """filter FORWARD after the IGW's own rules: per-instance lists sit in chains that only
    traffic to the internet, or of a DNATed connection, walks; packets between instances
    pass two rules, however many instances there are."""
    eni_wild, igw_wild = ENI_PREFIX + "+", IGW_PREFIX + "+"
    return [f"-A FORWARD -o {igw_wild} -j {TO_INTERNET_CHAIN}",
            *(f"-A {TO_INTERNET_CHAIN} -s {i.private_ip}/32 -j ACCEPT" for i in public),
            f"-A {TO_INTERNET_CHAIN} -i {eni_wild} -j DROP",
            *([f"-A FORWARD -m conntrack --ctstate DNAT -j {DNAT_CHAIN}"] if private_only else []),
            *(f"-A {DNAT_CHAIN} -s {i.private_ip}/32 -j DROP" for i in private_only)]


def _offload_rules(family: int) -> dict[str, list[str]]:
    """Kernel fast path for flows the engine marked (OFFLOAD_MARK on the connection, and not
    PULLBACK_MARK): their packets skip the queues, except TCP SYN/FIN/RST, which the engine's
    state machine must see, and ICMP other than echo (errors are RELATED to a flow in the
    kernel and carry its mark; the engine decides them). The engine marks a flow through the
    verdict's packet mark; mangle FORWARD copies it to the connection (it runs after the egress
    queue of PREROUTING). A pulled-back flow keeps OFFLOAD_MARK until the engine has read its
    last kernel counters."""
    offload, pullback = f"0x{OFFLOAD_MARK:x}", f"0x{PULLBACK_MARK:x}"
    marked = f"-m connmark --mark {offload}/0x{OFFLOAD_MARK | PULLBACK_MARK:x} -j ACCEPT"
    echo = ("-p icmp -m icmp --icmp-type", "echo-request", "echo-reply") if family == 4 else \
        ("-p ipv6-icmp -m icmp6 --icmpv6-type", "echo-request", "echo-reply")
    matches = ["-p tcp --tcp-flags FIN,SYN,RST NONE", "-p udp", *(f"{echo[0]} {kind}" for kind in echo[1:])]
    return {"PREROUTING": [f"-A PREROUTING -i {ENI_PREFIX}+ {m} {marked}" for m in matches],
            "POSTROUTING": [f"-A POSTROUTING -o {ENI_PREFIX}+ {m} {marked}" for m in matches],
            "FORWARD": [f"-A FORWARD -m mark --mark {offload}/{offload} -j CONNMARK --set-xmark {offload}/{offload}",
                        f"-A FORWARD -m mark --mark {pullback}/{pullback} "
                        f"-j CONNMARK --set-xmark {pullback}/{pullback}"]}


def offload_sysctls(topology: Topology) -> list[tuple[str, str]]:
    """Offloaded flows are seen through the kernel's per-connection counters, and a kernel entry
    must outlive the engine's (the engine decides when a flow expires, then releases it): the
    fabric's UDP and ICMP timeouts sit above the longest the engine may use."""
    icmp = max((i.conntrack.icmp for i in topology.instances), default=0) + KERNEL_TIMEOUT_MARGIN
    return [("net.netfilter.nf_conntrack_acct", "1"),
            ("net.netfilter.nf_conntrack_udp_timeout", str(TIMEOUT_RANGES["udp"][1] + KERNEL_TIMEOUT_MARGIN)),
            ("net.netfilter.nf_conntrack_udp_timeout_stream",
             str(TIMEOUT_RANGES["udp_stream"][1] + KERNEL_TIMEOUT_MARGIN)),
            ("net.netfilter.nf_conntrack_icmp_timeout", str(icmp)),
            ("net.netfilter.nf_conntrack_icmpv6_timeout", str(icmp))]


def rulesets(topology: Topology, enis: tuple[Eni, ...], enforce: bool,
              routing: RoutingPlan) -> tuple[Ruleset, ...]:
    pre, post = _queue_rules(enis, bool(routing.enis)) if enforce else ([], [])
    offload = enforce and topology.options.offload
    none: dict[str, list[str]] = {"PREROUTING": [], "POSTROUTING": [], "FORWARD": []}
    fast, fast6 = (_offload_rules(4), _offload_rules(6)) if offload else (none, none)
    eni_wild, igw_wild = ENI_PREFIX + "+", IGW_PREFIX + "+"
    public = [i for i in topology.instances if i.public_ip is not None]
    private_only = [i for i in topology.instances if i.public_ip is None]
    mark = f"0x{HAIRPIN_MARK:x}/0x{HAIRPIN_MARK:x}"

    # Traffic to/from the VPC router itself is infrastructure, never an SG matter. Hairpin
    # (instance -> another's public IP) is marked on the connection so the engine can see the
    # source as the sender's public IP, which mangle POSTROUTING sees before SNAT.
    # The fast path comes first: an offloaded flow is never local, hairpinned or infrastructure.
    hairpin_jump, hairpin = _hairpin_rules(public, mark, bool(routing.enis))
    routed = _routed_rules(private_only, routing, mark)
    mangle4 = [*fast["PREROUTING"],
               "-A PREROUTING -m addrtype --dst-type LOCAL -j RETURN",
               *hairpin_jump,
               *pre,
               *fast["FORWARD"],
               *fast["POSTROUTING"],
               "-A POSTROUTING -m addrtype --src-type LOCAL -j RETURN",
               f"-A POSTROUTING -m connmark --mark {mark} -j MARK --set-xmark {mark}",
               *post,
               *hairpin]
    nat4 = [*routed,
            *(f"-A PREROUTING -d {i.public_ip}/32 -j DNAT --to-destination {i.private_ip}"
              for i in public),
            *(f"-A POSTROUTING -s {i.private_ip}/32 -o {igw_wild} -j SNAT --to-source {i.public_ip}"
              for i in public),
            *(f"-A POSTROUTING -s {i.private_ip}/32 -m conntrack --ctstate DNAT "
              f"-j SNAT --to-source {i.public_ip}" for i in public),
            *routing.nat4]
    # The internet reaches only public IPs (DNAT) and replies to NATed flows; only instances
    # with a public IP reach the internet; without one, hairpin to public IPs goes nowhere.
    filter4 = [*(f"-A INPUT -i {igw_wild} -d {INTERNET_DNS}/32 -p {p} --dport 53 -j ACCEPT"
                 for p in ("udp", "tcp")),
               f"-A INPUT -i {igw_wild} -j DROP",
               f"-A FORWARD -i {igw_wild} -m conntrack --ctstate DNAT,SNAT -j ACCEPT",
               f"-A FORWARD -i {igw_wild} -o {eni_wild} -j DROP",
               *_internet_rules(public, private_only),
               *routing.filter4]
    # IPv6 is routed without NAT. Neighbour/router discovery, link-local and multicast
    # (MLD) are infrastructure and pass before the queues.
    infra6 = [*(f"-A {chain} -p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN"
                for chain in ("PREROUTING", "POSTROUTING") for t in ND_TYPES)]
    mangle6 = [*routing.mangle6,
               *fast6["PREROUTING"],
               *(r for r in infra6 if r.startswith("-A PREROUTING")),
               "-A PREROUTING -s fe80::/10 -j RETURN",
               "-A PREROUTING -d fe80::/10 -j RETURN",
               "-A PREROUTING -d ff00::/8 -j RETURN",
               "-A PREROUTING -m addrtype --dst-type LOCAL -j RETURN",
               *pre,
               *fast6["FORWARD"],
               *fast6["POSTROUTING"],
               *(r for r in infra6 if r.startswith("-A POSTROUTING")),
               "-A POSTROUTING -s fe80::/10 -j RETURN",
               "-A POSTROUTING -d ff00::/8 -j RETURN",
               "-A POSTROUTING -m addrtype --src-type LOCAL -j RETURN",
               *post]
    return (Ruleset(4, "mangle", _table("mangle", MANGLE_CHAINS, mangle4, (HAIRPIN_CHAIN,) if hairpin else ())),
            Ruleset(4, "nat", _table("nat", NAT_CHAINS, nat4, (ROUTED_CHAIN,) if routed else ())),
            Ruleset(4, "filter", _table("filter", FILTER_CHAINS, filter4,
                                        (TO_INTERNET_CHAIN, *((DNAT_CHAIN,) if private_only else ())))),
            Ruleset(6, "mangle", _table("mangle", MANGLE_CHAINS, mangle6)))
