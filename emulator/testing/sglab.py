"""A running lab as a test sees it: real probes, commands, SG changes and matrix assertions.

Used by the pytest plugin (`sg_lab` fixture); usable on its own in any Python test harness.
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from emulator import matrix as mx
from emulator.lab import lifecycle as labs
from emulator.model import Topology
from emulator.testing.probe import observe_all, observer
from emulator.topology import load
from emulator.topology.parser import renamed


class MatrixMismatch(AssertionError):
    """assert_matrix found cells whose real outcome differs from the expected one."""


class SgLab:
    """One lab brought up for a test; `down()` (or the fixture) removes everything."""

    def __init__(self, topology: Topology, timeout: float = 1.5):
        self.topology = topology
        self.timeout = timeout
        self.name = topology.name
        self.status = labs.up(topology)

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None, timeout: float = 1.5,
                  rename: Callable[[str], str] | None = None) -> SgLab:
        """The lab of FILE, under `name` when given; `rename` maps that name (or the file's)
        to the one used (the pytest plugin's per-worker names)."""
        topology = load(path).topology
        if name is not None:
            topology = renamed(topology, name, f"{path}: lab name")
        if rename is not None:
            topology = renamed(topology, rename(topology.name), f"{path}: lab name")
        return cls(topology, timeout)

    def probe(self, src: str, dst: str, port: int = 0, proto: str = "tcp",
              timeout: float | None = None) -> str:
        """A real attempt from inside SRC: "open", "refused", "timeout" or "reply"."""
        from emulator.testing.probe import probe
        return probe(self.name, src, dst, port, proto, timeout or self.timeout)

    def exec(self, node: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run CMD inside NODE; returns the completed process (text output, never raises on status)."""
        return subprocess.run(labs.exec_argv(self.name, node, list(cmd)), capture_output=True,
                              text=True, timeout=timeout)

    def _change(self, action: str, direction: str, sg: str, protocol: str, port: int | str | None,
                cidr: str | None, group: str | None, icmp_type: int | None, icmp_code: int | None,
                description: str | None) -> list[str]:
        from emulator.control.api import permission
        from emulator.control.client import request
        rule = permission(protocol, None if port is None else str(port), icmp_type, icmp_code, cidr, group,
                          description)
        result = request(self.name, action, sg=sg, direction=direction, rules=[rule])
        return list(result["rules"])

    def authorize_ingress(self, sg: str, protocol: str = "tcp", port: int | str | None = None, *,
                          cidr: str | None = None, group: str | None = None, icmp_type: int | None = None,
                          icmp_code: int | None = None, description: str | None = None) -> list[str]:
        """Add an inbound rule at once (AWS semantics); returns the new sgr- ids."""
        return self._change("authorize", "ingress", sg, protocol, port, cidr, group, icmp_type, icmp_code,
                            description)

    def revoke_ingress(self, sg: str, protocol: str = "tcp", port: int | str | None = None, *,
                       cidr: str | None = None, group: str | None = None, icmp_type: int | None = None,
                       icmp_code: int | None = None) -> list[str]:
        """Remove an inbound rule: tracked flows live on until idle, untracked ones are cut."""
        return self._change("revoke", "ingress", sg, protocol, port, cidr, group, icmp_type, icmp_code, None)

    def authorize_egress(self, sg: str, protocol: str = "tcp", port: int | str | None = None, *,
                         cidr: str | None = None, group: str | None = None, icmp_type: int | None = None,
                         icmp_code: int | None = None, description: str | None = None) -> list[str]:
        return self._change("authorize", "egress", sg, protocol, port, cidr, group, icmp_type, icmp_code,
                            description)

    def revoke_egress(self, sg: str, protocol: str = "tcp", port: int | str | None = None, *,
                      cidr: str | None = None, group: str | None = None, icmp_type: int | None = None,
                      icmp_code: int | None = None) -> list[str]:
        return self._change("revoke", "egress", sg, protocol, port, cidr, group, icmp_type, icmp_code, None)

    def assert_matrix(self, expected: Mapping[str, str] | Iterable[Mapping], proto: str = "tcp") -> None:
        """Probe every expected cell for real, in parallel; on any difference fail with both
        matrices (expected and observed) and the command reproducing each difference."""
        want = mx.parse_expected(expected if isinstance(expected, Mapping) else list(expected),
                                 "assert_matrix")
        cells = [mx.Cell(src, dst, port, outcome, None, "expected") for (src, dst, port), outcome in want.items()]
        seen = observe_all(cells, proto, observer(self.name, self.timeout))
        wrong = [c for c in seen if not c.agrees]
        if wrong:
            order = [i.name for i in self.topology.instances]
            lines = [*mx.grid(seen, "predicted", order), *mx.grid(seen, "observed", order)]
            lines = [line.replace("(predicted)", "(expected)") for line in lines]
            lines += [f"{c.label}: expected {c.predicted}, observed {c.observed}; reproduce: "
                      f"sgemu probe --lab {self.name} {c.src} {c.dst} --port {c.port} --proto {proto}"
                      for c in wrong]
            raise MatrixMismatch("\n".join(lines))

    def down(self) -> None:
        labs.down(self.name)
