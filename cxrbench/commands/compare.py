"""Paired statistical comparison of run dirs against a baseline.

    cxrbench compare BASELINE RUN [RUN ...] --out DIR

Each argument is a run dir (``cxrbench evaluate`` / ``cxrbench score``). QA pairs are paired on
(study_id, question_id); for every run × stratum (``overall``, ``spatial``, ``relational``, each
question type) × metric, DIR receives comparison.csv/.json/.md (paired bootstrap CI of the
difference, McNemar / paired t / Wilcoxon where they apply, corrected p-values, Cohen's d,
better/worse) and the seed's ablation matrix (ablation_matrix.*). The resampling unit is the
study by default (QA pairs of one study are correlated); the family of the multiple-comparison
correction is printed and recorded. See docs/statistics.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cxrbench.stats.comparison import FAMILIES, TESTS
from cxrbench.stats.intervals import METHODS
from cxrbench.stats.multitest import CORRECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", type=Path, help="baseline run dir (the full model of the ablation study)")
    parser.add_argument("runs", type=Path, nargs="+", help="run dirs to compare with the baseline")
    parser.add_argument("--out", type=Path, required=True, help="output dir for comparison.* and ablation_matrix.*")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (never deletes others' files)")
    parser.add_argument("--intersect", action="store_true",
                        help="compare on the QA pairs all runs share instead of failing when they differ")
    parser.add_argument("--metrics", nargs="+", metavar="NAME",
                        help="metrics to compare (names or comma-separated lists; default: all the runs have)")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--unit", choices=("auto", "study", "patient", "pair"), default="auto",
                        help="resampling unit: study_id, subject_id or the QA pair; auto = study when "
                             "predictions carry study_id, else pair (default auto)")
    parser.add_argument("--method", choices=METHODS, default="percentile", help="bootstrap CI (default percentile)")
    parser.add_argument("--ci-draw", choices=("shared", "per-stratum"), default="shared",
                        help="shared: every stratum's paired bootstrap from one draw of units; per-stratum: each "
                             "stratum resampled on its own units (docs/statistics.md)")
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
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from cxrbench.compare import CompareOptions, compare_runs
    from cxrbench.errors import CxrbenchError
    from cxrbench.stats.comparison import ComparisonSettings

    if args.n_resamples < 1:
        raise CxrbenchError(f"--n-resamples must be at least 1, got {args.n_resamples}")
    for name in ("confidence", "alpha"):
        if not 0 < getattr(args, name) < 1:
            raise CxrbenchError(f"--{name} must lie strictly between 0 and 1, got {getattr(args, name)}")
    settings = ComparisonSettings(n_resamples=args.n_resamples, confidence=args.confidence, method=args.method,
                                  seed=args.seed, alpha=args.alpha, correction=args.correction,
                                  family=args.family, tests=tuple(args.tests), draw=args.ci_draw.replace("-", "_"))
    options = CompareOptions(settings=settings, unit=args.unit, intersect=args.intersect,
                             metrics=tuple(args.metrics or ()), matrix_metric=args.matrix_metric,
                             matrix_test=args.matrix_test, overwrite=args.overwrite, progress=not args.no_progress)
    comp = compare_runs(args.baseline, list(args.runs), args.out, options)
    print(f"family: {comp.family_description()}")
    for note in comp.notes:
        print(f"note: {note}")
    n_sig = sum(r["significant"] for r in comp.rows)
    print(f"{n_sig} of {len(comp.rows)} tests significant; wrote comparison.{{csv,json,md}} and "
          f"ablation_matrix.{{csv,json,md}} to {args.out}")
    return 0
