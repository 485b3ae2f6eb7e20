"""Train the YOLOv8 scene-graph detector on a ``cxrbench detector-data`` folder, offline.

    cxrbench detector-train DATASET --out RUN [--model yolov8m.yaml] [--weights LOCAL.pt]
                            [--epochs 100] [--imgsz 640] [--batch 16] [--device cpu|0] [--resume]

The model is built from a model yaml (ultralytics ships yolov8{n,s,m,l,x}.yaml). Nothing is
downloaded: --weights is a local .pt whose matching weights are transferred; without it the
detector trains from random initialisation (a loud warning, recorded in detector.json).
Augmentation is the design's (no flips, at most 5 degrees of rotation, no mosaic). RUN gets
ultralytics' own run folder (train/: weights/last.pt, best.pt, results.csv; --resume continues
it), its settings file (ultralytics-settings/), and, as one set at the end: detector.pt (the
best weights: what cxrbench scene-graph takes), detector.json (classes, options, init,
versions) and quality.json (mAP@0.5 and @0.75 per split, the project's functions beside
ultralytics' validation on the same detections). Needs the optional extra ``detect``
(ultralytics, AGPL-3.0).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cxrbench.outputs import OutputDir

COMMAND = "cxrbench detector-train"


def quality_line(split: str, q: dict) -> str:
    """One console line of a split's quality (both mAPs; "n/a" where a split has no labels)."""
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    return (f"{split}: mAP@0.5 {f(q['cxrbench']['map_50'])} (cxrbench) / {f(q['ultralytics']['map_50'])} (ultralytics); "
            f"mAP@0.75 {f(q['cxrbench']['map_75'])} / {f(q['ultralytics']['map_75'])}; "
            f"mAP@[.5:.95] {f(q['cxrbench']['map_coco'])} / {f(q['ultralytics']['map_coco'])}; "
            f"{q['images']} images, {q['instances']} boxes")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cxrbench.detect.train import TrainOptions

    d = TrainOptions()
    parser.add_argument("dataset", help="dataset folder (cxrbench detector-data)")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--model", default=d.model, help=f"model yaml (default {d.model}, design 4.5)")
    parser.add_argument("--weights", default=None, help="local .pt to start from (default: random initialisation)")
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--imgsz", type=int, default=d.imgsz, help="training size in pixels, a multiple of 32")
    parser.add_argument("--batch", type=int, default=d.batch)
    parser.add_argument("--device", default=None, help="cpu, 0, 0,1 (default: the first GPU, else the CPU)")
    parser.add_argument("--workers", type=int, default=d.workers, help="data-loading worker processes")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--patience", type=int, default=d.patience, help="epochs without improvement before stopping")
    parser.add_argument("--lr0", type=float, default=d.lr0, help="initial learning rate (AdamW)")
    parser.add_argument("--degrees", type=float, default=d.degrees, help="rotation augmentation, at most 5 degrees")
    parser.add_argument("--cache", action="store_true", help="keep decoded images in memory")
    parser.add_argument("--eval-splits", nargs="*", default=["val", "test"], choices=["val", "test"],
                        help="splits to report mAP on after training (default: val test)")
    parser.add_argument("--resume", action="store_true", help="continue RUN/train from its last.pt")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (never deletes others' files)")
    parser.add_argument("--no-progress", action="store_true", help="quiet: no ultralytics progress or tables")


def run(args: argparse.Namespace) -> int:
    from cxrbench.detect.dataset import DATASET_JSON
    from cxrbench.detect.inference import DETECTOR_FILE
    from cxrbench.detect.offline import SETTINGS_DIR
    from cxrbench.detect.quality import DETECTOR_RECORD, QualityOptions, evaluate_detector, split_images
    from cxrbench.detect.train import TRAIN_DIR, TrainOptions, detector_record, train_detector
    from cxrbench.io import atomic_write_json

    options = TrainOptions(model=args.model, weights=args.weights, epochs=args.epochs, imgsz=args.imgsz,
                           batch=args.batch, device=args.device, workers=args.workers, seed=args.seed,
                           patience=args.patience, lr0=args.lr0, degrees=args.degrees, cache=args.cache,
                           verbose=not args.no_progress)
    dataset = Path(args.dataset)
    out = OutputDir.claim(args.out, COMMAND, overwrite=args.overwrite)
    out.adopt(TRAIN_DIR, SETTINGS_DIR)
    info = train_detector(dataset, out.path, options, resume=args.resume)
    stage = out.staging()
    try:
        shutil.copyfile(info["best"], stage / DETECTOR_FILE)
        quality_options = QualityOptions(imgsz=options.imgsz, batch=options.batch, device=options.device,
                                         workers=options.workers, verbose=options.verbose)
        quality = {split: evaluate_detector(stage / DETECTOR_FILE, dataset, split, stage / "eval", quality_options,
                                            settings_dir=out.path)
                   for split in args.eval_splits if split_images(dataset, split)}
        atomic_write_json(stage / DETECTOR_RECORD, detector_record(info, dataset / DATASET_JSON, out.path / TRAIN_DIR))
        atomic_write_json(stage / "quality.json", quality)
    except BaseException:
        out.discard()
        raise
    out.commit()                                   # the adopted train and settings folders stay
    for split, q in quality.items():
        print(quality_line(split, q))
    print(f"wrote {args.out}: {DETECTOR_FILE}, {DETECTOR_RECORD}, quality.json")
    return 0
