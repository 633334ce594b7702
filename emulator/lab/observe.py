"""Real probes for `sgemu matrix`: each cell is one attempt from inside its source."""
from __future__ import annotations

from emulator.errors import LabError
from emulator.matrix import Observe
from . import state
from .probe import probe


def observer(lab: str, timeout: float) -> Observe:
    topology = state.load_topology(lab)

    def observe(src: str, dst: str, port: int, proto: str) -> str:
        try:
            return probe(lab, src, dst, port, proto, timeout)
        except LabError:
            # DST has no address SRC could know (an internet host and a private-only instance):
            # try its private IP anyway, as someone who knows it would; the fabric must drop it.
            return probe(lab, src, str(topology.instance(dst).private_ip), port, proto, timeout)
    return observe
