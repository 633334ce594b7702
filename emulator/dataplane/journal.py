"""The journal of live changes: every change the engine accepted, as (op, args), in order.

A restarted engine rebuilds the lab from the model recorded at `up` plus this journal, so a
change the user saw succeed survives any crash of the engine, and a refused change (never
written) never appears. Generic on purpose: whatever LabApi lists as `mutating` is journaled.

Two files in the state directory:
  journal.jsonl   one JSON line per change: {"seq", "op", "args", "crc"}, crc32 over the rest
  journal.commit  {"length", "records"}: how much of journal.jsonl is committed, replaced
                  atomically (rename) after the line is fsynced, before the change is answered
A crash while appending leaves bytes beyond the committed length: that change was never
acknowledged, so they are cut off. Anything else that does not add up (a line cut short before
the committed length, a bad checksum, a missing file, a gap in the sequence) is corruption:
`JournalError`, and the engine stays down (the lab stays closed) rather than guess.
"""
from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from emulator.control.api import LabApi
from emulator.errors import EmulatorError, LabError

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


def decode(data: bytes, where: str) -> Iterator[Change]:
    """The changes in `data` (the committed part of a journal); JournalError on any damage."""
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
        if seq != number:
            raise JournalError(f"{where}: line {number} has sequence number {seq} (records missing or moved)")
        yield Change(seq, op, args)


class Journal:
    """The journal files of one lab; `load()` once at start-up, then `append()` per change."""

    def __init__(self, path: Path, commit: Path):
        self.path = path
        self.commit_path = commit
        self.records = 0
        self._length = 0
        self._fd: int | None = None

    def _committed(self) -> tuple[int, int]:
        try:
            commit = json.loads(self.commit_path.read_text())
            length, records = int(commit["length"]), int(commit["records"])
        except FileNotFoundError:
            if self.path.exists() and self.path.stat().st_size:
                raise JournalError(f"{self.commit_path} is missing but {self.path} has records") from None
            return 0, 0
        except (ValueError, TypeError, KeyError):
            raise JournalError(f"{self.commit_path}: not a commit record (the file was altered)") from None
        return length, records

    def load(self) -> list[Change]:
        """Every committed change, in order; an uncommitted tail (a crash mid-append) is cut off."""
        length, records = self._committed()
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        if len(data) < length:
            raise JournalError(f"{self.path} has {len(data)} bytes but {length} were committed "
                               "(the file was truncated)")
        changes = list(decode(data[:length], str(self.path)))
        if len(changes) != records:
            raise JournalError(f"{self.path} holds {len(changes)} records but {records} were committed")
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.ftruncate(self._fd, length)      # the uncommitted tail, if any
        os.lseek(self._fd, length, os.SEEK_SET)
        self._length, self.records = length, records
        return changes

    def append(self, op: str, args: dict[str, object]) -> Change:
        """Write, fsync and commit one change; only then may it be acknowledged. An OSError here
        must stop the engine (the change is applied in memory but would not survive a restart)."""
        if self._fd is None:
            raise RuntimeError("Journal.append before load")
        change = Change(self.records + 1, op, args)
        line = encode(change)
        written = os.write(self._fd, line)
        if written != len(line):
            raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
        os.fsync(self._fd)
        self._length += len(line)
        self.records += 1
        tmp = self.commit_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, json.dumps({"length": self._length, "records": self.records}).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.commit_path)
        directory = os.open(self.commit_path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)         # the rename itself, on a disk (a no-op on tmpfs /run)
        finally:
            os.close(directory)
        return change

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
