"""The ablation study: train every condition × seed, evaluate, compare with `full`, summarise.

    cxrbench ablate --config tiny --index INDEX --out STUDY [--conditions full no_scene_graph ...]
                    [--seeds 0 1 2] [--split test] [--max-steps N] [--n-resamples N] [--jobs N]

Each run is trained by `cxrbench train` (identical settings: the config, `--set` overrides and
`--max-steps` apply to every run; conditions with the same backbone and boxes share a feature
cache), evaluated by `cxrbench evaluate` on --split, and every seed's runs are compared with
`full` by `cxrbench compare`. STUDY (docs/contracts.md §7) receives one folder per step, logs,
study.json (conditions, seeds, config and index hashes, the status of every step) and the
summary: seed_spread.* (seed-to-seed spread beside the bootstrap CIs), expected_matrix.* (the
design's 16.2 matrix beside the measured one, with verdicts), dynamics.csv, loss_curve.csv,
steps_to_target.csv, convergence.json and study.md. Resumable: run the same command again after
a kill; finished steps are kept. See docs/ablation.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from cxrbench import vocab
from cxrbench.ablate.plan import SCALES
from cxrbench.metrics import registry
from cxrbench.stats.multitest import CORRECTIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="tiny", help="training config: tiny, full or a YAML file (default tiny)")
    parser.add_argument("--index", type=Path, required=True, help="index directory (cxrbench index)")
    parser.add_argument("--out", type=Path, required=True, help="study directory")
    parser.add_argument("--conditions", nargs="+", metavar="NAME",
                        help="ablation conditions (default: all six of the model package; full is the baseline)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="S", help="training seeds (default 0)")
    parser.add_argument("--split", choices=vocab.SPLITS, default="test", help="evaluated split (default test)")
    parser.add_argument("--max-steps", type=int, help="optimizer steps per run (default: the config's schedule)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="training config override for every run, e.g. --set train.lr=1e-4 (repeatable)")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    parser.add_argument("--bootstrap-seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--skip", nargs="*", default=[], metavar="METRIC", choices=sorted(registry.METRICS),
                        help="metrics evaluate leaves out (e.g. bertscore_f1 for a quick CPU study)")
    parser.add_argument("--jobs", type=int, default=1, help="steps run at the same time (default 1)")
    parser.add_argument("--no-shared-features", dest="share_features", action="store_false",
                        help="every run extracts its own feature cache")
    parser.add_argument("--seed-test", action="store_true",
                        help="paired t-test across seeds beside each comparison (needs two seeds or more)")
    parser.add_argument("--expected-scale", choices=SCALES, default="points",
                        help="read the design's 16.2 percentages as points (default) or relative changes")
    parser.add_argument("--target", dest="targets", nargs="+", type=float, default=[], metavar="ACC",
                        help="steps-to-target levels (default: --target-fraction of full's final validation value)")
    parser.add_argument("--target-fraction", type=float, default=0.9,
                        help="default target: this fraction of full's final value per seed and stratum (default 0.9)")
    parser.add_argument("--loss-bin", type=int, default=0, help="steps per loss_curve.csv bin (default: ~100 bins)")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise error rate (default 0.05)")
    parser.add_argument("--correction", choices=CORRECTIONS, default="bonferroni",
                        help="multiple-comparison correction (default bonferroni)")
    parser.add_argument("--matrix-metric", default="exact_match", choices=sorted(registry.METRICS), metavar="METRIC",
                        help="metric of the ablation and expected matrices (default exact_match; e.g. "
                             "pointing_accuracy for the localisation questions alone)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start the study over (replaces only what the study wrote; feature caches are kept)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import sys

    from cxrbench.ablate.plan import StudyOptions
    from cxrbench.ablate.runner import run_study
    from cxrbench.errors import CxrbenchError

    try:
        options = StudyOptions(config=args.config, conditions=tuple(args.conditions or ()), seeds=tuple(args.seeds),
                               split=args.split, max_steps=args.max_steps, overrides=tuple(args.overrides),
                               n_resamples=args.n_resamples, bootstrap_seed=args.bootstrap_seed, skip=tuple(args.skip),
                               jobs=args.jobs, share_features=args.share_features, seed_test=args.seed_test,
                               expected_scale=args.expected_scale, targets=tuple(args.targets),
                               target_fraction=args.target_fraction, loss_bin=args.loss_bin, alpha=args.alpha,
                               correction=args.correction, matrix_metric=args.matrix_metric, overwrite=args.overwrite,
                               progress=not args.no_progress)
    except ValueError as err:
        raise CxrbenchError(str(err)) from None
    manifest = run_study(args.index, args.out, options)
    done = sum(s.status == "done" for s in manifest.steps)
    print(f"study complete: {done} steps; {args.out}/study.md, expected_matrix.md, seed_spread.csv, "
          "steps_to_target.csv, convergence.json", file=sys.stderr)
    return 0
