"""Journal compaction: once the journal holds `compact_after` records the engine makes the current
model the replay base and starts an empty journal. A crash at every file operation of a compaction
(and of the restart that finishes one) leaves files from which a restarted engine rebuilds exactly
the acknowledged lab: the same model, the same ids in export/describe, connection-table entries
that still name the rules that opened them, and a journal that goes on numbering changes."""
from __future__ import annotations

import itertools
import json
import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from emulator.control.api import permission
from emulator.dataplane import journal as journal_module
from emulator.dataplane import tables
from emulator.dataplane.journal import Journal, JournalError, compact_if_due, encode_base, journaled, read_base
from emulator.dataplane.recovery import LiveLab, assemble, journal_of, recover, starting_point
from emulator.engine.packet import parse
from emulator.model import Direction, Topology
from emulator.paths import LabPaths
from emulator.topology import parse as parse_topology

from .engine.helpers import tcp

NAT_FILE = Path(__file__).resolve().parents[2] / "topologies" / "three-tier-nat.yaml"


def topology(with_nacls: bool = True) -> Topology:
    """three-tier-nat (SGs with group references, a NAT gateway, route tables) plus a prefix list and,
    when asked, declared NACLs (without, live NACL changes go to the implicit default NACL)."""
    data = yaml.safe_load(NAT_FILE.read_text())
    data["prefix_lists"] = [{"name": "office", "max_entries": 5, "entries": ["203.0.113.0/24"]}]
    data["options"] = {"quotas": {"rules_per_sg": 200, "sgs_per_eni": 5}}
    if with_nacls:
        data["network_acls"] = [{"name": "private-nacl", "subnets": ["private"], "ingress": [
            {"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}], "egress": [
            {"rule": 100, "action": "allow", "protocol": "all", "cidr": "0.0.0.0/0"}]}]
    return parse_topology(data, "t.yaml").topology


def script(count: int, start: int = 0, nacl: str = "private-nacl") -> Iterator[tuple[str, dict[str, object]]]:
    """Changes start .. start+count-1 of a sequence in which each is accepted after the ones before,
    touching every mutating operation; some undo an earlier one (the same rule id comes back), some
    stay (rules authorized live keep their engine-made ids)."""
    for i in range(start, start + count):
        cycle, step = divmod(i, 10)
        if step == 0:
            rule = permission("tcp", str(20000 + cycle), cidr="192.0.2.0/24", description=f"live {cycle}") \
                if cycle % 2 else permission("tcp", str(30000 + cycle), prefix_list="office")
            yield "authorize", {"sg": "app-sg", "direction": "ingress", "rules": [rule]}
        elif step in (1, 2):
            rules = [permission("udp", "53", group="db-sg")]
            yield ("authorize", "revoke")[step - 1], {"sg": "alb-sg", "direction": "egress", "rules": rules}
        elif step == 3:
            yield "set_sgs", {"instance": "app", "groups": ["app-sg", "alb-sg"] if cycle % 2 else ["app-sg"]}
        elif step == 4:
            yield "set_conntrack", {"instance": "app", "tcp_established": 3600 + cycle}
        elif step == 5 and cycle % 2 == 0:
            yield "nacl_create_entry", {"nacl": nacl, "rule_number": 200, "egress": False, "rule_action": "deny",
                                        "protocol": "tcp", "port": "23", "icmp_type": None, "icmp_code": None,
                                        "cidr": "0.0.0.0/0"}
        elif step == 5:
            yield "nacl_delete_entry", {"nacl": nacl, "rule_number": 200, "egress": False}
        elif step == 6 and cycle % 2 == 0:
            yield "nacl_replace_entry", {"nacl": nacl, "rule_number": 200, "egress": False, "rule_action": "deny",
                                         "protocol": "tcp", "port": str(1000 + cycle), "icmp_type": None,
                                         "icmp_code": None, "cidr": "0.0.0.0/0"}
        elif step == 6:
            yield "nacl_associate", {"nacl": nacl, "subnet": "data" if cycle % 4 == 1 else "private"}
        elif step == 7:
            yield "prefix_list_modify", {"prefix_list": "office", "add": [{"cidr": f"198.18.{cycle % 250}.0/24"}],
                                         "remove": [f"198.18.{(cycle - 1) % 250}.0/24"] if cycle else None}
        elif step == 8:
            yield "route_create", {"table": "private-rt", "destination": "192.0.2.0/24", "target": "nat-a"}
        else:
            yield "route_delete", {"table": "private-rt", "destination": "192.0.2.0/24"}


class Lab:
    """One engine's life on the files in `root`, as the daemon runs it (no kernel)."""

    def __init__(self, root: Path, at_up: Topology, compact_after: int = 10_000):
        self.paths = LabPaths(root)
        root.mkdir(exist_ok=True)
        self.saved: list[Topology] = []
        self.journal = Journal(self.paths.journal, self.paths.journal_commit, self.paths.journal_base,
                               compact_after)
        model, changes = starting_point(self.journal, lambda: at_up)
        self.lab: LiveLab = assemble("c", model, self.paths, self.saved.append, lambda before, after: None)
        self.recovered = recover(self.lab, self.journal, changes, self.paths, self.saved.append)
        self.handle = journaled(self.lab.live, self.journal, lambda: 1.0)

    def run(self, changes: Iterator[tuple[str, dict[str, object]]]) -> None:
        """Each change as the control socket serves it, then the loop's tick (compaction when due)."""
        for op, args in changes:
            self.handle(op, args)
            compact_if_due(self.journal, self.lab.live.topology)

    def views(self) -> dict[str, object]:
        """What users see: `export` (sg, describe-security-groups, export --lab), the describes."""
        ask = self.handle
        return {"model": self.lab.live.topology(), "export": ask("export", {}), "nacls": ask("nacl_describe", {}),
                "routes": ask("route_describe", {}), "prefix_lists": ask("prefix_list_describe", {}),
                "conntrack": ask("conntrack", {})}

    def die(self) -> None:
        """The process is gone: its descriptor closes, nothing else happens."""
        self.journal.close()


def rule_ids(model: Topology) -> list[str]:
    return [r.rule_id for g in model.security_groups for r in (*g.ingress, *g.egress)]


@pytest.mark.parametrize("with_nacls", [True, False], ids=["declared-nacls", "default-nacl-only"])
def test_a_compacted_lab_restarts_to_the_same_model_ids_and_views(tmp_path: Path, with_nacls: bool) -> None:
    at_up = topology(with_nacls)
    nacl = "private-nacl" if with_nacls else "default"
    first = Lab(tmp_path, at_up, compact_after=25)
    first.run(script(137, nacl=nacl))
    before = first.views()
    assert first.journal.base == 125 and first.journal.records == 12    # compacted 5 times, 12 since
    assert len(first.paths.journal.read_bytes().splitlines()) == 12
    first.die()

    again = Lab(tmp_path, at_up, compact_after=25)
    assert again.recovered["replayed_changes"] == 12 and again.recovered["journal_base"] == 125
    assert again.views() == before
    live_ids = set(rule_ids(before["model"])) - set(rule_ids(at_up))       # made by the engine on authorize
    assert len(live_ids) == 14 and live_ids <= set(rule_ids(again.lab.live.topology()))
    # the same lab rebuilt without compaction, by replaying all 137 changes on the model at up
    replayed = Lab(tmp_path / "never-compacted", at_up)
    replayed.run(script(137, nacl=nacl))
    replayed.die()
    assert Lab(tmp_path / "never-compacted", at_up).views() == before


def test_the_journal_goes_on_numbering_after_a_compaction_and_a_restart(tmp_path: Path) -> None:
    at_up = topology()
    lab = Lab(tmp_path, at_up, compact_after=10)
    lab.run(script(14))
    lab.die()
    lab = Lab(tmp_path, at_up, compact_after=10)
    lab.run(script(17, 14))
    lines = [json.loads(line) for line in lab.paths.journal.read_bytes().splitlines()]
    assert [r["seq"] for r in lines] == list(range(lab.journal.base + 1, lab.journal.seq + 1))
    assert json.loads(lab.paths.journal_commit.read_text())["base"] == lab.journal.base == 30
    assert read_base(lab.paths.journal_base)[0] == 30


def test_the_threshold_counts_records_and_a_failed_base_write_postpones_compaction(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    lab = Lab(tmp_path, topology(), compact_after=5)
    lab.run(script(4))
    assert not lab.journal.due() and not lab.paths.journal_base.exists()
    lab.run(script(1, 4))
    assert lab.journal.base == 5 and lab.journal.records == 0 and lab.paths.journal.stat().st_size == 0

    real = journal_module._replace_durably

    def full_for_the_base(path: Path, data: bytes) -> None:      # the big file fails, the commit fits
        if path == lab.paths.journal_base:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(journal_module, "_replace_durably", full_for_the_base)
    lab.run(script(5, 5))               # due, but the base cannot be written: the journal keeps growing
    assert lab.journal.records == 5 and not lab.journal.due() and lab.journal.base == 5
    monkeypatch.undo()
    lab.run(script(4, 10))
    assert lab.journal.records == 9 and not lab.journal.due()
    lab.run(script(1, 14))              # five more than where it failed: tried again, and done
    assert lab.journal.records == 0 and lab.journal.base == 15


def test_the_default_threshold_is_the_measured_one() -> None:
    journal = Journal(Path("j"), Path("c"), Path("b"))
    assert journal.compact_after == journal_module.COMPACT_AFTER == 100


class Crash(BaseException):
    """The engine dies here (BaseException: no `except OSError` of the engine may catch it)."""


class CrashingOs:
    """`os` for the journal module, dying before file operation number `crash_at` (a write dies
    halfway, leaving a torn file); counts the operations it let through."""
    FILE_OPS = frozenset({"open", "write", "fsync", "replace", "ftruncate"})

    def __init__(self, crash_at: int | None):
        self.crash_at = crash_at
        self.done: list[str] = []

    def __getattr__(self, name: str) -> object:
        real = getattr(os, name)
        if name not in self.FILE_OPS:
            return real

        def operation(*args: object) -> object:
            if len(self.done) == self.crash_at:
                if name == "write":
                    fd, data = args
                    real(fd, bytes(data)[: len(data) // 2])     # type: ignore[arg-type]
                raise Crash(f"{name} #{len(self.done)}")
            self.done.append(name)
            return real(*args)
        return operation


def _compaction_ops(tmp_path: Path) -> list[str]:
    lab = Lab(tmp_path / "count", topology())
    lab.run(script(23))
    counting = CrashingOs(None)
    journal_module.os = counting        # type: ignore[assignment]
    try:
        lab.journal.compact(lab.lab.live.topology())
    finally:
        journal_module.os = os
    return counting.done


def _crash_during(action, crash_at: int) -> bool:
    """Run `action` with the journal's file operations dying at `crash_at`; True if it died."""
    journal_module.os = CrashingOs(crash_at)  # type: ignore[assignment]
    try:
        action()
    except Crash:
        return True
    finally:
        journal_module.os = os
    return False


def test_compaction_does_the_documented_file_operations(tmp_path: Path) -> None:
    # base: open tmp, write, fsync, rename, directory fsync; commit: the same; then the journal is cut
    assert _compaction_ops(tmp_path) == ["open", "write", "fsync", "replace", "open", "fsync",
                                         "open", "write", "fsync", "replace", "open", "fsync", "ftruncate"]


def test_a_crash_at_any_file_operation_of_a_compaction_loses_nothing_and_replays_nothing_twice(
        tmp_path: Path) -> None:
    at_up = topology()
    steps = len(_compaction_ops(tmp_path))
    for crash_at in range(steps + 1):
        root = tmp_path / f"crash-{crash_at}"
        lab = Lab(root, at_up)
        lab.run(script(23))
        expected = lab.views()
        died = _crash_during(lambda lab=lab: lab.journal.compact(lab.lab.live.topology()), crash_at)
        assert died == (crash_at < steps)
        lab.die()
        restarted = Lab(root, at_up)
        assert restarted.views() == expected, f"crash before file operation {crash_at}"
        base = read_base(restarted.paths.journal_base)[0]
        # the base is in place from the rename on (operation 3): then nothing is replayed
        assert base == (23 if crash_at > 3 else 0)
        assert restarted.recovered["replayed_changes"] == (0 if crash_at > 3 else 23)
        assert restarted.journal.generation == base and restarted.journal.records == (23 if base == 0 else 0)
        # and the lab goes on: more changes, another restart, still the lab the user was told about
        restarted.run(script(31, 23))
        expected = restarted.views()
        restarted.die()
        assert Lab(root, at_up).views() == expected


def test_a_crash_while_a_restart_finishes_an_interrupted_compaction_is_safe_too(tmp_path: Path) -> None:
    at_up = topology()
    for crash_at in itertools.count():     # each of the restart's own file operations, then none
        root = tmp_path / f"again-{crash_at}"
        lab = Lab(root, at_up)
        lab.run(script(23))
        expected = lab.views()
        assert _crash_during(lambda lab=lab: lab.journal.compact(lab.lab.live.topology()), 5)  # after the base
        lab.die()
        died = _crash_during(lambda root=root: Lab(root, at_up).die(), crash_at)
        restarted = Lab(root, at_up)
        assert restarted.views() == expected
        assert restarted.journal.records == 0 and restarted.journal.generation == 23
        assert restarted.paths.journal.stat().st_size == 0
        if not died:
            break
    assert crash_at == 9        # open and cut the journal, the new commit (6 operations), cut it


def test_restored_connection_entries_still_name_the_rules_that_opened_them(tmp_path: Path) -> None:
    at_up = topology()
    lab = Lab(tmp_path, at_up, compact_after=10)
    lab.run(script(11))     # the rule of the first change (app-sg 30000 from the prefix list) was made live
    firewalls = lab.lab.firewalls
    now = time.monotonic()              # the clock a restarted engine restores the tables against
    for eni, raw, direction in (("alb", tcp("198.51.100.99", "10.0.1.10", 40000, 80), Direction.INGRESS),
                                ("app", tcp("203.0.113.9", "10.0.2.10", 40001, 30000), Direction.INGRESS)):
        assert firewalls[eni].decide(parse(raw), direction, now).accepted
    opened = {eni: [(e.rule, e.sg_id) for e in firewalls[eni].table] for eni in ("alb", "app")}
    tables.save(lab.paths.tables, firewalls, now)
    lab.journal.compact(lab.lab.live.topology())
    lab.die()

    again = Lab(tmp_path, at_up)
    assert again.recovered["restored_flows"] == 2 and again.recovered["replayed_changes"] == 0
    for eni, entries in opened.items():
        restored = [(e.rule, e.sg_id) for e in again.lab.firewalls[eni].table]
        assert restored == entries
        for rule, sg_id in restored:
            assert rule is not None and rule in again.lab.sgs.group(sg_id).rules(rule.direction)
    live_rule = opened["app"][0][0]
    assert live_rule is not None and live_rule.rule_id not in rule_ids(at_up)      # made by the engine
    # the restored entry answers its reply like before the crash
    reply = parse(tcp("10.0.2.10", "203.0.113.9", 30000, 40001, "SA"))
    assert again.lab.firewalls["app"].decide(reply, Direction.EGRESS, time.monotonic()).accepted


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:-10], "fails its checksum"),
    (lambda data: data[:20], "fails its checksum|not a replay base"),
    (lambda data: data.replace(b'"seq": 12', b'"seq": 40'), "includes changes 1-40"),
    (lambda data: data.replace(b'"seq": 12', b'"seq": 2'), "includes changes 1-2 but"),
    (lambda data: b"garbage\n" + data, "not a replay base"),
], ids=["truncated", "header-only", "ahead-of-journal", "behind-journal", "garbage"])
def test_a_damaged_or_mismatched_base_is_a_journal_error_naming_it(tmp_path: Path, damage, message) -> None:
    at_up = topology()
    lab = Lab(tmp_path, at_up, compact_after=12)
    lab.run(script(15))
    lab.die()
    base = lab.paths.journal_base
    base.write_bytes(damage(base.read_bytes()))
    with pytest.raises(JournalError, match=message) as raised:
        Lab(tmp_path, at_up)
    assert str(base) in str(raised.value)


def test_a_base_of_something_else_than_a_model_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.base"
    path.write_bytes(encode_base(3, "not a model"))     # type: ignore[arg-type]
    with pytest.raises(JournalError, match="holds no lab model"):
        read_base(path)
    body = b"\x80\x05cno_such_module\nThing\n."      # a checksum-valid pickle naming a class that is gone
    path.write_bytes(json.dumps({"seq": 3, "length": len(body), "crc": zlib.crc32(body)}).encode() + b"\n" + body)
    with pytest.raises(JournalError, match="the model cannot be read"):
        read_base(path)


def test_the_daemon_recovery_paths_are_the_lab_state_directory() -> None:
    paths = LabPaths(Path("/run/sgemu/x"))
    journal = journal_of(paths)
    assert (journal.path.name, journal.commit_path.name, journal.base_path.name) == (
        "journal.jsonl", "journal.commit", "journal.base")


def test_a_failure_after_the_base_is_in_place_stops_the_engine_and_its_restart_is_exact(tmp_path: Path,
                                                                                          monkeypatch) -> None:
    at_up = topology()
    lab = Lab(tmp_path, at_up, compact_after=20)
    lab.run(script(19))
    lab.handle(*next(script(1, 19)))        # the 20th change, answered; the loop's tick comes next
    expected = lab.views()
    real = journal_module._replace_durably

    def commit_fails(path: Path, data: bytes) -> None:       # the base is written, its commit is not
        if path == lab.paths.journal_commit:
            raise OSError(5, "Input/output error")
        real(path, data)

    monkeypatch.setattr(journal_module, "_replace_durably", commit_fails)
    with pytest.raises(SystemExit):
        compact_if_due(lab.journal, lab.lab.live.topology)
    monkeypatch.undo()
    lab.die()
    again = Lab(tmp_path, at_up)
    assert again.views() == expected and again.journal.base == 20 and again.recovered["replayed_changes"] == 0


def test_the_compaction_benchmark_runs_and_reports_every_figure(tmp_path: Path) -> None:
    from emulator.bench import compaction

    result = compaction.measure(20, tmp_path)
    assert result["rules"] == 1000 and result["instances"] == 100 and result["changes"] == 20
    assert result["compact_ms"] > 0 and result["restart_from_base_ms"] > 0 and result["change_ms"] > 0
    assert set(result["thresholds"]) == set(compaction.THRESHOLDS)      # type: ignore[arg-type]


def test_a_base_renamed_whose_compaction_reported_failure_is_still_read_right(tmp_path: Path) -> None:
    """The rename happened but its directory fsync failed: compaction reports failure and the
    journal goes on, so the base sits inside the journal; a restart replays only what follows it."""
    at_up = topology()
    lab = Lab(tmp_path, at_up)
    lab.run(script(10))
    journal_module._replace_durably(lab.paths.journal_base, encode_base(lab.journal.seq, lab.lab.live.topology()))
    lab.run(script(5, 10))
    expected = lab.views()
    lab.die()
    again = Lab(tmp_path, at_up)
    assert again.views() == expected
    assert again.recovered["replayed_changes"] == 5 and again.journal.base == 10 and again.journal.records == 15
