"""Detector quality: per-class COCO AP with the project's mAP functions, beside ultralytics' own
validation numbers on the same detections.

:func:`evaluate_detector` runs ultralytics' validator on a split of a dataset written by
:mod:`cxrbench.detect.dataset` (NMS IoU 0.7, confidence >= 0.001, at most 300 detections per
image: ultralytics' validation defaults) and keeps its detections (``save_txt``); the same
detections and the split's labels then go through :func:`class_average_precision`, which
calls :func:`cxrbench.metrics.spatial.map_family_stats` once per class (that function is
class-agnostic COCO AP, one image per item: per class it is ``COCOeval``'s per-category AP)
and averages over the classes with at least one labelled instance in the split, as
``COCOeval`` and ultralytics do.

Why the two numbers differ slightly (tests/detect bound the difference): COCO samples the
precision envelope at 101 recall points and averages the samples (a step integral);
ultralytics interpolates the same envelope linearly at those points and integrates with the
trapezoidal rule; COCO also keeps at most 100 detections per image and class. The matching
itself (greedy by confidence, IoU >= 0.5, one detection per label) is the same, and
ultralytics' detections are written with 6 significant digits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from cxrbench.detect.classes import CLASS_KIND, CLASS_NAMES, KINDS
from cxrbench.detect.dataset import DATA_YAML, parse_yolo_line, read_labels
from cxrbench.detect.offline import describe, load_ultralytics
from cxrbench.errors import CxrbenchError, reading
from cxrbench.metrics.spatial import map_family_stats

# A labelled box / a detection of one image: (class id, [x1, y1, x2, y2] in pixels[, score]).
Label = tuple[int, Sequence[float]]
Detection = tuple[int, Sequence[float], float]
DETECTOR_RECORD = "detector.json"   # beside the weights of a run folder: classes, how it was trained
DEFAULT_IMGSZ = 640                 # ultralytics' default, for weights without a record
VALIDATION_DEFAULTS = {"conf": 0.001, "iou": 0.7, "max_det": 300}
# The largest |project - ultralytics| mAP@0.5 the tests accept on the same detections: the
# interpolation and the per-class cap (module docstring) move AP by a few thousandths on a
# trained detector and by up to ~0.01 per class on a curve of few points.
AGREEMENT_TOLERANCE = 0.02


@dataclass(frozen=True)
class QualityOptions:
    imgsz: int | None = None         # None: the detector's training size (detector_imgsz)
    batch: int = 16
    device: str | None = None
    workers: int = 2
    verbose: bool = True


MEANS = {"map_50": "ap_50", "map_75": "ap_75", "map_coco": "ap_coco"}   # mean over classes of each per-class AP


def class_average_precision(images: Sequence[str], labels: Mapping[str, Sequence[Label]],
                            detections: Mapping[str, Sequence[Detection]], n_classes: int = len(CLASS_NAMES)) -> dict:
    """Per-class AP@0.5, AP@0.75 and AP@[0.5:0.95] (COCO, 101-point) over ``images`` and their
    means over the classes with labels (``map_50``, ``map_75``, ``map_coco``: ``COCOeval``'s
    ``stats[1]``, ``stats[2]``, ``stats[0]``); ``per_class`` has an entry for every class with
    labels or detections (AP null for a class without labels, as COCO's -1)."""
    gt: dict[int, list[list]] = defaultdict(lambda: [[] for _ in images])
    dt: dict[int, list[list]] = defaultdict(lambda: [[] for _ in images])
    sc: dict[int, list[list]] = defaultdict(lambda: [[] for _ in images])
    for i, image in enumerate(images):
        for c, box in labels.get(image, ()):
            gt[int(c)][i].append(list(box))
        for c, box, score in detections.get(image, ()):
            dt[int(c)][i].append(list(box))
            sc[int(c)][i].append(float(score))
    per_class: dict[int, dict] = {}
    for c in sorted(set(gt) | set(dt)):
        if not 0 <= c < n_classes:
            raise CxrbenchError(f"class id {c} outside the detector's {n_classes} classes")
        n = sum(len(b) for b in gt[c]) if c in gt else 0
        if n == 0:
            per_class[c] = {"ap_50": None, "ap_75": None, "ap_coco": None, "n": 0}
            continue
        stats = map_family_stats(gt[c], dt[c] if c in dt else [[] for _ in images],
                                 sc[c] if c in sc else [[] for _ in images])
        per_class[c] = {"ap_50": stats["map_50"].value(), "ap_75": stats["map_75"].value(),
                        "ap_coco": stats["map_coco"].value(), "n": n}
    return {**{m: _mean(per_class, a) for m, a in MEANS.items()}, "per_class": per_class}


def _mean(per_class: Mapping[int, dict], key: str, kind: str | None = None) -> float | None:
    vals = [v[key] for c, v in per_class.items() if v[key] is not None
            and (kind is None or CLASS_KIND[CLASS_NAMES[c]] == kind)]
    return float(np.mean(vals)) if vals else None


def read_detections(path: Path, width: float, height: float) -> list[Detection]:
    """Detections of one image from ultralytics' ``save_txt`` + ``save_conf`` file
    (``class xc yc w h conf`` normalised; no file: no detection)."""
    if not path.exists():
        return []
    out = []
    with reading(path, what="ultralytics prediction file"):
        for line in path.read_text().splitlines():
            if line.strip():
                c, box = parse_yolo_line(line, width, height)
                out.append((c, box, float(line.split()[5])))
    return out


def split_images(dataset_dir: Path, split: str) -> list[tuple[str, Path]]:
    folder = dataset_dir / "images" / split
    return sorted((p.stem, p) for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def detector_imgsz(weights: str | Path) -> int:
    """The image size a detector was trained at, from the ``detector.json`` beside its weights
    (a ``cxrbench detector-train`` run folder); 640 for weights without one. Detecting at
    another size than the training one loses most detections: a detector trained at 160 px
    found 137 regions and no finding in 90 test images at 640 px, 1,555 regions and 31
    findings at 160 px (docs/detect.md)."""
    record = Path(weights).parent / DETECTOR_RECORD
    if not record.is_file():
        return DEFAULT_IMGSZ
    with reading(record, what="JSON file"):
        data = json.loads(record.read_text())
    size = data.get("options", {}).get("imgsz") if isinstance(data, dict) else None
    if not isinstance(size, int) or size <= 0:
        raise CxrbenchError(f"{record}: options.imgsz is {size!r}, not a positive integer")
    return size


def load_detector(weights: str | Path) -> Any:
    """ultralytics' model of a cxrbench detector's weights (after :func:`load_ultralytics`);
    a file that is not one is a one-line error, not a traceback."""
    from ultralytics import YOLO

    try:
        model = YOLO(str(weights))
    except Exception as err:  # a foreign or damaged file: torch, pickle and ultralytics each raise their own
        raise CxrbenchError(f"{weights}: not loadable as detector weights ({describe(err)})") from None
    check_classes(model.names, str(weights))
    return model


def check_classes(names: Mapping[int, str] | Sequence[str], source: str) -> None:
    """Refuse a detector whose classes are not cxrbench's (another model's weights)."""
    got = [names[i] for i in range(len(names))]
    if got != list(CLASS_NAMES):
        raise CxrbenchError(f"{source}: not a cxrbench detector (its {len(got)} classes are not the "
                            f"{len(CLASS_NAMES)} of cxrbench.detect.classes)")


def evaluate_detector(weights: str | Path, dataset_dir: str | Path, split: str, work_dir: str | Path,
                      options: QualityOptions = QualityOptions(), settings_dir: str | Path | None = None) -> dict:
    """Validate ``weights`` on ``split`` with ultralytics (its files, the detections among
    them, go to ``work_dir/val-SPLIT``; its settings under ``settings_dir``, default
    ``work_dir``) and report both mAPs (module docstring)."""
    from PIL import Image

    dataset_dir, work_dir = Path(dataset_dir), Path(work_dir)
    images = split_images(dataset_dir, split)
    if not images:
        raise CxrbenchError(f"{dataset_dir}: split {split!r} has no images")
    load_ultralytics(settings_dir or work_dir, verbose=options.verbose)
    from cxrbench.detect.train import default_device

    if options.imgsz is None:
        options = replace(options, imgsz=detector_imgsz(weights))
    model = load_detector(weights)
    metrics = model.val(data=str((dataset_dir / DATA_YAML).resolve()), split=split, imgsz=options.imgsz,
                        batch=options.batch, device=options.device or default_device(), workers=options.workers,
                        plots=False, save_txt=True, save_conf=True, project=str(work_dir.resolve()),
                        name=f"val-{split}", exist_ok=True, verbose=options.verbose, **VALIDATION_DEFAULTS)
    pred_dir = Path(metrics.save_dir) / "labels"
    labels: dict[str, list[Label]] = {}
    detections: dict[str, list[Detection]] = {}
    for image_id, path in images:
        with reading(path, what="image"), Image.open(path) as im:
            width, height = im.size
        labels[image_id] = read_labels(dataset_dir, split, image_id, width, height)
        detections[image_id] = read_detections(pred_dir / f"{image_id}.txt", width, height)
    ours = class_average_precision([i for i, _ in images], labels, detections)
    box = metrics.box
    theirs = {int(c): {"ap_50": float(box.all_ap[k, 0]), "ap_75": float(box.all_ap[k, 5]),
                       "ap_coco": float(box.all_ap[k].mean())} for k, c in enumerate(box.ap_class_index)}
    return {
        "split": split, "images": len(images), "instances": sum(len(v) for v in labels.values()),
        "detections": sum(len(v) for v in detections.values()), "validation": dict(VALIDATION_DEFAULTS),
        "cxrbench": {
            **{m: ours[m] for m in MEANS},
            "by_kind": {k: {m: _mean(ours["per_class"], a, k) for m, a in MEANS.items()} for k in KINDS},
            "signature": map_family_stats([[]], [[]])["map_50"].signature + "|per-class-mean",
        },
        "ultralytics": {"map_50": float(box.map50), "map_75": float(box.map75), "map_coco": float(box.map)},
        "per_class": {CLASS_NAMES[c]: {**v, **{f"ultralytics_{a}": theirs.get(c, {}).get(a) for a in MEANS.values()}}
                      for c, v in ours["per_class"].items()},
    }
