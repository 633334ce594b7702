"""The CLI's side of the control socket: ask a running lab's engine one question."""
from __future__ import annotations

import socket
from typing import Any

from emulator.control.protocol import encode, not_running, request_message, result_of
from emulator.errors import LabError, PermissionRequired
from emulator.paths import paths

CLIENT_TIMEOUT = 30.0


def request(lab: str, op: str, timeout: float = CLIENT_TIMEOUT, **args: Any) -> Any:
    """Ask the lab's engine; returns the result or raises AwsApiError (refused) or LabError."""
    lab_paths = paths(lab)
    try:
        if not lab_paths.state.exists():
            raise LabError(f"no lab named {lab!r} is running; start one with `sgemu up FILE`")
    except PermissionError:
        raise PermissionRequired("a lab's control socket is root only: run as root (sudo)") from None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(lab_paths.control))
        except PermissionError:
            raise PermissionRequired("a lab's control socket is root only: run as root (sudo)") from None
        except (FileNotFoundError, ConnectionRefusedError):
            raise not_running(lab) from None
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
            raise not_running(lab) from None
    return result_of(lab, bytes(data))
