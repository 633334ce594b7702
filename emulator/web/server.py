"""`sgemu ui`'s HTTP server (standard library): the page, its static files, the graph, details, explain,
and the live updates as server-sent events.

The page is root's view of the lab, so it is served on 127.0.0.1 only and every request needs the random
token printed at start: `?token=` once (answered by a redirect that drops it from the address bar and
sets an HttpOnly, SameSite=Strict cookie), then the cookie. The Host header must name the loopback
address (no DNS rebinding), and the page loads nothing from elsewhere (Content-Security-Policy). The
view only reads: nothing here changes the lab.
"""
from __future__ import annotations

import hmac
import json
import queue
import secrets
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from emulator.errors import AwsApiError, EmulatorError
from emulator.explain import explain
from emulator.explain.result import explanation_json

from .hub import Hub
from .view import instance_details, named_text, node_fields, sg_names, subnet_details

HOST = "127.0.0.1"
CONNTRACK_SHOWN = 200           # entries a panel shows (a busy ENI has up to its allowance, 100k)
HEARTBEAT = 15.0                # seconds between keep-alive comments on the event stream
STATIC = {"app.js": "text/javascript", "app.css": "text/css", "index.html": "text/html"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}


def static_file(name: str) -> bytes:
    return resources.files("emulator.web").joinpath("static", name).read_bytes()


class UiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, hub: Hub, port: int, token: str | None = None):
        self.hub = hub
        self.token = token or secrets.token_urlsafe(24)
        super().__init__((HOST, port), Handler)
        self.port = self.server_address[1]
        self.cookie = f"sgemu-ui-{self.port}"
        self.hosts = {f"{HOST}:{self.port}", f"localhost:{self.port}"}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/?token={self.token}"


class Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:    # quiet: the terminal shows the URL only
        pass

    # --- answers --------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, "Content-Type": content_type,
                            "Content-Length": str(len(body)), **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, data: object, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _refuse(self, status: int, why: str) -> None:
        self._send(status, f"sgemu ui: {why}\n".encode(), "text/plain; charset=utf-8")

    # --- the gate -------------------------------------------------------------------------------

    def _token_given(self, query: dict[str, list[str]]) -> str | None:
        given = query.get("token", [None])[0]
        if given is None:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            morsel = cookie.get(self.server.cookie)
            given = morsel.value if morsel is not None else None
        return given

    def _allowed(self, query: dict[str, list[str]]) -> bool:
        if self.headers.get("Host", "") not in self.server.hosts:
            self._refuse(HTTPStatus.FORBIDDEN, "this server answers only to http://127.0.0.1:"
                                               f"{self.server.port}/ (Host header refused)")
            return False
        given = self._token_given(query)
        if given is None or not hmac.compare_digest(given.encode(), self.server.token.encode()):
            self._refuse(HTTPStatus.FORBIDDEN, "a valid token is required: open the URL `sgemu ui` printed "
                                               "(…/?token=…)")
            return False
        return True

    # --- routes ---------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if not self._allowed(query):
            return
        path = parts.path
        if path == "/" and "token" in query:     # first visit: remember the token, drop it from the URL
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {
                "Location": "/", "Set-Cookie": f"{self.server.cookie}={self.server.token}; Path=/; HttpOnly; "
                                                "SameSite=Strict"})
        elif path == "/":
            self._send(HTTPStatus.OK, static_file("index.html"), "text/html; charset=utf-8")
        elif path.startswith("/static/") and path.removeprefix("/static/") in STATIC:
            name = path.removeprefix("/static/")
            self._send(HTTPStatus.OK, static_file(name), f"{STATIC[name]}; charset=utf-8")
        elif path == "/api/graph":
            self._send(HTTPStatus.OK, self.server.hub.svg, "image/svg+xml")
        elif path == "/api/events":
            self._events()
        elif path.startswith("/api/node/"):
            self._node(path.removeprefix("/api/node/"))
        elif path.startswith("/api/subnet/"):
            self._subnet(path.removeprefix("/api/subnet/"))
        elif path == "/api/explain":
            self._explain(query)
        else:
            self._refuse(HTTPStatus.NOT_FOUND, f"nothing at {path}")

    def _events(self) -> None:
        hub = self.server.hub
        self.send_response(HTTPStatus.OK)
        for name, value in {**SECURITY_HEADERS, "Content-Type": "text/event-stream",
                            "Connection": "keep-alive"}.items():
            self.send_header(name, value)
        self.end_headers()
        updates = hub.subscribe()
        try:
            self._event("hello", {"lab": hub.lab, "graph_version": hub.graph_version, "engine": hub.engine,
                                  "history": list(hub.history)})
            while True:
                try:
                    event, data = updates.get(timeout=HEARTBEAT)
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    continue
                self._event(event, data)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
        finally:
            hub.unsubscribe(updates)
            self.close_connection = True

    def _event(self, event: str, data: object) -> None:
        self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    def _node(self, name: str) -> None:
        hub = self.server.hub
        topology = hub.topology
        if topology is None:
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "the lab's model is not loaded yet")
            return
        instance = next((i for i in topology.instances if i.name == name), None)
        if instance is not None:
            try:
                table = hub.ask("conntrack", instance=name, limit=CONNTRACK_SHOWN).get(name, [])
                records = hub.flow_records_of(name)
            except (EmulatorError, OSError) as exc:
                self._json({"error": str(exc)}, HTTPStatus.BAD_GATEWAY)
                return
            self._json({**instance_details(topology, instance), "conntrack": table, "flow_records": records})
            return
        found = node_fields(hub.exported, name)
        if found is None:
            self._refuse(HTTPStatus.NOT_FOUND, f"no node named {name!r} in lab {hub.lab}")
            return
        kind, fields = found
        self._json({"name": name, "kind": kind, "fields": fields})

    def _subnet(self, name: str) -> None:
        topology = self.server.hub.topology
        details = subnet_details(topology, name) if topology is not None else None
        if details is None:
            self._refuse(HTTPStatus.NOT_FOUND, f"no subnet named {name!r} in lab {self.server.hub.lab}")
        else:
            self._json(details)

    def _explain(self, query: dict[str, list[str]]) -> None:
        topology = self.server.hub.topology
        one = {k: v[0] for k, v in query.items()}
        if topology is None:
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE, "the lab's model is not loaded yet")
            return
        try:
            port = int(one.get("port") or 0)
            answer = explain(topology, one.get("client", ""), one.get("server", ""), port,
                             one.get("proto", "tcp"), ipv6=one.get("family") == "6")
        except (EmulatorError, AwsApiError, ValueError) as exc:
            self._json({"error": str(exc)})
            return
        explained = explanation_json(answer)
        groups = sg_names(topology)
        for shown, hop in zip((*explained["request"], *explained["reply"]), (*answer.request, *answer.reply)):
            if hop.verdict is not None:
                shown["verdict"]["text"] = named_text(hop.verdict.describe(), groups)
        explained["why"] = named_text(explained["why"], groups)
        explained["notes"] = [named_text(n, groups) for n in explained["notes"]]
        self._json(explained)
