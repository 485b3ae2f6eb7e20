"""The statistic objects that join the metrics library to the statistics engine.

Most evaluation metrics are functions of a *sum* of per-item vectors: exact match is
``sum(hit) / n``, MCC is a function of the summed (tp, fp, fn, tn) one-hot rows, corpus BLEU is a
function of summed n-gram match counts, ECE and binned AUROC of summed per-bin counts. A metric
in that form is a :class:`SufficientStats`. Resampling items or clusters is then resampling
their rows, so the bootstrap in ``cxrbench.stats`` costs one weighted sum per resample instead
of recomputing the metric from raw data 10,000 times (the torchmetrics idea: keep the
sufficient statistics, not the data).

Metrics that are not functions of a sum (COCO mAP, anything needing a global sort of raw
values) are a :class:`GenericStatistic`: a function of the (possibly repeated) item indices
of a resample. The engine handles both; the generic path is slower but exact.

Metric modules never import torch: these classes only need numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class SufficientStats:
    """A metric whose value is ``reduce(stats.sum(axis=0))``.

    ``stats`` has one row per item (QA pair) and ``k`` columns; ``reduce`` maps an array of
    shape ``(..., k)`` to shape ``(...)`` and must be vectorised over the leading axes (the
    engine calls it on a ``(n_resamples, k)`` block at once). Undefined values (a sensitivity
    with no positives) are NaN, never an exception.
    """

    name: str
    stats: np.ndarray
    reduce: Callable[[np.ndarray], np.ndarray]
    signature: str = ""          # how it was computed, e.g. sacrebleu's signature
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        stats = np.asarray(self.stats, dtype=np.float64)
        if stats.ndim != 2:
            raise ValueError(f"{self.name}: stats must be 2-D (n_items, k), got shape {stats.shape}")
        object.__setattr__(self, "stats", stats)

    @property
    def n(self) -> int:
        return int(self.stats.shape[0])

    def value(self) -> float:
        return float(self.reduce(self.stats.sum(axis=0)))

    def subset(self, mask: np.ndarray) -> "SufficientStats":
        """The same metric on a subset of items (a stratum)."""
        return SufficientStats(self.name, self.stats[np.asarray(mask)], self.reduce, self.signature, self.info)


@dataclass(frozen=True)
class GenericStatistic:
    """A metric computed from item indices: ``compute(idx)`` evaluates it on items ``idx``
    (an int array that may repeat items, as a bootstrap resample does)."""

    name: str
    n_items: int
    compute: Callable[[np.ndarray], float]
    signature: str = ""
    info: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.n_items

    def value(self) -> float:
        return float(self.compute(np.arange(self.n_items)))

    def subset(self, mask: np.ndarray) -> "GenericStatistic":
        idx = np.flatnonzero(np.asarray(mask))
        return GenericStatistic(self.name, len(idx), lambda sub: self.compute(idx[sub]), self.signature, self.info)


Statistic = SufficientStats | GenericStatistic


def mean_stats(name: str, values: np.ndarray, signature: str = "", outcome: str | None = None) -> SufficientStats:
    """Per-item values averaged over items: columns (value, 1). NaN values are excluded from
    both the sum and the count, so an item without a defined score does not count.

    ``outcome`` (``binary`` / ``continuous``, recorded in ``info``) tells paired comparisons
    which tests apply; by default the registry's declaration for ``name``, if any."""
    v = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(v)
    stats = np.stack([np.where(ok, v, 0.0), ok.astype(np.float64)], axis=1)

    def reduce(t: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(t[..., 1] > 0, t[..., 0] / np.where(t[..., 1] > 0, t[..., 1], 1), np.nan)

    if outcome is None:
        from cxrbench.metrics.registry import METRICS

        outcome = METRICS[name].outcome if name in METRICS else ""
    if outcome not in ("", "binary", "continuous"):
        raise ValueError(f"outcome must be binary or continuous, got {outcome!r}")
    if outcome == "binary" and not np.isin(v[ok], (0.0, 1.0)).all():
        raise ValueError(f"{name}: declared binary but has per-item values other than 0 and 1")
    return SufficientStats(name, stats, reduce, signature, {"outcome": outcome} if outcome else {})
