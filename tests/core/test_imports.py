"""What importing cxrbench costs: no torch, transformers, deepspeed, ultralytics or model."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "deepspeed", "ultralytics", "model")


def _imported(code: str) -> set[str]:
    """Top-level packages ``python -X importtime`` reports for ``code``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    names = set()
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+\s+\|\s+\d+\s+\|\s*(\S+)", line)
        if m:
            names.add(m.group(1).split(".")[0])
    return names


def test_importtime_of_cxrbench_score_shows_no_heavy_package():
    names = _imported("import cxrbench.score")
    assert "cxrbench" in names and "numpy" in names       # the parse works
    assert not set(HEAVY) & names, sorted(set(HEAVY) & names)


@pytest.mark.parametrize("module", ["cxrbench", "cxrbench.cli", "cxrbench.compare", "cxrbench.runs",
                                    "cxrbench.evaluate.pipeline", "cxrbench.reports.chexpert",
                                    "cxrbench.reports.calibration", "cxrbench.reports.attention",
                                    "cxrbench.commands.score", "cxrbench.commands.evaluate",
                                    "cxrbench.commands.compare", "cxrbench.predictor", "cxrbench.metrics.registry"])
def test_library_modules_import_no_heavy_package(module):
    found = set(HEAVY) & _imported(f"import {module}")
    assert not found, f"{module} imports {sorted(found)}"
