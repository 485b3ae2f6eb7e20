"""Score a predictions file from any model: per-item scores and metrics.json with bootstrap CIs.

    cxrbench score PREDICTIONS --out RUN_DIR [--bertscore-model PATH --bertscore-layers N]
                   [--umls-index PATH] [--n-resamples 10000] [--unit study_id] [--seed 0]
                   [--ci-method percentile|bca] [--ci-draw shared|per-stratum] [--skip METRIC ...]

PREDICTIONS is JSONL, CSV or Parquet with at least ``question_id``, ``question_type``,
``answer`` (reference) and ``prediction``; ``study_id`` keys each QA pair with its question id
(in MIMIC-Ext-CXR-QBA a question id recurs in every study) and is the default resampling unit.
The optional columns of docs/contracts.md §3 (``head``, ``label_true``/``label_pred``,
``score``, ``probs``, ``confidence``, ``boxes_true``/``boxes_pred``/``box_scores``,
``regions_true``/``regions_pred``, ``image_width``/``image_height``, ``region_category``,
``question``, ``answer_entities``, ``plausibility``, ``attention_entropy``) switch on the
metrics that need them (``cxrbench.metrics.registry``). Writes RUN_DIR/predictions.parquet (the
input plus one column per per-item metric and ``correct``) and RUN_DIR/metrics.json
(``overall``, ``by_question_type``, ``by_head``, ``by_region_category``; each metric
``{value, ci, n}``; ``provenance`` with every metric's signature and the bootstrap settings;
``warnings``), together (a kill leaves the old pair or the new one).

Bad input is an error naming the file, the QA pair and the problem (missing columns, duplicate
keys, empty references, labels outside their head's classes, probabilities outside [0, 1],
malformed boxes) or, where a run can still be scored honestly, a counted warning in
metrics.json with example keys (empty predictions, NaN confidences, boxes outside the image,
unparseable yes/no answers).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cxrbench.metrics import registry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="JSONL, CSV or Parquet with question_id, question_type, answer, prediction")
    parser.add_argument("--out", required=True, help="run directory to write predictions.parquet and metrics.json")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (never deletes others' files)")
    parser.add_argument("--bertscore-model", default=None,
                        help="local model directory for BERTScore (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--bertscore-layers", type=int, default=None, help="BERTScore layer (default 6 for MiniLM)")
    parser.add_argument("--umls-index", default=None, help="a full QuickUMLS index directory (default: shipped table)")
    add_bootstrap_arguments(parser)
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(registry.METRICS), metavar="METRIC",
                        help="metrics not to compute (e.g. bertscore_f1 on a CPU-only quick look)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_bootstrap_arguments(parser: argparse.ArgumentParser) -> None:
    """The CI options score and evaluate share."""
    parser.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (0: no CIs)")
    parser.add_argument("--unit", default="study_id", help="resampling unit column: study_id, subject_id, question_id")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--ci-method", choices=("percentile", "bca"), default="percentile")
    parser.add_argument("--ci-draw", choices=("shared", "per-stratum"), default="shared",
                        help="shared: every stratum's CI from one draw of units; per-stratum: each stratum "
                             "resampled on its own units (docs/statistics.md)")
    parser.add_argument("--confidence", type=float, default=0.95)


def bootstrap_options(args: argparse.Namespace) -> dict:
    return {"n_resamples": args.n_resamples, "unit": args.unit, "seed": args.seed, "ci_method": args.ci_method,
            "ci_draw": args.ci_draw.replace("-", "_"), "confidence": args.confidence}


def run(args: argparse.Namespace) -> int:
    from cxrbench.errors import CxrbenchError
    from cxrbench.score import ScoreOptions, summary_line
    from cxrbench.runs import score_file

    try:
        options = ScoreOptions(bertscore_model=args.bertscore_model, bertscore_layers=args.bertscore_layers,
                               umls_index=args.umls_index, skip=tuple(args.skip), source=str(args.predictions),
                               progress=not args.no_progress, **bootstrap_options(args))
    except ValueError as err:
        raise CxrbenchError(str(err)) from None
    metrics = score_file(Path(args.predictions), Path(args.out), options, overwrite=args.overwrite)
    n_warn = sum(w["count"] for w in metrics["warnings"].values())
    print(f"scored {metrics['provenance']['n_items']} items -> {args.out}/metrics.json "
          f"({summary_line(metrics)}; {n_warn} warning(s))")
    return 0
