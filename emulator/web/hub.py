"""The view's one client of the engine: polls the decision feed twice a second, folds it into
conversations, redraws the graph when the lab changes, keeps recent flow-log records, and hands every
update to the open pages (one bounded queue each: a stalled tab loses old updates, never slows anyone).

Only this thread talks to the control socket, whatever the number of open pages: the engine's cost of
the view does not grow with the audience.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from emulator.control.client import request
from emulator.errors import AwsApiError, EmulatorError
from emulator.graph import to_dot
from emulator.model import Topology
from emulator.render.graphviz import render
from emulator.topology import parse

from .view import Conversations

TICK = 0.5                      # seconds between reads of the feed (well inside its lease)
RETRY = 2.0                     # seconds between attempts while the engine does not answer
HISTORY_TICKS = 20              # recent updates a page gets when it connects
SUBSCRIBER_QUEUE = 64

Ask = Callable[..., Any]
log = logging.getLogger("sgemu.ui")


class Hub:
    def __init__(self, lab: str, ask: Ask = request):
        self.lab = lab
        self._ask = ask
        self._lock = threading.Lock()
        self._subscribers: set[queue.Queue] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = 0
        self.generation: int | None = None
        self.graph_version = 0
        self.exported: dict = {}
        self.topology: Topology | None = None
        self.svg = b""
        self.engine = {"ok": True, "message": ""}
        self.history: deque[dict] = deque(maxlen=HISTORY_TICKS)
        self._conversations: Conversations | None = None

    # --- pages ----------------------------------------------------------------------------------

    def subscribe(self) -> queue.Queue:
        updates: queue.Queue = queue.Queue(maxsize=SUBSCRIBER_QUEUE)
        with self._lock:
            self._subscribers.add(updates)
        return updates

    def unsubscribe(self, updates: queue.Queue) -> None:
        with self._lock:
            self._subscribers.discard(updates)

    def publish(self, event: str, data: dict) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for updates in subscribers:
            try:
                updates.put_nowait((event, data))
            except queue.Full:           # a stalled page: drop its oldest update, keep the newest
                try:
                    updates.get_nowait()
                    updates.put_nowait((event, data))
                except (queue.Empty, queue.Full):
                    pass

    # --- the engine -----------------------------------------------------------------------------

    def ask(self, op: str, **args: object) -> Any:
        return self._ask(self.lab, op, **args)

    def refresh_topology(self) -> None:
        """The lab's current model from the engine, and its picture."""
        exported = self.ask("export")
        topology = parse(exported, f"lab {self.lab}", self.lab).topology
        svg = render(to_dot(topology), "svg")
        with self._lock:
            self.exported, self.topology, self.svg = exported, topology, svg
            self.graph_version += 1
        if self._conversations is None:
            self._conversations = Conversations(topology)
        else:
            self._conversations.retopology(topology)
        self.publish("topology", {"version": self.graph_version})

    def poll(self) -> None:
        """One tick: new decisions as conversations; a redraw when the lab changed."""
        answer = self.ask("decisions", since=self._cursor)
        if answer["next"] < self._cursor:      # a restarted engine numbers its windows afresh
            self._cursor = 0
            answer = self.ask("decisions", since=0)
        if answer["generation"] != self.generation or self.topology is None:
            self.refresh_topology()
            self.generation = answer["generation"]
        self._cursor = answer["next"]
        conversations = self._conversations
        assert conversations is not None
        for window in answer["windows"]:
            conversations.overflow_packets += window["overflow_packets"]
            for record in window["records"]:
                conversations.add(record)
        update = conversations.take()
        if update["conversations"] or update["more_packets"]:
            update["time"] = answer["time"]
            update["missed"] = answer["missed"]
            self.history.append(update)
            self.publish("flows", update)
        if not self.engine["ok"]:
            self._engine(True, "")

    def flow_records_of(self, eni: str, last: int = 50) -> list[dict[str, str]]:
        """The ENI's latest flow-log records, closed and open, asked when a page shows them (never
        polled: on a busy lab every record of every ENI would cross the socket)."""
        answer = self.ask("flowlogs", since=0, current=True, eni=eni, last=last)
        return [*answer["records"], *answer["current"]][-last:]

    def _engine(self, ok: bool, message: str) -> None:
        self.engine = {"ok": ok, "message": message}
        self.publish("engine", self.engine)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except (EmulatorError, AwsApiError, OSError, ValueError) as exc:
                if self.engine["ok"] or self.engine["message"] != str(exc):
                    log.warning("lab %s: %s", self.lab, exc)
                    self._engine(False, str(exc))
                self._stop.wait(RETRY)
                continue
            self._stop.wait(TICK)

    def start(self) -> None:
        """The first poll in the caller (so `sgemu ui` fails at once on a lab it cannot read), then a thread."""
        self.poll()
        self._thread = threading.Thread(target=self.run, name="sgemu-ui-hub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
