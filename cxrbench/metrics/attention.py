"""Attention plausibility and entropy (seed 14.2-14.3), and their interpretation bands as data.

The evaluate step paints an attention map per question (a 2-D array over the image, any
resolution) and calls :func:`plausibility` with the question's ROI boxes, and
:func:`attention_entropy` with the raw attention weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats, mean_stats


# ------------------------------------------------------------------------------ bands (data)
@dataclass(frozen=True)
class Band:
    """A half-open interval ``[low, high)`` of a score with its reading."""

    low: float
    high: float
    label: str
    meaning: str

    def contains(self, value: float) -> bool:
        return self.low <= value < self.high


INF = float("inf")

# Seed 14.2: plausibility >= 0.65 is the minimum for clinical use.
PLAUSIBILITY_BANDS: tuple[Band, ...] = (
    Band(0.65, INF, "clinically acceptable", "deployable"),
    Band(0.50, 0.65, "partially aligned", "needs review"),
    Band(0.35, 0.50, "weak alignment", "not recommended"),
    Band(-INF, 0.35, "misaligned attention", "unreliable"),
)
PLAUSIBILITY_CLINICAL_THRESHOLD = 0.65

# Seed 14.3: entropy in nats of the attention distribution.
ENTROPY_BANDS: tuple[Band, ...] = (
    Band(-INF, 2.0, "low", "focused on specific anatomical regions"),
    Band(2.0, 4.0, "medium", "moderate spread: several regions relevant, or uncertainty"),
    Band(4.0, INF, "high", "diffuse attention over the whole image: possibly unreliable"),
)

# Seed 14.3 "expected patterns by question type": question short name -> acceptable bands.
EXPECTED_ENTROPY: dict[str, tuple[str, ...]] = {
    "where_is_finding": ("low",),
    "is_abnormal_region": ("low", "medium"),
    "has_finding": ("medium",),
    "describe_all": ("high",),
}


def band_of(value: float, bands: Sequence[Band] = PLAUSIBILITY_BANDS) -> str | None:
    """The label of the band holding ``value`` (None for NaN)."""
    if value is None or np.isnan(value):
        return None
    for band in bands:
        if band.contains(value):
            return band.label
    return None


def entropy_as_expected(question_short: str, entropy: float) -> bool | None:
    """Whether an entropy lies in the band the seed expects for this question type
    (None when the seed sets no expectation for it)."""
    expected = EXPECTED_ENTROPY.get(question_short)
    if expected is None:
        return None
    return band_of(entropy, ENTROPY_BANDS) in expected


# ------------------------------------------------------------------------------ plausibility
def boxes_mask(boxes: Sequence[Sequence[float]], shape: tuple[int, int],
               image_size: tuple[float, float] | None = None) -> np.ndarray:
    """Rasterise boxes ``[x1, y1, x2, y2]`` (image pixels) onto a ``(h, w)`` grid: a cell is
    inside when its centre lies in a box (``x1 <= cx < x2``). ``image_size = (width, height)``
    of the image the boxes refer to; default: the grid itself."""
    h, w = shape
    width, height = (w, h) if image_size is None else image_size
    cx = (np.arange(w) + 0.5) * (width / w)
    cy = (np.arange(h) + 0.5) * (height / h)
    mask = np.zeros((h, w), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        mask |= ((cy >= y1) & (cy < y2))[:, None] & ((cx >= x1) & (cx < x2))[None, :]
    return mask


def attention_mask(attention_map: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Min-max normalise the map to [0, 1] and keep cells ``>= threshold``. A constant map
    (no preference anywhere) attends everywhere: all cells are kept."""
    a = np.asarray(attention_map, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"attention map must be 2-D, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("attention map has NaN or infinite values")
    lo, hi = a.min(), a.max()
    if hi == lo:
        return np.ones(a.shape, dtype=bool)
    return (a - lo) / (hi - lo) >= threshold


def plausibility(attention_map: np.ndarray, roi_boxes: Sequence[Sequence[float]],
                 image_size: tuple[float, float] | None = None, threshold: float = 0.5) -> float:
    """Plausibility = IoU(attention mask, ROI mask) (seed 14.2).

    The map is min-max normalised to [0, 1] and thresholded at ``threshold`` (0.5); the ROI
    is the union of ``roi_boxes`` rasterised on the map's grid (cell centres, see
    :func:`boxes_mask`). ``IoU = |A ∩ R| / |A ∪ R|``; NaN when there is no ROI box (nothing to
    compare with: the item is left out of the mean and counted by the caller).
    """
    if len(roi_boxes) == 0:
        return float("nan")
    a = attention_mask(attention_map, threshold)
    r = boxes_mask(roi_boxes, a.shape, image_size)
    union = np.logical_or(a, r).sum()
    return float(np.logical_and(a, r).sum() / union) if union else float("nan")


def plausibility_stats(values: Sequence[float]) -> SufficientStats:
    """Mean plausibility over items from per-item values (NaN items excluded)."""
    return mean_stats("plausibility", np.asarray(values, dtype=np.float64), signature="iou|minmax|threshold:0.5")


# ------------------------------------------------------------------------------ entropy
def attention_entropy(weights: np.ndarray, normalized: bool = False) -> float:
    """Shannon entropy of attention weights in nats: ``H = −Σ_i α_i ln α_i`` (0 ln 0 = 0).

    ``weights`` (any shape, non-negative) are divided by their sum first, as
    ``scipy.stats.entropy`` does, which this equals. ``normalized=True`` returns
    ``H / ln N`` in [0, 1] (N = number of positions; 0 when N = 1).
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0:
        raise ValueError("attention weights are empty")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("attention weights must be finite and non-negative")
    total = w.sum()
    if total <= 0:
        raise ValueError("attention weights sum to zero")
    p = w / total
    nz = p[p > 0]
    h = float(-(nz * np.log(nz)).sum())
    if normalized:
        return h / np.log(w.size) if w.size > 1 else 0.0
    return h


def attention_entropy_stats(values: Sequence[float]) -> SufficientStats:
    """Mean attention entropy (nats) over items from per-item values."""
    return mean_stats("attention_entropy", np.asarray(values, dtype=np.float64), signature="shannon|nats")
