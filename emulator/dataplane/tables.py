"""Snapshots of the engine's connection tables, so a restarted engine keeps the flows that were open.

The engine writes every ENI's table once a second (and on a clean stop) to one file, replaced
atomically; a restarted engine loads it before it binds a queue, so the first packet of a held
connection meets its old entry: a tracked flow stays allowed even if its rule was revoked before
the crash, an untracked one is re-checked as always. Times are CLOCK_MONOTONIC, which every
process of the machine shares, so entries keep their idle deadlines across the restart.

A snapshot costs time in the packet loop (about 2.5 us per entry), so it is taken at most every
SNAPSHOT_SHARE-th part of the engine's time: every second up to ~20k entries, less often beyond
(100k entries: every ~5 s). What a crash can still lose: entries created or advanced since the
last snapshot. A flow
opened then meets the engine as a new mid-stream flow (allowed if the rules in force allow it,
[CHOICE] 2.3 of the reference); a flow whose state moved (e.g. a FIN) resumes from the older
state, which the next packets correct.
"""
from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path

from emulator.engine.conntrack import ConntrackEntry
from emulator.engine.firewall import EniFirewall
from emulator.model import Direction

SNAPSHOT_VERSION = 1
SNAPSHOT_SHARE = 20         # a snapshot may take at most 1/20 of the engine's time
_DIRECTIONS = {d.value: d for d in Direction}

log = logging.getLogger("sgemu.engine")

Row = tuple


def _row(e: ConntrackEntry) -> Row:
    return (e.key, e.initiator.value, e.tracked, e.state, e.first_seen, e.last_seen, e.expires, e.rule, e.sg_id,
            e.packets_egress, e.bytes_egress, e.packets_ingress, e.bytes_ingress, e.turns, e.last_egress)


def _entry(row: Row) -> ConntrackEntry:
    (key, initiator, tracked, state, first_seen, last_seen, expires, rule, sg_id,
     packets_egress, bytes_egress, packets_ingress, bytes_ingress, turns, last_egress) = row
    e = ConntrackEntry(key, _DIRECTIONS[initiator], tracked, state, first_seen, rule, sg_id)
    e.last_seen, e.expires, e.turns, e.last_egress = last_seen, expires, turns, last_egress
    e.packets_egress, e.bytes_egress, e.packets_ingress, e.bytes_ingress = (packets_egress, bytes_egress,
                                                                            packets_ingress, bytes_ingress)
    return e


def snapshot(firewalls: dict[str, EniFirewall], now: float) -> dict[str, object]:
    """Every live entry of every ENI, as plain rows."""
    return {"version": SNAPSHOT_VERSION,
            "enis": {name: [_row(e) for e in fw.table if e.expires > now] for name, fw in firewalls.items()}}


def restore(data: dict[str, object], firewalls: dict[str, EniFirewall], now: float) -> int:
    """Put the snapshot's unexpired entries back into empty tables; returns how many."""
    if data.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {data.get('version')!r}, not {SNAPSHOT_VERSION}")
    enis = data["enis"]
    if not isinstance(enis, dict):
        raise ValueError("snapshot without tables")
    restored = 0
    for name, rows in enis.items():
        firewall = firewalls.get(name)
        if firewall is None:
            continue
        for row in rows:
            entry = _entry(row)
            if entry.expires > now:
                firewall.table.add(entry)
                restored += 1
    return restored


class Snapshots:
    """When to take the next snapshot: every `period`, or less often when snapshots are slow."""

    def __init__(self, path: Path, period: float):
        self.path = path
        self.period = period
        self.next = 0.0

    def tick(self, firewalls: dict[str, EniFirewall], now: float, clock: Callable[[], float]) -> bool:
        """Take a snapshot if one is due; True when it did."""
        if now < self.next:
            return False
        started = clock()
        save(self.path, firewalls, now)
        self.next = now + max(self.period, SNAPSHOT_SHARE * (clock() - started))
        return True


def save(path: Path, firewalls: dict[str, EniFirewall], now: float) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "wb") as out:
        pickle.dump(snapshot(firewalls, now), out, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)


def load(path: Path, firewalls: dict[str, EniFirewall], now: float) -> int:
    """Restore from the file if there is one. A damaged snapshot costs connections, never safety:
    it is logged and the tables start empty (every flow is then decided afresh)."""
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
        return restore(data, firewalls, now)
    except FileNotFoundError:
        return 0
    except Exception as exc:        # any damage at all: fall back to empty tables, never crash
        log.error("connection tables not restored from %s: %s", path, exc)
        for firewall in firewalls.values():
            for entry in firewall.table:
                firewall.table.remove(entry)
        return 0
