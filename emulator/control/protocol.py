"""The CLI <-> engine protocol (pure): one request per connection, newline-delimited versioned JSON.

    {"v": 1, "op": "authorize", "args": {...}}
 -> {"v": 1, "ok": true, "result": ...}
  | {"v": 1, "ok": false, "code": "InvalidPermission.Duplicate", "error": "..."}

The socket is /run/sgemu/<lab>/control.sock (the state directory is 0700, the socket 0600: root only);
`server.py` serves it from the engine's selector loop, `client.py` asks it.
"""
from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from typing import Any

from emulator.errors import AwsApiError, EmulatorError, LabError

PROTOCOL_VERSION = 1
MAX_REQUEST = 1 << 20             # bytes; requests are small, anything bigger is refused

Handler = Callable[[str, dict], object]          # (op, args) -> JSON-able result

log = logging.getLogger("sgemu.engine")


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


def result_of(lab: str, data: bytes) -> Any:
    """A response's result, or the error it carries raised as AwsApiError."""
    if not data.endswith(b"\n"):
        raise not_running(lab)
    response = json.loads(data)
    if response.get("v") != PROTOCOL_VERSION:
        raise LabError(f"lab {lab}'s engine speaks protocol {response.get('v')!r}, not {PROTOCOL_VERSION}")
    if not response.get("ok"):
        raise AwsApiError(response.get("code", "InternalError"), response.get("error", ""))
    return response.get("result")


def not_running(lab: str) -> LabError:
    return LabError(f"lab {lab}'s engine is not running (no control socket answers); `sgemu status --lab "
                    f"{lab}` shows its health, `sgemu down --lab {lab}` then `sgemu up FILE` rebuilds it")
