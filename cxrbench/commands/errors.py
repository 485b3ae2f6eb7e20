"""Error analysis of a run dir (design 17.1-17.2).

    cxrbench errors RUN [--baseline RUN] [--index INDEX] [--data ROOT] --out DIR

RUN is a run dir of `cxrbench evaluate` (or `score`). DIR (docs/contracts.md §8) receives
error rates per question type, head, region category and the answer box's largest IoU with its
neighbours (binned, with a correlation analysis); the propagation of scene-graph errors (from the
generator's clean truth, ROOT/synthetic_truth, on synthetic data; the CheXpert-disagreement
proxy on real data) against the design's target of under 50% and the error rate of clean
questions; with --baseline (e.g. the no_scene_graph run), the question types where the scene
graph does not help or hurts (paired tests, corrected); and the questions with plausibility
below 0.35 with overlays. Tables as Parquet/CSV, summary.json and errors.md. See docs/ablation.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cxrbench.stats.multitest import CORRECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="run dir (cxrbench evaluate)")
    parser.add_argument("--baseline", type=Path, help="run dir of a model without the scene graph (no_scene_graph)")
    parser.add_argument("--index", type=Path, help="index the run was evaluated on (default: RUN/index)")
    parser.add_argument("--data", type=Path,
                        help="dataset root: its synthetic_truth/ (default: beside the index's releases), and its index "
                             "built into OUT/index when there is no --index nor RUN/index")
    parser.add_argument("--out", type=Path, required=True, help="output dir")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--unit", choices=("study", "patient", "pair"), default="study",
                        help="resampling unit (default study)")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (default 0.05)")
    parser.add_argument("--correction", choices=CORRECTIONS, default="bonferroni",
                        help="correction over the question types of --baseline's comparison (default bonferroni)")
    parser.add_argument("--n-overlays", type=int, default=20, help="overlays of misaligned questions (default 20)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (never deletes others' files)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import sys

    from cxrbench.error_analysis.report import ErrorOptions, analyze_run
    from cxrbench.errors import CxrbenchError

    try:
        options = ErrorOptions(n_resamples=args.n_resamples, seed=args.seed, unit=args.unit, alpha=args.alpha,
                               correction=args.correction, n_overlays=args.n_overlays, overwrite=args.overwrite,
                               progress=not args.no_progress)
    except ValueError as err:
        raise CxrbenchError(str(err)) from None
    summary = analyze_run(args.run, args.out, options, baseline_dir=args.baseline, index=args.index, data=args.data)
    prop = {r["kind"]: r for r in summary["propagation"]["rows"]}
    any_row = prop["any"]
    print(f"{summary['n_errors']} errors in {summary['n_items']} QA pairs; scene-graph errors "
          f"({summary['propagation']['source']}) touch {any_row['n']} QA pairs, {any_row['n_errors']} answered wrong; "
          f"{summary['misaligned']['n_misaligned']} misaligned; wrote {args.out}", file=sys.stderr)
    return 0
