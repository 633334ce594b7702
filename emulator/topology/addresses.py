"""Reading IP addresses and CIDRs from YAML, and AWS's reserved-address rules."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Literal, overload

from ..model import IPAddress, IPNetwork
from .fields import describe
from .problems import Problems

EXAMPLE_NETWORK = {4: "10.0.0.0/16", 6: "fd00:10::/56", None: "10.0.0.0/16 or ::/0"}
EXAMPLE_ADDRESS = {4: "10.0.1.10", 6: "fd00:10:0:1::10"}
FAMILY = {4: "IPv4 ", 6: "IPv6 ", None: ""}
ARTICLE = {4: "an", 6: "an", None: "a"}


def network(p: Problems, value: object, path: str, family: int | None) -> tuple[IPNetwork, bool] | None:
    """A CIDR and whether it was written canonically (no host bits set)."""
    allowed = f"write {ARTICLE[family]} {FAMILY[family]}CIDR such as {EXAMPLE_NETWORK[family]}"
    if not isinstance(value, str):
        p.error(path, f"expected {ARTICLE[family]} {FAMILY[family]}CIDR, got {describe(value)}", allowed + " (quoted)")
        return None
    text = value.strip()
    if "/" not in text:
        p.error(path, f"'{text}' has no prefix length", allowed + " (a single address is /32 or /128)")
        return None
    if "%" in text:
        p.error(path, f"'{text}' has a scope id", allowed)
        return None
    try:
        net = ip_network(text, strict=False)
    except ValueError:
        p.error(path, f"'{text}' is not a valid {FAMILY[family]}CIDR", allowed)
        return None
    if family is not None and net.version != family:
        p.error(path, f"'{text}' is an IPv{net.version} CIDR", allowed)
        return None
    return net, _no_host_bits(text)


def _no_host_bits(text: str) -> bool:
    try:
        ip_network(text, strict=True)
    except ValueError:
        return False
    return True


@overload
def strict_network(p: Problems, value: object, path: str, family: Literal[4]) -> IPv4Network | None: ...
@overload
def strict_network(p: Problems, value: object, path: str, family: Literal[6]) -> IPv6Network | None: ...
def strict_network(p: Problems, value: object, path: str, family: Literal[4, 6]) -> IPNetwork | None:
    """A CIDR that must be written canonically (a VPC or subnet block)."""
    read = network(p, value, path, family)
    if read is None:
        return None
    net, canonical = read
    if not canonical:
        p.error(path, f"'{str(value).strip()}' has host bits set", f"write the network address: {net}")
        return None
    return net


@overload
def address(p: Problems, value: object, path: str, family: Literal[4]) -> IPv4Address | None: ...
@overload
def address(p: Problems, value: object, path: str, family: Literal[6]) -> IPv6Address | None: ...
def address(p: Problems, value: object, path: str, family: Literal[4, 6]) -> IPAddress | None:
    allowed = f"write an IPv{family} address such as {EXAMPLE_ADDRESS[family]}"
    if not isinstance(value, str):
        p.error(path, f"expected an IPv{family} address, got {describe(value)}", allowed + " (quoted)")
        return None
    text = value.strip()
    try:
        addr = ip_address(text) if "%" not in text else None
    except ValueError:
        addr = None
    if addr is None or addr.version != family:
        p.error(path, f"'{text}' is not an IPv{family} address", allowed)
        return None
    return addr


def unroutable(addr: IPAddress) -> str | None:
    """Why an address cannot be a host on the lab's internet side, or None."""
    for what, bad in (("unspecified", addr.is_unspecified), ("loopback", addr.is_loopback),
                      ("multicast", addr.is_multicast), ("link-local", addr.is_link_local),
                      ("reserved", isinstance(addr, IPv4Address) and addr.is_reserved)):
        if bad:
            return what
    return None


def subnet_reserved(subnet: IPv4Network | IPv6Network, addr: IPAddress) -> bool:
    """AWS reserves the first four addresses and the last one of every subnet (and IPv6 /64)."""
    offset = int(addr) - int(subnet.network_address)
    return offset < 4 or addr == subnet.broadcast_address


def first_usable(subnet: IPv4Network) -> IPv4Address:
    return subnet.network_address + 4
