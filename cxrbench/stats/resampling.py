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

import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from cxrbench.metrics.base import GenericStatistic, Statistic, SufficientStats

# Elements of one (resamples × units) count block. 2**22 int64 counts are 32 MiB; the float copies
# fed to the matrix products as much again at most. Small enough for 6 engineers on 24 GiB, large enough
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
        if self.n_units == self.n_items and np.array_equal(self.codes, np.arange(self.n_items)):
            return stats  # item-level: every item is its own unit, in order
        return sum_rows(self.codes, self.n_units, stats)

    def expand(self, counts: np.ndarray) -> np.ndarray:
        """Item indices of a resample given its unit counts (each unit's items ``counts[c]`` times)."""
        return np.repeat(self.order, counts[self.codes[self.order]])

    def leave_out(self, c: int) -> np.ndarray:
        """Item indices of the data without unit ``c`` (a jackknife sample)."""
        return np.concatenate([self.order[: self.starts[c]], self.order[self.starts[c + 1]:]])


def sum_rows(group: np.ndarray, n_groups: int, rows: np.ndarray) -> np.ndarray:
    """``out[g] = Σ_{i: group[i] = g} rows[i]``, shape (n_groups, k).

    A sparse indicator matrix times the rows: one streaming pass, no copy of the rows (which are
    hundreds of MB for one-hot binned statistics at 333K items), several times faster than
    sorting the rows and ``np.add.reduceat``.
    """
    from scipy import sparse

    group = np.asarray(group)
    indicator = sparse.csr_array((np.ones(len(group)), (group, np.arange(len(group)))),
                                 shape=(n_groups, len(group)))
    return np.asarray(indicator @ rows, dtype=np.float64).reshape(n_groups, rows.shape[1])


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
    """Yield (b, C) blocks of bootstrap unit counts, ``n_resamples`` rows in all.

    ``batch`` fixes the rows per block (as scipy's ``batch``); by default blocks hold about
    ``_BLOCK_ELEMENTS`` counts so memory stays bounded whatever ``C`` is. The draws are int32
    when they fit: numpy's Generator gives the same values as its int64 draws (scipy's), faster.
    """
    if batch is None:
        batch = max(1, _BLOCK_ELEMENTS // max(n_units, 1))
    for start in range(0, n_resamples, batch):
        b = min(batch, n_resamples - start)
        dtype = np.int32 if b * n_units < 2**31 else np.int64
        idx = rng.integers(0, n_units, size=(b, n_units), dtype=dtype)
        idx += (np.arange(b, dtype=dtype) * n_units)[:, None]   # row offsets: one bincount per block
        yield np.bincount(idx.ravel(), minlength=b * n_units).reshape(b, n_units)


def _reduce(reduce: Callable, totals: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(reduce(totals), dtype=np.float64)
    return np.broadcast_to(out, totals.shape[:-1]).astype(np.float64, copy=False)


class SumsPath:
    """Sufficient statistics resampled through their per-unit sums: ``totals = counts @ S``.

    Columns of ``S`` holding integers (counts, one-hot bins, 0/1 hits) whose resampled totals
    stay below 2**24 are multiplied in float32: every partial sum is then an integer that float32
    represents exactly, so the result is exact and the product about twice as fast. The other
    columns (sums of real-valued scores) stay float64. All-zero columns are not multiplied.
    """

    def __init__(self, sums: Sequence[np.ndarray], reduces: Sequence[Callable],
                 integer_cols: np.ndarray | None = None):
        self.reduces = list(reduces)
        self.cols = np.cumsum([0] + [x.shape[1] for x in sums])
        self.S = np.hstack(sums) if sums else np.zeros((0, 0))
        C = self.S.shape[0]
        if integer_cols is None:
            integer_cols = (self.S == np.round(self.S)).all(axis=0)
        # Σ_c w_c = C, so |total_k| ≤ C · max_c |S_ck|
        peak = np.abs(self.S).max(axis=0, initial=0)
        exact = integer_cols & (peak * C < 2**24)
        # all-zero columns (a metric that does not apply to this stratum) total 0: skip them
        self.c32, self.c64 = np.flatnonzero(exact & (peak > 0)), np.flatnonzero(~exact & (peak > 0))
        self.S32 = self.S[:, self.c32].astype(np.float32)
        self.S64 = self.S[:, self.c64]

    def __len__(self) -> int:
        return len(self.reduces)

    def point(self) -> np.ndarray:
        total = self.S.sum(axis=0)
        return np.array([_reduce(r, total[self.cols[j]:self.cols[j + 1]]) for j, r in enumerate(self.reduces)])

    def boot(self, counts: np.ndarray) -> np.ndarray:
        totals = np.zeros((counts.shape[0], self.S.shape[1]))
        if self.c32.size:
            totals[:, self.c32] = counts.astype(np.float32) @ self.S32
        if self.c64.size:
            totals[:, self.c64] = counts.astype(np.float64) @ self.S64
        return np.stack([_reduce(r, totals[:, self.cols[j]:self.cols[j + 1]]) for j, r in enumerate(self.reduces)])

    def jack(self) -> np.ndarray:
        """Leave-one-unit-out values, (m, C): ``reduce(T − S_c)``."""
        T = self.S.sum(axis=0)
        return np.stack([_reduce(r, T[self.cols[j]:self.cols[j + 1]] - self.S[:, self.cols[j]:self.cols[j + 1]])
                         for j, r in enumerate(self.reduces)])


class GenericPath:
    """Generic statistics evaluated on the item indices each resample stands for."""

    def __init__(self, stats: Sequence[GenericStatistic], units: Units):
        self.stats, self.units = list(stats), units

    def __len__(self) -> int:
        return len(self.stats)

    def boot(self, counts: np.ndarray) -> np.ndarray:
        out = np.empty((len(self.stats), counts.shape[0]))
        with warnings.catch_warnings():  # undefined values are NaN by contract, and counted
            warnings.simplefilter("ignore", RuntimeWarning)
            for r in range(counts.shape[0]):
                idx = self.units.expand(counts[r])
                out[:, r] = [s.compute(idx) for s in self.stats]
        return out

    def jack(self) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.array([[s.compute(self.units.leave_out(c)) for c in range(self.units.n_units)]
                             for s in self.stats]).reshape(len(self.stats), self.units.n_units)


@dataclass(frozen=True)
class Distributions:
    """Point values (m,), bootstrap values (m, B) and, if asked, jackknife values (m, C)."""

    theta_hat: np.ndarray
    theta_boot: np.ndarray
    theta_jack: np.ndarray | None
    n_items: int
    n_units: int


def run_paths(paths: Sequence[SumsPath | GenericPath], n_units: int, *, n_resamples: int, seed,
              batch: int | None, jackknife: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Bootstrap values (m, B) of all paths' statistics (in path order) on one shared set of
    resamples of ``n_units`` units, and their jackknife values (m, C) if asked."""
    sizes = [len(p) for p in paths]
    m = sum(sizes)
    theta_boot = np.full((m, n_resamples), np.nan)
    theta_jack = np.full((m, n_units), np.nan) if jackknife else None
    if n_units == 0 or m == 0:
        return theta_boot, theta_jack
    offsets = np.cumsum([0] + sizes)
    row = 0
    for counts in count_blocks(n_units, n_resamples, np.random.default_rng(seed), batch):
        b = counts.shape[0]
        for p, lo, hi in zip(paths, offsets[:-1], offsets[1:]):
            if hi > lo:
                theta_boot[lo:hi, row:row + b] = p.boot(counts)
        row += b
    if jackknife:
        for p, lo, hi in zip(paths, offsets[:-1], offsets[1:]):
            if hi > lo:
                theta_jack[lo:hi] = p.jack()
    return theta_boot, theta_jack


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
        if not isinstance(s, (SufficientStats, GenericStatistic)):
            raise TypeError(f"{s!r} is not a SufficientStats or GenericStatistic")
        if s.n != n:
            raise ValueError(f"statistics cover different items: {stats[0].name!r} has {n}, {s.name!r} has {s.n}")
    units = Units.from_labels(n, clusters)
    suff = [i for i, s in enumerate(stats) if isinstance(s, SufficientStats)]
    generic = [i for i, s in enumerate(stats) if isinstance(s, GenericStatistic)]
    paths = [SumsPath([units.unit_sums(stats[i].stats) for i in suff], [stats[i].reduce for i in suff]),
             GenericPath([stats[i] for i in generic], units)]
    boot, jack = run_paths(paths, units.n_units, n_resamples=n_resamples, seed=seed, batch=batch,
                           jackknife=jackknife)
    order = np.argsort(suff + generic)  # back from path order to the caller's order
    theta_hat = np.array([s.value() if n else np.nan for s in stats], dtype=np.float64)
    return Distributions(theta_hat, boot[order], None if jack is None else jack[order], n, units.n_units)


class StrataSums:
    """Per-unit sums of every stratum from one pass over the items.

    Strata (overall, each question type, spatial, ...) overlap. Items are grouped by (atom, unit),
    an atom being a distinct combination of stratum memberships, and each statistic's rows are
    summed per group once; a stratum's unit sums then add up its groups. This replaces one pass
    over the per-item rows (hundreds of MB for binned AUROC at 333K items) per stratum.
    Units are numbered in sorted label order within each stratum, as :class:`Units` numbers the
    stratum's own items, so the resamples are those of resampling the stratum alone.
    """

    def __init__(self, masks: Sequence[np.ndarray], clusters=None):
        M = np.column_stack([np.asarray(m, dtype=bool) for m in masks])
        n, n_strata = M.shape
        codes = Units.from_labels(n, clusters).codes
        C = max(int(codes.max()) + 1 if n else 0, 1)
        if n_strata <= 62:  # membership pattern as an integer: a 1-D unique, not a row-wise one
            _, atom = np.unique(M.astype(np.int64) @ (np.int64(1) << np.arange(n_strata, dtype=np.int64)),
                                return_inverse=True)
        else:
            _, atom = np.unique(M, axis=0, return_inverse=True)
        keys, self.group = np.unique(atom.ravel().astype(np.int64) * C + codes, return_inverse=True)
        self.group = self.group.ravel()
        self.group_unit = keys % C
        first = np.zeros(len(keys), dtype=np.int64)
        first[self.group[::-1]] = np.arange(n)[::-1]          # an item of each group
        self.group_in = M[first]                              # (n_groups, n_strata) memberships
        self.n_items = M.sum(axis=0)

    def group_sums(self, stats: np.ndarray) -> np.ndarray:
        """Rows summed per (atom, unit) group: (n_groups, k)."""
        return sum_rows(self.group, len(self.group_unit), stats)

    def stratum_indicator(self, j: int):
        """Sparse (C_j, n_groups) matrix adding stratum ``j``'s groups into its units (units in
        sorted label order); built once per stratum and applied to every statistic."""
        from scipy import sparse

        sel = np.flatnonzero(self.group_in[:, j])
        units, pos = np.unique(self.group_unit[sel], return_inverse=True)
        return sparse.csr_array((np.ones(len(sel)), (pos.ravel(), sel)), shape=(len(units), len(self.group_unit)))

    @staticmethod
    def stratum_sums(indicator, group_sums: np.ndarray) -> np.ndarray:
        """Per-unit sums of a stratum: (C_j, k)."""
        return np.asarray(indicator @ group_sums, dtype=np.float64).reshape(indicator.shape[0], group_sums.shape[1])


def resample_strata(statistics: Sequence[Statistic], strata: Sequence[np.ndarray], clusters=None, *,
                    n_resamples: int = 10_000, seed=0, batch: int | None = None,
                    jackknife: bool = False) -> Iterator[Distributions]:
    """:func:`resample` of ``statistics`` restricted to each stratum mask in turn (same seed for
    every stratum), with the sufficient statistics summed per stratum in one pass."""
    stats = list(statistics)
    n = stats[0].n
    masks = [np.asarray(m, dtype=bool) for m in strata]
    for m in masks:
        if m.shape != (n,):
            raise ValueError(f"stratum mask of shape {m.shape} for {n} items")
    labels = None if clusters is None else np.asarray(clusters)
    suff = [i for i, s in enumerate(stats) if isinstance(s, SufficientStats)]
    generic = [i for i, s in enumerate(stats) if not isinstance(s, SufficientStats)]
    grouped = StrataSums(masks, labels)
    group_sums = [grouped.group_sums(stats[i].stats) for i in suff]
    # columns of integers stay integers in every stratum's sums: test once, not per stratum
    integer_cols = np.concatenate([(g == np.round(g)).all(axis=0) for g in group_sums]) if suff else None
    back = np.argsort(suff + generic)
    for j, mask in enumerate(masks):
        n_j = int(grouped.n_items[j])
        indicator = grouped.stratum_indicator(j)
        sums = SumsPath([grouped.stratum_sums(indicator, g) for g in group_sums], [stats[i].reduce for i in suff],
                        integer_cols=integer_cols)
        sub = [stats[i].subset(mask) for i in generic]
        units = Units.from_labels(n_j, None if labels is None else labels[mask]) if generic or labels is None \
            else None
        n_units = units.n_units if units is not None else sums.S.shape[0]
        paths = [sums] + ([GenericPath(sub, units)] if generic else [])
        boot, jack = run_paths(paths, n_units, n_resamples=n_resamples, seed=seed, batch=batch, jackknife=jackknife)
        hat = np.r_[sums.point() if suff and n_j else np.full(len(suff), np.nan),
                    [s.value() if n_j else np.nan for s in sub]]
        yield Distributions(hat[back], boot[back], None if jack is None else jack[back], n_j, n_units)
