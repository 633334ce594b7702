"""Load generators the benchmark runs inside lab namespaces (standard library only).

    python -m emulator.guest.loadgen serve PORT     # PORT: echo until EOF; PORT+1: close at once
    python -m emulator.guest.loadgen connect HOST PORT SECONDS   # PORT: one that closes at once
    python -m emulator.guest.loadgen pingpong HOST PORT COUNT

Each client prints one JSON line. `serve` prints "ready" once it listens.
"""
from __future__ import annotations

import json
import selectors
import socket
import statistics
import sys
import time
from typing import cast

WARMUP_ROUND_TRIPS = 200      # the first exchanges also carry the flow to the kernel fast path


def serve(port: int) -> None:
    """Echo on `port`; on `port + 1` close every connection at once, as an HTTP/1.0 server
    would: the server then holds TIME_WAIT, and the client's ports never run out."""
    echo = socket.create_server(("0.0.0.0", port), backlog=4096)
    closing = socket.create_server(("0.0.0.0", port + 1), backlog=4096)
    selector = selectors.DefaultSelector()
    for listener in (echo, closing):
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
            if key.fileobj is closing:
                try:
                    closing.accept()[0].close()
                except BlockingIOError:
                    pass
                continue
            if key.fileobj is echo:
                try:
                    conn, _ = echo.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(conn, selectors.EVENT_READ)
                continue
            conn = cast(socket.socket, key.fileobj)
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError:
                data = b""
            if data:
                conn.sendall(data)
            else:
                selector.unregister(conn)
                conn.close()


def connect(host: str, port: int, seconds: float) -> dict:
    """New connections per second, as fast as one client goes: connect, wait for the server's
    close, close."""
    done = failed = 0
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                sock.recv(1)
                done += 1
        except OSError:
            failed += 1
    elapsed = time.monotonic() - started
    return {"connections": done, "failed": failed, "seconds": elapsed, "per_second": done / elapsed}


def pingpong(host: str, port: int, count: int) -> dict:
    """Round-trip time of one byte on one established TCP connection."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for n in range(WARMUP_ROUND_TRIPS + count):
            start = time.perf_counter_ns()
            sock.sendall(b"x")
            if not sock.recv(1):
                raise ConnectionError("the echo server closed the connection")
            if n >= WARMUP_ROUND_TRIPS:
                samples.append(time.perf_counter_ns() - start)
    return {"median_us": statistics.median(samples) / 1000, "count": len(samples)}


def main(argv: list[str]) -> int:
    verb, *args = argv
    if verb == "serve":
        serve(int(args[0]))
        return 0
    if verb == "connect":
        result = connect(args[0], int(args[1]), float(args[2]))
    elif verb == "pingpong":
        result = pingpong(args[0], int(args[1]), int(args[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
