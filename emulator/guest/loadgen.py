"""The round-trip probe the benchmark runs inside lab namespaces (standard library only). Rates
(packets/s, connections/s) are measured with native tools (iperf3, ab against busybox httpd),
so the baseline is the kernel's, not Python's; a round trip is a latency, and the same probe in
every mode cancels its own cost out of the difference.

    python -m emulator.guest.loadgen serve PORT     # echo until EOF
    python -m emulator.guest.loadgen pingpong HOST PORT COUNT
    python -m emulator.guest.loadgen connect HOST PORT SECONDS   # connections, one after another

Clients print one JSON line. `serve` prints "ready" once it listens.
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
    """Echo on `port`, each connection until EOF."""
    echo = socket.create_server(("0.0.0.0", port), backlog=4096)
    echo.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(echo, selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        for key, _ in selector.select():
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
    """Connections one after another for `seconds` (a burst of short flows, e.g. for the `sgemu
    ui` tests): connect, read the first byte the server sends (or its close), close."""
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
    if verb == "pingpong":
        result = pingpong(args[0], int(args[1]), int(args[2]))
    elif verb == "connect":
        result = connect(args[0], int(args[1]), float(args[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
