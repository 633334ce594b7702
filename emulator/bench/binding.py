"""The binding's own limit: an accept-only consumer of a lab's NFQUEUE queues, bound exactly as
the engine binds them (same binding, copy range, queue length, socket buffer, GSO), that accepts
every packet unread. A packet leaving an instance gets the engine's DECIDED_MARK, so it makes the
same single queue trip as under the engine. Run inside the lab's fabric namespace, in place of
the lab's engine:

    ip netns exec sgemu-<lab>-vpc python -m emulator.bench.binding QUEUE...   # prints "ready"

It counts verdicts and prints them as one JSON line when stopped (SIGTERM).
"""
from __future__ import annotations

import json
import selectors
import signal
import sys

from netfilterqueue import NetfilterQueue

from emulator.dataplane.nfqueue import COPY_RANGE, HOOK_PREROUTING, QUEUE_MAX_LEN, SOCKET_BUFFER, enable_gso
from emulator.plan import DECIDED_MARK


def serve(queues: list[int]) -> int:
    stopping = False
    verdicts = 0

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    def accept(pkt) -> None:
        nonlocal verdicts
        verdicts += 1
        if pkt.hook == HOOK_PREROUTING:
            pkt.set_mark(DECIDED_MARK)
        pkt.accept()

    signal.signal(signal.SIGTERM, stop)
    selector = selectors.DefaultSelector()
    bound = []
    for number in queues:
        queue = NetfilterQueue()
        queue.bind(number, accept, max_len=QUEUE_MAX_LEN, range=COPY_RANGE, sock_len=SOCKET_BUFFER)
        enable_gso(queue.get_fd(), number)
        selector.register(queue.get_fd(), selectors.EVENT_READ, queue)
        bound.append(queue)
    print("ready", flush=True)
    try:
        while not stopping:
            for key, _ in selector.select(0.2):
                key.data.run(block=False)
    finally:
        for queue in bound:
            queue.unbind()
    return verdicts


if __name__ == "__main__":
    print(json.dumps({"verdicts": serve([int(q) for q in sys.argv[1:]])}), flush=True)
