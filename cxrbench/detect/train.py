"""Training the detector through ultralytics (``cxrbench detector-train``), offline.

The model is built from a model yaml (ultralytics ships ``yolov8{n,s,m,l,x}.yaml``; a path to
one's own yaml works too). Nothing pretrained can be downloaded here: ``weights`` is a local
``.pt`` file whose matching tensors are transferred (a COCO ``yolov8m.pt`` copied onto the
machine, say); without it the model starts from random initialisation, and that is logged as
a warning and recorded (``init: "scratch"``) in ``detector.json``.

Augmentation follows the design analysis 4.5: no flips (left and right are anatomy), at most
5 degrees of rotation, no mosaic, mixup, cutmix or copy-paste (one radiograph per sample), no
hue/saturation jitter (grayscale images). :func:`ultralytics_train_args` is the whole argument
set handed to ultralytics; it refuses options beyond those limits.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from cxrbench.detect.dataset import DATA_YAML
from cxrbench.detect.offline import describe, load_ultralytics
from cxrbench.errors import CxrbenchError

log = logging.getLogger(__name__)

MAX_ROTATION_DEGREES = 5.0
# Fixed by the design (4.5): what would swap sides, paste other images in, or colour a grayscale image.
FIXED_AUGMENTATION: dict[str, float] = {
    "fliplr": 0.0, "flipud": 0.0, "mosaic": 0.0, "close_mosaic": 0, "mixup": 0.0, "cutmix": 0.0,
    "copy_paste": 0.0, "hsv_h": 0.0, "hsv_s": 0.0, "bgr": 0.0, "shear": 0.0, "perspective": 0.0,
}
TRAIN_DIR = "train"            # ultralytics' run folder inside the cxrbench run folder
SCRATCH_WARNING = ("no local weights given: the detector starts from RANDOM INITIALISATION (nothing is downloaded); "
                   "pass --weights PATH.pt (e.g. a yolov8m.pt copied onto this machine) to fine-tune instead")


@dataclass(frozen=True)
class TrainOptions:
    model: str = "yolov8m.yaml"        # model yaml (design 4.5: the medium model)
    weights: str | None = None         # local .pt to transfer weights from; None: from scratch
    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    device: str | None = None          # "cpu", "0", "0,1"; None: the first GPU if there is one, else the CPU
    workers: int = 2
    seed: int = 0
    patience: int = 50
    optimizer: str = "AdamW"
    lr0: float = 0.001
    lrf: float = 0.01
    weight_decay: float = 0.0005
    degrees: float = 5.0
    translate: float = 0.1
    scale: float = 0.2
    hsv_v: float = 0.4                 # brightness jitter (exposure differs between radiographs)
    cache: bool = False                # keep decoded images in RAM
    verbose: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.degrees <= MAX_ROTATION_DEGREES:
            raise CxrbenchError(f"degrees must lie in [0, {MAX_ROTATION_DEGREES:g}] (design 4.5: anatomy is oriented), "
                                f"got {self.degrees:g}")
        for name in ("epochs", "imgsz", "batch"):
            if getattr(self, name) < 1:
                raise CxrbenchError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.imgsz % 32:
            raise CxrbenchError(f"imgsz must be a multiple of 32 (the detector's largest stride), got {self.imgsz}")


def default_device() -> str:
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def resolve_weights(weights: str | Path | None) -> Path | None:
    """The local weights file, or None (from scratch). A name that is not a local file is an
    error, not a download."""
    if weights is None:
        return None
    p = Path(weights)
    if not p.is_file():
        raise CxrbenchError(f"{p}: weights file not found (weights are local paths; nothing is downloaded)")
    return p.resolve()


def ultralytics_train_args(dataset_dir: str | Path, run_dir: str | Path, options: TrainOptions) -> dict[str, Any]:
    """Every argument of ``YOLO.train``: the data, the run folder, the options and the fixed
    offline and augmentation settings."""
    data = Path(dataset_dir) / DATA_YAML
    if not data.is_file():
        raise CxrbenchError(f"{dataset_dir}: no {DATA_YAML}; build the dataset with cxrbench detector-data")
    o = options
    return {
        "data": str(data.resolve()), "project": str(Path(run_dir).resolve()), "name": TRAIN_DIR, "exist_ok": True,
        "epochs": o.epochs, "imgsz": o.imgsz, "batch": o.batch, "device": o.device or default_device(),
        "workers": o.workers, "seed": o.seed, "deterministic": True, "patience": o.patience,
        "optimizer": o.optimizer, "lr0": o.lr0, "lrf": o.lrf, "weight_decay": o.weight_decay,
        "degrees": o.degrees, "translate": o.translate, "scale": o.scale, "hsv_v": o.hsv_v, "cache": o.cache,
        "verbose": o.verbose, **FIXED_AUGMENTATION,
        # plots need a downloaded font, AMP's self-check downloads weights: both off, offline
        "plots": False, "amp": False,
    }


def train_detector(dataset_dir: str | Path, run_dir: str | Path, options: TrainOptions, resume: bool = False) -> dict:
    """Train into ``run_dir/train`` (ultralytics' own files: ``weights/{last,best}.pt``,
    ``results.csv``, ``args.yaml``) and return what ``detector.json`` records. ``resume``
    continues from ``run_dir/train/weights/last.pt``."""
    run_dir = Path(run_dir)
    weights = resolve_weights(options.weights)
    args = ultralytics_train_args(dataset_dir, run_dir, options)
    load_ultralytics(run_dir, verbose=options.verbose)
    from ultralytics import YOLO

    last = run_dir / TRAIN_DIR / "weights" / "last.pt"
    if resume:
        if not last.is_file():
            raise CxrbenchError(f"{last}: nothing to resume (train without --resume first)")
        model = YOLO(str(last))
        model.train(resume=True)
    else:
        try:
            model = YOLO(options.model)
        except FileNotFoundError as err:
            raise CxrbenchError(f"model yaml {options.model!r} not found ({describe(err)}); use a yaml shipped with "
                                "ultralytics (yolov8n.yaml ... yolov8x.yaml) or a local path") from None
        shutil.rmtree(run_dir / TRAIN_DIR, ignore_errors=True)   # a fresh run: ultralytics would mix old epochs in
        if weights is None:
            log.warning(SCRATCH_WARNING)
        else:
            try:
                model.load(str(weights))
            except Exception as err:  # not a checkpoint: torch, pickle and ultralytics each raise their own
                raise CxrbenchError(f"{weights}: cannot transfer weights from it ({describe(err)})") from None
        model.train(**args)
    best = run_dir / TRAIN_DIR / "weights" / "best.pt"
    if not best.is_file():
        best = last
    if not best.is_file():
        raise CxrbenchError(f"{run_dir / TRAIN_DIR}: ultralytics finished without writing weights")
    return {
        "init": "scratch" if weights is None else "weights",
        "weights_file": weights.name if weights is not None else None,
        "options": {**asdict(options), "weights": weights.name if weights is not None else None},
        "ultralytics_args": {k: v for k, v in args.items() if k not in ("data", "project")},
        "best": best,
    }


def detector_record(info: dict, dataset_json: str | Path, train_dir: str | Path) -> dict:
    """``detector.json``: the classes, how the detector was trained (options, init, the exact
    ultralytics arguments), on what (the dataset's summary hash and its index's content hash),
    the last epoch of ultralytics' ``results.csv``, versions. No paths, no times."""
    import csv

    from cxrbench.detect.classes import CLASS_KIND, CLASS_NAMES
    from cxrbench.detect.offline import ultralytics_version
    from cxrbench.io import file_sha256, provenance

    dataset_json = Path(dataset_json)
    dataset = orjson.loads(dataset_json.read_bytes()) if dataset_json.is_file() else {}
    results = Path(train_dir) / "results.csv"
    last: dict[str, str] = {}
    if results.is_file():
        with open(results, newline="") as fh:
            rows = list(csv.DictReader(fh))
        last = {k.strip(): v.strip() for k, v in rows[-1].items()} if rows else {}
    return {
        "classes": [{"id": i, "name": n, "kind": CLASS_KIND[n]} for i, n in enumerate(CLASS_NAMES)],
        "init": info["init"], "weights_file": info["weights_file"], "options": info["options"],
        "ultralytics_args": info["ultralytics_args"],
        "dataset": {"dataset_json_sha256": file_sha256(dataset_json) if dataset_json.is_file() else None,
                    "index_content_hash": (dataset.get("provenance") or {}).get("index_content_hash"),
                    "images": dataset.get("images")},
        "last_epoch": {k: v for k, v in last.items() if k != "time"},
        "provenance": provenance("cxrbench detector-train", extra_packages=("torch", "torchvision", "ultralytics"),
                                 ultralytics=ultralytics_version()),
    }
