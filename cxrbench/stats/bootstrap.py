"""Bootstrap confidence intervals for metric statistics, single and paired.

``bootstrap_ci`` / ``bootstrap_many`` give the seed's "mean [95% CI: lo, hi]" for any
:class:`~cxrbench.metrics.base.SufficientStats` or :class:`~cxrbench.metrics.base.GenericStatistic`;
``paired_bootstrap`` / ``paired_bootstrap_many`` the CI and p-value of the difference between two
runs scored on the same items, resampled with the same weights (as sacrebleu's paired bootstrap).

Resampling unit: ``clusters`` holds one label per item (e.g. ``study_id``); ``None`` resamples
items (QA pairs). For MIMIC-shaped data resample studies: the QA pairs of one study share the
image and the scene graph, so their outcomes are correlated, and an item-level bootstrap
understates the uncertainty (docs/statistics.md).

Undefined values: a statistic may be NaN on some resamples (no positives drawn). Those resamples
are dropped, the interval is computed from the defined ones, and their number is reported in
``n_undefined``; it is never silently folded into the interval. Too few resampling units
(``cxrbench.stats.guards``): the interval carries a ``note``, and a paired test is undefined.

Strata: :func:`bootstrap_table` and :func:`paired_bootstrap_strata` take every stratum's
distribution from one shared draw of all units (``draw="shared"``, the default) or resample
each stratum on its own units (``draw="per_stratum"``); see :mod:`cxrbench.stats.stratified`.

References: Efron & Tibshirani (1993), *An Introduction to the Bootstrap*, ch. 13-16; Koehn
(2004), "Statistical significance tests for machine translation evaluation" (paired bootstrap).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator, Mapping

import numpy as np

from cxrbench.metrics.base import Statistic
from cxrbench.stats.guards import units_note
from cxrbench.stats.intervals import METHODS, bca_interval, percentile_interval
from cxrbench.stats.report import format_ci, metric_entry
from cxrbench.stats.resampling import Distributions, resample
from cxrbench.stats.stratified import DRAWS, resample_strata


@dataclass(frozen=True)
class BootstrapResult:
    """A statistic's value with its bootstrap confidence interval.

    ``n`` items of the stratum; ``n_clusters`` resampling units that carry the statistic (hold
    an item it is computed from); ``n_undefined`` of the ``n_resamples`` resamples gave an
    undefined (NaN) value and were left out of the interval; ``note``: why the interval is not
    to be trusted (too few units, ``cxrbench.stats.guards``), else "".
    """

    value: float
    ci_low: float
    ci_high: float
    n: int
    n_clusters: int
    method: str
    confidence: float
    n_resamples: int
    n_undefined: int = 0
    note: str = ""

    def to_dict(self) -> dict:
        """The run-dir ``metrics.json`` entry (:func:`~cxrbench.stats.report.metric_entry`:
        ``{"value", "ci": [lo, hi], "n"}``) plus the details."""
        d = asdict(self)
        for k in ("value", "ci_low", "ci_high", "n"):
            d.pop(k)
        return {**metric_entry(self.value, self, self.n), **d}

    def format(self, digits: int = 3) -> str:
        """``value [95% CI: lo, hi]`` (seed 15.3)."""
        return format_ci(self.value, self.ci_low, self.ci_high, self.confidence, digits)


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Paired bootstrap of ``diff = value_b - value_a`` (run minus baseline) on the same items.

    ``p_value`` is the two-sided bootstrap test of ``diff = 0``: the bootstrap distribution of
    the difference, shifted to the null, ``p = (1 + #{|δ* − δ̂| ≥ |δ̂|}) / (B + 1)`` over the
    ``B`` defined resamples (Efron & Tibshirani 1993, 16.4; the +1 as in sacrebleu).
    ``n_clusters``: resampling units that carry the metric in either run. Below
    ``guards.MIN_UNITS`` of them the test is undefined: ``p_value`` NaN, ``note`` says why (the
    interval is still given, for description).
    """

    value_a: float
    value_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    n_clusters: int
    method: str
    confidence: float
    n_resamples: int
    n_undefined: int = 0
    note: str = ""


def _check(method: str, confidence: float, n_resamples: int, draw: str = "shared") -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    if draw not in DRAWS:
        raise ValueError(f"draw must be one of {DRAWS}, got {draw!r}")


def _interval(boot: np.ndarray, hat: float, jack: np.ndarray | None, method: str,
              confidence: float) -> tuple[float, float]:
    if not np.isfinite(hat):
        return (np.nan, np.nan)
    if method == "bca":
        return bca_interval(boot, hat, jack, confidence)
    return percentile_interval(boot, confidence)


def bootstrap_many(statistics: Mapping[str, Statistic], clusters=None, *, n_resamples: int = 10_000,
                   confidence: float = 0.95, method: str = "percentile", seed=0,
                   batch: int | None = None) -> dict[str, BootstrapResult]:
    """Bootstrap CIs of several statistics of the same items from one shared set of resamples.

    Parameters
    ----------
    statistics : mapping name -> SufficientStats | GenericStatistic, all over the same items.
    clusters : array of one label per item (resampling unit), or None for item-level.
    n_resamples : number of bootstrap resamples B.
    confidence : two-sided confidence level.
    method : ``"percentile"`` or ``"bca"`` (jackknife over the resampling units).
    seed : seed of the numpy Generator (int, SeedSequence or None).
    batch : resamples per block (memory bound; the same meaning as scipy's ``batch``).

    Returns
    -------
    dict name -> BootstrapResult, in the order of ``statistics``.
    """
    _check(method, confidence, n_resamples)
    names = list(statistics)
    dist = resample([statistics[k] for k in names], clusters, n_resamples=n_resamples, seed=seed,
                    batch=batch, jackknife=(method == "bca"))
    return {name: _single(dist, i, method, confidence) for i, name in enumerate(names)}


def _single(dist: Distributions, i: int, method: str, confidence: float) -> BootstrapResult:
    boot = dist.theta_boot[i]
    jack = None if dist.theta_jack is None else dist.theta_jack[i]
    lo, hi = _interval(boot, dist.theta_hat[i], jack, method, confidence)
    units = dist.units_with(i)
    note = units_note(units, "interval") if np.isfinite(dist.theta_hat[i]) else ""
    return BootstrapResult(float(dist.theta_hat[i]), lo, hi, dist.n_items, units, method,
                           confidence, boot.size, int(np.isnan(boot).sum()), note)


def bootstrap_ci(statistic: Statistic, clusters=None, *, n_resamples: int = 10_000,
                 confidence: float = 0.95, method: str = "percentile", seed=0,
                 batch: int | None = None) -> BootstrapResult:
    """Bootstrap CI of one statistic; see :func:`bootstrap_many` for the parameters."""
    return bootstrap_many({statistic.name: statistic}, clusters, n_resamples=n_resamples,
                          confidence=confidence, method=method, seed=seed, batch=batch)[statistic.name]


def bootstrap_table(statistics: Mapping[str, Statistic], strata: Mapping[str, np.ndarray],
                    clusters=None, *, n_resamples: int = 10_000, confidence: float = 0.95,
                    method: str = "percentile", seed=0, progress: bool | None = None,
                    draw: str = "shared", batch: int | None = None) -> dict[str, dict[str, BootstrapResult]]:
    """CIs of every statistic in every stratum (e.g. ``overall`` and each question type).

    ``statistics`` cover all items (rows a metric does not apply to contribute nothing);
    ``strata`` maps a stratum name to a boolean item mask (strata may overlap).

    ``draw="shared"``: one draw of unit counts over all units per resample, shared by every
    stratum and statistic; a stratum's row equals ``bootstrap_many({k: s.restrict(mask) ...},
    clusters, seed=seed)`` (up to rounding). ``draw="per_stratum"``: each stratum bootstrapped
    on its own items and units with the same ``seed``; a row equals ``bootstrap_many({k:
    s.subset(mask) ...}, clusters[mask], seed=seed)``. The per-stratum sums are built in one pass
    over the items (``stratified.StrataSums``). Returns ``{stratum: {name: BootstrapResult}}``.
    """
    _check(method, confidence, n_resamples, draw)
    names = list(statistics)
    if not names:
        return {stratum: {} for stratum in strata}
    dists = resample_strata([statistics[k] for k in names], list(strata.values()), clusters,
                            n_resamples=n_resamples, seed=seed, batch=batch, jackknife=(method == "bca"),
                            draw=draw, progress=progress if draw == "shared" else False)
    if draw == "per_stratum" and progress is not False:
        from tqdm.auto import tqdm

        dists = tqdm(dists, total=len(strata), desc="bootstrap strata", leave=False,
                     disable=None if progress is None else not progress)
    return {stratum: {name: _single(dist, i, method, confidence) for i, name in enumerate(names)}
            for stratum, dist in zip(strata, dists)}


def paired_bootstrap_many(baseline: Mapping[str, Statistic], runs: Mapping[str, Mapping[str, Statistic]],
                          clusters=None, *, n_resamples: int = 10_000, confidence: float = 0.95,
                          method: str = "percentile", seed=0, batch: int | None = None,
                          ) -> dict[str, dict[str, PairedBootstrapResult]]:
    """Paired bootstrap of ``run - baseline`` for every run and every metric of ``baseline``.

    All statistics (the baseline's and every run's) are over the same items in the same order
    (align on question_id first) and see the same resamples, so every difference is paired and
    every run is compared on the same resampled datasets.

    Returns ``{run: {metric: PairedBootstrapResult}}``. A metric missing from a run is skipped.
    """
    _check(method, confidence, n_resamples)
    keys, flat = _flatten(baseline, runs)
    dist = resample(flat, clusters, n_resamples=n_resamples, seed=seed, batch=batch,
                    jackknife=(method == "bca"))
    return _paired_all(dist, keys, runs, method, confidence)


def paired_bootstrap_strata(baseline: Mapping[str, Statistic], runs: Mapping[str, Mapping[str, Statistic]],
                            strata: Mapping[str, np.ndarray], clusters=None, *, n_resamples: int = 10_000,
                            confidence: float = 0.95, method: str = "percentile", seed=0,
                            draw: str = "shared", batch: int | None = None, progress: bool | None = False,
                            ) -> Iterator[tuple[str, dict[str, dict[str, PairedBootstrapResult]]]]:
    """:func:`paired_bootstrap_many` in every stratum, yielding ``(stratum, {run: {metric:
    result}})``: from one shared draw of all units (``draw="shared"``) or on each stratum's own
    units with the same seed (``draw="per_stratum"``), as :func:`bootstrap_table`."""
    _check(method, confidence, n_resamples, draw)
    keys, flat = _flatten(baseline, runs)
    dists = resample_strata(flat, list(strata.values()), clusters, n_resamples=n_resamples, seed=seed,
                            batch=batch, jackknife=(method == "bca"), draw=draw, progress=progress)
    for stratum, dist in zip(strata, dists):
        yield stratum, _paired_all(dist, keys, runs, method, confidence)


def _flatten(baseline, runs) -> tuple[list[tuple[str | None, str]], list[Statistic]]:
    keys: list[tuple[str | None, str]] = [(None, m) for m in baseline]
    keys += [(r, m) for r, stats in runs.items() for m in stats if m in baseline]
    return keys, [baseline[m] if r is None else runs[r][m] for r, m in keys]


def _paired_all(dist: Distributions, keys, runs, method: str, confidence: float):
    pos = {k: i for i, k in enumerate(keys)}
    return {r: {m: _paired(dist, pos[(None, m)], pos[(r, m)], method, confidence) for m in stats if (None, m) in pos}
            for r, stats in runs.items()}


def _paired(dist: Distributions, ia: int, ib: int, method: str, confidence: float) -> PairedBootstrapResult:
    a, b = dist.theta_hat[ia], dist.theta_hat[ib]
    # Differences at rounding level are zero: two paths (or summation orders) computing the same
    # metric must not produce a "difference" and a p-value below 1.
    tol = 1e-12 * max(1.0, abs(a), abs(b)) if np.isfinite(a) and np.isfinite(b) else 0.0

    def snap(x):
        return np.where(np.abs(x) <= tol, 0.0, x)

    diff = float(snap(b - a))
    boot = snap(dist.theta_boot[ib] - dist.theta_boot[ia])
    jack = None if dist.theta_jack is None else snap(dist.theta_jack[ib] - dist.theta_jack[ia])
    lo, hi = _interval(boot, diff, jack, method, confidence)
    defined = boot[~np.isnan(boot)]
    units = dist.units_with(ia, ib)
    note = units_note(units, "test") if np.isfinite(diff) else ""
    if np.isfinite(diff) and defined.size and not note:
        p = (1.0 + np.count_nonzero(np.abs(defined - diff) >= abs(diff))) / (defined.size + 1.0)
    else:
        p = np.nan
    return PairedBootstrapResult(float(a), float(b), float(diff), lo, hi, float(p), dist.n_items, units,
                                 method, confidence, boot.size, int(boot.size - defined.size), note)


def paired_bootstrap(stat_a: Statistic, stat_b: Statistic, clusters=None, *, n_resamples: int = 10_000,
                     confidence: float = 0.95, method: str = "percentile", seed=0,
                     batch: int | None = None) -> PairedBootstrapResult:
    """Paired bootstrap of ``stat_b - stat_a`` (e.g. run minus baseline) on the same items."""
    return paired_bootstrap_many({"m": stat_a}, {"b": {"m": stat_b}}, clusters, n_resamples=n_resamples,
                                 confidence=confidence, method=method, seed=seed, batch=batch)["b"]["m"]
