"""Run directories (docs/contracts.md §3): the one writer and the one reader.

A run dir holds ``predictions.parquet`` and ``metrics.json`` (and, from ``cxrbench evaluate``,
its reports). It is claimed with :class:`cxrbench.outputs.OutputDir` and its files are
committed together, so a reader never sees a new predictions file beside an old metrics file.
:func:`read_run` is what compare, errors, ablate and the book use to open one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cxrbench.errors import DataError, reading
from cxrbench.outputs import OutputDir, settle

PREDICTIONS = "predictions.parquet"
METRICS = "metrics.json"


@dataclass
class Run:
    """A run dir as read: its name (ablation condition, else the folder's name), predictions
    (validated keys) and metrics.json."""

    name: str
    path: Path
    frame: pd.DataFrame
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def signatures(self) -> dict[str, str]:
        """Signatures of the per-item metrics as metrics.json recorded them (model-based ones
        cannot be recomputed from the predictions)."""
        table = (self.metrics.get("provenance") or {}).get("metrics") or {}
        return {k: v["signature"] for k, v in table.items() if isinstance(v.get("signature"), str)}


def read_run(path: str | Path, columns: list[str] | None = None) -> Run:
    """Open a run dir: settle an interrupted commit, read and key-check the predictions, read
    metrics.json (optional for predictions made elsewhere)."""
    from cxrbench.score.contract import REQUIRED, check_keys

    path = Path(path)
    pred = path / PREDICTIONS
    settle(path)                  # first: an interrupted commit may have moved the old file aside
    if not pred.is_file():
        raise DataError(path, None, f"not a run dir: {PREDICTIONS} is missing")
    with reading(pred, what="Parquet file"):
        frame = pd.read_parquet(pred, columns=columns)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(pred, None, f"missing required column(s) {', '.join(missing)}")
    frame["question_id"] = frame["question_id"].astype(str)
    check_keys(frame, str(pred))
    metrics_path = path / METRICS
    metrics: dict[str, Any] = {}
    if metrics_path.is_file():
        with reading(metrics_path, what="JSON file"):
            metrics = json.loads(metrics_path.read_text())
    prov = metrics.get("provenance") or {}
    name = prov.get("ablation_condition") or metrics.get("ablation_condition") or path.resolve().name
    return Run(str(name), path, frame.reset_index(drop=True), metrics)


def stage_run(out: OutputDir, scored: pd.DataFrame, metrics: dict) -> Path:
    """Write predictions.parquet and metrics.json into the output's staging folder."""
    from cxrbench.io import atomic_write_json, atomic_write_parquet

    staging = out.staging()
    atomic_write_parquet(staging / PREDICTIONS, scored)
    atomic_write_json(staging / METRICS, metrics)
    return staging


def score_file(predictions: Path, out_dir: Path, options, *, overwrite: bool = False) -> dict:
    """``cxrbench score``: read, score and commit ``predictions.parquet`` + ``metrics.json``."""
    from cxrbench.io import file_sha256
    from cxrbench.score import score_frame
    from cxrbench.score.read import read_predictions

    out = OutputDir.claim(out_dir, "cxrbench score", overwrite=overwrite)   # before any long work
    frame = read_predictions(predictions)
    scored, metrics = score_frame(frame, options)
    metrics["provenance"]["inputs"] = {"predictions": {"name": predictions.name, "sha256": file_sha256(predictions),
                                                       "rows": len(scored)}}
    stage_run(out, scored, metrics)
    out.commit()
    return metrics
