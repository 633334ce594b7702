"""The journal of live changes: what is acknowledged is committed and replayed in order, what is
refused is never written, a crash mid-append loses only the unacknowledged change, and any other
damage is a JournalError naming the file (the engine then stays down: the lab stays closed)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.control.api import LabApi, permission
from emulator.dataplane.journal import Change, Journal, JournalError, decode, encode, journaled
from emulator.engine.firewall import build_firewalls
from emulator.errors import AwsApiError
from emulator.topology import dump

from .test_live import TOPOLOGY, Harness


def journal(tmp_path: Path) -> Journal:
    return Journal(tmp_path / "journal.jsonl", tmp_path / "journal.commit", tmp_path / "journal.base")


def fresh_api(harness: Harness) -> LabApi:
    """A second engine's LabApi, from the model as `up` built it."""
    state, firewalls = build_firewalls(harness.topology)
    return LabApi("live", harness.topology, state, firewalls, 0.0, 0.0, harness.file, lambda t: None)


def test_appended_changes_load_back_in_order(tmp_path: Path) -> None:
    first = journal(tmp_path)
    assert first.load() == (None, [])
    first.append("authorize", {"sg": "web-sg", "direction": "ingress", "rules": [{"protocol": "tcp"}]})
    first.append("set_sgs", {"instance": "web", "groups": ["db-sg"]})
    first.close()
    again = journal(tmp_path)
    _, changes = again.load()
    assert [(c.seq, c.op) for c in changes] == [(1, "authorize"), (2, "set_sgs")]
    assert changes[1].args == {"instance": "web", "groups": ["db-sg"]}
    again.append("revoke", {"sg": "web-sg"})
    again.close()
    assert [c.seq for c in journal(tmp_path).load()[1]] == [1, 2, 3]
    assert json.loads((tmp_path / "journal.commit").read_text())["records"] == 3


def test_files_are_root_only(tmp_path: Path) -> None:
    j = journal(tmp_path)
    j.load()
    j.append("set_sgs", {"instance": "web", "groups": ["web-sg"]})
    j.close()
    for name in ("journal.jsonl", "journal.commit"):
        assert (tmp_path / name).stat().st_mode & 0o077 == 0


def test_an_uncommitted_tail_from_a_crash_mid_append_is_cut_off(tmp_path: Path) -> None:
    j = journal(tmp_path)
    j.load()
    j.append("set_sgs", {"instance": "web", "groups": ["web-sg"]})
    j.close()
    # the engine died inside append: the line (whole or torn) is there, the commit is not
    whole = encode(Change(2, "set_sgs", {"instance": "db", "groups": ["web-sg"]}))
    for tail in (whole[:17], whole):
        with open(tmp_path / "journal.jsonl", "ab") as f:
            f.write(tail)
        again = journal(tmp_path)
        assert [c.seq for c in again.load()[1]] == [1]
        again.append("set_sgs", {"instance": "db", "groups": ["db-sg"]})     # appends after the cut
        again.close()
        assert [c.args["groups"] for c in journal(tmp_path).load()[1]] == [["web-sg"], ["db-sg"]]
        (tmp_path / "journal.commit").write_text(json.dumps({"length": len(encode(
            Change(1, "set_sgs", {"instance": "web", "groups": ["web-sg"]}))), "records": 1}))


def committed(tmp_path: Path, count: int = 3) -> bytes:
    j = journal(tmp_path)
    j.load()
    for n in range(count):
        j.append("set_sgs", {"instance": "web", "groups": [f"sg-{n}"]})
    j.close()
    return (tmp_path / "journal.jsonl").read_bytes()


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[:-5], "truncated"),
    (lambda data: data[:-1] + b" ", "cut short"),
    (lambda data: data[: data.index(b"\n") + 1], "truncated"),
    (lambda data: data.replace(b"sg-1", b"sg-7"), "fails its checksum"),
    (lambda data: data.replace(b'"seq":2', b'"seq":5'), "fails its checksum"),
    (lambda data: b"x" * data.index(b"\n") + data[data.index(b"\n"):], "line 1 is not a journal record"),
    (lambda data: b"", "truncated"),
], ids=["cut-mid-line", "end-overwritten", "lines-missing", "altered", "renumbered", "garbage", "emptied"])
def test_damage_before_the_commit_point_is_an_error_naming_the_file(tmp_path: Path, damage, message) -> None:
    data = committed(tmp_path)
    path = tmp_path / "journal.jsonl"
    path.write_bytes(damage(data))
    with pytest.raises(JournalError, match=message) as raised:
        journal(tmp_path).load()
    assert str(path) in str(raised.value)


def test_a_reordered_journal_is_refused(tmp_path: Path) -> None:
    lines = committed(tmp_path).splitlines(keepends=True)
    (tmp_path / "journal.jsonl").write_bytes(lines[1] + lines[0] + lines[2])
    with pytest.raises(JournalError, match="line 1 has sequence number 2"):
        journal(tmp_path).load()


def test_a_missing_or_altered_commit_record_is_an_error(tmp_path: Path) -> None:
    committed(tmp_path)
    commit = tmp_path / "journal.commit"
    text = commit.read_text()
    commit.write_text("{")
    with pytest.raises(JournalError, match="not a commit record"):
        journal(tmp_path).load()
    commit.write_text(json.dumps({**json.loads(text), "records": 2}))
    with pytest.raises(JournalError, match="holds 3 records but 2 were committed"):
        journal(tmp_path).load()
    commit.unlink()
    with pytest.raises(JournalError, match=r"journal\.commit is missing"):
        journal(tmp_path).load()


def test_decode_reads_what_encode_wrote() -> None:
    changes = [Change(1, "authorize", {"sg": "a", "rules": [{"protocol": "tcp", "ports": "80"}]}),
               Change(2, "set_conntrack", {"instance": "web", "udp": 45})]
    assert list(decode(b"".join(map(encode, changes)), "j")) == changes


def test_acknowledged_changes_replay_to_the_same_lab_and_refusals_are_never_written(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    j = journal(tmp_path)
    j.load()
    handle = journaled(harness.live, j, lambda: harness.now)
    handle("authorize", {"sg": "web-sg", "direction": "ingress",
                         "rules": [permission("tcp", "443", cidr="0.0.0.0/0")]})
    with pytest.raises(AwsApiError):        # a duplicate: refused, so never journaled
        handle("authorize", {"sg": "web-sg", "direction": "ingress",
                             "rules": [permission("tcp", "443", cidr="0.0.0.0/0")]})
    with pytest.raises(AwsApiError):        # over the quota of 3
        handle("authorize", {"sg": "web-sg", "direction": "ingress",
                             "rules": [permission("udp", "53", cidr="0.0.0.0/0")]})
    handle("revoke", {"sg": "web-sg", "direction": "ingress", "rules": [permission("tcp", "22",
                                                                                   cidr="203.0.113.10/32")]})
    handle("set_sgs", {"instance": "db", "groups": ["db-sg", "web-sg"]})
    handle("set_conntrack", {"instance": "web", "tcp_established": 120})
    handle("export", {})                    # reads are not journaled
    handle("conntrack", {})
    j.close()
    changes = journal(tmp_path).load()[1]
    assert [c.op for c in changes] == ["authorize", "revoke", "set_sgs", "set_conntrack"]

    restarted = fresh_api(harness)
    replayer = journal(tmp_path)
    replayer.replay(replayer.load()[1], restarted, 5.0)
    assert dump(restarted.topology()) == dump(harness.live.topology())
    assert dump(restarted.topology()) != dump(harness.topology)


def test_a_change_that_no_longer_applies_is_a_journal_error(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    j = journal(tmp_path)
    j.load()
    j.append("set_sgs", {"instance": "nosuch", "groups": ["web-sg"]})
    j.close()
    replayer = journal(tmp_path)
    with pytest.raises(JournalError, match=r"change 1 \(set_sgs\) no longer applies"):
        replayer.replay(replayer.load()[1], fresh_api(harness), 1.0)


def test_a_change_that_cannot_be_journaled_stops_the_engine_unanswered(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    j = journal(tmp_path)
    j.load()
    j.close()           # every write now fails (a full or vanished disk)
    j._fd = 10_000
    handle = journaled(harness.live, j, lambda: harness.now)
    with pytest.raises(SystemExit):
        handle("set_sgs", {"instance": "db", "groups": ["web-sg"]})
    assert handle("export", {})["name"] == TOPOLOGY["name"]
