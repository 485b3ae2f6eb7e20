"""Paired statistical comparison of run dirs against a baseline (``cxrbench compare``).

Each run dir (``cxrbench evaluate`` / ``cxrbench score``) is read with :func:`cxrbench.runs.read_run`.
QA pairs are paired on their key (``study_id``, ``question_id``); every run must hold the
baseline's QA pairs (``intersect`` compares on those all runs share). The metrics are the
registry's, rebuilt from each run's per-item columns (:func:`run_statistics`), in the strata of
:func:`cxrbench.score.strata.comparison_strata`; the engine is
:func:`cxrbench.stats.comparison.compare_statistics`. :func:`compare_runs` writes into the
output folder, committed as one set:

  comparison.csv / .json   value of baseline and run, diff (run − baseline) with its paired
                           bootstrap CI, each applicable test, p-value, corrected p-value,
                           Cohen's d, significance, and whether the difference is better or worse
                           (the registry's ``higher_is_better``)
  comparison.md            the same, one line per comparison, in the seed's report format
  ablation_matrix.*        the seed's ablation matrix (16.2): each run's delta on the overall,
                           spatial and relational subsets

Comparable only: the raw attention entropy grows with the number of visual tokens (``ln N`` at
most), so it is left out of a comparison between runs whose token layouts differ (a scene-graph
model against the one-token ``no_scene_graph`` condition), and the report says so.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cxrbench.errors import CxrbenchError, DataError
from cxrbench.metrics import registry
from cxrbench.metrics.base import GenericStatistic
from cxrbench.runs import Run, read_run
from cxrbench.score.contract import qa_keys
from cxrbench.stats.comparison import TESTS, Comparison, ComparisonSettings, ablation_matrix, compare_statistics

UNIT_COLUMNS = {"study": "study_id", "patient": "subject_id"}
UNITS = ("auto", "study", "patient", "pair")
# metrics whose values depend on the number of visual tokens (compared only between equal layouts)
TOKEN_DEPENDENT = ("attention_entropy",)
TOKEN_COLUMN = "attention_tokens"


@dataclass(frozen=True)
class CompareOptions:
    settings: ComparisonSettings = field(default_factory=ComparisonSettings)
    unit: str = "auto"                   # auto: study when predictions carry study_id, else pair
    intersect: bool = False
    metrics: tuple[str, ...] = ()        # empty: every metric the runs have
    matrix_metric: str = "exact_match"
    matrix_test: str = "paired_bootstrap"
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")
        if self.matrix_test not in TESTS:
            raise ValueError(f"matrix_test must be one of {TESTS}, got {self.matrix_test!r}")


def unique_names(runs: list[Run]) -> None:
    """Runs are named by their ablation condition; clashes fall back to folder names."""
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = Path(r.path).resolve().name
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise CxrbenchError(f"runs have the same name ({', '.join(sorted(n for n in set(names) if names.count(n) > 1))}) "
                            "in metrics.json and as directory names: rename a run dir")


def align(baseline: Run, runs: list[Run], intersect: bool, notes: list[str]) -> list[str]:
    """QA-pair keys to compare, in the baseline's order; every run's frame is reordered to them.

    Differing QA sets fail (with the counts on each side) unless ``intersect``; reference
    answers and question types must agree on every compared pair. What ``intersect`` left out
    is appended to ``notes``."""
    base_keys = list(qa_keys(baseline.frame))
    keys_of = {id(r): list(qa_keys(r.frame)) for r in [baseline, *runs]}
    keep = set(base_keys)
    for run in runs:
        ids = set(keys_of[id(run)])
        only_base, only_run = len(set(base_keys) - ids), len(ids - set(base_keys))
        if (only_base or only_run) and not intersect:
            example = sorted((set(base_keys) - ids) or (ids - set(base_keys)))[0]
            raise CxrbenchError(
                f"{run.path}: QA pairs differ from the baseline {baseline.path}: {only_base} QA pair(s) "
                f"only in the baseline, {only_run} only in the run (e.g. {example}); pass --intersect to compare "
                f"on the {len(set(base_keys) & ids)} shared QA pairs")
        keep &= ids
    order = [k for k in base_keys if k in keep]
    for run in [baseline, *runs]:
        dropped = len(run.frame) - len(order)
        if dropped:
            notes.append(f"--intersect: {dropped} of {len(run.frame)} QA pairs of {run.name} are not in every "
                         "run and were left out")
    if not order:
        raise CxrbenchError("the runs share no QA pair with the baseline")
    for run in [baseline, *runs]:
        position = {k: i for i, k in enumerate(keys_of[id(run)])}
        run.frame = run.frame.iloc[[position[k] for k in order]].reset_index(drop=True)
    for run in runs:
        for col in ("answer", "question_type"):
            differ = run.frame[col].astype(str).to_numpy() != baseline.frame[col].astype(str).to_numpy()
            if differ.any():
                raise DataError(run.path / "predictions.parquet", order[int(np.flatnonzero(differ)[0])],
                                f"{int(differ.sum())} QA pair(s) have another {col!r} than in the baseline "
                                f"{baseline.path}: the runs were not made on the same questions and references")
    return order


def resampling_units(frame, unit: str, source: Path) -> tuple[np.ndarray | None, str]:
    """Cluster labels for the bootstrap and the unit actually used."""
    if unit == "pair":
        return None, "pair"
    if unit == "auto":
        if "study_id" not in frame.columns or frame["study_id"].isna().any():
            return None, "pair"
        unit = "study"
    col = UNIT_COLUMNS[unit]
    if col not in frame.columns:
        raise DataError(source / "predictions.parquet", None,
                        f"--unit {unit} needs a {col!r} column; use --unit pair to resample QA pairs")
    if frame[col].isna().any():
        raise DataError(source / "predictions.parquet", None,
                        f"{int(frame[col].isna().sum())} row(s) without {col}: every item needs a resampling unit")
    return frame[col].to_numpy(), unit


def run_statistics(run: Run) -> dict:
    """Every registered metric's statistic of a run, rebuilt from its per-item columns."""
    from cxrbench.score.statistics import statistics_from_predictions

    return statistics_from_predictions(run.frame, run.signatures)


def select_metrics(stats: dict, wanted: tuple[str, ...]) -> dict:
    if not wanted:
        return stats
    names = [m for w in wanted for m in w.split(",") if m]
    unknown = [m for m in names if m not in stats]
    if unknown:
        raise CxrbenchError(f"unknown metric(s) {', '.join(unknown)}; the baseline has {', '.join(stats)}")
    return {m: stats[m] for m in names}


def _same_token_layout(a: Run, b: Run) -> bool | None:
    if TOKEN_COLUMN not in a.frame.columns or TOKEN_COLUMN not in b.frame.columns:
        return None
    x, y = a.frame[TOKEN_COLUMN].to_numpy(dtype=float), b.frame[TOKEN_COLUMN].to_numpy(dtype=float)
    both = ~np.isnan(x) & ~np.isnan(y)
    return bool(np.array_equal(x[both], y[both]))


def comparable_statistics(baseline: Run, runs: list[Run], base_stats: dict, notes: list[str]) -> dict:
    """Each run's statistics of the baseline's metrics, without token-dependent metrics where
    the two runs' token layouts differ."""
    out = {}
    for r in runs:
        stats = {m: s for m, s in run_statistics(r).items() if m in base_stats}
        if _same_token_layout(baseline, r) is False:
            dropped = [m for m in TOKEN_DEPENDENT if m in stats]
            for m in dropped:
                stats.pop(m)
            if dropped:
                notes.append(f"{r.name}: {', '.join(dropped)} not compared with {baseline.name}: the runs attend "
                             "over different numbers of visual tokens, and raw entropy grows with that number")
        out[r.name] = stats
    return out


def direction(metric: str, diff: float, significant: bool) -> str:
    """``better`` / ``worse`` for a significant difference (by the metric's direction), else ``""``."""
    spec = registry.METRICS.get(metric)
    if not significant or diff != diff or diff == 0 or spec is None:
        return ""
    return "better" if (diff > 0) == spec.higher_is_better else "worse"


def compare_runs(baseline_dir: Path, run_dirs: list[Path], out_dir: Path, options: CompareOptions) -> Comparison:
    """Read, align and compare the runs; write every output into ``out_dir`` as one set."""
    from cxrbench import io
    from cxrbench.outputs import OutputDir
    from cxrbench.score.strata import comparison_strata
    from cxrbench.stats.comparison import COLUMNS, MATRIX_COLUMNS

    out = OutputDir.claim(out_dir, "cxrbench compare", overwrite=options.overwrite)   # before any work
    settings = options.settings
    baseline = read_run(baseline_dir)
    runs = [read_run(p) for p in run_dirs]
    unique_names([baseline, *runs])
    notes: list[str] = []
    order = align(baseline, runs, options.intersect, notes)
    clusters, unit = resampling_units(baseline.frame, options.unit, baseline.path)
    strata = comparison_strata(baseline.frame)
    base_stats = select_metrics(run_statistics(baseline), options.metrics)
    run_stats = comparable_statistics(baseline, runs, base_stats, notes)
    n_units = len(order) if clusters is None else len(np.unique(clusters))

    generic = [m for m, st in base_stats.items() if isinstance(st, GenericStatistic)]
    if generic:   # honest expectation-setting: these are recomputed on every resample
        print(f"note: {', '.join(generic)} are recomputed on every resample (no sufficient statistics): "
              "the slow part of this comparison; --metrics leaves them out, --n-resamples trades precision",
              file=sys.stderr)
    print(f"comparing {len(runs)} run(s) with {baseline.name} on {len(order)} QA pairs in {n_units} "
          f"{'QA pairs' if unit == 'pair' else unit + ' units'}, {len(strata)} strata, "
          f"{len(base_stats)} metrics", file=sys.stderr)
    comp = compare_statistics(base_stats, run_stats, strata=strata, clusters=clusters, baseline_name=baseline.name,
                              settings=settings, progress=options.progress)
    comp.notes[:0] = notes
    for row in comp.rows:
        row["direction"] = direction(row["metric"], row["diff"], row["significant"])
    if "relational" not in strata:
        comp.notes.append("no relational stratum: the baseline's predictions have no 'question' column")
    cells = ablation_matrix(comp, options.matrix_metric, options.matrix_test)
    if options.matrix_metric not in base_stats:
        comp.notes.append(f"the ablation matrix metric {options.matrix_metric!r} is not among the compared metrics: "
                          "its cells are empty (choose one with --matrix-metric)")

    prov = io.provenance("cxrbench compare", extra_packages=("statsmodels",),
                         inputs={r.name: {"run_dir": Path(r.path).resolve().name,
                                          "predictions_sha256": io.file_sha256(Path(r.path) / "predictions.parquet")}
                                 for r in [baseline, *runs]},
                         baseline=baseline.name, n_questions=len(order), unit=unit, n_units=n_units,
                         settings=vars(settings) | {"tests": list(settings.tests)})
    family = {"definition": comp.family_description(), "sizes": comp.families}
    staging = out.staging()
    columns = [*COLUMNS, "direction"]
    io.atomic_write_text(staging / "comparison.csv", _csv(comp.rows, columns))
    io.atomic_write_json(staging / "comparison.json", {"provenance": prov, "family": family, "kinds": comp.kinds,
                                                       "notes": comp.notes, "rows": comp.rows})
    header = [f"# Paired comparison against `{baseline.name}`", "",
              f"Runs: {', '.join(r.name for r in runs)}. {len(order)} QA pairs, resampling unit: {unit} "
              f"({n_units}); paired bootstrap with {settings.n_resamples} resamples, {settings.method} "
              f"{settings.confidence * 100:g}% CI, seed {settings.seed}."]
    io.atomic_write_text(staging / "comparison.md", comparison_markdown(comp, header))
    io.atomic_write_text(staging / "ablation_matrix.csv", _csv(cells, MATRIX_COLUMNS))
    io.atomic_write_json(staging / "ablation_matrix.json",
                         {"provenance": prov, "metric": options.matrix_metric, "test": options.matrix_test,
                          "family": f"{settings.correction} over the {len(cells)} cells (conditions × subsets)",
                          "cells": cells})
    io.atomic_write_text(staging / "ablation_matrix.md",
                         matrix_markdown(cells, baseline.name, options.matrix_metric, options.matrix_test, comp))
    out.commit()
    return comp


# ------------------------------------------------------------------------------ writing
def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "n/a" if p is None or p != p else ("<0.001" if p < 0.001 else f"{p:.3f}")


def comparison_markdown(comp: Comparison, header: list[str]) -> str:
    """One line per run × stratum × metric with the metric kind's primary test (seed 15.3)."""
    from cxrbench.stats.comparison import PRIMARY_TEST

    s = comp.settings
    lines = [*header, "",
             f"Multiple comparisons: {comp.family_description()}. `*`: significant after correction; "
             "better / worse by the metric's direction (lower is better for ECE and entropy).",
             "",
             "McNemar, paired t and Wilcoxon treat QA pairs as independent; pairs of one study are not, so their "
             "p-values are optimistic. The paired bootstrap resamples the chosen unit and is the test that "
             "respects it; its CI is the `Δ` column.", ""]
    lines += [f"- {n}" for n in comp.notes]
    by_run: dict[str, list[dict]] = {}
    for r in comp.rows:
        by_run.setdefault(r["run"], []).append(r)
    for run, rows in by_run.items():
        lines += ["", f"## {run} vs {rows[0]['baseline']}", "",
                  f"| stratum | metric | {rows[0]['baseline']} | {run} | Δ [{s.confidence * 100:g}% CI] | test | result "
                  f"| p (adj.) | d | |",
                  "|---|---|---:|---:|---|---|---|---:|---:|---|"]
        grouped: dict[tuple[str, str], list[dict]] = {}
        for r in rows:
            grouped.setdefault((r["stratum"], r["metric"]), []).append(r)
        for group in grouped.values():
            # the kind's primary test if it was run, else the paired bootstrap, else the first test
            rank = {PRIMARY_TEST[group[0]["kind"]]: 0, "paired_bootstrap": 1}
            r = min(group, key=lambda x: rank.get(x["test"], 2))
            star = " *" if r["significant"] else ""
            lines.append(f"| {r['stratum']} | {r['metric']} | {_fmt(r['value_baseline'])} | {_fmt(r['value_run'])} "
                         f"| {_fmt(r['diff'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {r['test']} "
                         f"| {r['report']} | {_fmt_p(r['p_adjusted'])}{star} | {_fmt(r['effect_size'], 2)} "
                         f"| {r.get('direction', '')} |")
    return "\n".join(lines) + "\n"


def matrix_markdown(cells: list[dict], baseline: str, metric: str, test: str, comp: Comparison) -> str:
    subsets = list(dict.fromkeys(c["subset"] for c in cells))
    base = {c["subset"]: c["value_baseline"] for c in cells if c["value_baseline"] == c["value_baseline"]}

    def pct(x):
        return "n/a" if x != x else f"{100 * x:.1f}%"

    def delta(c):
        if c["n"] == 0 or c["diff"] != c["diff"]:
            return "n/a"
        return (f"{100 * c['diff']:+.1f} [{100 * c['ci_low']:+.1f}, {100 * c['ci_high']:+.1f}]"
                + (" *" if c["significant"] else ""))

    s = comp.settings
    lines = [f"# Ablation matrix: {metric}", "",
             f"Δ in percentage points against `{baseline}` with the {s.confidence * 100:g}% paired bootstrap CI; "
             f"`*`: {test} p ≤ the {s.correction.capitalize()}-corrected α = {s.alpha:g} over the "
             f"{sum(1 for c in cells if c['p_value'] == c['p_value'])} cells of this matrix.", "",
             "| condition | " + " | ".join(subsets) + " |", "|---|" + "---:|" * len(subsets),
             f"| {baseline} (baseline) | " + " | ".join(pct(base.get(x, float('nan'))) for x in subsets) + " |"]
    for cond in dict.fromkeys(c["condition"] for c in cells):
        row = {c["subset"]: c for c in cells if c["condition"] == cond}
        lines.append(f"| {cond} | " + " | ".join(delta(row[x]) for x in subsets) + " |")
    return "\n".join(lines) + "\n"


def _csv(rows: list[dict], columns) -> str:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns)).to_csv(index=False, lineterminator="\n")
