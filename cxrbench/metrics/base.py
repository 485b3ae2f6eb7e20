"""The statistic objects that join the metrics library to the statistics engine.

Most evaluation metrics are functions of a *sum* of per-item vectors: exact match is
``sum(hit) / n``, MCC is a function of the summed (tp, fp, fn, tn) one-hot rows, corpus BLEU is a
function of summed n-gram match counts, ECE and binned AUROC of summed per-bin counts. A metric
in that form is a :class:`SufficientStats`. Resampling items or clusters is then resampling
their rows, so the bootstrap in ``cxrbench.stats`` costs one weighted sum per resample instead
of recomputing the metric from raw data 10,000 times (the torchmetrics idea: keep the
sufficient statistics, not the data).

Metrics that are not functions of a sum but of how often each item was drawn (COCO mAP: a
precision-recall curve over the score-sorted detections, each weighted by its item's count) are
a :class:`WeightedStatistic`: the engine hands it the per-item counts of a block of resamples at
once and it evaluates all of them vectorised, with no Python loop over resamples. Anything else
is a :class:`GenericStatistic`: a function of the (possibly repeated) item indices of one
resample, evaluated one resample at a time; exact, and as slow as the metric.

Every statistic can be *restricted* to a stratum (``restrict(mask)``: the same items, those
outside the mask weigh nothing), which is what the shared draw of
``cxrbench.stats.stratified.resample_strata`` resamples, or *subset* to it (``subset(mask)``: the
stratum's items only, renumbered), which is the per-stratum draw.

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

    def restrict(self, mask: np.ndarray) -> "SufficientStats":
        """The same metric on the items of ``mask``, still indexed over all items (zero rows
        elsewhere)."""
        return SufficientStats(self.name, np.where(np.asarray(mask, dtype=bool)[:, None], self.stats, 0.0),
                               self.reduce, self.signature, self.info)


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

    def restrict(self, mask: np.ndarray) -> "GenericStatistic":
        keep = np.asarray(mask, dtype=bool)
        return GenericStatistic(self.name, self.n_items, lambda idx: self.compute(idx[keep[idx]]), self.signature,
                                self.info)


@dataclass(frozen=True)
class WeightedStatistic:
    """A metric computed from how often each item was drawn, for many resamples at once.

    ``items`` are the (sorted, distinct) indices of the items the metric depends on; the other
    items of the ``n_items`` weigh nothing. ``evaluate(weights)`` takes an integer array of shape
    ``(b, len(items))``, ``weights[r, j]`` = how often ``items[j]`` was drawn in resample ``r``,
    and returns the ``b`` values, vectorised over resamples (undefined: NaN). ``select(positions)``
    returns the ``evaluate`` of the same metric on ``items[positions]`` alone (a stratum), so a
    metric with costly per-item preparation (COCO box matching) prepares once.

    An item drawn ``w`` times counts as ``w`` copies of it; ``compute(idx)`` is the value on an
    explicit multiset of item indices (their order does not matter).
    """

    name: str
    n_items: int
    items: np.ndarray
    evaluate: Callable[[np.ndarray], np.ndarray]
    select: Callable[[np.ndarray], Callable[[np.ndarray], np.ndarray]]
    signature: str = ""
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        items = np.asarray(self.items, dtype=np.int64).reshape(-1)
        if items.size and (items[0] < 0 or items[-1] >= self.n_items or np.any(np.diff(items) <= 0)):
            raise ValueError(f"{self.name}: items must be sorted distinct indices below n_items = {self.n_items}")
        object.__setattr__(self, "items", items)

    @property
    def n(self) -> int:
        return self.n_items

    def value(self) -> float:
        return self.compute(np.arange(self.n_items))

    def compute(self, idx: np.ndarray) -> float:
        if not self.items.size:
            return float("nan")
        weights = np.bincount(np.asarray(idx, dtype=np.int64), minlength=self.n_items)[self.items]
        return float(self.evaluate(weights[None, :])[0])

    def _on(self, positions: np.ndarray, n_items: int, items: np.ndarray) -> "WeightedStatistic":
        def select(p: np.ndarray):
            return self.select(positions[p])

        return WeightedStatistic(self.name, n_items, items, self.select(positions), select, self.signature, self.info)

    def restrict(self, mask: np.ndarray) -> "WeightedStatistic":
        """The same metric on the items of ``mask``, still indexed over all ``n_items``."""
        positions = np.flatnonzero(np.asarray(mask, dtype=bool)[self.items])
        return self._on(positions, self.n_items, self.items[positions])

    def subset(self, mask: np.ndarray) -> "WeightedStatistic":
        """The same metric on the items of ``mask``, renumbered ``0 .. mask.sum() - 1``."""
        mask = np.asarray(mask, dtype=bool)
        positions = np.flatnonzero(mask[self.items])
        rank = np.cumsum(mask) - 1
        return self._on(positions, int(mask.sum()), rank[self.items[positions]])


Statistic = SufficientStats | WeightedStatistic | GenericStatistic


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
