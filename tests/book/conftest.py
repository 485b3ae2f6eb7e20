"""Book fixtures: one input set per test session (``builder.build_inputs``: real commands on the
session's synthetic index and tiny checkpoint) and a helper that builds the book from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.book.builder import build_inputs

REPO = Path(__file__).resolve().parents[2]
BOOK = REPO / "book"
CHAPTERS = ("01_data", "02_training", "03_results", "04_chexpert", "05_calibration", "06_spatial",
            "07_explainability", "08_ablation", "09_errors", "10_zero_shot", "11_provenance")
BUILD = [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())", "build"]


def build_book(book: Path, out: Path, inputs: Path | None, publication: str = "auto",
               timeout: int = 1200) -> subprocess.CompletedProcess:
    """``jupyter-book build BOOK`` into ``out`` (site in out/_build/html, figures and tables in
    out/figures and out/tables), reading ``inputs``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", CXRBENCH_BOOK_PUBLICATION=publication,
               CXRBENCH_BOOK_FIGURES=str(out / "figures"), CXRBENCH_BOOK_TABLES=str(out / "tables"))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env.pop("CXRBENCH_BOOK_DIR", None)
    if inputs is not None:
        env["CXRBENCH_BOOK_INPUTS"] = str(inputs)
    return subprocess.run([*BUILD, str(book), "--path-output", str(out)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def book_inputs(synth_root, synth_index, tiny_checkpoint, tmp_path_factory) -> Path:
    from filelock import FileLock

    from tests.fixtures.data import shared_tmp

    out = shared_tmp(tmp_path_factory) / "book-inputs"
    with FileLock(str(out) + ".lock"):
        if not (out / "compare" / "comparison.json").exists():
            build_inputs(out, synth_root, synth_index, tiny_checkpoint)
    return out
