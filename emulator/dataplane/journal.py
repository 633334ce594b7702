"""The journal of live changes: every change the engine accepted, as (op, args), in order.

A restarted engine rebuilds the lab from the model recorded at `up` plus this journal, so a
change the user saw succeed survives any crash of the engine, and a refused change (never
written) never appears. Generic on purpose: whatever LabApi lists as `mutating` is journaled.

Three files in the state directory:
  journal.jsonl   one JSON line per change: {"seq", "op", "args", "crc"}, crc32 over the rest
  journal.commit  {"base", "length", "records"}: the journal's generation (its lines are changes
                  base+1 .. base+records) and how much of journal.jsonl is committed, replaced
                  atomically (rename) after the line is fsynced, before the change is answered
  journal.base    the replay base once the journal was compacted: a JSON header line
                  {"seq", "length", "crc"} then the pickled model with every change up to seq
                  applied (without it the base is topology.up.pickle, seq 0)
A crash while appending leaves bytes beyond the committed length: that change was never
acknowledged, so they are cut off. Anything else that does not add up (a line cut short before
the committed length, a bad checksum, a missing file, a gap in the sequence, a base that does not
meet the journal) is corruption: `JournalError`, and the engine stays down (the lab stays closed)
rather than guess.

Compaction (`compact`, once the journal holds COMPACT_AFTER records) keeps replay short on a lab
driven by scripts. Each step leaves files a restart reads exactly right, whatever the crash point:
  1. the model now (seq S) to journal.base.tmp, fsync      crash: the old base + whole journal
  2. rename it to journal.base, fsync the directory        crash: the base covers every line, so
                                                           none is replayed; the restart finishes 3-4
  3. journal.commit := {"base": S, "length": 0}, renamed   crash: the old lines are an uncommitted tail
  4. truncate journal.jsonl                                 done
Replay starts after the base's seq, so no change is applied twice and none is lost. The model
carries every id a user has seen (sgr- rule ids, NACL rule numbers, route destinations) as data, so
a lab rebuilt from the base shows the same ids as one rebuilt by replay.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from emulator.control.api import LabApi
from emulator.errors import EmulatorError, LabError
from emulator.model import Topology

# Records after which the engine compacts the journal (see the module's docstring). Measured with
# `python -m emulator.bench.compaction` (100 instances, 1000 rules, files on /run; two runs): a restart
# replays 1.0-1.6 ms per change (~0.15 ms on a small lab) and a compaction holds the engine's thread
# ~12 ms, one or two live changes' worth (each change already persists the whole model). At 100 a
# restart replays at most ~0.1-0.16 s more, and compaction adds ~0.12 ms (1-2%) to each change.
COMPACT_AFTER = 100

log = logging.getLogger("sgemu.engine")


class JournalError(LabError):
    """The journal cannot be trusted; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Change:
    seq: int
    op: str
    args: dict[str, object]


def _crc(seq: int, op: str, args: dict[str, object]) -> int:
    return zlib.crc32(json.dumps([seq, op, args], sort_keys=True, separators=(",", ":")).encode())


def encode(change: Change) -> bytes:
    record = {"seq": change.seq, "op": change.op, "args": change.args,
              "crc": _crc(change.seq, change.op, change.args)}
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def decode(data: bytes, where: str, base: int = 0) -> Iterator[Change]:
    """The changes in `data` (the committed part of a journal whose first line is change base+1);
    JournalError on any damage."""
    lines = data.split(b"\n")
    if lines[-1]:
        raise JournalError(f"{where}: line {len(lines)} is cut short (the file was truncated)")
    for number, line in enumerate(lines[:-1], 1):
        try:
            record = json.loads(line)
            seq, op, args, crc = record["seq"], record["op"], record["args"], record["crc"]
        except (ValueError, UnicodeDecodeError, TypeError, KeyError):
            raise JournalError(f"{where}: line {number} is not a journal record") from None
        if not isinstance(op, str) or not isinstance(args, dict) or crc != _crc(seq, op, args):
            raise JournalError(f"{where}: line {number} fails its checksum (the file was altered)")
        if seq != base + number:
            raise JournalError(f"{where}: line {number} has sequence number {seq}, not {base + number} "
                               "(records missing or moved)")
        yield Change(seq, op, args)


def _fsync_directory(path: Path) -> None:
    """Make a rename in `path` durable (a no-op on tmpfs /run, needed on a disk)."""
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _replace_durably(path: Path, data: bytes) -> None:
    """`path` holds `data` or what it held before, never a mix: a temporary file, fsynced, renamed."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_directory(path.parent)


def encode_base(seq: int, model: Topology) -> bytes:
    body = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    header = {"seq": seq, "length": len(body), "crc": zlib.crc32(body)}
    return json.dumps(header).encode() + b"\n" + body


def read_base(path: Path) -> tuple[int, Topology | None]:
    """(seq, model) of the replay base; (0, None) when the journal was never compacted."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0, None
    head, _, body = data.partition(b"\n")
    try:
        header = json.loads(head)
        seq, length, crc = int(header["seq"]), int(header["length"]), int(header["crc"])
    except (ValueError, UnicodeDecodeError, TypeError, KeyError):
        raise JournalError(f"{path}: not a replay base (the file was altered)") from None
    if len(body) != length or zlib.crc32(body) != crc or seq < 0:
        raise JournalError(f"{path}: the model fails its checksum (the file was truncated or altered)")
    try:
        model = pickle.loads(body)
    except Exception as exc:        # intact bytes this version cannot read (e.g. a model from another one)
        raise JournalError(f"{path}: the model cannot be read ({type(exc).__name__}: {exc})") from None
    if not isinstance(model, Topology):
        raise JournalError(f"{path}: holds no lab model")
    return seq, model


class Journal:
    """The journal files of one lab; `load()` once at start-up, then `append()` per change and
    `compact()` when `due()`."""

    def __init__(self, path: Path, commit: Path, base: Path, compact_after: int = COMPACT_AFTER):
        self.path = path
        self.commit_path = commit
        self.base_path = base
        self.compact_after = compact_after
        self.base = 0           # the replay base holds changes 1..base (0: the model at `up`)
        self.generation = 0     # the journal's lines are changes generation+1 .. generation+records
        self.records = 0
        self._length = 0
        self._fd: int | None = None
        self._retry_at = compact_after     # records at which compaction is next tried

    @property
    def seq(self) -> int:
        """The last committed change (counted since `up`, across compactions)."""
        return self.generation + self.records

    def _committed(self) -> tuple[int, int, int]:
        try:
            commit = json.loads(self.commit_path.read_text())
            base = int(commit.get("base", 0))       # no "base": a journal from before compaction
            length, records = int(commit["length"]), int(commit["records"])
        except FileNotFoundError:
            if self.path.exists() and self.path.stat().st_size:
                raise JournalError(f"{self.commit_path} is missing but {self.path} has records") from None
            return 0, 0, 0
        except (ValueError, TypeError, KeyError, AttributeError):
            raise JournalError(f"{self.commit_path}: not a commit record (the file was altered)") from None
        return base, length, records

    def load(self) -> tuple[Topology | None, list[Change]]:
        """The replay base (None: start from the model at `up`) and every committed change after
        it, in order; an uncommitted tail (a crash mid-append) is cut off, and a compaction a crash
        interrupted after its base was in place is finished."""
        base_seq, model = read_base(self.base_path)
        generation, length, records = self._committed()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        if len(data) < length:
            raise JournalError(f"{self.path} has {len(data)} bytes but {length} were committed "
                               "(the file was truncated)")
        changes = list(decode(data[:length], str(self.path), generation))
        if len(changes) != records:
            raise JournalError(f"{self.path} holds {len(changes)} records but {records} were committed")
        if not generation <= base_seq <= generation + records:
            raise JournalError(f"{self.base_path} includes changes 1-{base_seq} but {self.path} continues "
                               f"from change {generation + 1} (records missing, or files of another lab)")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, length)      # the uncommitted tail, if any
        os.lseek(self._fd, length, os.SEEK_SET)
        self.generation, self._length, self.records = generation, length, records
        self.base = base_seq
        if base_seq == self.seq and records:
            self._new_generation()          # the base covers every line: finish that compaction
        self._retry_at = self.compact_after
        return model, [c for c in changes if c.seq > base_seq]

    def append(self, op: str, args: dict[str, object]) -> Change:
        """Write, fsync and commit one change; only then may it be acknowledged. An OSError here
        must stop the engine (the change is applied in memory but would not survive a restart)."""
        if self._fd is None:
            raise RuntimeError("Journal.append before load")
        change = Change(self.seq + 1, op, args)
        line = encode(change)
        written = os.write(self._fd, line)
        if written != len(line):
            raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
        os.fsync(self._fd)
        self._length += len(line)
        self.records += 1
        self._commit()
        return change

    def _commit(self) -> None:
        record = {"base": self.generation, "length": self._length, "records": self.records}
        _replace_durably(self.commit_path, json.dumps(record).encode())

    def due(self) -> bool:
        return self.records >= self._retry_at

    def compact(self, model: Topology) -> bool:
        """Make `model` (the lab with every committed change applied) the replay base and start an
        empty journal (steps and crash points: the module's docstring). False when the base could
        not be written: nothing changed, the journal goes on growing and compaction is tried again
        after as many records more. An OSError after the base is in place must stop the engine,
        like one in `append` (the files on disk are consistent; memory may not be)."""
        if self._fd is None:
            raise RuntimeError("Journal.compact before load")
        try:
            _replace_durably(self.base_path, encode_base(self.seq, model))
        except OSError as exc:
            log.error("journal not compacted (%s); retrying after %d more changes", exc, self.compact_after)
            self._retry_at = self.records + self.compact_after
            return False
        self.base = self.seq
        self._new_generation()
        self._retry_at = self.compact_after
        return True

    def _new_generation(self) -> None:
        """An empty journal continuing from the base: committed first, so the old lines become an
        uncommitted tail before they are cut off."""
        assert self._fd is not None
        self.generation, self._length, self.records = self.seq, 0, 0
        self._commit()
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)

    def replay(self, changes: list[Change], api: LabApi, now: float) -> None:
        """Apply the loaded changes again, in order. Each succeeded once on the same state, so a
        refusal now means the journal does not belong to this model: JournalError."""
        for change in changes:
            try:
                api.handle(change.op, change.args, now)
            except EmulatorError as exc:
                raise JournalError(f"{self.path}: change {change.seq} ({change.op}) no longer applies: "
                                   f"{exc}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def journaled(api: LabApi, journal: Journal, clock: Callable[[], float]) -> Callable[[str, dict], object]:
    """The control socket's handler: an operation, then (if it changed the lab) its journal entry,
    then the answer. A refused operation raises before anything is written. A change that cannot
    be journaled stops the engine unanswered (SystemExit): its restart, from the journal, has
    the state the user was last told about."""
    def handle(op: str, args: dict) -> object:
        result = api.handle(op, args, clock())
        if op in api.mutating:
            try:
                journal.append(op, args)
            except OSError as exc:
                log.critical("cannot journal %s (%s): stopping so that a restart drops it", op, exc)
                raise SystemExit(1) from None
        return result

    return handle


def compact_if_due(journal: Journal, model: Callable[[], Topology]) -> None:
    """Between packet batches: compact once the journal is long enough. A failure after the new
    base is in place stops the engine (SystemExit), whose restart reads consistent files."""
    if not journal.due():
        return
    started, folded = time.monotonic(), journal.seq
    try:
        if journal.compact(model()):
            log.info("journal compacted: changes 1-%d are in %s (%.1f ms)", folded, journal.base_path,
                     (time.monotonic() - started) * 1000)
    except OSError as exc:
        log.critical("journal compaction stopped after its base was written (%s): stopping so that a "
                     "restart reads the files", exc)
        raise SystemExit(1) from None
