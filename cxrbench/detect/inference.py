"""``cxrbench scene-graph``: run the detector over a folder of images and write one scene graph
per image (:mod:`cxrbench.detect.graphs`), offline.

Output (one set, written by the caller into a staging folder)::

    scene_graphs/REL/PATH.scene_graph.json   one per image, the image folder's tree kept
    images.parquet    image_id, subject_id, study_id, image_path, graph, width, height, n_regions, n_observations
    manifest.json     provenance (detector file hash, thresholds, ultralytics version), counts

Detection uses ultralytics' predictor (letterboxed to ``imgsz``, class-wise NMS at IoU
``iou``), keeping boxes with confidence >= ``conf`` (0.25, ultralytics' and the design's
default); boxes are in pixels of the original image.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cxrbench.detect import graphs as G
from cxrbench.detect.offline import describe, load_ultralytics, ultralytics_version
from cxrbench.detect.quality import detector_imgsz, load_detector
from cxrbench.errors import CxrbenchError, DataError
from cxrbench.io import file_sha256, provenance

DETECTOR_FILE = "detector.pt"   # the weights a ``cxrbench detector-train`` run folder holds


@dataclass(frozen=True)
class SceneGraphOptions:
    conf: float = 0.25
    iou: float = 0.7
    imgsz: int | None = None      # None: the detector's training size (:func:`detector_imgsz`)
    max_det: int = 300
    batch: int = 16
    device: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("conf", "iou"):
            if not 0 < getattr(self, name) <= 1:
                raise CxrbenchError(f"{name} must lie in (0, 1], got {getattr(self, name)}")


def resolve_detector(path: str | Path) -> Path:
    """A detector weights file, given as the ``.pt`` itself or as a ``cxrbench detector-train`` run folder."""
    p = Path(path)
    if p.is_dir():
        p = p / DETECTOR_FILE
    if not p.is_file():
        raise CxrbenchError(f"{path}: no detector weights (a .pt file or a cxrbench detector-train run folder)")
    return p


def index_images(index_dir: str | Path, splits: tuple[str, ...]) -> list[str]:
    """The primary images of an index's studies in ``splits`` (empty: all), as paths relative
    to the MIMIC-CXR-JPG root: the images the VQA model answers from."""
    import pandas as pd

    from cxrbench.errors import reading

    path = Path(index_dir) / "studies.parquet"
    with reading(path, what="Parquet file"):
        studies = pd.read_parquet(path, columns=["split", "image_path"])
    keep = studies["image_path"].notna()
    if splits:
        keep &= studies["split"].isin(splits)
    return sorted(studies.loc[keep, "image_path"].astype(str))


def _predict(model: Any, paths: list[Path], options: SceneGraphOptions, device: str) -> list:
    """ultralytics' results for ``paths``; an image it cannot read is named (the batch is
    retried image by image to find it)."""
    kwargs = dict(conf=options.conf, iou=options.iou, imgsz=options.imgsz, max_det=options.max_det, device=device,
                  verbose=False)   # imgsz resolved by write_scene_graphs
    try:
        return model.predict(source=[str(p) for p in paths], **kwargs)
    except Exception:  # ultralytics raises its own (FileNotFoundError "Image Not Found", cv2 errors) for a bad file
        for p in paths:
            try:
                model.predict(source=str(p), **kwargs)
            except Exception as err:
                raise DataError(str(p), None, f"detection failed: unreadable image? ({describe(err)})") from None
        raise


def write_scene_graphs(image_dir: str | Path, detector: str | Path, dest: str | Path, settings_dir: str | Path,
                       options: SceneGraphOptions = SceneGraphOptions(), images: list[str] | None = None) -> dict:
    """Detect on every image of ``image_dir`` (or on ``images``, paths relative to it) and
    write the set described in the module docstring into ``dest``; ultralytics' settings go
    to ``settings_dir``. Returns the manifest."""
    from cxrbench.detect.train import default_device

    image_dir, dest = Path(image_dir), Path(dest)
    weights = resolve_detector(detector)
    if options.imgsz is None:
        options = replace(options, imgsz=detector_imgsz(weights))
    rels = G.list_images(image_dir) if images is None else sorted(images)
    if not rels:
        raise CxrbenchError(f"{image_dir}: no .jpg/.jpeg/.png images found")
    missing = [r for r in rels if not (image_dir / r).is_file()]
    if missing:
        raise CxrbenchError(f"{image_dir}: {len(missing)} of the listed images not found (e.g. {missing[0]})")
    keys = [G.image_key(r) for r in rels]
    seen: dict[str, str] = {}
    for rel, key in zip(rels, keys):
        if key.image_id in seen:
            raise CxrbenchError(f"{image_dir}: {seen[key.image_id]} and {rel} both have image id {key.image_id!r}")
        seen[key.image_id] = rel
    load_ultralytics(settings_dir, verbose=False)
    model = load_detector(weights)
    device = options.device or default_device()
    writer = G.GraphSetWriter(dest)
    bar = tqdm(total=len(rels), desc="scene graphs", unit="image", disable=not options.progress)
    for start in range(0, len(rels), options.batch):
        chunk = rels[start:start + options.batch]
        results = _predict(model, [image_dir / r for r in chunk], options, device)
        for rel, key, res in zip(chunk, keys[start:start + options.batch], results):
            height, width = (int(v) for v in res.orig_shape)
            boxes = res.boxes.cpu()
            writer.add(rel, key, width, height,
                       [G.Detection(int(c), tuple(float(v) for v in b), float(s))
                        for b, s, c in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist())])
            bar.update(1)
    bar.close()
    manifest = writer.finish(provenance("cxrbench scene-graph", extra_packages=("torch", "ultralytics"),
                                        detector={"file": weights.name, "sha256": file_sha256(weights)},
                                        options={k: v for k, v in asdict(options).items() if k != "progress"},
                                        ultralytics=ultralytics_version()))
    return manifest
