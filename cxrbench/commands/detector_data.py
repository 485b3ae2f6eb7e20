"""Convert an index's scene-graph boxes to a YOLO detection dataset (design analysis 4.3 classes).

    cxrbench detector-data INDEX --out DIR [--splits train validate test] [--images link|copy]

INDEX is a ``cxrbench index`` folder (synthetic or real release); the scene graphs are read from
the release it was built from. DIR gets ``data.yaml`` (ultralytics' data file), ``images/`` and
``labels/`` per split (train, val, test), and ``dataset.json`` (class list, instance counts,
what was left out and why). Region nodes give the 26 anatomical classes, positive observations
the 17 finding and 9 device classes; negative observations and fallback boxes give none
(docs/detect.md). The same index gives byte-identical label files.
"""

from __future__ import annotations

import argparse

from cxrbench.outputs import OutputDir

COMMAND = "cxrbench detector-data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cxrbench.detect.dataset import IMAGE_MODES, YOLO_SPLITS

    parser.add_argument("index", help="index directory (cxrbench index)")
    parser.add_argument("--out", required=True, help="dataset folder to write")
    parser.add_argument("--splits", nargs="+", default=list(YOLO_SPLITS), choices=list(YOLO_SPLITS),
                        help="index splits to convert (default: all three)")
    parser.add_argument("--images", choices=IMAGE_MODES, default="link",
                        help="link: symlinks to the release's JPEGs (default); copy: copies (a self-contained folder)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (never deletes others' files)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from cxrbench.detect.dataset import DatasetOptions, build_yolo_dataset

    options = DatasetOptions(splits=tuple(args.splits), images=args.images, progress=not args.no_progress)
    out = OutputDir.claim(args.out, COMMAND, overwrite=args.overwrite)
    try:
        summary = build_yolo_dataset(args.index, out.staging(), options)
    except BaseException:
        out.discard()
        raise
    out.commit()
    images = ", ".join(f"{k} {v}" for k, v in summary["images"].items())
    instances = sum(sum(v.values()) for v in summary["instances"].values())
    print(f"wrote {args.out}: {images} images, {instances} boxes; left out: "
          + (", ".join(f"{k} {v}" for k, v in summary["left_out"].items()) or "nothing"))
    return 0
