"""What journal compaction costs and what it saves, on a lab of 100 instances and 1000 SG rules
(no root: the engine's files and state, no namespaces).

    python -m emulator.bench.compaction [--changes 2000] [--dir /run] [--json]

Timed, each the median of several runs, in the same process:
  change     one live change as the engine handles it (authorize + persist the model + journal)
  compact    one compaction (the model to the replay base, fsynced, then an empty journal): the time
             the engine's thread, so the packet path, is held
  replay     per journaled change, what a restarted engine spends replaying it
  restart    building the lab from the replay base, and from the model at `up` plus the journal
The threshold (journal.COMPACT_AFTER) trades the replay a restart may add (threshold x replay)
against the compaction's cost spread over the changes (compact / threshold): both are printed
for a few thresholds. `--dir` puts the files on the file system the lab uses (/run: tmpfs).
"""
from __future__ import annotations

import argparse
import json
import pickle
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from emulator.control.api import permission
from emulator.dataplane.journal import COMPACT_AFTER, journaled
from emulator.dataplane.recovery import LiveLab, assemble, journal_of, recover, starting_point
from emulator.lab.state import private
from emulator.model import Topology
from emulator.paths import LabPaths
from emulator.topology import parse

INSTANCES, GROUPS, RULES_PER_GROUP = 100, 10, 100
THRESHOLDS = (100, 250, 500, 1000, 2000)


def big_topology() -> Topology:
    """100 instances in 10 SGs of 100 rules each (CIDR rules on distinct ports)."""
    groups = [{"name": f"sg{g}", "ingress": [{"protocol": "tcp", "ports": 1000 + r, "cidr": f"10.{g}.{r}.0/24"}
                                             for r in range(RULES_PER_GROUP)]} for g in range(GROUPS)]
    instances = [{"name": f"n{i}", "subnet": "fleet", "security_groups": [f"sg{i % GROUPS}"]}
                 for i in range(INSTANCES)]
    data = {"name": "compaction", "vpc": {"cidr": "10.200.0.0/16"},
            "subnets": [{"name": "fleet", "cidr": "10.200.0.0/20"}], "security_groups": groups,
            "instances": instances, "options": {"quotas": {"rules_per_sg": 1000, "sgs_per_eni": 1}}}
    return parse(data, "compaction.yaml").topology


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _lab(root: Path, topology: Topology) -> tuple[LabPaths, LiveLab]:
    paths = LabPaths(root)
    root.mkdir(parents=True, exist_ok=True)

    def save(model: Topology) -> None:          # what state.save_topology does after each change
        with private(root / "topology.pickle", "wb") as f:
            pickle.dump(model, f)

    return paths, assemble("compaction", topology, paths, save, lambda before, after: None)


def measure(changes: int, where: Path) -> dict[str, object]:
    topology = big_topology()
    with tempfile.TemporaryDirectory(dir=where) as tmp:
        paths, lab = _lab(Path(tmp) / "a", topology)
        journal = journal_of(paths)
        journal.compact_after = changes + 1      # compacted by hand below
        journal.load()
        handle = journaled(lab.live, journal, time.monotonic)
        # alternate authorize/revoke of one rule per SG: every change is valid, the model stays 1000 rules
        rule = permission("tcp", "7", cidr="192.0.2.0/24")
        ops = [(("authorize", "revoke")[(n // GROUPS) % 2], {"sg": f"sg{n % GROUPS}", "direction": "ingress",
                                                            "rules": [rule]})
               for n in range(changes)]
        per_change = statistics.median(_timed(partial(handle, op, args)) for op, args in ops)

        def restart() -> float:
            return _timed(lambda: _restart(paths, topology))
        from_journal = restart()
        compact_times = [_timed(lambda: journal.compact(lab.live.topology())) for _ in range(5)]
        from_base = statistics.median(restart() for _ in range(3))
        journal.close()
    # a restart from the base replays nothing: the difference is the replay
    replay = max(0.0, from_journal - from_base) / changes
    compact = statistics.median(compact_times)
    return {"instances": INSTANCES, "rules": GROUPS * RULES_PER_GROUP, "changes": changes, "dir": str(where),
            "change_ms": per_change * 1000, "compact_ms": compact * 1000, "replay_ms_per_change": replay * 1000,
            "restart_from_base_ms": from_base * 1000, "restart_from_journal_ms": from_journal * 1000,
            "compact_vs_change": compact / per_change, "default_threshold": COMPACT_AFTER,
            "thresholds": {t: {"worst_replay_ms": t * replay * 1000, "compact_ms_per_change": compact * 1000 / t}
                           for t in THRESHOLDS}}


def _restart(paths: LabPaths, at_up: Topology) -> None:
    """What a restarted engine does before it binds a queue (the daemon's recovery)."""
    journal = journal_of(paths)
    try:
        model, changes = starting_point(journal, lambda: at_up)
        lab = assemble("compaction", model, paths, lambda t: None, lambda before, after: None)
        recover(lab, journal, changes, paths, lambda t: None)
    finally:
        journal.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulator.bench.compaction", description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=2000, help="live changes journaled before compacting")
    parser.add_argument("--dir", type=Path, default=Path("/run") if Path("/run").is_dir() else Path("/tmp"),
                        help="where the lab's files go (default /run, the state directory's file system)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args.changes, args.dir)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"lab: {result['instances']} instances, {result['rules']} rules; {args.changes} changes; files in {args.dir}")
    print(f"  one live change:     {result['change_ms']:.2f} ms (baseline)")
    print(f"  one compaction:      {result['compact_ms']:.1f} ms of the engine's thread "
          f"({result['compact_vs_change']:.1f}x a change)")
    print(f"  replay per change:   {result['replay_ms_per_change']:.3f} ms")
    print(f"  restart from base:   {result['restart_from_base_ms']:.1f} ms; "
          f"from the journal of {args.changes}: {result['restart_from_journal_ms']:.1f} ms")
    for threshold, cost in result["thresholds"].items():     # type: ignore[attr-defined]
        mark = "  <- COMPACT_AFTER" if threshold == COMPACT_AFTER else ""
        print(f"  threshold {threshold:5d}: restart replays up to {cost['worst_replay_ms']:6.1f} ms, "
              f"compaction costs {cost['compact_ms_per_change']:.3f} ms per change{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
