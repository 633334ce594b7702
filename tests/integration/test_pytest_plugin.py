"""The pytest plugin, run as a user would: an inner pytest session on the README's example file."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]


def _lab_namespaces(lab: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"sgemu-{lab}-")]


def test_readme_example_passes(pytester: pytest.Pytester) -> None:
    example = pytester.path / "examples"
    example.mkdir()
    shutil.copy(ROOT / "examples" / "test_three_tier.py", example)
    (pytester.path / "topologies").mkdir()
    shutil.copy(ROOT / "topologies" / "three-tier.yaml", pytester.path / "topologies")
    result = pytester.runpytest_subprocess(str(example / "test_three_tier.py"), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    assert _lab_namespaces("three-tier") == []


def test_failure_prints_both_matrices_and_still_tears_down(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        def test_wrong_expectation(sg_lab):
            lab = sg_lab({str(ROOT / 'topologies' / 'three-tier.yaml')!r}, name="plugfail")
            lab.assert_matrix({{"app -> db:3306": "open", "alb -> db:3306": "open"}})
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "port 3306 (expected)" in text and "port 3306 (observed)" in text
    assert "alb -> db:3306: expected open, observed timeout" in text
    assert "sgemu probe --lab plugfail alb db --port 3306" in text
    assert _lab_namespaces("plugfail") == []


def test_error_inside_the_test_still_tears_down(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(f"""
        def test_boom(sg_lab):
            sg_lab({str(ROOT / 'topologies' / 'three-tier.yaml')!r}, name="plugboom")
            raise RuntimeError("boom")
        """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    assert _lab_namespaces("plugboom") == []
