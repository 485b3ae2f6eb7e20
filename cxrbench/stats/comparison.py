"""Paired comparison of runs against a baseline: the table behind ``cxrbench compare``.

The core is :func:`compare_statistics`, a function of statistic objects (one mapping of metric
name to statistic per run, all over the same items in the same order), so it can be used and
tested without any run directory. For every run × stratum × metric it gives the paired
bootstrap CI of ``diff = run − baseline`` and the applicable tests:

============  =========================================================  ==========================
kind          metrics                                                    tests
============  =========================================================  ==========================
binary        mean of per-item 0/1 outcomes (exact_match, pointing)      McNemar exact, χ², χ² cc
continuous    mean of per-item scores (token_f1, rouge_l, iou, ...)      paired t, Wilcoxon
aggregate     any other statistic (mcc, auroc, ece, kappa, bleu4, mAP)   (bootstrap only)
============  =========================================================  ==========================

and the paired bootstrap test for every metric. The kind is read from the statistic: a
per-item metric is a ``mean_stats``-shaped SufficientStats (columns: value, defined); it is
binary or continuous as its ``info["outcome"]`` declares (the metric registry's
``MetricSpec.outcome``), and, for hand-built statistics without one, binary when every defined
per-item value of every run is 0 or 1. The kind is decided once per
metric on all items, so a metric gets the same tests in every stratum.

Multiple comparisons: the p-values are corrected (Bonferroni or Holm) within *families*.
``family="metric"`` (default): one family per metric and test, made of all run × stratum
comparisons of that metric with that test, so adding a metric does not dilute the others.
``family="all"``: every test in the table is one family (most conservative).

Effect sizes (per-item metrics only): Cohen's d with the seed's pooled SD (``effect_size``)
and the paired d_z, of the run's per-item values against the baseline's.

Guards (``cxrbench.stats.guards``): every test of a row needs at least ``MIN_UNITS`` resampling
units carrying the metric in the stratum (either run), McNemar's χ² forms at least
``MIN_DISCORDANT`` discordant pairs; below that the test is undefined (statistic and p-value
NaN, never significant, not a member of any correction family) and ``note`` says why.

Draw: every stratum's paired bootstrap comes from one shared draw of all units
(``ComparisonSettings.draw = "shared"``) or from each stratum's own units (``"per_stratum"``);
see :mod:`cxrbench.stats.stratified`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from cxrbench.metrics.base import Statistic, SufficientStats
from cxrbench.stats import paired_tests
from cxrbench.stats.bootstrap import paired_bootstrap_strata
from cxrbench.stats.effect_size import cohens_d, cohens_dz
from cxrbench.stats.guards import discordant_note
from cxrbench.stats.multitest import CORRECTIONS, adjust_pvalues
from cxrbench.stats.report import format_paired_bootstrap
from cxrbench.stats.stratified import DRAWS

TESTS = ("paired_bootstrap", "mcnemar_exact", "mcnemar_chi2", "mcnemar_chi2_cc", "paired_t", "wilcoxon")
TESTS_FOR_KIND = {
    "binary": ("paired_bootstrap", "mcnemar_exact", "mcnemar_chi2", "mcnemar_chi2_cc"),
    "continuous": ("paired_bootstrap", "paired_t", "wilcoxon"),
    "aggregate": ("paired_bootstrap",),
}
# the test a one-line summary (Markdown, seed 15.3) shows for each kind
PRIMARY_TEST = {"binary": "mcnemar_chi2", "continuous": "paired_t", "aggregate": "paired_bootstrap"}
FAMILIES = ("metric", "all")
COLUMNS = ("baseline", "run", "stratum", "metric", "value_baseline", "value_run", "diff", "ci_low", "ci_high",
           "test", "statistic", "p_value", "p_adjusted", "effect_size", "significant",
           # details beyond the contract's columns
           "kind", "d_z", "n", "n_clusters", "n_undefined", "df", "family", "report", "note")


@dataclass(frozen=True)
class ComparisonSettings:
    n_resamples: int = 10_000
    confidence: float = 0.95
    method: str = "percentile"
    seed: int = 0
    alpha: float = 0.05
    correction: str = "bonferroni"
    family: str = "metric"
    tests: tuple[str, ...] = TESTS
    draw: str = "shared"

    def __post_init__(self) -> None:
        if self.draw not in DRAWS:
            raise ValueError(f"draw must be one of {DRAWS}, got {self.draw!r}")
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {CORRECTIONS}, got {self.correction!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"family must be one of {FAMILIES}, got {self.family!r}")
        unknown = set(self.tests) - set(TESTS)
        if unknown:
            raise ValueError(f"unknown tests {sorted(unknown)}; choose from {TESTS}")


@dataclass
class Comparison:
    """The comparison table (one dict per row, keys :data:`COLUMNS`) and what it was made of."""

    rows: list[dict]
    settings: ComparisonSettings
    kinds: dict[str, str]
    families: dict[str, int] = field(default_factory=dict)   # family -> number of defined tests
    notes: list[str] = field(default_factory=list)

    def family_description(self) -> str:
        s = self.settings
        what = ("one family per metric and test: all run × stratum comparisons of that metric with that test"
                if s.family == "metric" else "one family: every test in the table")
        return (f"{s.correction.capitalize()} correction at α = {s.alpha:g}, {what} "
                f"({len(self.families)} families, {sum(self.families.values())} tests with a defined p-value)")

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=list(COLUMNS))


def per_item_values(stat: Statistic) -> np.ndarray | None:
    """The per-item values of a ``mean_stats``-shaped statistic (NaN where undefined), else None.

    Recognised by layout: a SufficientStats with two columns (value, defined ∈ {0, 1}) whose
    reduce is the ratio of the two totals.
    """
    if not isinstance(stat, SufficientStats) or stat.stats.shape[1] != 2:
        return None
    value, defined = stat.stats[:, 0], stat.stats[:, 1]
    if not np.isin(defined, (0.0, 1.0)).all() or np.any(value[defined == 0] != 0):
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        probe = np.asarray(stat.reduce(np.array([[3.0, 4.0], [0.0, 0.0]])), dtype=np.float64)
    if probe.shape != (2,) or not np.isclose(probe[0], 0.75) or not np.isnan(probe[1]):
        return None
    return np.where(defined == 1, value, np.nan)


def metric_kind(stats: Sequence[Statistic]) -> str:
    """'binary', 'continuous' or 'aggregate' for one metric, from all runs' statistics.

    A per-item statistic's declared ``info["outcome"]`` (the metric registry's) decides; only
    statistics without one (built by hand) fall back to the values."""
    values = [per_item_values(s) for s in stats]
    if any(v is None for v in values):
        return "aggregate"
    declared = {s.info.get("outcome") for s in stats} - {None, ""}
    if len(declared) > 1:
        raise ValueError(f"runs declare different outcomes for {stats[0].name}: {sorted(declared)}")
    if declared:
        return declared.pop()
    defined = np.concatenate([v[~np.isnan(v)] for v in values])
    return "binary" if np.isin(defined, (0.0, 1.0)).all() else "continuous"


def compare_statistics(baseline: Mapping[str, Statistic], runs: Mapping[str, Mapping[str, Statistic]], *,
                       strata: Mapping[str, np.ndarray] | None = None, clusters=None,
                       baseline_name: str = "baseline", settings: ComparisonSettings | None = None,
                       progress: bool | None = None) -> Comparison:
    """Compare every run with the baseline on every stratum and metric.

    Parameters
    ----------
    baseline : metric name -> statistic, all over the same ``n`` items.
    runs : run name -> (metric name -> statistic) over the same items in the same order.
        Metrics missing from the baseline are ignored; a metric missing from a run is noted.
    strata : stratum name -> boolean mask over the items; default ``{"overall": all}``.
        Empty strata are noted and skipped.
    clusters : resampling unit label per item (e.g. study_id), None for item-level.
    settings : resamples, CI method and level, seed, α, correction, family, tests.

    Returns
    -------
    Comparison with one row per run × stratum × metric × applicable test, corrected p-values.
    """
    from tqdm.auto import tqdm

    settings = settings or ComparisonSettings()
    n = next(iter(baseline.values())).n if baseline else 0
    strata = dict(strata) if strata is not None else {"overall": np.ones(n, dtype=bool)}
    labels = None if clusters is None else np.asarray(clusters)
    notes: list[str] = []
    metrics = list(baseline)
    for run, stats in runs.items():
        missing = [m for m in metrics if m not in stats]
        if missing:
            notes.append(f"run {run!r} has no statistic for {', '.join(missing)}: not compared")
    kinds = {m: metric_kind([baseline[m], *(r[m] for r in runs.values() if m in r)]) for m in metrics}
    # per-item values of the per-item metrics, for the paired tests and effect sizes
    base_items = {m: per_item_values(baseline[m]) for m in metrics if kinds[m] != "aggregate"}
    run_items = {r: {m: per_item_values(st[m]) for m in base_items if m in st} for r, st in runs.items()}

    rows: list[dict] = []
    masks = {}
    for stratum, mask in strata.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n,):
            raise ValueError(f"stratum {stratum!r}: mask of shape {mask.shape} for {n} items")
        if mask.any():
            masks[stratum] = mask
        else:
            notes.append(f"stratum {stratum!r} has no items: skipped")
    per_stratum = paired_bootstrap_strata(baseline, {r: {m: s for m, s in st.items() if m in baseline}
                                                     for r, st in runs.items()},
                                          masks, labels, n_resamples=settings.n_resamples,
                                          confidence=settings.confidence, method=settings.method, seed=settings.seed,
                                          draw=settings.draw)
    not_applicable = 0
    for stratum, boot in tqdm(per_stratum, total=len(masks), desc="compare strata", leave=False,
                              disable=None if progress is None else not progress):
        mask = masks[stratum]
        for run, by_metric in boot.items():
            for metric, pb in by_metric.items():
                if np.isnan(pb.value_a) and np.isnan(pb.value_b):  # the metric has no item in this stratum
                    not_applicable += 1
                    continue
                pair = None
                if metric in base_items:
                    pair = (base_items[metric][mask], run_items[run][metric][mask])
                rows.extend(_rows_for(baseline_name, run, stratum, metric, kinds[metric], pb, pair, settings))
    if not_applicable:
        notes.append(f"{not_applicable} run × stratum × metric combinations where the metric is undefined for "
                     "both runs (no item it applies to) were left out")
    families = _correct(rows, settings)
    return Comparison(rows, settings, kinds, families, notes)


def _rows_for(baseline_name, run, stratum, metric, kind, pb, pair, settings) -> list[dict]:
    common = dict(baseline=baseline_name, run=run, stratum=stratum, metric=metric,
                  value_baseline=pb.value_a, value_run=pb.value_b, diff=pb.diff, ci_low=pb.ci_low,
                  ci_high=pb.ci_high, kind=kind, n=pb.n, n_clusters=pb.n_clusters, effect_size=np.nan,
                  d_z=np.nan, note=pb.note)
    a, b = pair if pair is not None else (None, None)
    if pair is not None:
        common.update(effect_size=cohens_d(b, a), d_z=cohens_dz(b, a))
    out = []
    for test in TESTS_FOR_KIND[kind]:
        if test not in settings.tests:
            continue
        if test == "paired_bootstrap":
            row = dict(common, test=test, statistic=pb.diff, p_value=pb.p_value, df=np.nan,
                       n_undefined=pb.n_undefined,
                       report=format_paired_bootstrap(pb.diff, pb.ci_low, pb.ci_high, pb.p_value, settings.confidence))
        else:
            res = _run_test(test, a, b)
            row = dict(common, test=test, statistic=res.statistic, p_value=res.p_value,
                       df=np.nan if res.df is None else res.df, n_undefined=0, report=res.report())
            row["n"] = res.n  # items with a defined value in both runs
            if not row["note"] and test.startswith("mcnemar_"):
                row["note"] = discordant_note(test, res.info["n10"], res.info["n01"])
        if row["note"]:  # too little data: the test is undefined, and says why
            row.update(statistic=np.nan, p_value=np.nan, report=f"undefined: {row['note']}")
        out.append(row)
    return out


def _run_test(test: str, a: np.ndarray, b: np.ndarray) -> paired_tests.TestResult:
    if test.startswith("mcnemar_"):
        return paired_tests.mcnemar(a, b, test.removeprefix("mcnemar_"))
    if test == "paired_t":
        return paired_tests.paired_t(a, b)
    return paired_tests.wilcoxon(a, b)


def _correct(rows: list[dict], settings: ComparisonSettings) -> dict[str, int]:
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        key = f"{row['metric']}/{row['test']}" if settings.family == "metric" else "all"
        row["family"] = key
        groups.setdefault(key, []).append(i)
    sizes = {}
    for key, idx in groups.items():
        adj, rej = adjust_pvalues([rows[i]["p_value"] for i in idx], settings.correction, settings.alpha)
        for i, pa, r in zip(idx, adj, rej):
            rows[i]["p_adjusted"] = float(pa)
            rows[i]["significant"] = bool(r)
        sizes[key] = int(np.count_nonzero(~np.isnan(adj)))
    return sizes


MATRIX_SUBSETS = ("overall", "spatial", "relational")
MATRIX_COLUMNS = ("condition", "subset", "metric", "value_baseline", "value_run", "diff", "ci_low", "ci_high",
                  "test", "p_value", "p_adjusted", "significant", "n", "n_clusters")


def ablation_matrix(comparison: Comparison, metric: str = "exact_match", test: str = "paired_bootstrap",
                    subsets: Sequence[str] = MATRIX_SUBSETS) -> list[dict]:
    """The seed's ablation matrix (16.2) in long form: each run's delta against the baseline on
    each subset, with CI, p-value and significance.

    The matrix is its own family: its p-values are corrected (the comparison's correction and α)
    over its defined cells, conditions × subsets, as the seed's "6 comparisons → α/6" example.
    Subsets absent from the comparison (e.g. no relational items) give cells with n = 0.
    """
    s = comparison.settings
    index = {(r["run"], r["stratum"]): r for r in comparison.rows if r["metric"] == metric and r["test"] == test}
    runs = list(dict.fromkeys(r["run"] for r in comparison.rows))
    cells = []
    for run in runs:
        for subset in subsets:
            r = index.get((run, subset))
            if r is None:
                cells.append(dict(condition=run, subset=subset, metric=metric, value_baseline=np.nan,
                                  value_run=np.nan, diff=np.nan, ci_low=np.nan, ci_high=np.nan, test=test,
                                  p_value=np.nan, n=0, n_clusters=0))
            else:
                cells.append({k: r[k] for k in ("value_baseline", "value_run", "diff", "ci_low", "ci_high",
                                                "test", "p_value", "n", "n_clusters")}
                             | dict(condition=run, subset=subset, metric=metric))
    adj, rej = adjust_pvalues([c["p_value"] for c in cells], s.correction, s.alpha)
    for c, pa, r in zip(cells, adj, rej):
        c["p_adjusted"], c["significant"] = float(pa), bool(r)
    return [{k: c[k] for k in MATRIX_COLUMNS} for c in cells]
