"""Real listeners started inside an instance, and its ConnectionTrackingSpecification."""
from __future__ import annotations

from dataclasses import replace

from ..model import AWS_TIMEOUTS, TIMEOUT_RANGES, ConntrackTimeouts, Service, protocol_name
from .fields import integer, mapping, parse_int, sequence, string
from .problems import Problems, item, key

SERVICE_TYPES = ("http", "tcp", "udp-echo", "ssh", "http-proxy")
SSH_PORT = 22
PROXY_ALLOWED = 'use to: "instance:port" naming an instance of this file, e.g. "app:8080"'
# AWS's ConnectionTrackingSpecification ranges, in seconds.


def parse_services(p: Problems, value: object, path: str,
                   proxy_targets: list[tuple[str, str]]) -> tuple[Service, ...]:
    """Services on distinct transport ports; http-proxy targets are queued in `proxy_targets`
    as (path, instance) to be checked once every instance is known."""
    items = sequence(p, value, path, "services")
    services: list[Service] = []
    used: dict[tuple[int, int], str] = {}
    for index, raw in enumerate(items or []):
        service_path = item(path, index)
        service = _service(p, raw, service_path, proxy_targets)
        if service is None:
            continue
        slot = (service.transport, service.port)
        if slot in used:
            p.error(service_path, f"{protocol_name(service.transport)} port {service.port} is already used by "
                                  f"{used[slot]}", "give each service its own port")
            continue
        used[slot] = service_path
        services.append(service)
    return tuple(services)


def _service(p: Problems, value: object, path: str, proxy_targets: list[tuple[str, str]]) -> Service | None:
    fields = mapping(p, value, path, ("type",), ("port", "to"))
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
    if "port" in fields:
        port = integer(p, fields["port"], key(path, "port"), 1, 65535)
    elif kind == "ssh":
        port = SSH_PORT
    else:
        p.error(key(path, "port"), "is missing", f"{kind} services need a port from 1 to 65535")
        port = None
    target = _proxy_target(p, fields, path, kind, proxy_targets)
    if len(p.errors) > before or port is None:
        return None
    return Service(type=kind, port=port, to=target)


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
