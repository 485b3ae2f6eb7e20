"""Statistic objects built directly for the stats tests (independent of cxrbench.metrics)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import matthews_corrcoef

from cxrbench.metrics.base import GenericStatistic, SufficientStats


def mcc_reduce(t: np.ndarray) -> np.ndarray:
    """MCC from summed (tp, fp, fn, tn); 0 when a marginal is empty (as scikit-learn)."""
    tp, fp, fn, tn = (t[..., i] for i in range(4))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (tp * tn - fp * fn) / np.where(den > 0, den, 1.0), 0.0)


def mcc_stats(y_true, y_pred) -> SufficientStats:
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    rows = np.stack([y_true & y_pred, ~y_true & y_pred, y_true & ~y_pred, ~y_true & ~y_pred], axis=1)
    return SufficientStats("mcc", rows.astype(float), mcc_reduce)


def mcc_generic(y_true, y_pred) -> GenericStatistic:
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    return GenericStatistic("mcc", len(y_true), lambda i: matthews_corrcoef(y_true[i], y_pred[i]))


def sensitivity_stats(y_true, y_pred) -> SufficientStats:
    """tp / (tp + fn): NaN on a resample without positives."""
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    rows = np.stack([y_true & y_pred, y_true], axis=1).astype(float)

    def reduce(t):
        with np.errstate(invalid="ignore", divide="ignore"):
            return t[..., 0] / t[..., 1]

    return SufficientStats("sensitivity", rows, reduce)


def clustered_binary(n_clusters: int, size: int, rng: np.random.Generator, concentration: float | None):
    """Binary outcomes in equal clusters; per-cluster rate ~ Beta(c/2, c/2) (small c = strong
    within-cluster correlation), or one common rate 0.5 when ``concentration`` is None."""
    if concentration is None:
        p = np.full(n_clusters, 0.5)
    else:
        p = rng.beta(concentration / 2, concentration / 2, n_clusters)
    labels = np.repeat(np.arange(n_clusters) * 7 + 1000, size)  # non-contiguous labels
    y = rng.random(n_clusters * size) < np.repeat(p, size)
    perm = rng.permutation(len(y))  # items of a cluster are not adjacent in real frames
    return y[perm].astype(float), labels[perm]
