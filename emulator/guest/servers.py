"""An instance's non-ssh, non-ftp services in one asyncio process: http, https, tcp, udp-echo,
http-proxy and rdp.

The lab runs it inside the instance's namespace:

    ip netns exec sgemu-<lab>-web python -m emulator.guest.servers --name web \
        --spec '[{"type": "http", "port": 80, "to": null}]' [--tls-cert C --tls-key K]

https is the http responder behind the standard library's TLS (ssl), with the certificate the lab
issued to this instance from its own CA. It logs to stderr (the lab points that at
state_dir/logs/<instance>.log) and exits with status 0 on SIGTERM or SIGINT, 1 if a listener
cannot be opened.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import ipaddress
import json
import logging
import resource
import signal
import socket
import ssl
import sys
from collections.abc import Awaitable

from emulator.model import Service

from .http import CONNECT_TIMEOUT, RESPONSE_TIMEOUT, Upstream, http_responder, proxy_responder, serve_http
from .rdp import serve_rdp

log = logging.getLogger("sgemu.servers")

SERVED_TYPES = ("http", "https", "tcp", "udp-echo", "http-proxy", "rdp")
CHUNK = 65536


async def serve_tcp(name: str, port: int,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Banner, then echo whatever the client sends until it closes."""
    peer = writer.get_extra_info("peername")
    log.info("%s tcp %d: connection from %s", name, port, peer and peer[0])
    try:
        writer.write(f"{name} tcp {port} ready\n".encode())
        await writer.drain()
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class UdpEcho(asyncio.DatagramProtocol):
    transport: asyncio.DatagramTransport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # always a datagram transport here

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.transport.sendto(data, addr)


def listening_socket(kind: socket.SocketKind, port: int, bind: str | None) -> socket.socket:
    """A socket bound to `bind`, or by default one dual-stack [::] socket (IPv4 arrives
    v4-mapped); falls back to 0.0.0.0 where the namespace has no IPv6."""
    if bind is not None:
        family = socket.AF_INET6 if ipaddress.ip_address(bind).version == 6 else socket.AF_INET
        candidates = [(family, bind)]
    else:
        candidates = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]
    for family, host in candidates:
        sock = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and bind is None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL) and host == "::":
                continue
            raise
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
        return sock
    raise AssertionError("unreachable: the IPv4 fallback either binds or raises")


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS 1.2+ with the lab-issued certificate (and its chain) for this instance."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def start_listener(name: str, service: Service, bind: str | None, timeouts: dict[str, float],
                         tls: ssl.SSLContext | None = None) -> asyncio.AbstractServer | asyncio.BaseTransport:
    loop = asyncio.get_running_loop()
    if service.type == "udp-echo":
        transport, _ = await loop.create_datagram_endpoint(
            UdpEcho, sock=listening_socket(socket.SOCK_DGRAM, service.port, bind))
        return transport
    if service.type == "tcp":
        def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Awaitable[None]:
            return serve_tcp(name, service.port, r, w)
    elif service.type == "rdp":
        def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Awaitable[None]:
            return serve_rdp(name, r, w)
    else:
        respond = (proxy_responder(name, Upstream.parse(service.to or "", **timeouts))
                   if service.type == "http-proxy" else http_responder(name))

        def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> Awaitable[None]:
            return serve_http(name, respond, r, w)
    return await asyncio.start_server(
        handler, sock=listening_socket(socket.SOCK_STREAM, service.port, bind),
        ssl=tls if service.type == "https" else None)


async def serve(name: str, services: list[Service], bind: str | None,
                timeouts: dict[str, float], tls: ssl.SSLContext | None = None) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listeners: list[asyncio.AbstractServer | asyncio.BaseTransport] = []
    try:
        for service in services:
            try:
                listeners.append(await start_listener(name, service, bind, timeouts, tls))
            except OSError as exc:
                log.error("%s: cannot listen for %s on port %d: %s",
                          name, service.type, service.port, exc.strerror or exc)
                return 1
            log.info("%s: %s listening on port %d", name, service.type, service.port)
        await stop.wait()
        log.info("%s: stopping", name)
        return 0
    finally:
        for listener in listeners:
            listener.close()


def parse_spec(text: str) -> list[Service]:
    """The --spec JSON: a list of {"type", "port", "to"} objects (model.Service fields)."""
    services = [Service(type=s["type"], port=int(s["port"]), to=s.get("to")) for s in json.loads(text)]
    for service in services:
        if service.type not in SERVED_TYPES:
            raise ValueError(f"service type {service.type!r} is not served here "
                             f"(one of {', '.join(SERVED_TYPES)})")
        if service.type == "http-proxy":
            Upstream.parse(service.to or "")
    return services


WANTED_OPEN_FILES = 65536      # a lab service should hold thousands of connections (load tests)


def raise_open_files_limit() -> int:
    """As many descriptors as allowed: root may raise the hard limit, others the soft one to it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in ((WANTED_OPEN_FILES, max(hard, WANTED_OPEN_FILES)), (hard, hard)):
        if wanted[0] <= soft:
            return soft
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, wanted)
            return wanted[0]
        except (ValueError, OSError):
            continue
    return soft


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.guest.servers",
                                     description="Serve one instance's lab services.")
    parser.add_argument("--name", required=True, help="instance name, shown in answers")
    parser.add_argument("--spec", required=True, help="JSON list of services")
    parser.add_argument("--bind", help="listen on this address only (default: all, IPv4 and IPv6)")
    parser.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT)
    parser.add_argument("--response-timeout", type=float, default=RESPONSE_TIMEOUT)
    parser.add_argument("--tls-cert", help="PEM certificate chain for https services")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    try:
        services = parse_spec(args.spec)
    except (ValueError, KeyError, TypeError) as exc:
        parser.error(f"bad --spec: {exc}")
    tls = None
    if any(s.type == "https" for s in services):
        if not (args.tls_cert and args.tls_key):
            parser.error("https services need --tls-cert and --tls-key")
        try:
            tls = tls_context(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            parser.error(f"cannot load the TLS certificate {args.tls_cert}: {exc}")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    raise_open_files_limit()
    timeouts = {"connect_timeout": args.connect_timeout, "response_timeout": args.response_timeout}
    return asyncio.run(serve(args.name, services, args.bind, timeouts, tls))


if __name__ == "__main__":
    sys.exit(main())
