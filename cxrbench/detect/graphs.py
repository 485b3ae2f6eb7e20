"""Detections as scene graphs in the MIMIC-Ext-CXR-QBA format, and those graphs as index nodes.

:func:`scene_graph` turns one image's detections into a ``scene_graph.json`` document with
the real release's keys and encodings (reference page + real-release-evidence.md): string ids
``"p10000032"`` / ``"s50414267"`` (for images in the MIMIC-CXR-JPG layout), observations keyed
``O01``..., ``positiveness`` ``pos``, ``modifiers`` as ``[kind, value]`` pairs,
``localization`` per image id with ``bboxes`` in pixel ``[x1, y1, x2, y2]`` and integer
``localization_quality`` (3 = BBOX_LOCALIZATION), region nodes keyed by region name,
``located_at_relations`` and ``region_region_relations``. What a detector cannot know is
left empty (``sentences``, ``changes``, ``obs_relations``, no ``indication``, no extraction
quality: nothing was extracted from a report). Each box's detector confidence is kept as
``confidence`` in its localization entry (an extra key; the readers ignore unknown keys).

- Regions: one node per detected region class (its most confident box).
- Findings and devices: one positive observation per detection, ``probability`` ``positive``
  at confidence >= 0.5, else ``may`` (``certainty`` uncertain). It is located at the smallest
  detected region holding at least half of its box; its laterality is that region's when the
  region is sided, else read off the box against the midline (the mediastinum's centre when
  detected, else the image's centre; the patient's left is the image's right).
- ``region_region_relations``: the dataset's own rule,
  :func:`cxrbench.data.synth.study.region_relations`, applied to the detected boxes:
  ``sub_region`` along the release's region tree, and ``left`` / ``right`` / ``above`` /
  ``below`` / ``adjacent`` between each region and its three nearest others, read off the box
  geometry (``relation_type`` says where ``related_region`` lies relative to ``region``).

Image ids (:func:`image_key`): for an image in the MIMIC-CXR-JPG layout
(``.../pNN/pSUBJECT/sSTUDY/DICOM.jpg``) its dicom id, with the study known; otherwise its path
relative to the image folder without the extension (VQA-RAD ``synpic54610``, SLAKE
``xmlab102/source``), so two SLAKE images called ``source.jpg`` stay apart.

:func:`detected_nodes` reads a folder of such graphs back as a DataFrame in the index's
``nodes.parquet`` schema (docs/contracts.md §2), for the model's predictor.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import pyarrow as pa

from cxrbench.data.index import NODES_SCHEMA
from cxrbench.data.layout import strip_id
from cxrbench.data.readers import parse_json, validate_scene_graph
from cxrbench.data.synth.study import region_relations
from cxrbench.detect.classes import CLASS_CATEGORIES, CLASS_KIND, CLASS_NAMES, REGION_LATERALITY
from cxrbench.errors import CxrbenchError, DataError, reading
from cxrbench.io import atomic_write_json, atomic_write_parquet

GRAPH_SUFFIX = ".scene_graph.json"
GRAPHS_DIR = "scene_graphs"
IMAGES_TABLE = "images.parquet"
IMAGE_COLUMNS = ("image_id", "subject_id", "study_id", "image_path", "graph", "width", "height", "n_regions",
                 "n_observations")
MANIFEST = "manifest.json"
BBOX_LOCALIZATION = 3        # the release's localization quality code for a plain box
NO_LOCALIZATION = 0
CERTAIN_CONFIDENCE = 0.5
MIMIC_IMAGE_RE = re.compile(r"(?:^|/)p(\d{2})/p(\d+)/s(\d+)/([^/]+)\.jpe?g$", re.IGNORECASE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Detection:
    """One box of the detector on one image, in pixels of that image."""

    class_id: int
    box: tuple[float, float, float, float]
    confidence: float

    @property
    def name(self) -> str:
        return CLASS_NAMES[self.class_id]


@dataclass(frozen=True)
class ImageKey:
    image_id: str
    subject_id: int | None = None
    study_id: int | None = None


def image_key(relpath: str | Path) -> ImageKey:
    """The image id (and study) of an image from its path relative to the image folder."""
    rel = Path(relpath).as_posix()
    m = MIMIC_IMAGE_RE.search(rel)
    if m:
        return ImageKey(m.group(4), int(m.group(2)), int(m.group(3)))
    return ImageKey(rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel)


def graph_relpath(image_relpath: str | Path) -> str:
    """Where an image's graph goes under ``scene_graphs/``: the image's relative path with the
    extension replaced (the folder tree of the images is kept)."""
    p = Path(image_relpath)
    return (p.parent / (p.stem + GRAPH_SUFFIX)).as_posix()


def list_images(image_dir: str | Path) -> list[str]:
    """Image files under ``image_dir`` (recursive, hidden entries skipped), relative POSIX paths, sorted."""
    root = Path(image_dir)
    if not root.is_dir():
        raise CxrbenchError(f"{root}: not a directory of images")
    out = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not any(s.startswith(".") for s in rel.parts):
            out.append(rel.as_posix())
    return sorted(out)


def _round(box: Sequence[float]) -> list[float]:
    return [round(float(v), 1) for v in box]


def _loc(image_id: str, box: Sequence[float], confidence: float, refs: list[str]) -> dict:
    return {image_id: {"image_id": image_id, "localization_reference_ids": refs, "bboxes": [_round(box)],
                       "instance_mask_ids": [], "missing_localization": [], "is_fallback": False,
                       "localization_quality": BBOX_LOCALIZATION, "confidence": round(float(confidence), 4)}}


def _area(b: Sequence[float]) -> float:
    return max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])


def _inside_fraction(inner: Sequence[float], outer: Sequence[float]) -> float:
    w = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    h = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    a = _area(inner)
    return w * h / a if a > 0 else 0.0


def located_region(box: Sequence[float], regions: Mapping[str, Detection]) -> str | None:
    """The smallest detected region that holds at least half of ``box``."""
    holding = [(_area(d.box), name) for name, d in regions.items() if _inside_fraction(box, d.box) >= 0.5]
    return min(holding)[1] if holding else None


def box_laterality(box: Sequence[float], midline: float, width: float) -> str:
    """``left`` / ``right`` (the patient's: image right is patient left) for a box at least
    three quarters on one side of ``midline``; else ``bilateral`` when it reaches more than a
    tenth of the image width into both sides, ``midline`` when it only straddles the line."""
    x1, x2 = box[0], box[2]
    on_image_right = max(0.0, x2 - max(x1, midline)) / max(x2 - x1, 1e-9)
    if on_image_right >= 0.75:
        return "left"
    if on_image_right <= 0.25:
        return "right"
    return "bilateral" if min(midline - x1, x2 - midline) > 0.1 * width else "midline"


def scene_graph(image_id: str, width: int, height: int, detections: Iterable[Detection],
                subject_id: int | None = None, study_id: int | None = None) -> dict:
    """The scene graph of one image's detections (rules in the module docstring)."""
    dets = sorted(detections, key=lambda d: (-d.confidence, d.class_id, d.box))
    regions: dict[str, Detection] = {}
    for d in dets:
        if CLASS_KIND[d.name] == "region" and d.name not in regions:
            regions[d.name] = d
    findings = [d for d in dets if CLASS_KIND[d.name] != "region"]
    midline = ((regions["mediastinum"].box[0] + regions["mediastinum"].box[2]) / 2
               if "mediastinum" in regions else width / 2)
    observations: dict[str, dict] = {}
    located: list[dict] = []
    for i, d in enumerate(findings, start=1):
        oid = f"O{i:02d}"
        where = located_region(d.box, regions)
        region_side = REGION_LATERALITY[where] if where else None
        lat = region_side if region_side in ("left", "right") else box_laterality(d.box, midline, width)
        certain = d.confidence >= CERTAIN_CONFIDENCE
        observations[oid] = {
            "obs_id": oid, "name": d.name,
            "summary_sentence": f"{d.name.capitalize()} detected" + (f" in the {where}." if where else "."),
            "child_type": None, "child_level": 0,
            "regions": [{"region": where, "distances": []}] if where else [],
            "non_resolved_regions": [], "laterality": lat, "default_regions": [],
            "obs_entities": [d.name], "obs_entities_parents": [], "non_resolved_obs_entities": [],
            "obs_categories": list(CLASS_CATEGORIES[d.name]), "obs_subcategories": [],
            "probability": "positive" if certain else "may", "certainty": "certain" if certain else "uncertain",
            "positiveness": "pos", "modifiers": [], "changes": [], "change_sentence": None, "from_report": False,
            "localization": _loc(image_id, d.box, d.confidence, [where] if where else []),
        }
        if where:
            located.append({"region": where, "observation_id": oid, "distances": [], "where_specified": "direct"})
    region_nodes = {
        name: {"region": name, "laterality": REGION_LATERALITY[name],
               "localization": _loc(image_id, d.box, d.confidence, [name]),
               "region_localization_quality": BBOX_LOCALIZATION}
        for name, d in sorted(regions.items(), key=lambda kv: kv[1].class_id)
    }
    norm = {name: (d.box[0] / width, d.box[1] / height, d.box[2] / width, d.box[3] / height)
            for name, d in regions.items()}
    graph: dict[str, Any] = {}
    if subject_id is not None and study_id is not None:
        graph.update({"patient_id": f"p{subject_id}", "study_id": f"s{study_id}"})
    graph.update({
        "sentences": {}, "top_level_obs_ids": list(observations), "observations": observations,
        "regions": region_nodes, "located_at_relations": located, "obs_relations": [], "obs_sent_relations": [],
        "region_region_relations": region_relations(list(region_nodes), norm),
        "study_img_localization_quality": {image_id: BBOX_LOCALIZATION if dets else NO_LOCALIZATION},
    })
    return graph


class GraphSetWriter:
    """Writes the set of ``cxrbench scene-graph`` into ``dest``: ``scene_graphs/...``,
    ``images.parquet`` and ``manifest.json`` (docs/detect.md); :func:`detected_nodes` reads it."""

    def __init__(self, dest: str | Path):
        self.dest = Path(dest)
        self.rows: list[dict] = []
        self.nodes: Counter = Counter()

    def add(self, image_relpath: str, key: ImageKey, width: int, height: int, detections: Iterable[Detection]) -> dict:
        graph = scene_graph(key.image_id, width, height, detections, key.subject_id, key.study_id)
        out = graph_relpath(image_relpath)
        atomic_write_json(self.dest / GRAPHS_DIR / out, graph)
        self.nodes.update(regions=len(graph["regions"]), observations=len(graph["observations"]))
        self.rows.append({"image_id": key.image_id, "subject_id": key.subject_id, "study_id": key.study_id,
                          "image_path": Path(image_relpath).as_posix(), "graph": out, "width": width, "height": height,
                          "n_regions": len(graph["regions"]), "n_observations": len(graph["observations"])})
        return graph

    def finish(self, provenance: Mapping[str, Any]) -> dict:
        table = pd.DataFrame(self.rows, columns=IMAGE_COLUMNS).astype({"subject_id": "Int64", "study_id": "Int64"})
        atomic_write_parquet(self.dest / IMAGES_TABLE, table)
        manifest = {"provenance": dict(provenance), "images": len(self.rows), "nodes": dict(sorted(self.nodes.items())),
                    "images_without_detections": sum(1 for r in self.rows if not r["n_regions"] and not r["n_observations"])}
        atomic_write_json(self.dest / MANIFEST, manifest)
        return manifest


# ----------------------------------------------------------------------------------------------
# graphs -> index nodes


def graph_nodes(graph: Mapping[str, Any], image_id: str, study_id: int | None) -> pa.Table:
    """The ``nodes.parquet`` rows of one image's scene graph, by the index's own node
    extraction (:func:`cxrbench.data.study_rows.add_nodes`: every observation, then every
    region, each with its boxes on ``image_id``). Its worker context needs no JSON reader,
    quality decoder or vocabulary here (the graph is in hand; unknown names are not counted)."""
    from cxrbench.data.study_rows import ChunkSink, IndexFilters, WorkerContext, add_nodes

    sink = ChunkSink()
    add_nodes(study_id, image_id, graph, WorkerContext(json=None, vocab=None, quality=None, filters=IndexFilters()),
              sink)
    return sink.nodes.table()


def detected_nodes(scene_graph_dir: str | Path) -> pd.DataFrame:
    """The detected scene graphs of ``cxrbench scene-graph ... --out DIR`` as a DataFrame in
    the index's ``nodes.parquet`` schema (study_id, image_id, node_id, node_kind, bbox, bboxes,
    is_fallback, regions, entities, categories, laterality), keyed by ``image_id``
    (:func:`image_key`); ``study_id`` is set for images in the MIMIC-CXR-JPG layout, else
    null. Images without any detection have no rows (consumers use the whole image, as for
    a study without nodes). Every graph is validated with the project's readers."""
    root = Path(scene_graph_dir)
    table_path = root / IMAGES_TABLE
    with reading(table_path, what="Parquet file"):
        images = pd.read_parquet(table_path, columns=["image_id", "study_id", "graph", "width", "height"])
    tables: list[pa.Table] = []
    for r in images.itertuples(index=False):
        path = root / GRAPHS_DIR / r.graph
        with reading(path, what="scene graph"):
            data = path.read_bytes()
        graph = parse_json(data, str(path))
        validate_scene_graph(graph, str(path), {r.image_id: (float(r.width), float(r.height))})
        study = None if pd.isna(r.study_id) else int(r.study_id)
        if study is not None and graph.get("study_id") is not None and strip_id(graph["study_id"], "s", str(path),
                                                                                  "study_id") != study:
            raise DataError(str(path), "study_id", f"{graph['study_id']!r} does not match {IMAGES_TABLE} (s{study})")
        tables.append(graph_nodes(graph, str(r.image_id), study))
    return (pa.concat_tables(tables) if tables else NODES_SCHEMA.empty_table()).to_pandas()
