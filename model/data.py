"""From an index directory (docs/contracts.md section 2) to model batches.

:class:`IndexData` reads ``qa.parquet``, ``studies.parquet``, ``nodes.parquet`` and
``manifest.json`` once. :func:`build_graphs` turns the nodes of every study's primary frontal
image into its visual token list: the whole-image (global) token first, then observation
nodes, then region nodes, in node-id order, capped at ``max_nodes``. A node without a box gets
the whole image (seed 4.4) and is counted.

:class:`QADataset` makes one item per QA row (question, tokens, targets), applying the
augmentations of :mod:`model.augment` with a generator seeded per (seed, epoch, item);
:func:`collate` pads items into the batch tensors :class:`model.network.SSGVQANet` reads.
Backbone features come either from the HDF5 cache (:mod:`model.feature_cache`) or, online,
from the decoded images (``images`` + ``image_index`` + ``roi_boxes``).
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxrbench.data.selection import answerable, studies_with_frontal_image
from cxrbench.errors import DataError
from model import augment
from model.config import AugmentConfig
from model.targets import Targets, derive_targets
from model.vocabularies import REGION_CLASSES, Vocabularies

_REGION_INDEX = {r: i for i, r in enumerate(REGION_CLASSES)}
# region class -> its mirror image class (flip augmentation)
REGION_MIRROR = np.array([_REGION_INDEX.get(augment.swap_left_right(r), i) for i, r in enumerate(REGION_CLASSES)])


# ---------------------------------------------------------------------------------------------
# the index

@dataclass
class IndexData:
    root: Path
    qa: Any                      # pandas frames
    studies: Any
    nodes: Any
    manifest: dict
    image_root: Path | None      # MIMIC-CXR-JPG root: images at image_root / image_path
    dataset_info: Path | None    # the QBA release's metadata/dataset_info.json

    @classmethod
    def load(cls, index_dir: str | Path, columns: list[str] | None = None) -> "IndexData":
        import pandas as pd

        root = Path(index_dir)
        for name in ("qa.parquet", "studies.parquet", "nodes.parquet", "manifest.json"):
            if not (root / name).exists():
                raise DataError(str(root / name), None, "missing: not an index directory (cxrbench index ROOT --out DIR)")
        manifest = json.loads((root / "manifest.json").read_text())
        image_root, dataset_info = _release_paths(manifest, root)
        qa = pd.read_parquet(root / "qa.parquet", columns=columns)
        studies = pd.read_parquet(root / "studies.parquet")
        nodes = pd.read_parquet(root / "nodes.parquet")
        for frame, name, needed in ((qa, "qa.parquet", ("question_id", "study_id", "question_type", "question")),
                                    (studies, "studies.parquet", ("study_id", "image_id", "image_path",
                                                                  "image_width", "image_height")),
                                    (nodes, "nodes.parquet", ("study_id", "image_id", "node_id", "node_kind",
                                                              "bbox", "regions", "entities"))):
            missing = [c for c in needed if c not in frame.columns]
            if missing:
                raise DataError(str(root / name), None, f"missing column(s) {missing}")
        return cls(root, qa, studies, nodes, manifest, image_root, dataset_info)

    def answerable(self, split: str):
        """The QA rows of ``split`` the model can answer (:func:`cxrbench.data.selection.answerable`:
        the study has a primary frontal image)."""
        return self.qa[(self.qa["split"] == split).to_numpy() & answerable(self.qa, self.studies)]

    def index_hash(self) -> str | None:
        """The index's content hash (manifest), recorded in the checkpoint's training metadata."""
        m = self.manifest
        return m.get("content_hash") or m.get("hash") or m.get("index_hash")


def _release_paths(manifest: dict, root: Path) -> tuple[Path | None, Path | None]:
    """MIMIC-CXR-JPG root and dataset_info.json from the manifest's resolved release roots."""
    roots = manifest.get("roots") or manifest.get("releases") or manifest
    jpg = roots.get("mimic_cxr_jpg") or roots.get("mimic-cxr-jpg") or roots.get("jpg_root")
    qba = roots.get("mimic_ext_cxr_qba") or roots.get("mimic-ext-cxr-qba") or roots.get("qba_root")
    info = roots.get("dataset_info")

    def resolve(p: Any) -> Path | None:
        if not p:
            return None
        p = Path(p)
        return p if p.is_absolute() else (root / p).resolve()

    image_root = resolve(jpg)
    dataset_info = resolve(info) or (resolve(qba) / "metadata" / "dataset_info.json" if qba else None)
    return image_root, dataset_info


# ---------------------------------------------------------------------------------------------
# visual token lists

@dataclass
class ImageGraph:
    """The visual tokens of one primary image, global token first (boxes in image pixels)."""

    study_id: int
    image_id: str | None
    image_path: str | None       # relative to the MIMIC-CXR-JPG root (or absolute)
    width: float
    height: float
    boxes: np.ndarray            # (n, 4) float32
    kinds: list[str]             # global / observation / region
    regions: list[list[str]]
    entities: list[list[str]]

    @property
    def n(self) -> int:
        return len(self.kinds)

    def boxes_key(self) -> bytes:
        """What the cached features of this image depend on besides the backbone."""
        return np.round(self.boxes, 2).astype(np.float32).tobytes() + repr((self.width, self.height)).encode()


def global_graph(study_id: int, image_id: str | None, image_path: str | None, width: float, height: float) -> ImageGraph:
    """A token list with the whole-image token only (no scene graph)."""
    return ImageGraph(int(study_id), image_id, image_path, float(width), float(height),
                      np.array([[0.0, 0.0, width, height]], dtype=np.float32), ["global"], [[]], [[]])


def _names(value: Any) -> list[str]:
    if value is None or (isinstance(value, float) and value != value):
        return []
    return [str(v) for v in value]


def build_graphs(studies, nodes, max_nodes: int, scene_graph: bool = True) -> tuple[dict[int, ImageGraph], Counter]:
    """Visual token lists of every study with a primary frontal image (the answerable ones,
    :mod:`cxrbench.data.selection`); counts of tolerated problems."""
    counts: Counter = Counter()
    graphs: dict[int, ImageGraph] = {}
    frontal = studies_with_frontal_image(studies)
    by_study: dict[int, Any] = {}
    if scene_graph and len(nodes):
        nodes = nodes.assign(_order=nodes["node_kind"].map({"observation": 0, "region": 1}).fillna(2))
        nodes = nodes.sort_values(["study_id", "_order", "node_id"], kind="stable")
        by_study = {int(k): g for k, g in nodes.groupby("study_id", sort=False)}
    for row in studies.itertuples(index=False):
        if row.study_id not in frontal:
            counts["studies_without_frontal_image"] += 1
            continue
        w, h = float(row.image_width), float(row.image_height)
        g = global_graph(row.study_id, str(row.image_id), str(row.image_path), w, h)
        sub = by_study.get(int(row.study_id))
        if sub is not None:
            sub = sub[sub["image_id"].astype(str) == str(row.image_id)]
            if len(sub) > max_nodes:
                counts["nodes_over_cap"] += len(sub) - max_nodes
                sub = sub.iloc[:max_nodes]
            boxes = [g.boxes[0]]
            for node in sub.itertuples(index=False):
                box = node.bbox
                if box is None or (isinstance(box, float) and box != box) or len(box) != 4:
                    counts["missing_boxes"] += 1
                    box = [0.0, 0.0, w, h]
                box = np.clip(np.asarray(box, dtype=np.float32), 0, [w, h, w, h])
                if box[2] <= box[0] or box[3] <= box[1]:
                    counts["degenerate_boxes"] += 1
                    box = np.array([0.0, 0.0, w, h], dtype=np.float32)
                boxes.append(box)
                g.kinds.append(str(node.node_kind))
                g.regions.append(_names(node.regions))
                g.entities.append(_names(node.entities))
            g.boxes = np.stack(boxes).astype(np.float32)
        graphs[int(row.study_id)] = g
    return graphs, counts


def box_geometry(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(n, 6): normalised x1 y1 x2 y2, area, aspect ratio (w / h in normalised units)."""
    b = np.asarray(boxes, dtype=np.float32) / np.array([width, height, width, height], dtype=np.float32)
    w = np.clip(b[:, 2] - b[:, 0], 0, None)
    h = np.clip(b[:, 3] - b[:, 1], 0, None)
    return np.concatenate([b, (w * h)[:, None], (w / np.maximum(h, 1e-6))[:, None]], axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# images (online features)

def load_image(path: str | Path, size: int) -> np.ndarray:
    """(3, size, size) float32 in [0, 1]: grayscale X-ray resized and repeated on 3 channels."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L").resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise DataError(str(path), None, "image file not found") from None
    except OSError as err:
        raise DataError(str(path), None, f"unreadable image: {err}") from None
    return np.repeat(arr[None], 3, axis=0)


def augment_image(image: np.ndarray, flip: bool, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    out = image[:, :, ::-1] if flip else image
    if cfg.rotation_deg > 0:
        from scipy.ndimage import rotate

        angle = float(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
        out = rotate(out, angle, axes=(1, 2), reshape=False, order=1, mode="nearest")
    if cfg.brightness > 0:
        out = out * float(1.0 + rng.uniform(-cfg.brightness, cfg.brightness))
    if cfg.noise_std > 0:
        out = out + rng.normal(0.0, cfg.noise_std, size=out.shape).astype(np.float32)
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0), dtype=np.float32)


class ImageStore:
    """Decoded, resized images by path (a small LRU: batches repeat images)."""

    def __init__(self, root: Path | None, size: int, capacity: int = 256):
        self.root, self.size, self.capacity = root, size, capacity
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def path(self, image_path: str) -> Path:
        p = Path(image_path)
        if p.is_absolute() or self.root is None:
            return p
        return self.root / p

    def get(self, image_path: str) -> np.ndarray:
        key = str(image_path)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        image = load_image(self.path(key), self.size)
        self._cache[key] = image
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return image


# ---------------------------------------------------------------------------------------------
# items and batches

@dataclass
class DatasetSettings:
    max_question_tokens: int
    image_size: int
    scene_graph: bool            # node tokens on (False: global token only)
    features: str                # cache | online
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    nan_weight: float = 0.5
    seed: int = 0


class QADataset:
    """Items of one split. ``item(i, epoch)`` is deterministic in (seed, epoch, i)."""

    def __init__(self, qa, graphs: dict[int, ImageGraph], vocabs: Vocabularies, settings: DatasetSettings,
                 studies=None, targets: Targets | None = None, train: bool = False):
        self.qa = qa.reset_index(drop=True)
        self.graphs = graphs
        self.vocabs = vocabs
        self.settings = settings
        self.train = train
        self.targets = targets if targets is not None else derive_targets(self.qa, vocabs, studies, settings.nan_weight)
        self.study_ids = self.qa["study_id"].to_numpy(dtype=np.int64)
        self.questions = self.qa["question"].astype(str).tolist()
        self.siblings = augment.sibling_groups(vocabs.region_to_head)

    def __len__(self) -> int:
        return len(self.qa)

    def item(self, i: int, epoch: int = 0) -> dict[str, Any]:
        s, aug = self.settings, self.settings.augment
        t = self.targets
        rng = np.random.default_rng([s.seed, epoch, i]) if self.train else None
        g = self.graphs[int(self.study_ids[i])]
        if not s.scene_graph:
            keep = np.array([0], dtype=np.int64)
        elif rng is not None and aug.node_dropout > 0:
            keep = augment.drop_nodes(g.kinds, aug.node_dropout, rng)
        else:
            keep = np.arange(g.n, dtype=np.int64)
        boxes = g.boxes[keep]
        regions = [g.regions[k] for k in keep]
        entities = [g.entities[k] for k in keep]
        question = self.questions[i]
        region_target = t.region[i]
        flip = bool(rng is not None and aug.hflip > 0 and rng.random() < aug.hflip)
        if flip:
            boxes = augment.flip_boxes(boxes, g.width)
            regions = [[augment.swap_left_right(r) for r in rs] for rs in regions]
            question = augment.swap_left_right(question)
            region_target = region_target[REGION_MIRROR]
        if rng is not None:
            if aug.edge_perturbation > 0:
                regions = [augment.perturb_regions(rs, self.siblings, aug.edge_perturbation, rng) for rs in regions]
            if aug.box_jitter > 0:  # never the global token: it is the image, not an annotation
                boxes = np.concatenate([boxes[:1], augment.jitter_boxes(boxes[1:], aug.box_jitter, g.width, g.height, rng)])
            question = augment.augment_question(question, aug.question_synonyms, aug.template_variation, rng)
        scale = np.array([s.image_size / g.width, s.image_size / g.height] * 2, dtype=np.float32)
        return {
            "index": i,
            "question": question,
            "study_id": g.study_id,
            "image_id": g.image_id,
            "image_path": g.image_path,
            "flip": flip,
            "image_seed": None if rng is None else int(rng.integers(2**31)),
            "feature_rows": keep,                      # rows of the cached features of the image
            "geometry": box_geometry(boxes, g.width, g.height),
            "roi_boxes": boxes * scale,                # in resized-image pixels
            "token_boxes": boxes,                      # in image pixels
            "region_ids": [self.vocabs.region_ids(rs) for rs in regions],
            "entity_ids": [self.vocabs.entity_ids(es) for es in entities],
            "head": int(t.head[i]),
            "binary": int(t.binary[i]),
            "region": region_target,
            "severity": int(t.severity[i]),
            "findings": t.findings[i],
            "chexpert": t.chexpert[i],
            "chexpert_weight": t.chexpert_weight[i],
        }


def _pad_ids(lists: list[list[list[int]]], n: int) -> np.ndarray:
    k = max(1, max((len(ids) for item in lists for ids in item), default=1))
    out = np.zeros((len(lists), n, k), dtype=np.int64)
    for b, item in enumerate(lists):
        for j, ids in enumerate(item):
            out[b, j, : len(ids)] = ids
    return out


def collate(items: list[dict[str, Any]], tokenizer, settings: DatasetSettings, features=None,
            images: ImageStore | None = None) -> dict[str, Any]:
    """Pad ``items`` into batch tensors.

    ``features``: a :class:`model.feature_cache.FeatureCache` (cache mode) giving
    ``roi_features``; ``images``: an :class:`ImageStore` (online mode) giving ``images``,
    ``image_index`` and ``roi_boxes``.
    """
    import torch

    b = len(items)
    n = max(len(it["feature_rows"]) for it in items)
    enc = tokenizer([it["question"] for it in items], padding="longest", truncation=True,
                    max_length=settings.max_question_tokens, return_tensors="pt")
    mask = np.zeros((b, n), dtype=bool)
    geometry = np.zeros((b, n, 6), dtype=np.float32)
    roi_boxes = np.tile(np.array([0, 0, settings.image_size, settings.image_size], dtype=np.float32), (b, n, 1))
    for j, it in enumerate(items):
        m = len(it["feature_rows"])
        mask[j, :m] = True
        geometry[j, :m] = it["geometry"]
        roi_boxes[j, :m] = it["roi_boxes"]
    batch: dict[str, Any] = {
        "input_ids": enc["input_ids"],
        "attention_mask": enc["attention_mask"],
        "token_type_ids": enc["token_type_ids"],
        "geometry": torch.from_numpy(geometry),
        "region_ids": torch.from_numpy(_pad_ids([it["region_ids"] for it in items], n)),
        "entity_ids": torch.from_numpy(_pad_ids([it["entity_ids"] for it in items], n)),
        "visual_mask": torch.from_numpy(mask),
        "head": torch.tensor([it["head"] for it in items], dtype=torch.long),
        "binary": torch.tensor([it["binary"] for it in items], dtype=torch.long),
        "region": torch.from_numpy(np.stack([it["region"] for it in items]).astype(np.float32)),
        "severity": torch.tensor([it["severity"] for it in items], dtype=torch.long),
        "findings": torch.from_numpy(np.stack([it["findings"] for it in items]).astype(np.float32)),
        "chexpert": torch.from_numpy(np.stack([it["chexpert"] for it in items]).astype(np.float32)),
        "chexpert_weight": torch.from_numpy(np.stack([it["chexpert_weight"] for it in items]).astype(np.float32)),
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
    if settings.features == "cache":
        if features is None:
            raise ValueError("cache mode needs a feature cache")
        rows = np.zeros((b, n, features.channels), dtype=np.float32)
        for j, it in enumerate(items):
            variant = "flip" if it["flip"] else "orig"
            rows[j, : len(it["feature_rows"])] = features.get(it["image_id"], variant)[it["feature_rows"]]
        batch["roi_features"] = torch.from_numpy(rows)
    else:
        if images is None:
            raise ValueError("online mode needs an image store")
        keys: dict[tuple, int] = {}
        pixels = []
        index = []
        for it in items:
            key = (it["image_path"], it["flip"])
            if key not in keys:
                keys[key] = len(pixels)
                rng = np.random.default_rng(it["image_seed"]) if it["image_seed"] is not None else None
                image = images.get(it["image_path"])
                if rng is not None:
                    image = augment_image(image, it["flip"], settings.augment, rng)
                elif it["flip"]:
                    image = np.ascontiguousarray(image[:, :, ::-1])
                pixels.append(image)
            index.append(keys[key])
        batch["images"] = torch.from_numpy(np.stack(pixels))
        batch["image_index"] = torch.tensor(index, dtype=torch.long)
        batch["roi_boxes"] = torch.from_numpy(roi_boxes)
    return batch
