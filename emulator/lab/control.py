"""The control channel from the CLI to a running lab's engine.

A Unix stream socket /run/sgemu/<lab>/control.sock (the state directory is 0700, the socket 0600:
root only). One request per connection, newline-delimited versioned JSON:

    {"v": 1, "op": "authorize", "args": {...}}
 -> {"v": 1, "ok": true, "result": ...}
  | {"v": 1, "ok": false, "code": "InvalidPermission.Duplicate", "error": "..."}

The server side lives in the engine's selector loop (no threads): the listening socket and each
connection are non-blocking and read between packet batches; an answer is sent with a short
deadline so a client that stops reading cannot stall the packet path for long.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import traceback
from collections.abc import Callable
from pathlib import Path

from emulator.errors import AwsApiError, EmulatorError, LabError, PermissionRequired
from . import state

PROTOCOL_VERSION = 1
MAX_REQUEST = 1 << 20             # bytes; requests are small, anything bigger is refused
SEND_DEADLINE = 2.0               # seconds the engine spends at most sending one answer
CLIENT_TIMEOUT = 30.0

Handler = Callable[[str, dict], object]          # (op, args) -> JSON-able result
Register = Callable[[object, Callable[[], None]], None]

log = logging.getLogger("sgemu.engine")


def socket_path(lab: str) -> Path:
    return state.paths(lab).root / "control.sock"


def encode(message: dict) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode() + b"\n"


def request_message(op: str, args: dict) -> dict:
    return {"v": PROTOCOL_VERSION, "op": op, "args": args}


def error_message(code: str, error: str) -> dict:
    return {"v": PROTOCOL_VERSION, "ok": False, "code": code, "error": error}


def answer(line: bytes, handle: Handler) -> dict:
    """The response to one request line; user errors become error responses, bugs InternalError."""
    try:
        message = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return error_message("MalformedRequest", "the request is not JSON")
    if not isinstance(message, dict):
        return error_message("MalformedRequest", "the request is not a JSON object")
    if message.get("v") != PROTOCOL_VERSION:
        return error_message("UnsupportedVersion", f"protocol version {message.get('v')!r}; this engine "
                             f"speaks {PROTOCOL_VERSION}: use the sgemu that started the lab")
    op, args = message.get("op"), message.get("args", {})
    if not isinstance(op, str) or not isinstance(args, dict):
        return error_message("MalformedRequest", "a request needs an op (string) and args (object)")
    try:
        return {"v": PROTOCOL_VERSION, "ok": True, "result": handle(op, args)}
    except AwsApiError as exc:
        return error_message(exc.code, str(exc).removeprefix(f"{exc.code}: "))
    except EmulatorError as exc:
        return error_message("InvalidParameterValue", str(exc))
    except Exception:                # an engine bug: answer, log, keep serving packets
        log.error("control request %r failed:\n%s", op, traceback.format_exc())
        return error_message("InternalError", f"the engine failed on {op!r}; see the engine log")


class ControlServer:
    """The listening socket; each accepted connection is read from the caller's selector."""

    def __init__(self, path: Path, handle: Handler, register: Register,
                 unregister: Callable[[object], None]):
        self._path = path
        self._handle = handle
        self._register = register
        self._unregister = unregister
        self._buffers: dict[socket.socket, bytearray] = {}
        if path.is_socket():
            path.unlink()            # left by an engine that was killed
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)        # 0600 from the start: no window in which others may connect
        try:
            self.listener.bind(str(path))
        finally:
            os.umask(old)
        self.listener.listen(16)
        self.listener.setblocking(False)
        register(self.listener, self._accept)

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self._buffers[conn] = bytearray()
        self._register(conn, lambda: self._read(conn))

    def _read(self, conn: socket.socket) -> None:
        buffer = self._buffers[conn]
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._drop(conn)
            return
        buffer += chunk
        if b"\n" in buffer:
            self._reply(conn, answer(bytes(buffer.split(b"\n", 1)[0]), self._handle))
        elif len(buffer) > MAX_REQUEST:
            self._reply(conn, error_message("MalformedRequest", f"request longer than {MAX_REQUEST} bytes"))

    def _reply(self, conn: socket.socket, response: dict) -> None:
        try:
            conn.settimeout(SEND_DEADLINE)
            conn.sendall(encode(response))
        except OSError as exc:
            log.warning("control client went away before its answer: %s", exc)
        self._drop(conn)

    def _drop(self, conn: socket.socket) -> None:
        self._unregister(conn)
        del self._buffers[conn]
        conn.close()

    def close(self) -> None:
        for conn in list(self._buffers):
            self._drop(conn)
        self._unregister(self.listener)
        self.listener.close()
        try:
            self._path.unlink()
        except FileNotFoundError:
            pass


def _not_running(lab: str) -> LabError:
    return LabError(f"lab {lab}'s engine is not running (no control socket answers); `sgemu status --lab "
                    f"{lab}` shows its health, `sgemu down --lab {lab}` then `sgemu up FILE` rebuilds it")


def request(lab: str, op: str, timeout: float = CLIENT_TIMEOUT, **args: object) -> object:
    """Ask the lab's engine; returns the result or raises AwsApiError (refused) or LabError."""
    paths = state.paths(lab)
    try:
        if not paths.state.exists():
            raise LabError(f"no lab named {lab!r} is running; start one with `sgemu up FILE`")
    except PermissionError:
        raise PermissionRequired("a lab's control socket is root only: run as root (sudo)") from None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(socket_path(lab)))
        except PermissionError:
            raise PermissionRequired("a lab's control socket is root only: run as root (sudo)") from None
        except (FileNotFoundError, ConnectionRefusedError):
            raise _not_running(lab) from None
        try:
            sock.sendall(encode(request_message(op, args)))
            data = bytearray()
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise LabError(f"lab {lab}'s engine did not answer {op!r} within {timeout:g} s") from None
        except OSError:
            raise _not_running(lab) from None
    return result_of(lab, bytes(data))


def result_of(lab: str, data: bytes) -> object:
    """A response's result, or the error it carries raised as AwsApiError."""
    if not data.endswith(b"\n"):
        raise _not_running(lab)
    response = json.loads(data)
    if response.get("v") != PROTOCOL_VERSION:
        raise LabError(f"lab {lab}'s engine speaks protocol {response.get('v')!r}, not {PROTOCOL_VERSION}")
    if not response.get("ok"):
        raise AwsApiError(response.get("code", "InternalError"), response.get("error", ""))
    return response.get("result")
