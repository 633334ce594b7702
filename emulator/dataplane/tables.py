"""Snapshots of the engine's connection tables, so a restarted engine keeps the flows that were open.

The engine writes every ENI's table once a second (and on a clean stop) to one file, replaced
atomically; a restarted engine loads it before it binds a queue, so the first packet of a held
connection meets its old entry: a tracked flow stays allowed even if its rule was revoked before
the crash, an untracked one is re-checked as always. Times are CLOCK_MONOTONIC, which every
process of the machine shares, so entries keep their idle deadlines across the restart.

What a crash can still lose: entries created or advanced in the last second before it. A flow
opened then meets the engine as a new mid-stream flow (allowed if the rules in force allow it,
[CHOICE] 2.3 of the reference); a flow whose state moved (e.g. a FIN) resumes from the older
state, which the next packets correct.
"""
from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

from emulator.engine.conntrack import ConntrackEntry
from emulator.engine.firewall import EniFirewall
from emulator.model import Direction

SNAPSHOT_VERSION = 1
_COUNTS = ("packets_egress", "bytes_egress", "packets_ingress", "bytes_ingress", "turns", "last_egress")

log = logging.getLogger("sgemu.engine")

Row = tuple


def _row(entry: ConntrackEntry) -> Row:
    return (entry.key, entry.initiator.value, entry.tracked, entry.state, entry.first_seen, entry.last_seen,
            entry.expires, entry.rule, entry.sg_id, *(getattr(entry, name) for name in _COUNTS))


def _entry(row: Row) -> ConntrackEntry:
    key, initiator, tracked, state, first_seen, last_seen, expires, rule, sg_id, *counts = row
    entry = ConntrackEntry(key, Direction(initiator), tracked, state, first_seen, rule, sg_id)
    entry.last_seen, entry.expires = last_seen, expires
    for name, value in zip(_COUNTS, counts, strict=True):
        setattr(entry, name, value)
    return entry


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
