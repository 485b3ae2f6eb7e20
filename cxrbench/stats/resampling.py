"""The resampling engine: bootstrap and jackknife distributions of many statistics at once.

A bootstrap resample draws ``C`` resampling units (QA pairs, studies or patients) with
replacement from the ``C`` units of the data. We represent a resample by its *count vector*
``w`` (how often each unit was drawn). For a :class:`~cxrbench.metrics.base.SufficientStats`
with per-unit row sums ``S`` (shape ``(C, k)``) the resampled totals are ``w @ S``, so a chunk
of ``b`` resamples costs one ``(b, C) @ (C, k)`` matrix product: 10,000 resamples of a metric on
333K items in 3,254 studies cost about as much as 10,000 × 3,254 × k multiply-adds, not 10,000
passes over the items. A :class:`~cxrbench.metrics.base.GenericStatistic` is evaluated on the
item indices the counts stand for (each item of a unit drawn ``w_c`` times appears ``w_c`` times).

The unit draws are ``rng.integers(0, C, size=(b, C))``, exactly the calls
``scipy.stats.bootstrap`` makes for a sample of ``C`` observations and ``batch=b``: with the same
generator and batch size both see the same resamples, which the tests use to check agreement to
rounding error, not only within Monte-Carlo error.

The jackknife (for BCa's acceleration) leaves out one unit at a time; for sufficient statistics
that is one subtraction per unit, ``reduce(T - S_c)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import warnings

import numpy as np

from cxrbench.metrics.base import GenericStatistic, Statistic, SufficientStats

# Elements of one (resamples × units) count block. 2**22 int64 counts are 32 MiB; the float copy
# fed to the matrix product as much again. Small enough for 6 engineers on 24 GiB, large enough
# that BLAS, not Python, dominates.
_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Units:
    """The resampling units of ``n`` items: unit code per item and the items grouped by unit.

    ``clusters`` holds one label per item (any hashable dtype: study ids, patient ids,
    strings); ``None`` makes every item its own unit (the QA-pair-level bootstrap).
    Units are numbered in sorted label order when labels are sortable, so the result does not
    depend on the order of the rows.
    """

    codes: np.ndarray        # (n,) unit code of each item, 0..C-1
    order: np.ndarray        # (n,) item indices sorted by unit
    starts: np.ndarray       # (C + 1,) unit c owns order[starts[c]:starts[c + 1]]

    @classmethod
    def from_labels(cls, n_items: int, clusters=None) -> "Units":
        if clusters is None:
            idx = np.arange(n_items)
            return cls(idx, idx, np.arange(n_items + 1))
        labels = np.asarray(clusters)
        if labels.ndim != 1 or len(labels) != n_items:
            raise ValueError(f"clusters must hold one label per item: got shape {labels.shape} for {n_items} items")
        codes = _factorize(labels)
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes)
        starts = np.concatenate([[0], np.cumsum(counts)])
        return cls(codes, order, starts)

    @property
    def n_items(self) -> int:
        return len(self.codes)

    @property
    def n_units(self) -> int:
        return len(self.starts) - 1

    def unit_sums(self, stats: np.ndarray) -> np.ndarray:
        """Per-unit column sums of per-item rows: shape (C, k)."""
        if self.n_units == self.n_items and np.array_equal(self.order, self.codes):
            return stats  # item-level: every item is its own unit, in order
        if self.n_units == 0:
            return np.zeros((0, stats.shape[1]))
        return np.add.reduceat(stats[self.order], self.starts[:-1], axis=0)

    def expand(self, counts: np.ndarray) -> np.ndarray:
        """Item indices of a resample given its unit counts (each unit's items ``counts[c]`` times)."""
        return np.repeat(self.order, counts[self.codes[self.order]])

    def leave_out(self, c: int) -> np.ndarray:
        """Item indices of the data without unit ``c`` (a jackknife sample)."""
        return np.concatenate([self.order[: self.starts[c]], self.order[self.starts[c + 1]:]])


def _factorize(labels: np.ndarray) -> np.ndarray:
    import pandas as pd

    if pd.isna(labels).any():
        raise ValueError("clusters contain missing labels (NaN/None): every item needs a resampling unit")
    try:
        codes, _ = pd.factorize(labels, sort=True)
    except TypeError:  # mixed, unorderable labels: first-appearance order is still deterministic
        codes, _ = pd.factorize(labels, sort=False)
    return np.asarray(codes, dtype=np.int64)


def count_blocks(n_units: int, n_resamples: int, rng: np.random.Generator,
                 batch: int | None = None) -> Iterator[np.ndarray]:
    """Yield (b, C) int64 blocks of bootstrap unit counts, ``n_resamples`` rows in all.

    ``batch`` fixes the rows per block (as scipy's ``batch``); by default blocks hold about
    ``_BLOCK_ELEMENTS`` counts so memory stays bounded whatever ``C`` is.
    """
    if batch is None:
        batch = max(1, _BLOCK_ELEMENTS // max(n_units, 1))
    for start in range(0, n_resamples, batch):
        b = min(batch, n_resamples - start)
        idx = rng.integers(0, n_units, size=(b, n_units))
        idx += (np.arange(b) * n_units)[:, None]       # row offsets: one bincount for the block
        yield np.bincount(idx.ravel(), minlength=b * n_units).reshape(b, n_units)


def _reduce(stat: SufficientStats, totals: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(stat.reduce(totals), dtype=np.float64)
    return np.broadcast_to(out, totals.shape[:-1]).astype(np.float64, copy=False)


@dataclass(frozen=True)
class Distributions:
    """Point values (m,), bootstrap values (m, B) and, if asked, jackknife values (m, C)."""

    theta_hat: np.ndarray
    theta_boot: np.ndarray
    theta_jack: np.ndarray | None
    n_items: int
    n_units: int


def resample(statistics: Sequence[Statistic], clusters=None, *, n_resamples: int = 10_000,
             seed: int | np.random.SeedSequence | None = 0, batch: int | None = None,
             jackknife: bool = False) -> Distributions:
    """Bootstrap (and optionally jackknife) distributions of ``statistics`` on shared resamples.

    All statistics must describe the same items in the same order. Every resample is applied to
    every statistic, so differences between statistics (a paired comparison) are resampled
    consistently.
    """
    stats = list(statistics)
    if not stats:
        raise ValueError("no statistics to resample")
    n = stats[0].n
    for s in stats:
        if s.n != n:
            raise ValueError(f"statistics cover different items: {stats[0].name!r} has {n}, {s.name!r} has {s.n}")
        if not isinstance(s, (SufficientStats, GenericStatistic)):
            raise TypeError(f"{s!r} is not a SufficientStats or GenericStatistic")
    units = Units.from_labels(n, clusters)
    C = units.n_units
    m = len(stats)
    theta_hat = np.array([s.value() if n else np.nan for s in stats], dtype=np.float64)
    theta_boot = np.full((m, n_resamples), np.nan)
    theta_jack = np.full((m, C), np.nan) if jackknife else None
    if C == 0:
        return Distributions(theta_hat, theta_boot, theta_jack, n, C)

    suff = [(i, s) for i, s in enumerate(stats) if isinstance(s, SufficientStats)]
    generic = [(i, s) for i, s in enumerate(stats) if isinstance(s, GenericStatistic)]
    # one (C, K) matrix of unit sums for all sufficient statistics: one product per block
    sums = [units.unit_sums(s.stats) for _, s in suff]
    cols = np.cumsum([0] + [x.shape[1] for x in sums])
    S = np.hstack(sums) if sums else np.zeros((C, 0))

    rng = np.random.default_rng(seed)
    row = 0
    for counts in count_blocks(C, n_resamples, rng, batch):
        b = counts.shape[0]
        if suff:
            totals = counts.astype(np.float64) @ S
            for j, (i, s) in enumerate(suff):
                theta_boot[i, row:row + b] = _reduce(s, totals[:, cols[j]:cols[j + 1]])
        for i, s in generic:
            with warnings.catch_warnings():  # undefined values are NaN by contract, and counted
                warnings.simplefilter("ignore", RuntimeWarning)
                for r in range(b):
                    theta_boot[i, row + r] = s.compute(units.expand(counts[r]))
        row += b

    if jackknife:
        T = S.sum(axis=0)
        for j, (i, s) in enumerate(suff):
            block = S[:, cols[j]:cols[j + 1]]
            theta_jack[i] = _reduce(s, T[cols[j]:cols[j + 1]] - block)
        for i, s in generic:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                theta_jack[i] = [s.compute(units.leave_out(c)) for c in range(C)]
    return Distributions(theta_hat, theta_boot, theta_jack, n, C)
