"""Paired statistical comparison of run dirs against a baseline.

    cxrbench compare BASELINE RUN [RUN ...] --out DIR

Each argument is a run dir (``cxrbench evaluate`` / ``cxrbench score``: ``predictions.parquet``
and ``metrics.json``). Items are paired on ``question_id``; every run must hold the baseline's
questions (``--intersect`` compares on the questions all runs share). For every run × stratum
(``overall``, ``spatial``, ``relational``, each question type) × metric, DIR receives:

  comparison.csv / .json   value of baseline and run, diff (run − baseline) with its paired
                           bootstrap CI, each applicable test (McNemar for binary per-item
                           metrics, paired t and Wilcoxon for continuous ones, the paired
                           bootstrap for all), p-value, corrected p-value, Cohen's d, significance
  comparison.md            the same, one line per comparison, in the seed's report format
  ablation_matrix.*        the seed's ablation matrix (16.2): each run's delta on the overall,
                           spatial and relational subsets (table and figure data)

The resampling unit is the study by default (QA pairs of one study are correlated); the family
of the multiple-comparison correction is printed and recorded. See docs/statistics.md.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxrbench.errors import CxrbenchError, DataError
from cxrbench.metrics.base import SufficientStats
from cxrbench.stats.comparison import (FAMILIES, PRIMARY_TEST, TESTS, Comparison, ComparisonSettings,
                                       ablation_matrix, compare_statistics)
from cxrbench.stats.intervals import METHODS
from cxrbench.stats.multitest import CORRECTIONS

REQUIRED_COLUMNS = ("question_id", "question_type", "answer", "prediction")
UNIT_COLUMNS = {"study": "study_id", "patient": "subject_id"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, help="baseline run dir (the full model of the ablation study)")
    parser.add_argument("runs", type=Path, nargs="+", help="run dirs to compare with the baseline")
    parser.add_argument("--out", type=Path, required=True, help="output dir for comparison.* and ablation_matrix.*")
    parser.add_argument("--intersect", action="store_true",
                        help="compare on the questions all runs share instead of failing when they differ")
    parser.add_argument("--metrics", nargs="+", metavar="NAME",
                        help="metrics to compare (names or comma-separated lists; default: all the runs have)")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--unit", choices=("auto", "study", "patient", "pair"), default="auto",
                        help="resampling unit: study_id, subject_id or the QA pair; auto = study when "
                             "predictions carry study_id, else pair (default auto)")
    parser.add_argument("--method", choices=METHODS, default="percentile", help="bootstrap CI (default percentile)")
    parser.add_argument("--confidence", type=float, default=0.95, help="CI level (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (default 0.05)")
    parser.add_argument("--correction", choices=CORRECTIONS, default="bonferroni",
                        help="multiple-comparison correction (default bonferroni, as the seed)")
    parser.add_argument("--family", choices=FAMILIES, default="metric",
                        help="correction family: 'metric' = all run × stratum comparisons of one metric with "
                             "one test (default); 'all' = every test in the table")
    parser.add_argument("--tests", nargs="+", choices=TESTS, default=list(TESTS), metavar="TEST",
                        help=f"tests to run where applicable (default all: {', '.join(TESTS)})")
    parser.add_argument("--matrix-metric", default="exact_match", help="metric of the ablation matrix")
    parser.add_argument("--matrix-test", choices=TESTS, default="paired_bootstrap",
                        help="test whose p-value the ablation matrix shows (default the cluster-level "
                             "paired bootstrap, consistent with its CI)")


# ------------------------------------------------------------------------------ reading runs
@dataclass
class Run:
    name: str
    path: Path
    frame: "object"          # pandas DataFrame, one row per QA pair
    metrics_json: dict


def read_run(path: Path) -> Run:
    """Read a run dir's predictions (validated) and metrics.json (for its name)."""
    import json

    import pandas as pd

    pred = Path(path) / "predictions.parquet"
    if not pred.is_file():
        raise DataError(path, None, "not a run dir: predictions.parquet is missing")
    frame = pd.read_parquet(pred)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(pred, None, f"missing required column(s) {', '.join(missing)}")
    frame["question_id"] = frame["question_id"].astype(str)
    dup = frame["question_id"].duplicated(keep=False)
    if dup.any():
        first = frame.loc[dup, "question_id"].iloc[0]
        raise DataError(pred, first, f"duplicate question_id ({int(dup.sum())} rows share an id)")
    metrics_path = Path(path) / "metrics.json"
    metrics_json = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    prov = metrics_json.get("provenance") or {}
    name = prov.get("ablation_condition") or metrics_json.get("ablation_condition") or Path(path).resolve().name
    return Run(str(name), Path(path), frame.reset_index(drop=True), metrics_json)


def _unique_names(runs: list[Run]) -> None:
    names = [r.name for r in runs]
    for r in runs:
        if names.count(r.name) > 1:
            r.name = Path(r.path).resolve().name
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise CxrbenchError(f"runs have the same name ({', '.join(sorted(n for n in set(names) if names.count(n) > 1))}) "
                            "in metrics.json and as directory names: rename a run dir")


def align(baseline: Run, runs: list[Run], intersect: bool, notes: list[str]) -> list[str]:
    """Question ids to compare, in the baseline's order; every run's frame is reordered to them.

    Differing question sets fail (with the counts on each side) unless ``intersect``; reference
    answers and question types must agree on every compared question. What ``intersect`` left
    out is appended to ``notes``.
    """
    base_ids = baseline.frame["question_id"]
    keep = set(base_ids)
    for run in runs:
        ids = set(run.frame["question_id"])
        only_base, only_run = len(set(base_ids) - ids), len(ids - set(base_ids))
        if (only_base or only_run) and not intersect:
            example = sorted((set(base_ids) - ids) or (ids - set(base_ids)))[0]
            raise CxrbenchError(
                f"{run.path}: question set differs from the baseline {baseline.path}: {only_base} question_id(s) "
                f"only in the baseline, {only_run} only in the run (e.g. {example}); pass --intersect to compare "
                f"on the {len(set(base_ids) & ids)} shared questions")
        keep &= ids
    order = [q for q in base_ids if q in keep]
    for run in [baseline, *runs]:
        dropped = len(run.frame) - len(order)
        if dropped:
            notes.append(f"--intersect: {dropped} of {len(run.frame)} questions of {run.name} are not in every "
                         "run and were left out")
    if not order:
        raise CxrbenchError("the runs share no question_id with the baseline")
    for run in [baseline, *runs]:
        run.frame = run.frame.set_index("question_id", drop=False).loc[order].reset_index(drop=True)
    for run in runs:
        for col in ("answer", "question_type"):
            differ = (run.frame[col].astype(str).to_numpy() != baseline.frame[col].astype(str).to_numpy())
            if differ.any():
                qid = run.frame["question_id"][np.flatnonzero(differ)[0]]
                raise DataError(run.path / "predictions.parquet", qid,
                                f"{int(differ.sum())} question(s) have another {col!r} than in the baseline "
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


def strata_masks(frame) -> dict[str, np.ndarray]:
    """overall, spatial, relational (when computable) and each question type, in registry order."""
    from cxrbench import questions

    qtype = frame["question_type"].astype(str).map(questions.normalize_question_type).to_numpy()
    entries = {qt: questions.get(qt) for qt in np.unique(qtype)}
    strata = {"overall": np.ones(len(frame), dtype=bool),
              "spatial": np.isin(qtype, [qt for qt, e in entries.items() if e is not None and e.spatial])}
    relational = relational_mask(frame)
    if relational is not None:
        strata["relational"] = relational
    rank = {q.code: i for i, q in enumerate(questions.QUESTION_TYPES)}
    for qt in sorted(entries, key=lambda q: (rank.get(q, len(rank)), q)):
        strata[qt] = qtype == qt
    return strata


def relational_mask(frame) -> np.ndarray | None:
    """Items whose question ``cxrbench.metrics.relational`` flags as relational (at least one
    relation edge in its parse; ``question_flags`` parses them in one batch); None without a
    ``question`` column."""
    if "question" not in frame.columns:
        return None
    from cxrbench.metrics.relational import question_flags

    return np.asarray(question_flags(frame["question"].fillna("").astype(str).tolist())["relational"], dtype=bool)


def run_statistics(frame) -> dict:
    from cxrbench.score import statistics_from_predictions

    return statistics_from_predictions(frame)


def select_metrics(stats: dict, wanted: list[str] | None) -> dict:
    if not wanted:
        return stats
    names = [m for w in wanted for m in w.split(",") if m]
    unknown = [m for m in names if m not in stats]
    if unknown:
        raise CxrbenchError(f"unknown metric(s) {', '.join(unknown)}; the baseline has {', '.join(stats)}")
    return {m: stats[m] for m in names}


# ------------------------------------------------------------------------------ writing
def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or x != x else f"{x:.{digits}f}"


def _fmt_p(p: float) -> str:
    return "n/a" if p is None or p != p else ("<0.001" if p < 0.001 else f"{p:.3f}")


def comparison_markdown(comp: Comparison, header: list[str]) -> str:
    """One line per run × stratum × metric with the metric kind's primary test (seed 15.3)."""
    s = comp.settings
    lines = [*header, "",
             f"Multiple comparisons: {comp.family_description()}. `*`: significant after correction.",
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
                  f"| p (adj.) | d |",
                  "|---|---|---:|---:|---|---|---|---:|---:|"]
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
                         f"| {r['report']} | {_fmt_p(r['p_adjusted'])}{star} | {_fmt(r['effect_size'], 2)} |")
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


def run(args: argparse.Namespace) -> int:
    from cxrbench import io
    from cxrbench.stats.comparison import COLUMNS, MATRIX_COLUMNS

    if args.n_resamples < 1:
        raise CxrbenchError(f"--n-resamples must be at least 1, got {args.n_resamples}")
    for name in ("confidence", "alpha"):
        if not 0 < getattr(args, name) < 1:
            raise CxrbenchError(f"--{name} must lie strictly between 0 and 1, got {getattr(args, name)}")
    settings = ComparisonSettings(n_resamples=args.n_resamples, confidence=args.confidence, method=args.method,
                                  seed=args.seed, alpha=args.alpha, correction=args.correction,
                                  family=args.family, tests=tuple(args.tests))
    baseline = read_run(args.baseline)
    runs = [read_run(p) for p in args.runs]
    _unique_names([baseline, *runs])
    notes: list[str] = []
    order = align(baseline, runs, args.intersect, notes)
    clusters, unit = resampling_units(baseline.frame, args.unit, baseline.path)
    strata = strata_masks(baseline.frame)
    base_stats = select_metrics(run_statistics(baseline.frame), args.metrics)
    run_stats = {r.name: {m: s for m, s in run_statistics(r.frame).items() if m in base_stats} for r in runs}
    n_units = len(order) if clusters is None else len(np.unique(clusters))

    generic = [m for m, st in base_stats.items() if not isinstance(st, SufficientStats)]
    if generic:  # honest expectation-setting: these are recomputed on every resample
        print(f"note: {', '.join(generic)} are recomputed on every resample (no sufficient statistics): "
              "the slow part of this comparison; --metrics leaves them out, --n-resamples trades precision",
              file=sys.stderr)
    print(f"comparing {len(runs)} run(s) with {baseline.name} on {len(order)} questions in {n_units} "
          f"{'QA pairs' if unit == 'pair' else unit + ' units'}, {len(strata)} strata, "
          f"{len(base_stats)} metrics", file=sys.stderr)
    comp = compare_statistics(base_stats, run_stats, strata=strata, clusters=clusters, baseline_name=baseline.name,
                              settings=settings)
    comp.notes[:0] = notes
    if "relational" not in strata:
        comp.notes.append("no relational stratum: the baseline's predictions have no 'question' column")
    cells = ablation_matrix(comp, args.matrix_metric, args.matrix_test)
    if args.matrix_metric not in base_stats:
        comp.notes.append(f"the ablation matrix metric {args.matrix_metric!r} is not among the compared metrics: "
                          "its cells are empty (choose one with --matrix-metric)")

    prov = io.provenance("cxrbench compare", extra_packages=("statsmodels",),
                         inputs={r.name: {"run_dir": Path(r.path).resolve().name,
                                          "predictions_sha256": io.file_sha256(Path(r.path) / "predictions.parquet")}
                                 for r in [baseline, *runs]},
                         baseline=baseline.name, n_questions=len(order), unit=unit, n_units=n_units,
                         settings=vars(settings) | {"tests": list(settings.tests)})
    family = {"definition": comp.family_description(), "sizes": comp.families}
    out = args.out
    io.atomic_write_text(out / "comparison.csv", _csv(comp.rows, COLUMNS))
    io.atomic_write_json(out / "comparison.json", {"provenance": prov, "family": family, "kinds": comp.kinds,
                                                   "notes": comp.notes, "rows": comp.rows})
    header = [f"# Paired comparison against `{baseline.name}`", "",
              f"Runs: {', '.join(r.name for r in runs)}. {len(order)} questions, resampling unit: {unit} "
              f"({n_units}); paired bootstrap with {settings.n_resamples} resamples, {settings.method} "
              f"{settings.confidence * 100:g}% CI, seed {settings.seed}."]
    io.atomic_write_text(out / "comparison.md", comparison_markdown(comp, header))
    io.atomic_write_text(out / "ablation_matrix.csv", _csv(cells, MATRIX_COLUMNS))
    io.atomic_write_json(out / "ablation_matrix.json",
                         {"provenance": prov, "metric": args.matrix_metric, "test": args.matrix_test,
                          "family": f"{settings.correction} over the {len(cells)} cells (conditions × subsets)",
                          "cells": cells})
    io.atomic_write_text(out / "ablation_matrix.md",
                         matrix_markdown(cells, baseline.name, args.matrix_metric, args.matrix_test, comp))

    n_sig = sum(r["significant"] for r in comp.rows)
    print(f"family: {comp.family_description()}")
    for note in comp.notes:
        print(f"note: {note}")
    print(f"{n_sig} of {len(comp.rows)} tests significant; wrote comparison.{{csv,json,md}} and "
          f"ablation_matrix.{{csv,json,md}} to {out}")
    return 0
