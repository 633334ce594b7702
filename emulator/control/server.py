"""The engine's side of the control socket: non-blocking, served from the engine's selector loop
between packet batches (no threads); an answer is sent with a short deadline so a client that
stops reading cannot stall the packet path for long."""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from emulator.control.protocol import MAX_REQUEST, Handler, answer, encode, error_message

SEND_DEADLINE = 2.0               # seconds the engine spends at most sending one answer

Register = Callable[[object, Callable[[], None]], None]

log = logging.getLogger("sgemu.engine")


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
