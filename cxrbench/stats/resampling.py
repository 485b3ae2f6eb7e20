"""The resampling engine: bootstrap and jackknife distributions of many statistics at once.

A bootstrap resample draws ``C`` resampling units (QA pairs, studies or patients) with
replacement from the ``C`` units of the data. We represent a resample by its *count vector*
``w`` (how often each unit was drawn). Each kind of statistic is evaluated from the counts:

- :class:`~cxrbench.metrics.base.SufficientStats`, per-unit row sums ``S`` (shape ``(C, k)``):
  the resampled totals are ``w @ S``, so a block of ``b`` resamples is one ``(b, C) @ (C, k)``
  matrix product (:class:`SumsPath`);
- :class:`~cxrbench.metrics.base.WeightedStatistic`: each item weighs its unit's count; the
  statistic evaluates a whole block of resamples from the ``(b, items)`` weights
  (:class:`WeightsPath`);
- :class:`~cxrbench.metrics.base.GenericStatistic`: evaluated on the item indices each resample
  stands for, one resample at a time (:class:`GenericPath`).

The unit draws are ``rng.integers(0, C, size=(b, C))``, exactly the calls
``scipy.stats.bootstrap`` makes for a sample of ``C`` observations and ``batch=b``: with the same
generator and batch size both see the same resamples, which the tests use to check agreement to
rounding error, not only within Monte-Carlo error.

The jackknife (for BCa's acceleration) leaves out one unit at a time; for sufficient statistics
that is one subtraction per unit, ``reduce(T - S_c)``; for weighted statistics the unit's items
weigh 0.

Strata (overall, each question type, ...) are resampled by :mod:`cxrbench.stats.stratified`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from cxrbench.metrics.base import GenericStatistic, Statistic, SufficientStats, WeightedStatistic

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
        return cls.from_codes(_factorize(labels))

    @classmethod
    def from_codes(cls, codes: np.ndarray, n_units: int | None = None) -> "Units":
        codes = np.asarray(codes, dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=n_units or 0)
        return cls(codes, order, np.concatenate([[0], np.cumsum(counts)]))

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
    The block size changes which values the generator yields (it buffers per call), so every
    caller that must see the same resamples uses this function with the same ``batch``.
    """
    if batch is None:
        batch = max(1, _BLOCK_ELEMENTS // max(n_units, 1))
    for start in range(0, n_resamples, batch):
        b = min(batch, n_resamples - start)
        dtype = np.int32 if b * n_units < 2**31 else np.int64
        idx = rng.integers(0, n_units, size=(b, n_units), dtype=dtype)
        idx += (np.arange(b, dtype=dtype) * n_units)[:, None]   # row offsets: one bincount per block
        yield np.bincount(idx.ravel(), minlength=b * n_units).reshape(b, n_units)


def _distinct_columns(S: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct columns among ``S[:, live]`` (indices into S, first occurrence) and, for each
    live column, the position of its distinct column. Columns are grouped by two random
    projections (equal columns project equally) and each group checked for exact equality."""
    if not live.size:
        return live, np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(0)
    sub = S[:, live]
    keys = rng.standard_normal((2, S.shape[0])) @ sub
    _, group = np.unique(keys.T, axis=0, return_inverse=True)
    group = group.ravel()
    distinct: list[int] = []
    inverse = np.empty(len(live), dtype=np.int64)
    representatives: dict[int, list[int]] = {}
    for i in np.argsort(group, kind="stable"):
        for d in representatives.setdefault(int(group[i]), []):
            if np.array_equal(sub[:, i], sub[:, distinct[d]]):
                inverse[i] = d
                break
        else:
            representatives[int(group[i])].append(len(distinct))
            inverse[i] = len(distinct)
            distinct.append(int(i))
    return live[np.asarray(distinct, dtype=np.int64)], inverse


def _reduce(reduce: Callable, totals: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(reduce(totals), dtype=np.float64)
    return np.broadcast_to(out, totals.shape[:-1]).astype(np.float64, copy=False)


class Block:
    """One block of unit counts and the float copies the matrix products take, made once."""

    def __init__(self, counts: np.ndarray):
        self.counts = counts
        self._f32: np.ndarray | None = None
        self._f64: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.counts.shape[0]

    @property
    def f32(self) -> np.ndarray:
        if self._f32 is None:
            self._f32 = self.counts.astype(np.float32)
        return self._f32

    @property
    def f64(self) -> np.ndarray:
        if self._f64 is None:
            self._f64 = self.counts.astype(np.float64)
        return self._f64


class SumsPath:
    """Sufficient statistics resampled through their per-unit sums: ``totals = counts @ S``.

    ``sums`` holds one ``(C, k_j)`` matrix per statistic (the statistic's per-unit sums). Equal
    columns (the eight confusion-matrix metrics share one confusion matrix; many statistics share
    one count column) are multiplied once. Columns holding integers (counts, one-hot bins, 0/1
    hits) whose resampled totals stay below 2**24 are multiplied in float32: every partial sum is
    then an integer that float32 represents exactly, so the result is exact and the product about
    twice as fast. The other columns (sums of real-valued scores) stay float64. A statistic whose
    sums are all zero (a metric that does not apply to a stratum) has the same totals, zero, in
    every resample: its value is reduced once.
    """

    def __init__(self, sums: Sequence[np.ndarray | int], reduces: Sequence[Callable],
                 integer_cols: np.ndarray | None = None, n_units: int | None = None):
        # an int in ``sums`` stands for that many all-zero columns (a statistic without items here)
        self.reduces = list(reduces)
        given = [not isinstance(x, (int, np.integer)) for x in sums]
        self.widths = [int(x.shape[1]) if g else int(x) for x, g in zip(sums, given)]
        self.cols = np.cumsum([0] + self.widths)
        arrays = [x for x, g in zip(sums, given) if g]
        C = int(arrays[0].shape[0]) if arrays else int(n_units or 0)
        self.n_units = C
        S = np.hstack(arrays) if arrays else np.zeros((C, 0))
        if integer_cols is None:
            integer_cols = (S == np.round(S)).all(axis=0)
        else:  # given for every column: keep those of the given blocks
            integer_cols = np.concatenate([integer_cols[self.cols[j]:self.cols[j + 1]]
                                           for j, g in enumerate(given) if g] or [np.zeros(0, bool)])
        # column of each statistic in S, -1 for the all-zero blocks
        at = np.full(int(self.cols[-1]), -1, dtype=np.int64)
        pos = 0
        for j, g in enumerate(given):
            if g:
                at[self.cols[j]:self.cols[j + 1]] = np.arange(pos, pos + self.widths[j])
                pos += self.widths[j]
        self.total = np.zeros(int(self.cols[-1]))
        self.total[at >= 0] = S.sum(axis=0)
        peak = np.abs(S).max(axis=0, initial=0)
        # distinct non-zero columns, multiplied once each
        live = np.flatnonzero(peak > 0)
        distinct, inverse = _distinct_columns(S, live)
        of_s = np.full(S.shape[1], -1, dtype=np.int64)
        of_s[live] = inverse
        # column -> its distinct column; all-zero columns -> the zero column after the distinct ones
        self.source = np.full(int(self.cols[-1]), len(distinct), dtype=np.int64)
        self.source[at >= 0] = np.where(of_s >= 0, of_s, len(distinct))
        self.constant = [not (self.source[self.cols[j]:self.cols[j + 1]] < len(distinct)).any()
                         for j in range(len(self.reduces))]
        # Σ_c w_c = C, so |total_k| ≤ C · max_c |S_ck|
        exact = integer_cols[distinct] & (peak[distinct] * C < 2**24)
        self.d32, self.d64 = np.flatnonzero(exact), np.flatnonzero(~exact)
        self.S32 = np.ascontiguousarray(S[:, distinct[self.d32]], dtype=np.float32)
        self.S64 = np.ascontiguousarray(S[:, distinct[self.d64]])
        self.n_distinct = len(distinct)
        # distinct column -> its position in S32 (>= 0) or, as -1 - position, in S64
        self.where = np.empty(self.n_distinct, dtype=np.int64)
        self.where[self.d32] = np.arange(len(self.d32))
        self.where[self.d64] = -1 - np.arange(len(self.d64))
        self._constant_values = {j: _reduce(self.reduces[j], np.zeros(self.widths[j]))
                                 for j in range(len(self.reduces)) if self.constant[j]}

    def __len__(self) -> int:
        return len(self.reduces)

    def _columns(self, j: int) -> np.ndarray:
        """Statistic ``j``'s per-unit sums, (C, k_j) float64 (for the jackknife)."""
        out = np.zeros((self.n_units, self.widths[j]))
        for i, s in enumerate(self.source[self.cols[j]:self.cols[j + 1]]):
            if s < self.n_distinct:
                w = self.where[s]
                out[:, i] = self.S32[:, w] if w >= 0 else self.S64[:, -1 - w]
        return out

    def carried(self) -> np.ndarray:
        """(m, C) bool: which units add anything to each statistic."""
        nonzero = np.zeros((self.n_units, self.n_distinct + 1), dtype=bool)
        nonzero[:, self.d32] = self.S32 != 0
        nonzero[:, self.d64] = self.S64 != 0
        return np.stack([nonzero[:, self.source[self.cols[j]:self.cols[j + 1]]].any(axis=1)
                         for j in range(len(self.reduces))]) if self.reduces else np.zeros((0, self.n_units), bool)

    def point(self) -> np.ndarray:
        return np.array([_reduce(r, self.total[self.cols[j]:self.cols[j + 1]]) for j, r in enumerate(self.reduces)])

    def boot(self, block: Block) -> np.ndarray:
        b = block.rows
        distinct = np.zeros((b, self.n_distinct + 1))          # the last column stays zero
        if self.d32.size:
            distinct[:, self.d32] = block.f32 @ self.S32
        if self.d64.size:
            distinct[:, self.d64] = block.f64 @ self.S64
        out = np.empty((len(self.reduces), b))
        for j, r in enumerate(self.reduces):
            if self.constant[j]:
                out[j] = self._constant_values[j]
            else:
                out[j] = _reduce(r, distinct[:, self.source[self.cols[j]:self.cols[j + 1]]])
        return out

    def jack(self, units: np.ndarray | None = None, which: Sequence[int] | None = None) -> np.ndarray:
        """Leave-one-unit-out values ``reduce(T − S_c)`` for the statistics ``which`` (default
        all) and the units ``units`` (default all): shape (len(which), len(units))."""
        which = range(len(self.reduces)) if which is None else which
        units = np.arange(self.n_units) if units is None else np.asarray(units, dtype=np.int64)
        out = np.empty((len(which), len(units)))
        for i, j in enumerate(which):
            T = self.total[self.cols[j]:self.cols[j + 1]]
            if self.constant[j]:
                out[i] = self._constant_values[j]
            else:
                out[i] = _reduce(self.reduces[j], T - self._columns(j)[units])
        return out


class WeightsPath:
    """Weighted statistics: each item weighs its unit's count in the resample.

    Statistics over the same items (a metric family sharing one table, e.g. the COCO mAPs)
    receive the same weights array, so a table can compute their common part once per block.
    """

    _ELEMENTS = 1 << 22   # item weights per evaluation call

    def __init__(self, stats: Sequence[WeightedStatistic], codes: np.ndarray, n_units: int):
        self.stats = list(stats)
        self.codes = np.asarray(codes, dtype=np.int64)
        self.n_units = n_units
        self.item_units = [self.codes[s.items] for s in self.stats]
        keys: dict[tuple, int] = {}
        self.key = [keys.setdefault((len(s.items), s.items.tobytes()), len(keys)) for s in self.stats]

    def __len__(self) -> int:
        return len(self.stats)

    def _evaluate(self, weights_for: Callable[[int, int, int], np.ndarray], rows: int) -> np.ndarray:
        """Values (m, rows) given ``weights_for(i, lo, hi)``: statistic i's weights of rows lo:hi."""
        out = np.full((len(self.stats), rows), np.nan)
        widest = max((len(s.items) for s in self.stats), default=1)
        step = max(1, self._ELEMENTS // max(widest, 1))
        with warnings.catch_warnings():  # undefined values are NaN by contract, and counted
            warnings.simplefilter("ignore", RuntimeWarning)
            for lo in range(0, rows, step):
                hi = min(rows, lo + step)
                cache: dict[int, np.ndarray] = {}
                for i, s in enumerate(self.stats):
                    if not s.items.size:
                        continue
                    w = cache.get(self.key[i])
                    if w is None:
                        w = cache[self.key[i]] = weights_for(i, lo, hi)
                    out[i, lo:hi] = s.evaluate(w)
        return out

    def point(self) -> np.ndarray:
        return self._evaluate(lambda i, lo, hi: np.ones((hi - lo, len(self.stats[i].items)), dtype=np.int64), 1)[:, 0]

    def boot(self, block: Block) -> np.ndarray:
        counts = block.counts
        return self._evaluate(lambda i, lo, hi: counts[lo:hi][:, self.item_units[i]], block.rows)

    def carried(self) -> np.ndarray:
        out = np.zeros((len(self.stats), self.n_units), dtype=bool)
        for i, u in enumerate(self.item_units):
            out[i, u] = True
        return out

    def jack(self, units: np.ndarray | None = None, which: Sequence[int] | None = None) -> np.ndarray:
        """Leave-one-unit-out values: unit ``c``'s items weigh 0, every other item 1. Units that
        hold none of a statistic's items leave it unchanged (its value on all items)."""
        which = list(range(len(self.stats))) if which is None else list(which)
        units = np.arange(self.n_units) if units is None else np.asarray(units, dtype=np.int64)
        out = np.empty((len(which), len(units)))
        for r, i in enumerate(which):
            s, iu = self.stats[i], self.item_units[i]
            sub = WeightsPath([s], self.codes, self.n_units)
            out[r] = sub.point()[0]
            touched = np.flatnonzero(np.isin(units, iu))
            if not touched.size or not s.items.size:
                continue
            left_out = units[touched]
            out[r, touched] = sub._evaluate(
                lambda _i, lo, hi, iu=iu, left_out=left_out: (iu[None, :] != left_out[lo:hi, None]).astype(np.int64),
                len(left_out))[0]
        return out


class GenericPath:
    """Generic statistics evaluated on the item indices each resample stands for."""

    def __init__(self, stats: Sequence[GenericStatistic], units: Units):
        self.stats, self.units = list(stats), units

    def __len__(self) -> int:
        return len(self.stats)

    def point(self) -> np.ndarray:
        return np.array([s.compute(np.arange(self.units.n_items)) if self.units.n_items else np.nan
                         for s in self.stats], dtype=np.float64)

    def carried(self) -> np.ndarray:
        # which units a generic statistic depends on is unknown: every unit with an item
        present = np.diff(self.units.starts) > 0
        return np.broadcast_to(present, (len(self.stats), self.units.n_units)).copy()

    def boot(self, block: Block) -> np.ndarray:
        counts = block.counts
        out = np.empty((len(self.stats), counts.shape[0]))
        with warnings.catch_warnings():  # undefined values are NaN by contract, and counted
            warnings.simplefilter("ignore", RuntimeWarning)
            for r in range(counts.shape[0]):
                idx = self.units.expand(counts[r])
                out[:, r] = [s.compute(idx) for s in self.stats]
        return out

    def jack(self, units: np.ndarray | None = None, which: Sequence[int] | None = None) -> np.ndarray:
        which = list(range(len(self.stats))) if which is None else list(which)
        units = np.arange(self.units.n_units) if units is None else np.asarray(units, dtype=np.int64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.array([[self.stats[i].compute(self.units.leave_out(c)) for c in units] for i in which],
                            dtype=np.float64).reshape(len(which), len(units))


Path = SumsPath | WeightsPath | GenericPath


@dataclass(frozen=True)
class Distributions:
    """Point values (m,), bootstrap values (m, B) and, if asked, jackknife values (m, C) (NaN for
    units a stratum does not hold); ``carried`` (m, C): which units add to each statistic."""

    theta_hat: np.ndarray
    theta_boot: np.ndarray
    theta_jack: np.ndarray | None
    n_items: int
    n_units: int
    carried: np.ndarray | None = None

    def units_with(self, *rows: int) -> int:
        """Units that add to any of the statistics ``rows`` (the resampling units behind them)."""
        if self.carried is None:
            return self.n_units
        return int(np.logical_or.reduce([self.carried[r] for r in rows]).sum())


def run_paths(paths: Sequence[Path], n_units: int, *, n_resamples: int, seed, batch: int | None,
              progress: bool | None = False) -> np.ndarray:
    """Bootstrap values (m, B) of all paths' statistics (in path order) on one shared set of
    resamples of ``n_units`` units."""
    sizes = [len(p) for p in paths]
    m = sum(sizes)
    theta_boot = np.full((m, n_resamples), np.nan)
    if n_units == 0 or m == 0:
        return theta_boot
    offsets = np.cumsum([0] + sizes)
    blocks = count_blocks(n_units, n_resamples, np.random.default_rng(seed), batch)
    if progress is not False:
        from tqdm.auto import tqdm

        size = batch or max(1, _BLOCK_ELEMENTS // max(n_units, 1))
        blocks = tqdm(blocks, total=-(-n_resamples // size), desc="bootstrap", unit="block", leave=False,
                      disable=None if progress is None else not progress)
    row = 0
    for counts in blocks:
        block = Block(counts)
        for p, lo, hi in zip(paths, offsets[:-1], offsets[1:]):
            if hi > lo:
                theta_boot[lo:hi, row:row + block.rows] = p.boot(block)
        row += block.rows
    return theta_boot


def _check_statistics(stats: Sequence[Statistic]) -> int:
    if not stats:
        raise ValueError("no statistics to resample")
    n = stats[0].n
    for s in stats:
        if not isinstance(s, (SufficientStats, WeightedStatistic, GenericStatistic)):
            raise TypeError(f"{s!r} is not a SufficientStats, WeightedStatistic or GenericStatistic")
        if s.n != n:
            raise ValueError(f"statistics cover different items: {stats[0].name!r} has {n}, {s.name!r} has {s.n}")
    return n


def kinds(stats: Sequence[Statistic]) -> tuple[list[int], list[int], list[int]]:
    """Positions of the sufficient, weighted and generic statistics."""
    return ([i for i, s in enumerate(stats) if isinstance(s, SufficientStats)],
            [i for i, s in enumerate(stats) if isinstance(s, WeightedStatistic)],
            [i for i, s in enumerate(stats) if isinstance(s, GenericStatistic)])


def resample(statistics: Sequence[Statistic], clusters=None, *, n_resamples: int = 10_000,
             seed: int | np.random.SeedSequence | None = 0, batch: int | None = None,
             jackknife: bool = False, progress: bool | None = False) -> Distributions:
    """Bootstrap (and optionally jackknife) distributions of ``statistics`` on shared resamples.

    All statistics must describe the same items in the same order. Every resample is applied to
    every statistic, so differences between statistics (a paired comparison) are resampled
    consistently.
    """
    stats = list(statistics)
    n = _check_statistics(stats)
    units = Units.from_labels(n, clusters)
    suff, weighted, generic = kinds(stats)
    paths = [SumsPath([units.unit_sums(stats[i].stats) for i in suff], [stats[i].reduce for i in suff]),
             WeightsPath([stats[i] for i in weighted], units.codes, units.n_units),
             GenericPath([stats[i] for i in generic], units)]
    boot = run_paths(paths, units.n_units, n_resamples=n_resamples, seed=seed, batch=batch, progress=progress)
    order = np.argsort(suff + weighted + generic)  # back from path order to the caller's order
    live = [p for p in paths if len(p)]
    jack = None
    if jackknife:
        jack = np.vstack([p.jack() for p in live])[order] if n else np.full((len(stats), 0), np.nan)
    hat = np.array([s.value() if n else np.nan for s in stats], dtype=np.float64)
    carried = np.vstack([p.carried() for p in live])[order]
    return Distributions(hat, boot[order], jack, n, units.n_units, carried)
