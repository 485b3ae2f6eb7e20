"""Per-pathology CheXpert report of a run dir (cxrbench.reports.chexpert).

    cxrbench chexpert RUN_DIR [--labels auto|gold|automatic] [--threshold 0.5]
                      [--n-resamples 10000] [--seed 0] [--unit study_id|subject_id]

Writes RUN_DIR/chexpert_report.{json,csv,md}: the 14 classes' accuracy, sensitivity,
specificity, PPV, NPV, F1, MCC, kappa and AUROC with bootstrap CIs against the radiologist
(or automatic) labels, beside the seed's targets, and the QA-vs-CheXpert consistency check.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory holding predictions.parquet (cxrbench evaluate / score)")
    parser.add_argument("--labels", choices=("auto", "gold", "automatic"), default="auto",
                        help="reference labels: radiologist (gold), CheXpert labeler (automatic), "
                             "or gold where the run has them (auto)")
    parser.add_argument("--threshold", type=float, default=0.5, help="probability threshold of the auxiliary head")
    parser.add_argument("--unit", choices=("study_id", "subject_id"), default="study_id",
                        help="bootstrap resampling unit")
    parser.add_argument("--n-resamples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    from cxrbench.errors import CxrbenchError
    from cxrbench.io import file_sha256, provenance
    from cxrbench.reports.chexpert import ChexpertOptions, write_report
    from cxrbench.runs import PREDICTIONS, read_run

    run = read_run(args.run_dir)
    path = Path(args.run_dir) / PREDICTIONS
    options = ChexpertOptions(labels=args.labels, threshold=args.threshold, unit=args.unit,
                              n_resamples=args.n_resamples, seed=args.seed)
    prov = provenance("cxrbench chexpert", inputs={"predictions": {"name": path.name, "sha256": file_sha256(path)}})
    report = write_report(args.run_dir, run.frame, options, provenance=prov)
    if report is None:
        raise CxrbenchError(f"{path}: no CheXpert labels (chexpert_gold / chexpert_auto / chexpert_true)")
    print(f"wrote {args.run_dir}/chexpert_report.{{json,csv,md}} ({report['reference']['kind']} labels, "
          f"{report['counts']['studies_evaluated']} studies)")
    return 0
