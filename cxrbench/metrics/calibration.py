"""Expected calibration error and the reliability-diagram table.

ECE is a function of per-bin sums, ``(count_b, Σ confidence, Σ correct)``, so it is a
:class:`~cxrbench.metrics.base.SufficientStats` with ``3·(B+1)`` columns per item.

Binning follows torchmetrics (``torchmetrics.functional.classification``
``binary_calibration_error`` / ``multiclass_calibration_error``, ``norm="l1"``): boundaries
``b_j = j/B``, item in bin ``j`` when ``b_j <= conf < b_{j+1}``, and a confidence of exactly 1.0
in a bin of its own (torchmetrics keeps ``B+1`` accumulators). The one difference: torchmetrics
computes the boundaries with a float32 ``torch.linspace``, which misplaces some by one float32
ulp (about 6e-8), so a confidence within that distance of a boundary can land in the neighbour
bin there; here the boundary is exact (``j = floor(conf · B)`` in float64). What the
confidence and correctness are is the caller's choice and the same as torchmetrics':

- multi-class: ``confidence = max_k p_k``, ``correct = [argmax_k p_k == y]``
  (``multiclass_calibration_error(probs, y)``);
- binary: ``confidence = p(yes)``, ``correct = y`` (``binary_calibration_error(p, y)``),
  i.e. the reliability of the positive-class probability;
- any head: ``confidence`` = the probability of the predicted answer, ``correct`` = whether the
  answer was right (what ``cxrbench score`` reports from the ``confidence`` column).
"""

from __future__ import annotations

import numpy as np

from cxrbench.metrics.base import SufficientStats

DEFAULT_BINS = 15


def _bin_index(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin ``j = floor(conf · B)`` (``b_j <= conf < b_{j+1}``); conf = 1.0 -> bin ``B`` of its own."""
    return np.floor(np.asarray(confidence, dtype=np.float64) * n_bins).astype(np.int64)


def _check(correct, confidence) -> tuple[np.ndarray, np.ndarray]:
    correct = np.asarray(correct, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    if correct.shape != confidence.shape or correct.ndim != 1:
        raise ValueError(f"correct and confidence must be 1-D of equal length, got {correct.shape}, {confidence.shape}")
    if np.isnan(confidence).any():
        raise ValueError("confidence contains NaN")
    if ((confidence < 0) | (confidence > 1)).any():
        raise ValueError("confidence must lie in [0, 1]")
    return correct, confidence


def _reduce_ece(t: np.ndarray, n_bins: int) -> np.ndarray:
    k = n_bins + 1
    count, conf, acc = t[..., :k], t[..., k:2 * k], t[..., 2 * k:3 * k]
    n = count.sum(-1)
    gap = np.abs(acc - conf)  # |Σacc - Σconf| = count·|mean acc - mean conf|
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, gap.sum(-1) / np.where(n > 0, n, 1.0), np.nan)


def ece_rows(correct, confidence, n_bins: int = DEFAULT_BINS) -> np.ndarray:
    """Per-item rows ``(one-hot bin, conf · one-hot bin, correct · one-hot bin)``."""
    correct, confidence = _check(correct, confidence)
    j = _bin_index(confidence, n_bins)
    k = n_bins + 1
    rows = np.zeros((len(j), 3 * k), dtype=np.float64)
    r = np.arange(len(j))
    rows[r, j] = 1.0
    rows[r, k + j] = confidence
    rows[r, 2 * k + j] = correct
    return rows


def ece_stats(correct, confidence, n_bins: int = DEFAULT_BINS) -> SufficientStats:
    rows = ece_rows(correct, confidence, n_bins)
    return SufficientStats("ece", rows, lambda t: _reduce_ece(t, n_bins),
                           signature=f"ece|l1|bins:{n_bins}|equal-width|torchmetrics-binning",
                           info={"n_bins": n_bins})


def ece(correct, confidence, n_bins: int = DEFAULT_BINS) -> float:
    """Expected calibration error ``ECE = Σ_b (|B_b| / n) · |acc(B_b) − conf(B_b)|`` over
    ``n_bins`` equal-width confidence bins (seed 13.2).

    ``correct`` is 1/0 per item, ``confidence`` in [0, 1]. Equal to torchmetrics'
    ``binary_calibration_error(confidence, correct, n_bins, norm="l1")`` and to
    ``multiclass_calibration_error(probs, y, n_bins, norm="l1")`` with
    ``confidence = probs.max(1)``, ``correct = probs.argmax(1) == y``.
    """
    return ece_stats(correct, confidence, n_bins).value()


def reliability_table(correct, confidence, n_bins: int = DEFAULT_BINS) -> list[dict]:
    """The reliability diagram as rows: one per bin (the ``[1.0, 1.0]`` bin last, only when
    it holds items), with ``bin_lower``, ``bin_upper``, ``count``, ``mean_confidence``,
    ``accuracy`` (None where the bin is empty) and ``gap = accuracy − mean_confidence``."""
    t = ece_rows(correct, confidence, n_bins).sum(0)
    k = n_bins + 1
    edges = np.linspace(0, 1, n_bins + 1)
    out = []
    for j in range(k):
        count = int(t[j])
        if j == n_bins and count == 0:
            continue
        lo, hi = (float(edges[j]), float(edges[j + 1])) if j < n_bins else (1.0, 1.0)
        conf = t[k + j] / count if count else None
        acc = t[2 * k + j] / count if count else None
        out.append({"bin_lower": lo, "bin_upper": hi, "count": count, "mean_confidence": conf,
                    "accuracy": acc, "gap": (acc - conf) if count else None})
    return out
