"""The lab's VPC block and subnets from what the inputs say (or, failing that, from instance addresses).

A block AWS would refuse, or one the lab cannot hold (overlapping, outside the VPC), leaves that subnet
out and names it; a block written with host bits set is read as its network, as AWS stores it.
"""
from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network

from ..topology.network import SPECIAL_V4
from .inventory import ImportedInstance, ImportedSubnet, ImportedVpc, Inventory
from .json_source import ImportSourceError
from .names import Names, node_name

DEFAULT_BLOCK = IPv4Network("10.0.0.0/16")
Blocks = dict[str, tuple[str, IPv4Network, IPv6Network | None]]   # subnet key -> (name, IPv4, IPv6)


def cover(networks: list[IPv4Network] | list[IPv6Network]) -> IPv4Network | IPv6Network:
    """The smallest single block containing every network given."""
    block = networks[0]
    # why the ignore below: the caller passes one family; typeshed types subnet_of per family
    while not all(n.subnet_of(block) for n in networks):  # type: ignore[arg-type]
        block = block.supernet()
    return block


def block(text: str, where: str, what: str, inv: Inventory, version: int = 4) -> IPv4Network | IPv6Network:
    """A VPC or subnet block; host bits are dropped (noted); ImportSourceError when it is none."""
    try:
        net = ip_network(text.strip(), strict=False)
    except ValueError:
        raise ImportSourceError(f"{where}: {what} '{text}' is not a CIDR") from None
    if net.version != version:
        raise ImportSourceError(f"{where}: {what} '{text}' is not an IPv{version} block")
    if version == 4 and not 16 <= net.prefixlen <= 28:
        raise ImportSourceError(f"{where}: {what} {net} is not a /16 to /28; AWS allows only those")
    if version == 4 and (special := next((n for b, n in SPECIAL_V4.items() if b.overlaps(net)), None)):
        raise ImportSourceError(f"{where}: {what} {net} overlaps the {special} range, which a lab cannot use")
    if str(net) != text.strip():
        inv.notes.append(f"{where}: {what} '{text}' has host bits set: read as {net}, as AWS stores it")
    return net


def subnet_blocks(inv: Inventory, subnets: list[ImportedSubnet], instances: list[ImportedInstance]) -> Blocks:
    """Subnet key -> (name, IPv4 block, IPv6 block); blocks of unknown subnets guessed from instances."""
    blocks: dict[str, tuple[str | None, IPv4Network, IPv6Network | None]] = {}
    for s in subnets:
        if s.cidr is None:
            continue
        with inv.item(f"subnet {s.key}"):
            v4 = block(s.cidr, s.where, "CidrBlock", inv)
            clash = next((k for k, b in blocks.items() if b[1].overlaps(v4)), None)
            if clash is not None:
                raise ImportSourceError(f"{s.where}: subnet {s.key} ({v4}) overlaps subnet {clash} "
                                        f"({blocks[clash][1]}); subnets of one VPC never overlap")
            v6 = block(s.ipv6_cidr, s.where, "Ipv6CidrBlock", inv, 6) if s.ipv6_cidr else None
            # why the ignore below: v4 is an IPv4 block and v6 an IPv6 one or None, read by family above
            blocks[s.key] = (s.name, v4, v6)  # type: ignore[assignment]
    known = {s.key for s in subnets}
    for key in dict.fromkeys(i.subnet for i in instances if i.subnet is not None):
        if key in blocks or (key in known and any(s.key == key and s.cidr for s in subnets)):
            continue
        ips = [IPv4Network(i.private_ip) for i in instances if i.subnet == key and i.private_ip]
        why = "its CIDR is not in the inputs" if key not in known else "its CIDR is known only after apply"
        if not ips:
            inv.notes.append(f"subnet {key}: {why} and its instances have no private IP: they are placed in "
                             "the lab's first subnet (give describe-subnets output, or import the state)")
            continue
        guess = cover(ips)
        guess = guess.supernet(new_prefix=24) if guess.prefixlen > 24 else guess
        clash = next((k for k, b in blocks.items() if b[1].overlaps(guess)), None)
        if clash is not None:
            inv.notes.append(f"subnet {key}: {why}; the guess {guess} from its instances overlaps {clash}: its "
                             "instances are placed in the lab's first subnet")
            continue
        # why the ignore below: the guessed block is IPv4
        blocks[key] = (None, guess, None)  # type: ignore[assignment]
        inv.notes.append(f"subnet {key}: {why}; guessed {guess} from its instances (give describe-subnets output)")
    names = Names(limit=32)
    return {key: (names.claim(node_name(tag or ""), node_name(key) or "subnet"), v4, v6)
            for key, (tag, v4, v6) in blocks.items()}


def vpc_blocks(inv: Inventory, record: ImportedVpc | None, blocks: Blocks) -> tuple[IPv4Network, IPv6Network | None]:
    """The VPC's IPv4 and IPv6 blocks; subnets that cannot fit in one VPC block are left out of `blocks`."""
    where = {s.key: s.where for s in inv.subnets.values()}
    cidr: IPv4Network | None = None
    if record is not None and record.cidr is not None:
        with inv.item(f"the block of {record.key}"):
            # why the ignore below: a VPC's CidrBlock is IPv4 (block() reads it as such)
            cidr = block(record.cidr, record.where, "CidrBlock", inv)  # type: ignore[assignment]
        if record.extra_cidrs:
            inv.notes.append(f"{record.where}: {record.key} has secondary blocks {', '.join(record.extra_cidrs)}; "
                             "the lab's VPC is one block covering its subnets")
    subnets = [b[1] for b in blocks.values()]
    if cidr is None and subnets:
        # why the ignore below: subnets' IPv4 blocks cover to an IPv4 block
        cidr = cover(subnets)  # type: ignore[assignment]
        inv.notes.append(f"vpc.cidr {cidr} is the smallest block covering the subnets "
                         "(give describe-vpcs output for the real one)")
    elif cidr is None:
        cidr = DEFAULT_BLOCK
        inv.notes.append(f"vpc.cidr {cidr} is a placeholder: the inputs hold no VPC or subnet blocks")
    assert cidr is not None
    wide = cover([cidr, *subnets]) if subnets else cidr
    if wide.prefixlen < 16:     # subnets of several blocks: keep those of the VPC's own block
        for key, (_, v4, _) in list(blocks.items()):
            if not v4.subnet_of(cidr):
                with inv.item(f"subnet {key}"):
                    raise ImportSourceError(f"{where.get(key, key)}: subnet {key} ({v4}) is outside {cidr}, and "
                                            "one VPC block holding both would be larger than a /16")
                del blocks[key]
        wide = cover([cidr, *(b[1] for b in blocks.values())])
    v6 = None
    if record is not None and record.ipv6_cidr:
        with inv.item(f"the IPv6 block of {record.key}"):
            v6 = block(record.ipv6_cidr, record.where, "Ipv6CidrBlock", inv, 6)
    subnets_v6 = [b[2] for b in blocks.values() if b[2] is not None]
    if v6 is None and subnets_v6:
        v6 = cover(subnets_v6)
    for key, (name, v4, sv6) in list(blocks.items()):
        # why the ignore below: both are IPv6 blocks; typeshed types subnet_of per family
        if sv6 is not None and (v6 is None or not sv6.subnet_of(v6)):  # type: ignore[arg-type]
            inv.skipped.append(f"{where.get(key, key)}: subnet {key}: IPv6 block {sv6} is outside the VPC's IPv6 "
                               "block: not carried over")
            blocks[key] = (name, v4, None)
    # why the ignore below: wide is the IPv4 cover computed above
    return wide, v6  # type: ignore[return-value]
