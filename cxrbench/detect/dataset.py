"""The dataset's scene-graph boxes as a YOLO detection dataset (``cxrbench detector-data``).

Input: an index directory (``cxrbench index``): its ``studies.parquet`` names each study's
split and primary frontal image (the image the VQA model sees and the index's nodes lie on),
its manifest the release roots; the scene graphs are read from the release through the
project's readers (``StudyJson`` + ``validate_scene_graph``), because the labels need the
observations' positiveness, which the index's ``nodes.parquet`` deliberately leaves out.

Output (one set, written by the caller into a staging folder)::

    data.yaml                 ultralytics data file: paths relative to it, the 52 class names
    images/{train,val,test}/IMAGE_ID.jpg   links to (or copies of) the release's JPEGs
    labels/{train,val,test}/IMAGE_ID.txt   "class xc yc w h" per box, normalised to [0, 1], 6 decimals
    dataset.json              provenance, class list, instance counts per split and class, what was left out

The split names are ultralytics' (``validate`` -> ``val``). Which boxes become labels is
:func:`cxrbench.detect.classes.node_labels`. Boxes are clipped to the image (the readers accept
boxes up to 0.5% outside it), zero-area boxes and exact duplicates are dropped and counted.
Reproducible: the same index and release give byte-identical files (sorted lines, fixed
formatting, no times; links point to the resolved image paths).

Note: ultralytics writes its own label cache ``labels/<split>.cache`` beside the labels the
first time it trains or validates on them (it revalidates it against the files' hash).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import orjson
import pandas as pd
from tqdm import tqdm

from cxrbench.data.readers import StudyJson, validate_scene_graph
from cxrbench.detect.classes import CLASS_KIND, CLASS_NAMES, node_labels
from cxrbench.errors import CxrbenchError, DataError, reading
from cxrbench.io import atomic_write_bytes, atomic_write_json, atomic_write_text, provenance

YOLO_SPLITS: dict[str, str] = {"train": "train", "validate": "val", "test": "test"}
IMAGE_MODES = ("link", "copy")
DATA_YAML = "data.yaml"
DATASET_JSON = "dataset.json"


@dataclass(frozen=True)
class DatasetOptions:
    splits: tuple[str, ...] = ("train", "validate", "test")   # index split names
    images: str = "link"                                        # link: symlinks to the release's JPEGs; copy
    progress: bool = True

    def __post_init__(self) -> None:
        if self.images not in IMAGE_MODES:
            raise CxrbenchError(f"images must be one of {', '.join(IMAGE_MODES)}, got {self.images!r}")
        bad = [s for s in self.splits if s not in YOLO_SPLITS]
        if bad:
            raise CxrbenchError(f"unknown split(s) {', '.join(bad)} (expected {', '.join(YOLO_SPLITS)})")


def index_roots(index_dir: str | Path) -> tuple[dict[str, Any], Path, Path]:
    """(manifest, MIMIC-CXR-JPG root, MIMIC-Ext-CXR-QBA root) of an index; roots in the
    manifest are absolute or relative to the index folder."""
    index_dir = Path(index_dir)
    path = index_dir / "manifest.json"
    with reading(path, what="index manifest"):
        manifest = orjson.loads(path.read_bytes())
    roots = manifest.get("roots") or {}

    def root(key: str) -> Path:
        value = roots.get(key)
        if not value:
            raise DataError(str(path), "roots", f"no {key!r} root recorded; rebuild the index with cxrbench index")
        p = Path(value)
        return p if p.is_absolute() else (index_dir / p).resolve()

    return manifest, root("mimic_cxr_jpg"), root("mimic_ext_cxr_qba")


def yolo_line(class_id: int, box: tuple[float, float, float, float], width: float, height: float) -> str | None:
    """``"class xc yc w h"`` of a pixel box ``[x1, y1, x2, y2]``, clipped to the image and
    normalised; None for a box with no area inside the image."""
    x1, y1, x2, y2 = (min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
                      min(max(box[2], 0.0), width), min(max(box[3], 0.0), height))
    if x2 <= x1 or y2 <= y1:
        return None
    return (f"{class_id} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")


def parse_yolo_line(line: str, width: float, height: float) -> tuple[int, list[float]]:
    """Inverse of :func:`yolo_line`: (class id, pixel box ``[x1, y1, x2, y2]``)."""
    c, xc, yc, w, h = line.split()[:5]
    xc, yc, w, h = float(xc) * width, float(yc) * height, float(w) * width, float(h) * height
    return int(c), [xc - w / 2, yc - h / 2, xc + w / 2, yc + h / 2]


def image_labels(scene_graph: Mapping[str, Any], image_id: str, width: float, height: float,
                 counts: Counter) -> list[str]:
    """The sorted, de-duplicated YOLO label lines of one image of a scene graph."""
    labels, skipped = node_labels(scene_graph, image_id)
    counts.update(skipped)
    lines = set()
    for lab in labels:
        for box in lab.boxes:
            line = yolo_line(lab.class_id, box, width, height)
            if line is None:
                counts["zero_area_boxes"] += 1
            elif line in lines:
                counts["duplicate_boxes"] += 1
            else:
                lines.add(line)
    return sorted(lines, key=lambda s: (int(s.split(" ", 1)[0]), s))


def data_yaml() -> str:
    """The ultralytics data file: no ``path`` key, so ultralytics resolves the split folders
    against the file's own folder (the dataset moves as one folder)."""
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    return ("# cxrbench detector-data: MIMIC-Ext-CXR-QBA scene-graph boxes (design analysis 4.3 classes)\n"
            "train: images/train\nval: images/val\ntest: images/test\n"
            f"nc: {len(CLASS_NAMES)}\nnames:\n{names}\n")


def build_yolo_dataset(index_dir: str | Path, dest: str | Path, options: DatasetOptions = DatasetOptions()) -> dict:
    """Write the YOLO dataset of ``index_dir`` into ``dest`` (layout in the module docstring)
    and return the summary written to ``dataset.json``."""
    index_dir, dest = Path(index_dir), Path(dest)
    manifest, jpg_root, qba_root = index_roots(index_dir)
    studies_path = index_dir / "studies.parquet"
    with reading(studies_path, what="Parquet file"):
        studies = pd.read_parquet(studies_path, columns=["study_id", "subject_id", "split", "image_id", "image_path",
                                                         "image_width", "image_height"])
    studies = studies[studies["image_id"].notna() & studies["split"].isin(options.splits)]
    studies = studies.sort_values(["split", "image_id"], kind="mergesort")
    for split in YOLO_SPLITS.values():
        (dest / "images" / split).mkdir(parents=True, exist_ok=True)
        (dest / "labels" / split).mkdir(parents=True, exist_ok=True)
    sj = StudyJson(qba_root)
    counts: Counter = Counter()
    per_split: dict[str, Counter] = {s: Counter() for s in YOLO_SPLITS.values()}
    images_per_split: Counter = Counter()
    try:
        rows = studies.itertuples(index=False)
        for row in tqdm(rows, total=len(studies), desc="detector labels", unit="image", disable=not options.progress):
            split = YOLO_SPLITS[row.split]
            image_id = str(row.image_id)
            width, height = float(row.image_width), float(row.image_height)
            got = sj.load(int(row.subject_id), int(row.study_id), "scene_graph")
            lines: list[str] = []
            if got is None:
                counts["studies_without_scene_graph"] += 1
            else:
                graph, file = got
                validate_scene_graph(graph, file, {image_id: (width, height)})
                lines = image_labels(graph, image_id, width, height, counts)
            src = jpg_root / str(row.image_path)
            if not src.is_file():
                raise DataError(str(src), f"study {row.study_id}, image {image_id}", "image file not found")
            _place_image(src, dest / "images" / split / f"{image_id}{src.suffix.lower()}", options.images)
            atomic_write_text(dest / "labels" / split / f"{image_id}.txt", "".join(f"{line}\n" for line in lines))
            images_per_split[split] += 1
            per_split[split].update(CLASS_NAMES[int(line.split(" ", 1)[0])] for line in lines)
    finally:
        sj.close()
    atomic_write_text(dest / DATA_YAML, data_yaml())
    summary = {
        "provenance": provenance("cxrbench detector-data", index_content_hash=manifest.get("content_hash"),
                                 images=options.images, splits=list(options.splits)),
        "classes": [{"id": i, "name": n, "kind": CLASS_KIND[n]} for i, n in enumerate(CLASS_NAMES)],
        "images": {s: images_per_split[s] for s in YOLO_SPLITS.values()},
        "instances": {s: {n: per_split[s][n] for n in CLASS_NAMES if per_split[s][n]} for s in YOLO_SPLITS.values()},
        "left_out": dict(sorted(counts.items())),
    }
    atomic_write_json(dest / DATASET_JSON, summary)
    return summary


def _place_image(src: Path, dst: Path, mode: str) -> None:
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if mode == "link":
        dst.symlink_to(src.resolve())
    else:
        with reading(src, what="image"):
            atomic_write_bytes(dst, src.read_bytes())


def read_labels(dataset_dir: str | Path, split: str, image_id: str, width: float, height: float) -> list[tuple[int, list[float]]]:
    """The (class id, pixel box) labels of one image of a YOLO dataset written here."""
    path = Path(dataset_dir) / "labels" / split / f"{image_id}.txt"
    with reading(path, what="YOLO label file"):
        text = path.read_text()
    return [parse_yolo_line(line, width, height) for line in text.splitlines() if line.strip()]

