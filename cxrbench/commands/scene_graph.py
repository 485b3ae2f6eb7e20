"""Detect anatomy, findings and devices in new images and write their scene graphs.

    cxrbench scene-graph IMAGE_DIR --detector WEIGHTS --out DIR [--conf 0.25] [--iou 0.7] [--imgsz TRAINING_SIZE]
                         [--index INDEX [--split test]]

WEIGHTS is a ``cxrbench detector-train`` run folder or its ``detector.pt``. Every .jpg/.jpeg/.png
under IMAGE_DIR gets a scene graph in the MIMIC-Ext-CXR-QBA format (region nodes, positive
observations with boxes, located-at and region-region relations from box geometry):
DIR/scene_graphs/<image path>.scene_graph.json, DIR/images.parquet (image id, study, graph
file, size, counts) and DIR/manifest.json (detector hash, thresholds, versions). Images in the
MIMIC-CXR-JPG layout keep their dicom id and study; others are keyed by their relative path
without extension. With --index, IMAGE_DIR is the MIMIC-CXR-JPG root and only the primary
images of the index's studies (of --split) are detected: the images the VQA model answers from.
Offline: needs the optional extra ``detect`` (ultralytics, AGPL-3.0).
"""

from __future__ import annotations

import argparse

from cxrbench.errors import CxrbenchError
from cxrbench.outputs import OutputDir

COMMAND = "cxrbench scene-graph"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", help="folder of images (searched recursively)")
    parser.add_argument("--detector", required=True, help="detector.pt or a cxrbench detector-train run folder")
    parser.add_argument("--out", required=True, help="folder to write the scene graphs to")
    parser.add_argument("--conf", type=float, default=0.25, help="minimum detection confidence (default 0.25)")
    parser.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold (default 0.7)")
    parser.add_argument("--imgsz", type=int, default=None,
                        help="inference size in pixels (default: the detector's training size, from its detector.json; "
                             "else 640)")
    parser.add_argument("--batch", type=int, default=16, help="images per forward pass (default 16)")
    parser.add_argument("--device", default=None, help="cpu, 0, ... (default: the first GPU, else the CPU)")
    parser.add_argument("--index", default=None,
                        help="an index folder: detect only its studies' primary images (IMAGE_DIR: the MIMIC-CXR-JPG root)")
    parser.add_argument("--split", nargs="*", default=[], choices=["train", "validate", "test"],
                        help="with --index: the splits whose images to detect (default: all)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (never deletes others' files)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from cxrbench.detect.inference import SceneGraphOptions, index_images, write_scene_graphs
    from cxrbench.detect.offline import SETTINGS_DIR

    options = SceneGraphOptions(conf=args.conf, iou=args.iou, imgsz=args.imgsz, batch=args.batch, device=args.device,
                                progress=not args.no_progress)
    if args.split and not args.index:
        raise CxrbenchError("--split needs --index")
    images = index_images(args.index, tuple(args.split)) if args.index else None
    out = OutputDir.claim(args.out, COMMAND, overwrite=args.overwrite)
    out.adopt(SETTINGS_DIR)
    try:
        manifest = write_scene_graphs(args.images, args.detector, out.staging(), out.path, options, images=images)
    except BaseException:
        out.discard()
        raise
    out.commit()                                   # the adopted settings folder stays
    found = ", ".join(f"{v} {k}" for k, v in manifest["nodes"].items()) or "no nodes"
    print(f"wrote {args.out}: {manifest['images']} scene graphs ({found}; "
          f"{manifest['images_without_detections']} images without detections)")
    return 0
