"""Bootstrap distributions of many statistics in many strata: one shared draw, or one per stratum.

A report has strata (overall, each question type, each head, ...) that overlap, and every
statistic covers all items (an item outside a metric's rows contributes nothing). Two draws:

- ``shared`` (the default of ``score``, ``evaluate`` and ``compare``): ONE draw of unit counts
  over all ``C`` units per resample, used by every stratum and statistic. A stratum's resampled
  totals are the counts times its per-unit sums, the units outside it contributing zero, so the
  number of the stratum's units in a resample varies as it would in a new test set of ``C``
  studies. All strata of all statistics are one matrix product per block of resamples.
- ``per_stratum``: each stratum resampled on its own units (``C_j`` draws from its ``C_j``
  units) with the same seed: a stratum's row equals bootstrapping that stratum alone.

docs/statistics.md explains what each estimates and when to use which.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from cxrbench.metrics.base import Statistic
from cxrbench.stats.resampling import (Distributions, GenericPath, SumsPath, Units, WeightsPath, _check_statistics,
                                       kinds, run_paths, sum_rows)

DRAWS = ("shared", "per_stratum")


class StrataSums:
    """Per-unit sums of every stratum from one pass over the items.

    Strata overlap. Items are grouped by (atom, unit), an atom being a distinct combination of
    stratum memberships, and each statistic's rows are summed per group once; a stratum's unit
    sums then add up its groups. This replaces one pass over the per-item rows (hundreds of MB
    for binned AUROC at 333K items) per stratum.
    """

    def __init__(self, masks: Sequence[np.ndarray], codes: np.ndarray):
        M = np.column_stack([np.asarray(m, dtype=bool) for m in masks])
        n, n_strata = M.shape
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

    def stratum_units(self, j: int) -> np.ndarray:
        """The (global) codes of the units holding an item of stratum ``j``, sorted."""
        return np.unique(self.group_unit[self.group_in[:, j]])

    def stratum_indicator(self, j: int, n_units: int | None = None):
        """Sparse matrix adding stratum ``j``'s groups into units: with ``n_units``, into all
        ``n_units`` units by global code (the shared draw); without, into the stratum's own units
        renumbered in sorted label order (``(C_j, n_groups)``, the per-stratum draw, as
        :class:`~cxrbench.stats.resampling.Units` numbers the stratum's items). Built once per
        stratum and applied to every statistic."""
        from scipy import sparse

        sel = np.flatnonzero(self.group_in[:, j])
        if n_units is None:
            units, pos = np.unique(self.group_unit[sel], return_inverse=True)
            rows, shape = pos.ravel(), (len(units), len(self.group_unit))
        else:
            rows, shape = self.group_unit[sel], (n_units, len(self.group_unit))
        return sparse.csr_array((np.ones(len(sel)), (rows, sel)), shape=shape)

    @staticmethod
    def stratum_sums(indicator, group_sums: np.ndarray) -> np.ndarray:
        """Per-unit sums of a stratum: (units, k)."""
        return np.asarray(indicator @ group_sums, dtype=np.float64).reshape(indicator.shape[0], group_sums.shape[1])


def resample_strata(statistics: Sequence[Statistic], strata: Sequence[np.ndarray], clusters=None, *,
                    n_resamples: int = 10_000, seed=0, batch: int | None = None, jackknife: bool = False,
                    draw: str = "shared", progress: bool | None = False) -> Iterator[Distributions]:
    """Distributions of ``statistics`` restricted to each stratum mask in turn, in stratum order.

    ``draw="shared"``: one draw of all units per resample for every stratum (the stratum's row
    equals :func:`~cxrbench.stats.resampling.resample` of ``s.restrict(mask)`` with the same
    seed and batch). ``draw="per_stratum"``: each stratum on its own units with the same seed
    (its row equals ``resample`` of ``s.subset(mask)`` with ``clusters[mask]``). The jackknife
    (BCa) leaves out each unit the draw resamples: all units (shared), the stratum's (per
    stratum). ``n_units`` is the number of units holding an item of the stratum.
    """
    if draw not in DRAWS:
        raise ValueError(f"draw must be one of {DRAWS}, got {draw!r}")
    stats = list(statistics)
    n = _check_statistics(stats)
    masks = [np.asarray(m, dtype=bool) for m in strata]
    for m in masks:
        if m.shape != (n,):
            raise ValueError(f"stratum mask of shape {m.shape} for {n} items")
    labels = None if clusters is None else np.asarray(clusters)
    if draw == "shared":
        return iter(_shared(stats, masks, labels, n_resamples=n_resamples, seed=seed, batch=batch,
                            jackknife=jackknife, progress=progress))
    return _per_stratum(stats, masks, labels, n_resamples=n_resamples, seed=seed, batch=batch, jackknife=jackknife)


def _group_sums(stats, suff, grouped: StrataSums):
    group_sums = [grouped.group_sums(stats[i].stats) for i in suff]
    # columns of integers stay integers in every stratum's sums: test once, not per stratum
    integer_cols = [(g == np.round(g)).all(axis=0) for g in group_sums]
    return group_sums, integer_cols


def _shared(stats: list[Statistic], masks: list[np.ndarray], labels, *, n_resamples: int, seed,
            batch: int | None, jackknife: bool, progress) -> list[Distributions]:
    n = stats[0].n
    units = Units.from_labels(n, labels)
    C = units.n_units
    suff, weighted, generic = kinds(stats)
    grouped = StrataSums(masks, units.codes) if masks else None
    group_sums, integer_cols = _group_sums(stats, suff, grouped) if masks else ([], [])
    sums, reduces, ints = [], [], []
    for j in range(len(masks)):
        indicator = grouped.stratum_indicator(j, C)
        for g, i, ic in zip(group_sums, suff, integer_cols):
            s = grouped.stratum_sums(indicator, g)
            sums.append(s if s.any() else s.shape[1])     # all zero: a constant, not multiplied
            reduces.append(stats[i].reduce)
            ints.append(ic)
    S = len(masks)
    sums_path = SumsPath(sums, reduces, np.concatenate(ints) if ints else None, n_units=C)
    restricted_w = [stats[i].restrict(m) for m in masks for i in weighted]
    restricted_g = [stats[i].restrict(m) for m in masks for i in generic]
    paths = [sums_path, WeightsPath(restricted_w, units.codes, C), GenericPath(restricted_g, units)]
    boot = run_paths(paths, C, n_resamples=n_resamples, seed=seed, batch=batch, progress=progress)
    carried = np.vstack([p.carried() for p in paths if len(p)]) if any(len(p) for p in paths) else None
    hat = np.concatenate([p.point() for p in paths if len(p)]) if any(len(p) for p in paths) else np.zeros(0)
    ns, nw, ng = len(suff), len(weighted), len(generic)
    m = ns + nw + ng
    back = np.argsort(suff + weighted + generic)
    out = []
    for j, mask in enumerate(masks):
        # rows of stratum j in path order: its sufficient, weighted, generic statistics
        rows = np.r_[j * ns + np.arange(ns), S * ns + j * nw + np.arange(nw),
                     S * (ns + nw) + j * ng + np.arange(ng)].astype(np.int64)[back]
        n_j = int(mask.sum())
        stratum_units = grouped.stratum_units(j)
        theta_hat, theta_boot = hat[rows], boot[rows]
        if not n_j:  # an empty stratum has no value at all (not, say, BLEU's 0 of no text)
            theta_hat, theta_boot = np.full(m, np.nan), np.full((m, n_resamples), np.nan)
        theta_jack = None
        if jackknife:  # over all units, as the draw: those outside the stratum leave its value as it is
            theta_jack = _jack(paths, j, (ns, nw, ng), np.arange(C))[back] if n_j else np.full((m, C), np.nan)
        out.append(Distributions(theta_hat, theta_boot, theta_jack, n_j, len(stratum_units),
                                 None if carried is None else carried[rows]))
    return out


def _jack(paths, j: int, sizes: tuple[int, int, int], units: np.ndarray) -> np.ndarray:
    """Leave-one-unit-out values of stratum ``j``'s statistics (path order) over ``units``."""
    parts = []
    for p, k in zip(paths, sizes):
        if k:
            parts.append(p.jack(units, which=range(j * k, (j + 1) * k)))
    return np.vstack(parts)


def _per_stratum(stats: list[Statistic], masks: list[np.ndarray], labels, *, n_resamples: int, seed,
                 batch: int | None, jackknife: bool) -> Iterator[Distributions]:
    n = stats[0].n
    suff, weighted, generic = kinds(stats)
    codes = Units.from_labels(n, labels).codes
    grouped = StrataSums(masks, codes) if masks else None
    group_sums, integer_cols = _group_sums(stats, suff, grouped) if masks else ([], [])
    back = np.argsort(suff + weighted + generic)
    for j, mask in enumerate(masks):
        n_j = int(grouped.n_items[j])
        indicator = grouped.stratum_indicator(j)
        n_units = indicator.shape[0]
        sums = SumsPath([grouped.stratum_sums(indicator, g) for g in group_sums], [stats[i].reduce for i in suff],
                        integer_cols=np.concatenate(integer_cols) if integer_cols else None, n_units=n_units)
        units = Units.from_labels(n_j, None if labels is None else labels[mask]) if weighted or generic else None
        paths = [sums]
        if weighted:
            paths.append(WeightsPath([stats[i].subset(mask) for i in weighted], units.codes, units.n_units))
        if generic:
            paths.append(GenericPath([stats[i].subset(mask) for i in generic], units))
        boot = run_paths(paths, n_units, n_resamples=n_resamples, seed=seed, batch=batch)
        live = [p for p in paths if len(p)]
        hat = np.concatenate([p.point() for p in live]) if n_j else np.full(len(stats), np.nan)
        jack = np.vstack([p.jack() for p in live]) if jackknife and n_j else \
            (np.full((len(stats), n_units), np.nan) if jackknife else None)
        carried = np.vstack([p.carried() for p in live])
        yield Distributions(hat[back] if n_j else hat, boot[back], None if jack is None else jack[back], n_j,
                            n_units, carried[back])
