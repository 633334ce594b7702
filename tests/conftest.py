"""Shared test settings."""
from __future__ import annotations

import os

from hypothesis import settings

# CI must be reproducible: the same examples on every run, so a red run is never luck. Local runs stay
# random and keep finding new cases (save any you find as an explicit regression test).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
