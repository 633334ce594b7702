"""Topology files (YAML) to the frozen model: every problem reported at once, with file and dotted path."""
from __future__ import annotations

from emulator.ids import rule_id_for, sg_id_for

from .dump import dump
from .loader import load
from .parser import Loaded, parse

__all__ = ["Loaded", "dump", "load", "parse", "rule_id_for", "sg_id_for"]
