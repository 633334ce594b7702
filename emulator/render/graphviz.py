"""Running Graphviz's `dot` for `sgemu graph` (process execution lives in lab/, like every subprocess)."""
from __future__ import annotations

import shutil
import subprocess

from emulator.errors import GraphvizError

INSTALL_HINT = "install Graphviz (apt-get install graphviz), or use --format dot or --format mermaid (plain text)"


def render(dot_source: str, fmt: str) -> bytes:
    """The picture `dot -T<fmt>` draws from `dot_source` (fmt: svg, png, pdf)."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizError(f"Graphviz `dot` is not installed: {INSTALL_HINT}")
    result = subprocess.run([dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True, timeout=120)
    if result.returncode != 0:
        raise GraphvizError(f"dot -T{fmt} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout
