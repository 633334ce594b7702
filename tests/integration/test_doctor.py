"""`sgemu doctor` on this machine: every required check passes and the front end is named."""
from __future__ import annotations

import subprocess
import sys


def test_doctor_passes_and_names_the_front_end():
    done = subprocess.run([sys.executable, "-m", "emulator.cli", "doctor"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(row for row in done.stdout.splitlines() if "iptables front end" in row)
    assert line.startswith("ok") and ("iptables-nft" in line or "iptables-legacy" in line)
    assert not [row for row in done.stdout.splitlines() if row.startswith("FAIL")]
