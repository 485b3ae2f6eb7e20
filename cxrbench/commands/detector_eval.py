"""Measure a trained detector on a split: mAP with the project's functions and ultralytics' own.

    cxrbench detector-eval DETECTOR DATASET --out DIR [--split test] [--imgsz TRAINING_SIZE] [--batch 16] [--device cpu]

DETECTOR is a ``cxrbench detector-train`` run folder or its detector.pt, DATASET a
``cxrbench detector-data`` folder. ultralytics validates (confidence >= 0.001, NMS IoU 0.7, at
most 300 detections per image) and keeps its detections; the project's per-class COCO AP
(cxrbench.metrics.spatial) is computed on the same detections. DIR gets quality.json (both
mAP@0.5 and @0.75, by class and kind, with the reasons they differ in docs/detect.md) and
ultralytics' validation folder (val-SPLIT/labels: the detections).
"""

from __future__ import annotations

import argparse

from cxrbench.outputs import OutputDir

COMMAND = "cxrbench detector-eval"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("detector", help="detector.pt or a cxrbench detector-train run folder")
    parser.add_argument("dataset", help="dataset folder (cxrbench detector-data)")
    parser.add_argument("--out", required=True, help="folder for quality.json and the detections")
    parser.add_argument("--split", choices=["train", "val", "test"], default="test")
    parser.add_argument("--imgsz", type=int, default=None,
                        help="validation size in pixels (default: the detector's training size, from its detector.json; "
                             "else 640)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: the first GPU, else the CPU)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (never deletes others' files)")
    parser.add_argument("--no-progress", action="store_true", help="quiet: no ultralytics progress or tables")


def run(args: argparse.Namespace) -> int:
    from cxrbench.commands.detector_train import quality_line
    from cxrbench.detect.inference import resolve_detector
    from cxrbench.detect.offline import SETTINGS_DIR
    from cxrbench.detect.quality import QualityOptions, evaluate_detector
    from cxrbench.io import atomic_write_json

    weights = resolve_detector(args.detector)
    options = QualityOptions(imgsz=args.imgsz, batch=args.batch, device=args.device, workers=args.workers,
                             verbose=not args.no_progress)
    out = OutputDir.claim(args.out, COMMAND, overwrite=args.overwrite)
    out.adopt(SETTINGS_DIR)
    stage = out.staging()
    try:
        quality = evaluate_detector(weights, args.dataset, args.split, stage, options, settings_dir=out.path)
        atomic_write_json(stage / "quality.json", quality)
    except BaseException:
        out.discard()
        raise
    out.commit()                                   # the adopted settings folder stays
    print(quality_line(args.split, quality))
    return 0
