"""Per-item metric columns of a validated predictions frame, from the registry.

For every ``item`` metric of :data:`cxrbench.metrics.registry.METRICS` that is not skipped, its
statistic is built on the rows it applies to (:func:`applies`) and its per-item values become a
column of the same name (NaN where it does not apply): what ``cxrbench score`` writes into
predictions.parquet, and what ``compare`` rebuilds the statistic from. ``correct`` is
``exact_match == 1``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from cxrbench.metrics import registry
from cxrbench.metrics.registry import MetricInputs, MetricResources
from cxrbench.score.contract import blank_mask


def applies(frame: pd.DataFrame, name: str, present: dict | None = None) -> np.ndarray:
    """Rows a metric applies to: in its question type's metric list and with its columns.
    ``present`` caches each column's non-blank mask across the metrics of one frame."""
    spec = registry.METRICS[name]
    table = {q: name in registry.metrics_for(q) for q in frame["question_type"].unique()}
    mask = frame["question_type"].map(table).to_numpy(dtype=bool).copy()
    for col in spec.needs:
        if col not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        if present is None or col not in present:
            has = ~blank_mask(frame[col])
            if present is None:
                mask &= has
                continue
            present[col] = has
        mask &= present[col]
    return mask


def per_item_values(stat) -> np.ndarray:
    """The per-item values of a ``mean_stats``-shaped statistic: value where defined, else NaN."""
    return np.where(stat.stats[:, 1] > 0, stat.stats[:, 0], np.nan)


def add_item_scores(frame: pd.DataFrame, resources: MetricResources,
                    skip: Iterable[str] = ()) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame with one column per per-item metric, and each metric's signature."""
    out = frame.drop(columns=["correct"], errors="ignore")   # derived here, never taken from the input
    skip = set(skip)
    signatures: dict[str, str] = {}
    present: dict = {}
    for name, spec in registry.METRICS.items():
        if spec.kind != "item" or spec.from_column or name in skip:
            continue
        mask = applies(out, name, present)
        if not mask.any():
            continue
        stat = spec.statistic(MetricInputs(out.loc[mask], resources))
        values = np.full(len(out), np.nan)
        values[mask] = per_item_values(stat)
        out[name] = values
        signatures[name] = stat.signature
    if "exact_match" in out.columns:   # the contract's `correct`, right after the column it is read from
        out.insert(out.columns.get_loc("exact_match") + 1, "correct", out["exact_match"] == 1.0)
    return out, signatures
