"""Question types where the scene graph does not help or hurts (design 17.1 category 3).

The run (e.g. ``full``) against a baseline without the graph (``no_scene_graph``), per question
type, on exact match: the paired comparison of :mod:`cxrbench.compare` (the same alignment on the
QA-pair key, the same statistics, the study-level paired bootstrap and McNemar's exact test),
with diff = run − baseline and the p-values corrected per test over the question types. A type
is ``helps`` / ``hurts`` when the corrected test rejects with a positive / negative difference,
``no_benefit`` otherwise; ``delta_le_zero`` marks the design's "Δ accuracy ≈ 0 or negative" by the
point estimate.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

METRIC = "exact_match"
TESTS = ("paired_bootstrap", "mcnemar_exact")
COLUMNS = ("baseline", "run", "stratum", "metric", "test", "value_baseline", "value_run", "diff", "ci_low", "ci_high",
           "p_value", "p_adjusted", "significant", "n", "n_clusters", "note", "effect", "delta_le_zero")


def graph_benefit(run_dir: Path, baseline_dir: Path, *, unit: str = "study", n_resamples: int = 10_000, seed: int = 0,
                  alpha: float = 0.05, correction: str = "bonferroni") -> tuple[pd.DataFrame, list[str]]:
    """(rows per question type × test, notes)."""
    from cxrbench import questions
    from cxrbench.compare import align, resampling_units, run_statistics, unique_names
    from cxrbench.runs import read_run
    from cxrbench.stats.comparison import ComparisonSettings, compare_statistics

    run, base = read_run(run_dir), read_run(baseline_dir)
    unique_names([base, run])
    notes: list[str] = []
    align(base, [run], False, notes)
    clusters, _ = resampling_units(base.frame, unit, base.path)
    qtype = base.frame["question_type"].astype(str).map(questions.normalize_question_type).to_numpy()
    strata = {qt: qtype == qt for qt in sorted(set(qtype))}
    settings = ComparisonSettings(n_resamples=n_resamples, seed=seed, alpha=alpha, correction=correction, tests=TESTS)
    comp = compare_statistics({METRIC: run_statistics(base)[METRIC]}, {run.name: {METRIC: run_statistics(run)[METRIC]}},
                              strata=strata, clusters=clusters, baseline_name=base.name, settings=settings,
                              progress=False)
    frame = pd.DataFrame(comp.rows)
    frame["effect"] = [("helps" if d > 0 else "hurts") if sig else "no_benefit"
                       for d, sig in zip(frame["diff"], frame["significant"])]
    frame["delta_le_zero"] = frame["diff"] <= 0
    return frame[list(COLUMNS)], notes + comp.notes
