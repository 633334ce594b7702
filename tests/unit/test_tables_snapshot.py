"""Connection tables across an engine restart: a restarted engine (journal replayed, snapshot
restored) keeps a tracked flow whose rule was revoked before the crash, still cuts an untracked
one, keeps idle deadlines and counters, and a damaged snapshot only costs connections."""
from __future__ import annotations

from pathlib import Path

import pytest

from emulator.control.api import LabApi, permission
from emulator.dataplane import tables
from emulator.dataplane.journal import Journal, journaled
from emulator.engine.firewall import build_firewalls
from emulator.model import Direction

from .engine.helpers import tcp
from .test_live import STRANGER, WEB, YOU, Harness


def restarted(h: Harness, tmp_path: Path, now: float) -> Harness:
    """A new engine as the daemon builds it: the model at `up`, the journal, then the snapshot."""
    again = Harness.__new__(Harness)
    again.topology = h.topology
    again.state, again.firewalls = build_firewalls(h.topology)
    again.persisted, again.file, again.now = [], h.file, now
    again.live = LabApi("live", h.topology, again.state, again.firewalls, 0.0, 0.0, h.file, again.persisted.append)
    replayer = Journal(tmp_path / "journal.jsonl", tmp_path / "journal.commit", tmp_path / "journal.base")
    replayer.replay(replayer.load()[1], again.live, now)
    tables.load(tmp_path / "tables", again.firewalls, now)
    return again


def test_a_restarted_engine_keeps_tracked_flows_and_cuts_untracked_ones(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    journal = Journal(tmp_path / "journal.jsonl", tmp_path / "journal.commit", tmp_path / "journal.base")
    journal.load()
    handle = journaled(h.live, journal, lambda: h.now)
    assert h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)                # ssh: tracked
    assert h.packet("web", tcp(WEB, YOU, 22, 40000, "SA"), egress=True)
    assert h.packet("web", tcp(STRANGER, WEB, 40001, 80), egress=False)           # http: untracked
    assert h.packet("web", tcp(WEB, STRANGER, 80, 40001, "SA"), egress=True)
    for port, cidr in (("22", "203.0.113.10/32"), ("80", "0.0.0.0/0")):
        handle("revoke", {"sg": "web-sg", "direction": "ingress", "rules": [permission("tcp", port, cidr=cidr)]})
    tables.save(tmp_path / "tables", h.firewalls, h.now)
    before = {e.key: (e.state, e.expires, e.packets_ingress, e.bytes_egress, e.initiator)
              for e in h.firewalls["web"].table}

    again = restarted(h, tmp_path, h.now + 1)
    assert {e.key: (e.state, e.expires, e.packets_ingress, e.bytes_egress, e.initiator)
            for e in again.firewalls["web"].table} == before
    assert again.packet("web", tcp(YOU, WEB, 40000, 22, "A"), egress=False)          # survives the restart
    assert again.packet("web", tcp(WEB, YOU, 22, 40000, "A"), egress=True)
    assert not again.packet("web", tcp(YOU, WEB, 40002, 22), egress=False)           # the revoke is in force
    assert not again.packet("web", tcp(STRANGER, WEB, 40001, 80, "A"), egress=False)  # untracked: cut


def test_expired_entries_are_not_restored(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)
    entry = next(iter(h.firewalls["web"].table))
    tables.save(tmp_path / "tables", h.firewalls, h.now)
    again = restarted(h, tmp_path, entry.expires + 0.5)
    assert len(again.firewalls["web"].table) == 0


def test_a_damaged_snapshot_starts_empty_tables_and_rules_decide(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)
    tables.save(tmp_path / "tables", h.firewalls, h.now)
    data = (tmp_path / "tables").read_bytes()
    (tmp_path / "tables").write_bytes(data[: len(data) // 2])
    again = restarted(h, tmp_path, h.now)
    assert all(len(fw.table) == 0 for fw in again.firewalls.values())
    assert again.packet("web", tcp(YOU, WEB, 40003, 22), egress=False)     # the rules still allow it


def test_snapshot_rows_round_trip_every_field(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    assert h.packet("web", tcp(YOU, WEB, 40000, 22), egress=False)
    assert h.packet("web", tcp(WEB, YOU, 22, 40000, "SA", b"x" * 10), egress=True)
    data = tables.snapshot(h.firewalls, h.now)
    _, firewalls = build_firewalls(h.topology)
    assert tables.restore(data, firewalls, h.now) == 1
    old, new = next(iter(h.firewalls["web"].table)), next(iter(firewalls["web"].table))
    slots = [s for s in type(old).__slots__ if s != "initiator"]
    assert [getattr(new, s) for s in slots] == [getattr(old, s) for s in slots]
    assert new.initiator is Direction.INGRESS


def test_snapshots_are_taken_every_period_or_less_often_when_slow(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    snapshots = tables.Snapshots(tmp_path / "tables", 1.0)
    clock = iter([0.0, 0.01, 1.0, 1.2]).__next__        # the second snapshot takes 0.2 s
    assert snapshots.tick(h.firewalls, 0.0, clock) and (tmp_path / "tables").exists()
    assert not snapshots.tick(h.firewalls, 0.9, clock)
    assert snapshots.tick(h.firewalls, 1.0, clock)
    assert snapshots.next == pytest.approx(1.0 + tables.SNAPSHOT_SHARE * 0.2)
