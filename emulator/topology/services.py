"""Real listeners started inside an instance, and its ConnectionTrackingSpecification."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..model import AWS_TIMEOUTS, PROTO_TCP, TIMEOUT_RANGES, ConntrackTimeouts, PortRange, Service, protocol_name
from .fields import describe, integer, mapping, parse_int, sequence, string
from .problems import Problems, item, key

SERVICE_TYPES = ("http", "https", "tcp", "udp-echo", "ssh", "http-proxy", "ftp", "rdp")
# The well-known port of each type that has one; the others need `port:`.
DEFAULT_PORTS = {"ssh": 22, "https": 443, "ftp": 21, "rdp": 3389}
SSH_PORT = DEFAULT_PORTS["ssh"]
# Passive-mode data ports: unprivileged, and a default the SG rule can name.
PASSIVE_LIMITS = (1024, 65535)
DEFAULT_PASSIVE_PORTS = PortRange(50000, 50100)
PASSIVE_ALLOWED = (f'use "N-M" with {PASSIVE_LIMITS[0]} <= N <= M <= {PASSIVE_LIMITS[1]}, '
                   f'e.g. "{DEFAULT_PASSIVE_PORTS}"')
_RANGE = re.compile(r"\s*([0-9]+)\s*-\s*([0-9]+)\s*")
PROXY_ALLOWED = 'use to: "instance:port" naming an instance of this file, e.g. "app:8080"'


@dataclass(frozen=True)
class _Slot:
    """Ports a service holds: its listening port, or an ftp server's passive range."""

    transport: int
    ports: PortRange
    path: str
    passive: bool = False

    def owner(self) -> str:
        return f"{self.path} (passive_ports {self.ports})" if self.passive else self.path


def _slots(service: Service, path: str) -> list[_Slot]:
    slots = [_Slot(service.transport, PortRange(service.port, service.port), path)]
    if service.passive_ports is not None:
        slots.append(_Slot(PROTO_TCP, service.passive_ports, key(path, "passive_ports"), passive=True))
    return slots


def _clash(p: Problems, slot: _Slot, used: list[_Slot]) -> bool:
    for other in used:
        if other.transport != slot.transport or other.ports.high < slot.ports.low \
                or slot.ports.high < other.ports.low:
            continue
        port = max(slot.ports.low, other.ports.low)
        proto = protocol_name(slot.transport)
        if slot.passive:
            p.error(slot.path, f"{slot.ports} include {proto} port {port}, already used by {other.owner()}",
                    "choose a passive range no other service of this instance uses")
        else:
            p.error(slot.path, f"{proto} port {port} is already used by {other.owner()}",
                    "give each service its own port")
        return True
    return False


def parse_services(p: Problems, value: object, path: str,
                   proxy_targets: list[tuple[str, str]]) -> tuple[Service, ...]:
    """Services on distinct transport ports (an ftp server's passive range counts as used);
    http-proxy targets are queued in `proxy_targets` as (path, instance) to be checked once
    every instance is known."""
    items = sequence(p, value, path, "services")
    services: list[Service] = []
    used: list[_Slot] = []
    for index, raw in enumerate(items or []):
        service_path = item(path, index)
        service = _service(p, raw, service_path, proxy_targets)
        if service is None:
            continue
        held = list(used)
        clashed = False
        for slot in _slots(service, service_path):     # its own port may fall in its passive range
            clashed = clashed or _clash(p, slot, held)
            held.append(slot)
        if not clashed:
            used = held
            services.append(service)
    return tuple(services)


def _service(p: Problems, value: object, path: str, proxy_targets: list[tuple[str, str]]) -> Service | None:
    fields = mapping(p, value, path, ("type",), ("port", "to", "passive_ports"))
    if fields is None or "type" not in fields:
        return None
    allowed_types = f"use one of: {', '.join(SERVICE_TYPES)}"
    kind = string(p, fields["type"], key(path, "type"), allowed_types)
    if kind is None:
        return None
    if kind not in SERVICE_TYPES:
        p.error(key(path, "type"), f"'{kind}' is not a service type", allowed_types)
        return None
    before = len(p.errors)
    port: int | None
    if "port" in fields:
        port = integer(p, fields["port"], key(path, "port"), 1, 65535)
    elif kind in DEFAULT_PORTS:
        port = DEFAULT_PORTS[kind]
    else:
        p.error(key(path, "port"), "is missing", f"{kind} services need a port from 1 to 65535")
        port = None
    target = _proxy_target(p, fields, path, kind, proxy_targets)
    passive = _passive_ports(p, fields, path, kind)
    if len(p.errors) > before or port is None:
        return None
    return Service(type=kind, port=port, to=target, passive_ports=passive)


def _passive_ports(p: Problems, fields: dict[str, object], path: str, kind: str) -> PortRange | None:
    where = key(path, "passive_ports")
    if kind != "ftp":
        if "passive_ports" in fields:
            p.error(where, f"does not apply to {kind} services", "only ftp has passive ports; remove passive_ports")
        return None
    if "passive_ports" not in fields:
        return DEFAULT_PASSIVE_PORTS
    value = fields["passive_ports"]
    match = _RANGE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        p.error(where, f"{describe(value)} is not a port range", PASSIVE_ALLOWED)
        return None
    low, high = int(match[1]), int(match[2])
    if not PASSIVE_LIMITS[0] <= low <= high <= PASSIVE_LIMITS[1]:
        p.error(where, f"'{value}' is out of range or has low > high", PASSIVE_ALLOWED)
        return None
    return PortRange(low, high)


def _proxy_target(p: Problems, fields: dict[str, object], path: str, kind: str,
                  proxy_targets: list[tuple[str, str]]) -> str | None:
    where = key(path, "to")
    if kind != "http-proxy":
        if "to" in fields:
            p.error(where, f"does not apply to {kind} services", "only http-proxy forwards; remove to")
        return None
    if "to" not in fields:
        p.error(where, "is missing", PROXY_ALLOWED)
        return None
    target = string(p, fields["to"], where, PROXY_ALLOWED)
    if target is None:
        return None
    name, _, port_text = target.partition(":")
    port = parse_int(port_text)
    if not name or port is None or not 1 <= port <= 65535:
        p.error(where, f"'{target}' is not instance:port", PROXY_ALLOWED)
        return None
    proxy_targets.append((where, name))
    return f"{name}:{port}"


def parse_conntrack(p: Problems, value: object, path: str, base: ConntrackTimeouts) -> ConntrackTimeouts:
    """The instance's AWS idle timeouts over the lab-wide ones (options.timeouts)."""
    fields = mapping(p, value, path, (), AWS_TIMEOUTS)
    seconds = {name: integer(p, v, key(path, name), *TIMEOUT_RANGES[name], unit=" of seconds")
               for name, v in (fields or {}).items()}
    return replace(base, **{n: s for n, s in seconds.items() if s is not None})
