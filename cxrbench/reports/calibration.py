"""Calibration of an evaluation run: ECE per answer head and reliability-diagram tables.

``calibration.json`` holds, overall and for each head (binary, region, severity, text):

- ``top_label``: the calibration of the predicted answer's probability. Confidence is the
  ``confidence`` column (probability of the predicted class); correctness is the head's label
  correctness (``label_pred == label_true``) where both labels exist, else ``correct`` (the
  answer's exact match, for text answers);
- ``positive_class`` (binary head only): the calibration of P(yes) (``score``) against the
  true label, torchmetrics' ``binary_calibration_error`` convention.

Each has the ECE with a bootstrap CI (resampling ``unit``, default studies), ``n`` and the
reliability table (:func:`cxrbench.metrics.calibration.reliability_table`: per bin its range,
count, mean confidence, accuracy and gap), 15 equal-width bins as the metrics library.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrbench.io import atomic_write_json
from cxrbench.metrics import calibration as cal
from cxrbench.stats.report import metric_entry

HEAD_ORDER = ("binary", "region", "severity", "text")


def _num(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


def head_correct(frame: pd.DataFrame) -> np.ndarray:
    """Per row 1/0: label correctness where both labels exist, else ``correct``; NaN if neither."""
    lt, lp = _num(frame, "label_true"), _num(frame, "label_pred")
    by_label = np.where(np.isnan(lt) | np.isnan(lp), np.nan, (lt == lp).astype(float))
    fallback = _num(frame, "correct") if "correct" in frame.columns else np.full(len(frame), np.nan)
    return np.where(np.isnan(by_label), fallback, by_label)


def _entry(correct: np.ndarray, confidence: np.ndarray, clusters, n_bins: int, n_resamples: int, seed: int) -> dict | None:
    from cxrbench.stats.bootstrap import bootstrap_ci

    ok = ~np.isnan(correct) & ~np.isnan(confidence)
    if not ok.any():
        return None
    stat = cal.ece_stats(correct[ok], confidence[ok], n_bins)
    cl = None if clusters is None else clusters[ok]
    res = bootstrap_ci(stat, cl, n_resamples=n_resamples, seed=seed) if n_resamples > 0 else None
    return {"ece": metric_entry(stat.value(), res, int(ok.sum())), "signature": stat.signature,
            "reliability": cal.reliability_table(correct[ok], confidence[ok], n_bins)}


def calibration_summary(frame: pd.DataFrame, *, n_bins: int = cal.DEFAULT_BINS, n_resamples: int = 10_000,
                        seed: int = 0, unit: str | None = "study_id") -> dict:
    """The calibration.json content (see the module docstring)."""
    clusters = pd.factorize(frame[unit])[0] if unit and unit in frame.columns else None
    correct, confidence = head_correct(frame), _num(frame, "confidence")
    out: dict = {"n_bins": n_bins, "unit": unit if clusters is not None else "question_id",
                 "overall": {"top_label": _entry(correct, confidence, clusters, n_bins, n_resamples, seed)},
                 "by_head": {}}
    heads = frame["head"].astype(str).to_numpy() if "head" in frame.columns else np.full(len(frame), "all")
    order = [h for h in HEAD_ORDER if h in set(heads)] + sorted(set(heads) - set(HEAD_ORDER))
    for head in order:
        m = heads == head
        cl = None if clusters is None else clusters[m]
        entry = {"top_label": _entry(correct[m], confidence[m], cl, n_bins, n_resamples, seed)}
        if head == "binary":
            entry["positive_class"] = _entry(_num(frame, "label_true")[m], _num(frame, "score")[m], cl, n_bins,
                                             n_resamples, seed)
        out["by_head"][head] = entry
    return out


def write_calibration(path: str | Path, frame: pd.DataFrame, *, n_resamples: int = 10_000, seed: int = 0,
                      unit: str | None = "study_id", provenance: dict | None = None) -> dict:
    summary = calibration_summary(frame, n_resamples=n_resamples, seed=seed, unit=unit)
    if provenance is not None:
        summary["provenance"] = provenance
    atomic_write_json(Path(path), summary)
    return summary
