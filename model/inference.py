"""Predictions of a checkpoint: one row per QA row, the predictions.parquet columns (contracts section 3).

``Predictor(bundle, index_dir).predict(qa_frame)`` answers the index's QA rows: the study's
primary image and scene graph come from the index. Rows whose study is not in the index (or
that carry no ``study_id``) are answered from their ``image_path`` (absolute, or relative to
``image_root``) with the whole-image token only: that is how VQA-RAD / SLAKE images without
scene graphs go through (seed 16.3), together with ``use_scene_graph=False``, which switches
the scene-graph branch off for every row (global image token, no region/entity embeddings,
no SIM), the zero-shot mode.

Routing: a ``head`` column in the input wins (the cross-dataset loader provides one); else the
question type's registry entry; else :func:`model.targets.infer_head` on the question.

Backbone features are computed online, one image at a time in eval mode (as the training
feature cache computes them), and kept per image for the predictor's lifetime. Same inputs
give an identical frame.

Columns: ``question_id, study_id, question_type, question, head, answer, prediction,
label_true, label_pred, score, probs, confidence, regions_true, regions_pred, boxes_true,
boxes_pred, box_scores, findings_true, findings_pred, image_width, image_height,
region_category, split, chexpert_true, chexpert_prob, attn_text_visual, attn_sim,
token_boxes, image_path``. Label conventions: binary 1 = yes, ``score`` = P(yes); region
``probs`` are 26 independent sigmoid probabilities (several regions can be true), ``label_*``
the top region (true: the first region the answer names); text rows have ``label_*`` null
and list their findings in ``findings_*``. Single-head checkpoints: ``prediction`` is the
unified argmax over all 46 answer classes (answering with the wrong kind of answer counts as
wrong), while ``label_pred``/``probs``/``score`` are renormalised within the row's own head.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from model.answers import label_key
from model.checkpoint import CheckpointBundle
from model.data import DatasetSettings, ImageGraph, ImageStore, IndexData, QADataset, build_graphs, collate, global_graph
from model.decisions import decide_findings, decide_regions, finding_thresholds
from model.feature_cache import extract_image
from model.targets import derive_targets
from model.vocabularies import (
    FINDING_CLASSES,
    HEAD_CLASSES,
    HEAD_INDEX,
    HEAD_NAMES,
    REGION_CLASSES,
    SEVERITY_CLASSES,
    UNIFIED_CLASSES,
    UNIFIED_OFFSETS,
)


class _ImageFeatures:
    """Backbone features per image, computed on first use (the collate's ``features``)."""

    def __init__(self, backbone, graphs: dict[Any, ImageGraph], images: ImageStore):
        self.backbone, self.graphs, self.images = backbone, graphs, images
        self.channels = backbone.channels
        self._by_image: dict[str, np.ndarray] = {}
        self._graph_by_image = {g.image_id: g for g in graphs.values()}

    def get(self, image_id: str, variant: str = "orig") -> np.ndarray:
        if image_id not in self._by_image:
            g = self._graph_by_image[image_id]
            size = self.images.size
            scale = np.array([size / g.width, size / g.height] * 2, dtype=np.float32)
            self._by_image[image_id] = extract_image(self.backbone, self.images.get(g.image_path), g.boxes * scale)
        return self._by_image[image_id]


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    from cxrbench.errors import DataError

    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise DataError(str(path), None, "image file not found") from None


def _text_or_none(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def _nan_list(values) -> list[float] | None:
    if values is None or (isinstance(values, float) and math.isnan(values)):
        return None
    arr = np.asarray(values, dtype=np.float64)
    return [float(v) for v in arr] if arr.shape == (len(FINDING_CLASSES),) else None


class Predictor:
    """A checkpoint ready to answer QA rows; implements ``cxrbench.predictor.Predictor``
    (``identity``, ``image_root``, ``predict``). The model runs on the device ``bundle.model``
    is on (``load_checkpoint(path, device)``)."""

    def __init__(self, bundle: CheckpointBundle, index_dir: str | Path | None = None, *, use_scene_graph: bool = True,
                 batch_size: int = 64, image_root: str | Path | None = None, scene_graph_nodes=None):
        """``scene_graph_nodes``: nodes in the index's ``nodes.parquet`` schema to build the visual
        tokens from instead of the index's own (a detector's, ``cxrbench.detect.graphs.
        detected_nodes``); rows with a study_id serve the index's studies, rows without one the
        external images of cross-dataset frames (matched on ``image_id``: the image's path
        relative to the image folder, without its extension). The predicted boxes of region
        answers come from the same nodes."""
        self.bundle = bundle
        self.use_scene_graph = bool(use_scene_graph)
        self.batch_size = int(batch_size)
        cfg = bundle.config
        self.scene_graph = cfg.tokens.scene_graph and self.use_scene_graph
        self.index = IndexData.load(index_dir) if index_dir is not None else None
        root = Path(image_root) if image_root is not None else (self.index.image_root if self.index else None)
        self.image_root = root
        meta = bundle.metadata
        self.identity = {"condition": bundle.condition, "model": "SSGVQANet", "config_name": meta.get("config_name"),
                         "step": meta.get("step"), "seed": meta.get("seed"),
                         "train_index_hash": meta.get("data_index_hash"), "use_scene_graph": self.use_scene_graph}
        self.identity["scene_graphs"] = "detected" if scene_graph_nodes is not None else (
            "dataset" if self.use_scene_graph else "none")
        self.images = ImageStore(root, cfg.backbone.image_size)
        self.graphs: dict[Any, ImageGraph] = {}
        self.region_boxes: dict[int, dict[str, list[float]]] = {}
        self.nodes = scene_graph_nodes if scene_graph_nodes is not None else (
            self.index.nodes if self.index is not None else None)
        self.external_nodes = None
        if scene_graph_nodes is not None:
            self.external_nodes = {str(k): g for k, g in
                                   scene_graph_nodes[scene_graph_nodes["study_id"].isna()].groupby("image_id")}
        if self.index is not None:
            self.graphs, _ = build_graphs(self.index.studies, self.nodes, cfg.tokens.max_nodes, self.scene_graph)
            self.region_boxes = self._region_boxes()
            self.studies = self.index.studies.set_index("study_id", drop=False)
        self.features = _ImageFeatures(bundle.model.backbone, self.graphs, self.images)
        self.settings = DatasetSettings(max_question_tokens=cfg.encoder.max_question_tokens,
                                        image_size=cfg.backbone.image_size, scene_graph=self.scene_graph,
                                        features="cache")

    def _region_boxes(self) -> dict[int, dict[str, list[float]]]:
        """Per study, the box of each head region on the primary image (exact name first,
        else the union of the fine region nodes that fold onto it), from the nodes the tokens
        are built from."""
        nodes = self.nodes
        nodes = nodes[(nodes["node_kind"] == "region") & nodes["bbox"].notna()]
        primary = {sid: g.image_id for sid, g in self.graphs.items()}
        vocabs = self.bundle.vocabularies
        out: dict[int, dict[str, list[float]]] = {}
        exact: dict[int, set[str]] = {}
        for node in nodes.itertuples(index=False):
            sid = int(node.study_id)
            if primary.get(sid) != str(node.image_id):
                continue
            name = str(node.node_id)
            head = vocabs.head_region(name)
            if head is None:
                continue
            box = [float(v) for v in node.bbox]
            boxes = out.setdefault(sid, {})
            if name == head:
                boxes[head] = box
                exact.setdefault(sid, set()).add(head)
            elif head not in exact.get(sid, set()):
                old = boxes.get(head)
                boxes[head] = box if old is None else [min(old[0], box[0]), min(old[1], box[1]),
                                                       max(old[2], box[2]), max(old[3], box[3])]
        return out

    # -----------------------------------------------------------------------------------------
    def _graphs_for(self, frame) -> tuple[list[int], dict[Any, ImageGraph]]:
        """A graph key per row: the study's own graph, or a whole-image graph of its image_path."""
        keys: list[int] = []
        graphs = dict(self.graphs)
        external: dict[str, int] = {}
        has_study = "study_id" in frame.columns
        for i, row in enumerate(frame.itertuples(index=False)):
            sid = getattr(row, "study_id", None) if has_study else None
            if sid is not None and sid == sid and int(sid) in self.graphs:
                keys.append(int(sid))
                continue
            path = getattr(row, "image_path", None)
            if path is None or path != path:
                from cxrbench.errors import DataError

                known = self.index is not None and sid is not None and sid == sid and \
                    int(sid) in set(self.index.studies["study_id"].astype("int64"))
                raise DataError("predict input", str(getattr(row, "question_id", i)),
                                f"study {sid} has no frontal image in the index and the row no image_path"
                                if known else "study not in the index and no image_path to answer from")
            path = str(path)
            if path not in external:
                key = -(len(external) + 1)
                w, h = _image_size(self.images.path(path))
                graphs[key] = self._external_graph(key, path, w, h)
                external[path] = key
            keys.append(external[path])
        return keys, graphs

    def _external_graph(self, key: int, path: str, w: float, h: float) -> ImageGraph:
        """An image outside the index: its detected scene graph where one was given, else the
        whole-image token only."""
        if self.external_nodes is not None and self.scene_graph:
            import pandas as pd

            from cxrbench.detect.graphs import image_key

            rel = Path(path)
            if self.image_root is not None and rel.is_absolute():
                try:
                    rel = rel.resolve().relative_to(Path(self.image_root).resolve())
                except ValueError:
                    pass
            image_id = image_key(rel).image_id
            sub = self.external_nodes.get(str(image_id))
            if sub is not None:
                study = pd.DataFrame([{"study_id": key, "image_id": str(image_id), "image_path": path,
                                       "image_width": w, "image_height": h}])
                graphs, _ = build_graphs(study, sub.assign(study_id=key), self.bundle.config.tokens.max_nodes, True)
                return graphs[key]
        return global_graph(key, f"external:{path}", path, w, h)

    def predict(self, qa_frame) -> "Any":
        import pandas as pd
        import torch

        frame = qa_frame.reset_index(drop=True).copy()
        keys, graphs = self._graphs_for(frame)
        self.features.graphs = graphs
        self.features._graph_by_image = {g.image_id: g for g in graphs.values()}
        frame["_graph"] = keys
        bundle, model = self.bundle, self.bundle.model
        studies = self.index.studies if self.index is not None else None
        targets = derive_targets(frame, bundle.vocabularies, studies)
        if "head" in frame.columns:  # explicit routing wins (cross-dataset frames carry it)
            given = frame["head"].map(lambda h: HEAD_INDEX.get(str(h), -1)).to_numpy()
            targets.head = np.where(given >= 0, given, targets.head)
        ds_frame = frame.assign(study_id=frame["_graph"])
        dataset = QADataset(ds_frame, graphs, bundle.vocabularies, self.settings, targets=targets, train=False)
        rows: list[dict[str, Any]] = []
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            for start in range(0, len(dataset), self.batch_size):
                items = [dataset.item(i) for i in range(start, min(start + self.batch_size, len(dataset)))]
                batch = collate(items, bundle.tokenizer, self.settings, features=self.features)
                batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
                out = model(batch, use_scene_graph=self.use_scene_graph, output_attentions=True)
                out = {k: v.float().cpu() for k, v in out.items()}
                rows.extend(self._rows(frame, targets, items, out))
        result = pd.DataFrame(rows)
        for col in ("label_true", "label_pred"):   # class indices, null where the head has none
            result[col] = result[col].astype("Int64")
        return result

    # -----------------------------------------------------------------------------------------
    def _rows(self, frame, targets, items, out) -> list[dict[str, Any]]:
        import torch

        cfg = self.bundle.config.heads
        bank = self.bundle.answer_bank
        chex = torch.sigmoid(out["chexpert"].float()).numpy()
        att_tv = out.get("attn_text_visual")
        att_sim = out.get("attn_sim")
        if cfg.kind == "multi":
            probs = {"binary": torch.softmax(out["binary"].float(), -1).numpy(),
                     "severity": torch.softmax(out["severity"].float(), -1).numpy(),
                     "region": torch.sigmoid(out["region"].float()).numpy(),
                     "text": torch.sigmoid(out["text"].float()).numpy()}
        else:
            unified_logits = out["unified"].double().numpy()
            unified = torch.softmax(out["unified"].float(), -1).numpy()
        rows = []
        for j, it in enumerate(items):
            i = it["index"]
            src = frame.iloc[i]
            head = HEAD_NAMES[targets.head[i]]
            g_key = int(frame["_graph"].iat[i])
            n_tok = len(it["feature_rows"])
            if cfg.kind == "multi":
                p = probs[head][j]
            else:
                off, k = UNIFIED_OFFSETS[head], len(HEAD_CLASSES[head])
                p = unified_logits[j, off:off + k]
                p = np.exp(p - p.max())
                p = p / p.sum()             # the softmax restricted to the head's classes
            row = self._decode(head, p, cfg)
            if cfg.kind == "single":   # the text comes from the unified argmax, whatever its head
                c = int(np.argmax(unified[j]))
                c_head = next(h for h in HEAD_NAMES[::-1] if c >= UNIFIED_OFFSETS[h])
                name = UNIFIED_CLASSES[c]
                key = label_key(c_head, binary=int(name == "yes"), regions=[name], severity=SEVERITY_CLASSES.index(name)
                                if c_head == "severity" else None, findings=[name])
                row["prediction"] = bank.answer(c_head, key, src["question"], src.get("question_type"))
            else:
                row["prediction"] = bank.answer(head, row.pop("_key"), src["question"], src.get("question_type"))
            row.pop("_key", None)
            self._truth(row, head, targets, i)
            study_id = src.get("study_id") if g_key >= 0 else None
            g = self.features.graphs[g_key]
            region_boxes = self.region_boxes.get(g_key, {}) if g_key >= 0 else {}
            whole = [0.0, 0.0, float(g.width), float(g.height)]
            row["boxes_pred"] = [region_boxes.get(r, whole) for r in row["regions_pred"]]
            answer_boxes = src.get("answer_bboxes") if "answer_bboxes" in frame.columns else None
            row["boxes_true"] = [[float(v) for v in b] for b in answer_boxes] if answer_boxes is not None else []
            chexpert_true = None
            if study_id is not None and self.index is not None:
                srow = self.studies.loc[int(study_id)]
                gold = srow.get("chexpert_gold") if "chexpert_gold" in self.studies.columns else None
                chexpert_true = _nan_list(gold) or _nan_list(srow.get("chexpert"))
            row.update({
                "question_id": str(src.get("question_id", i)),
                "study_id": int(study_id) if study_id is not None and study_id == study_id else None,
                "question_type": _text_or_none(src.get("question_type")),
                "question": str(src["question"]),
                "head": head,
                "answer": _text_or_none(src.get("answer")) or "",
                "image_width": float(g.width),
                "image_height": float(g.height),
                "region_category": str(targets.region_category[i]),
                "split": _text_or_none(src.get("split")),
                "chexpert_true": chexpert_true,
                "chexpert_prob": [float(v) for v in chex[j]],
                "attn_text_visual": None if att_tv is None else [float(v) for v in att_tv[j, :n_tok]],
                "attn_sim": None if att_sim is None else [float(v) for v in att_sim[j, :n_tok]],
                "token_boxes": [[float(v) for v in b] for b in it["token_boxes"]],
                "image_path": g.image_path,
            })
            rows.append(row)
        return rows

    def _decode(self, head: str, p: np.ndarray, cfg) -> dict[str, Any]:
        """Prediction fields of one row from its head's probabilities ``p``."""
        top = int(np.argmax(p))
        row: dict[str, Any] = {"probs": [float(v) for v in p], "label_pred": top, "confidence": float(p[top]),
                               "score": None, "regions_pred": [], "box_scores": [], "findings_pred": []}
        if head == "binary":
            row["score"] = float(p[1])
            row["_key"] = label_key("binary", binary=top)
        elif head == "region":
            chosen = decide_regions(p, cfg.region_threshold)
            row["regions_pred"] = [REGION_CLASSES[k] for k in chosen]
            row["box_scores"] = [float(p[k]) for k in chosen]
            row["_key"] = label_key("region", regions=row["regions_pred"])
        elif head == "severity":
            row["_key"] = label_key("severity", severity=top)
        else:
            chosen = decide_findings(p[None, :], finding_thresholds(cfg))[0]
            row["findings_pred"] = [FINDING_CLASSES[k] for k in np.flatnonzero(chosen)]
            row["label_pred"] = None
            row["confidence"] = float(max(p[k] for k in range(len(p)) if FINDING_CLASSES[k] in row["findings_pred"]))
            row["_key"] = label_key("text", findings=row["findings_pred"])
        return row

    @staticmethod
    def _truth(row: dict[str, Any], head: str, targets, i: int) -> None:
        regions_true = [REGION_CLASSES[k] for k in np.flatnonzero(targets.region[i])]
        row["regions_true"] = regions_true
        row["findings_true"] = [FINDING_CLASSES[k] for k in np.flatnonzero(targets.findings[i])] if head == "text" else []
        if head == "binary":
            row["label_true"] = int(targets.binary[i]) if targets.binary[i] >= 0 else None
        elif head == "region":
            first = int(targets.region_first[i])
            row["label_true"] = first if first >= 0 else None
        elif head == "severity":
            row["label_true"] = int(targets.severity[i]) if targets.severity[i] >= 0 else None
        else:
            row["label_true"] = None
