"""Evaluate a checkpoint: predictions, metrics with CIs, CheXpert, calibration and attention reports.

    cxrbench evaluate CHECKPOINT --split test (--data ROOT | --index INDEX) [--out RUN_DIR]
                      [--scene-graphs dataset|detected|none] [--batch-size 64] [--shard-size 2048]
                      [--n-resamples 10000] [--unit study_id] [--seed 0] [--skip METRIC ...]
    cxrbench evaluate CHECKPOINT --dataset vqa-rad|slake --questions FILE --images DIR [--out RUN_DIR]

The first form answers every QA pair of a split of an index (built from ``--data`` into
``RUN_DIR/index`` when no ``--index`` is given); the second is the zero-shot cross-dataset
protocol (seed 16.3): a VQA-RAD or SLAKE-EN question file, its image folder, no scene graphs
(or detected ones), answers normalised to the heads (``cxrbench.data.crossdataset``).

RUN_DIR (docs/contracts.md §3) receives predictions.parquet, metrics.json (every metric with a
study-clustered bootstrap CI, overall / by question type / by head / by region category),
calibration.json, chexpert_report.{json,csv,md}, attention/ (summary.json + overlays), all
committed together, and shards/ (the resume cache: a killed run continues where it stopped).

Many processes: ``torchrun --nproc-per-node 8 -m cxrbench evaluate ...`` (or any launcher that
sets RANK / WORLD_SIZE / LOCAL_RANK) splits the shards over the ranks; rank 0 merges and writes
the run dir, byte-identical to a one-process run. RUN_DIR must be on a filesystem every rank sees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cxrbench import vocab
from cxrbench.commands.score import add_bootstrap_arguments, bootstrap_options
from cxrbench.metrics import registry
from cxrbench.predictor import SCENE_GRAPH_SOURCES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cxrbench.evaluate.shards import SHARD_SIZE

    parser.add_argument("checkpoint", type=Path, help="checkpoint directory")
    parser.add_argument("--split", choices=vocab.SPLITS, default="test", help="split of the index to evaluate")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--index", type=Path, help="index directory (cxrbench index)")
    src.add_argument("--data", type=Path, help="dataset root; its index is built into RUN_DIR/index")
    parser.add_argument("--out", type=Path, default=None,
                        help="run directory (default: runs/evaluate-<checkpoint>-<split>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="discard shards of a different evaluation in --out; write into a folder this "
                             "command did not create (never deletes others' files)")
    parser.add_argument("--scene-graphs", choices=SCENE_GRAPH_SOURCES, default="dataset",
                        help="visual tokens from the dataset's scene graphs, detected ones (--scene-graph-dir), "
                             "or none (global image token only)")
    parser.add_argument("--scene-graph-dir", type=Path, default=None,
                        help="detected scene graphs (cxrbench scene-graph output) for --scene-graphs detected")
    parser.add_argument("--no-scene-graph", action="store_true", help="the same as --scene-graphs none")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE, help="QA pairs per resumable shard")
    parser.add_argument("--device", default="auto", help="auto (GPU LOCAL_RANK if there is one, else CPU), cpu, cuda:N")
    parser.add_argument("--dataset", choices=("vqa-rad", "slake"), default=None,
                        help="zero-shot cross-dataset mode on a VQA-RAD / SLAKE-EN question file")
    parser.add_argument("--questions", type=Path, help="question file of --dataset (e.g. testset.json, test.json)")
    parser.add_argument("--images", type=Path, help="image folder of --dataset")
    add_bootstrap_arguments(parser)
    parser.add_argument("--n-overlays", type=int, default=8, help="attention overlay images to save")
    parser.add_argument("--skip", nargs="*", default=[], metavar="METRIC", choices=sorted(registry.METRICS),
                        help="metrics not to compute (e.g. bertscore_f1 for a CPU-only quick look)")
    parser.add_argument("--bertscore-model", default=None)
    parser.add_argument("--bertscore-layers", type=int, default=None)
    parser.add_argument("--umls-index", default=None)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def options_from(args: argparse.Namespace):
    from cxrbench.errors import CxrbenchError
    from cxrbench.evaluate.pipeline import EvaluateOptions
    from cxrbench.evaluate.shards import World
    from cxrbench.score import ScoreOptions

    scene_graphs = "none" if args.no_scene_graph else args.scene_graphs
    if scene_graphs == "detected" and args.scene_graph_dir is None:
        raise CxrbenchError("--scene-graphs detected needs --scene-graph-dir DIR (cxrbench scene-graph output)")
    try:
        score = ScoreOptions(bertscore_model=args.bertscore_model, bertscore_layers=args.bertscore_layers,
                             umls_index=args.umls_index, skip=tuple(args.skip), source="predictions",
                             progress=not args.no_progress, **bootstrap_options(args))
        return EvaluateOptions(score=score, scene_graphs=scene_graphs, scene_graph_dir=args.scene_graph_dir,
                               batch_size=args.batch_size, shard_size=args.shard_size, device=args.device,
                               n_overlays=args.n_overlays, overwrite=args.overwrite, progress=not args.no_progress,
                               world=World.from_env())
    except ValueError as err:
        raise CxrbenchError(str(err)) from None


def run(args: argparse.Namespace) -> int:
    from cxrbench.errors import CxrbenchError
    from cxrbench.evaluate.pipeline import default_out, evaluate_crossdataset, evaluate_index
    from cxrbench.score import summary_line

    options = options_from(args)
    if args.dataset:
        if not args.questions or not args.images:
            raise CxrbenchError("--dataset needs --questions FILE and --images DIR")
        out = args.out or default_out(args.checkpoint, args.dataset)
        metrics = evaluate_crossdataset(args.checkpoint, args.dataset, args.questions, args.images, out, options)
    else:
        if not args.index and not args.data:
            raise CxrbenchError("give --index INDEX or --data ROOT (or --dataset for the zero-shot mode)")
        out = args.out or default_out(args.checkpoint, args.split)
        metrics = evaluate_index(args.checkpoint, args.index, args.split, out, options, data_root=args.data)
    if metrics is not None:   # rank 0
        print(f"evaluated {metrics['provenance'].get('n_items')} QA pairs -> {out} ({summary_line(metrics, 5)})",
              file=sys.stderr)
    return 0
