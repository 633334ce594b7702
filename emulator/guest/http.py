"""HTTP/1.1 for the lab's guests: the plain responder (`http`, `https` once wrapped in TLS by
servers.py) and the reverse proxy (`http-proxy`). Runs inside an instance namespace: stdlib only.
"""
from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("sgemu.servers")

CONNECT_TIMEOUT = 3.0      # a SYN dropped by an SG must turn into a quick 504, not a hang
RESPONSE_TIMEOUT = 10.0
MAX_HEADERS = 100
# Headers the proxy never forwards: they describe one hop (RFC 9110 7.6.1), or the proxy sets them.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "upgrade", "host"})


class BadMessage(Exception):
    """An HTTP message we cannot parse; the peer gets a 400 (or the proxy a 502)."""


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def keep_alive(self) -> bool:
        tokens = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclass
class HttpResponse:
    status: int
    reason: str
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    def render(self, server: str, head_only: bool, keep_alive: bool) -> bytes:
        names = {k.lower() for k, _ in self.headers}
        headers = [*self.headers] if "server" in names else [("Server", f"sgemu/{server}"), *self.headers]
        if "content-length" not in names and "transfer-encoding" not in names:
            headers.append(("Content-Length", str(len(self.body))))
        headers.append(("Connection", "keep-alive" if keep_alive else "close"))
        head = f"HTTP/1.1 {self.status} {self.reason}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        return head.encode("latin-1") + (b"" if head_only else self.body)


def text_response(status: int, reason: str, text: str,
                  headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(status, reason, text.encode(),
                        [("Content-Type", "text/plain; charset=utf-8"), *(headers or [])])


async def read_headers(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        line = await reader.readline()
        if not line:
            raise BadMessage("connection closed inside the headers")
        if line in (b"\r\n", b"\n"):
            return headers
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep or not name.strip() or len(headers) >= MAX_HEADERS:
            raise BadMessage(f"bad header line {line[:60]!r}")
        headers.append((name.strip(), value.strip()))


async def read_request(reader: asyncio.StreamReader) -> HttpRequest | None:
    """The next request on a connection, or None when the client closed it between requests."""
    line = await reader.readline()
    if line in (b"\r\n", b"\n"):          # RFC 9112 2.2: ignore an empty line before a request
        line = await reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadMessage(f"bad request line {line[:60]!r}")
    request = HttpRequest(parts[0], parts[1], parts[2], await read_headers(reader))
    if request.header("transfer-encoding") is not None:
        raise BadMessage("chunked request bodies are not supported")
    length = request.header("content-length") or "0"
    if not length.isdigit():
        raise BadMessage(f"bad Content-Length {length!r}")
    request.body = await reader.readexactly(int(length))
    return request


Responder = Callable[[HttpRequest], Awaitable[HttpResponse]]


async def serve_http(name: str, respond: Responder,
                     reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 with keep-alive: answers requests on one connection until either side closes."""
    peer = writer.get_extra_info("peername")
    try:
        while True:
            try:
                request = await read_request(reader)
            except (BadMessage, ValueError) as exc:   # ValueError: a line over the stream limit
                bad = text_response(400, "Bad Request", f"{name}: {exc}\n")
                writer.write(bad.render(name, head_only=False, keep_alive=False))
                break
            if request is None:
                break
            response = await respond(request)
            keep_alive = request.keep_alive
            log.info("%s %s %s from %s: %d", name, request.method, request.target,
                     peer and peer[0], response.status)
            writer.write(response.render(name, head_only=request.method == "HEAD",
                                         keep_alive=keep_alive))
            await writer.drain()
            if not keep_alive:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def http_responder(name: str) -> Responder:
    async def respond(request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return text_response(405, "Method Not Allowed",
                                 f"{name}: {request.method} not allowed\n", [("Allow", "GET, HEAD")])
        return text_response(200, "OK", f"{name}\n")
    return respond


@dataclass(frozen=True)
class Upstream:
    """Where an http-proxy forwards to; the host resolves through the namespace's /etc/hosts."""

    host: str
    port: int
    connect_timeout: float = CONNECT_TIMEOUT
    response_timeout: float = RESPONSE_TIMEOUT

    @classmethod
    def parse(cls, to: str, **timeouts: float) -> Upstream:
        host, sep, port = to.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"http-proxy target {to!r} is not host:port")
        return cls(host.strip("[]"), int(port), **timeouts)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


async def open_upstream(upstream: Upstream) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Tries each address the name resolves to, in order, and raises the last failure
    itself (asyncio would merge several into an OSError that hides ConnectionRefusedError)."""
    infos = await asyncio.get_running_loop().getaddrinfo(upstream.host, upstream.port,
                                                         type=socket.SOCK_STREAM)
    failure: OSError | None = None
    for *_, sockaddr in infos:
        try:
            return await asyncio.open_connection(str(sockaddr[0]), int(sockaddr[1]))
        except OSError as exc:
            failure = exc
    raise failure or OSError(f"{upstream.host} resolves to no address")


def proxy_responder(name: str, upstream: Upstream) -> Responder:
    def failed(status: int, reason: str, why: str) -> HttpResponse:
        return text_response(status, reason, f"{name}: upstream {upstream} {why}\n")

    async def respond(request: HttpRequest) -> HttpResponse:
        try:
            reader, writer = await asyncio.wait_for(
                open_upstream(upstream), upstream.connect_timeout)
        except TimeoutError:
            return failed(504, "Gateway Timeout",
                          f"did not answer the connection within {upstream.connect_timeout:g} s")
        except ConnectionRefusedError:
            return failed(502, "Bad Gateway", "refused the connection")
        except socket.gaierror as exc:
            return failed(502, "Bad Gateway", f"cannot be resolved: {exc.strerror}")
        except OSError as exc:                       # unreachable network or host
            return failed(502, "Bad Gateway", f"cannot be reached: {exc.strerror or exc}")
        try:
            writer.write(upstream_request(request, upstream))
            answer = await asyncio.wait_for(read_upstream_response(reader, request),
                                            upstream.response_timeout)
        except TimeoutError:
            return failed(504, "Gateway Timeout",
                          f"sent no response within {upstream.response_timeout:g} s")
        except (OSError, BadMessage, ValueError) as exc:
            return failed(502, "Bad Gateway", f"sent a broken response: {exc}")
        finally:
            writer.close()
        answer.headers.append(("Via", f"1.1 {name}"))
        return answer
    return respond


def upstream_request(request: HttpRequest, upstream: Upstream) -> bytes:
    headers = [(k, v) for k, v in request.headers if k.lower() not in HOP_BY_HOP]
    headers += [("Host", str(upstream)), ("Connection", "close")]
    if request.body and request.header("content-length") is None:
        headers.append(("Content-Length", str(len(request.body))))
    head = f"{request.method} {request.target} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("latin-1") + request.body


async def read_upstream_response(reader: asyncio.StreamReader, request: HttpRequest) -> HttpResponse:
    """The upstream's answer; we asked it to close, so the body runs to EOF."""
    status_line = (await reader.readline()).decode("latin-1")
    parts = status_line.split(maxsplit=2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise BadMessage(f"bad status line {status_line[:60]!r}")
    headers = [(k, v) for k, v in await read_headers(reader) if k.lower() not in HOP_BY_HOP]
    body = await reader.read()
    if request.method != "HEAD" and not any(k.lower() == "transfer-encoding" for k, _ in headers):
        # The body we relay is what we read, whatever length the upstream announced.
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
    return HttpResponse(int(parts[1]), parts[2].strip() if len(parts) > 2 else "",
                        body, headers)
