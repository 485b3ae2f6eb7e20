"""Spatial metrics (seed 13.2): box IoU, pointing accuracy, COCO mAP, multi-region F1.

Boxes are ``[x1, y1, x2, y2]`` in pixels of the image they belong to (docs/contracts.md). An
item (a localisation question) has a list of reference boxes and a list of predicted boxes.

- :func:`iou` of an item is the IoU of the *union* of its reference boxes with the union of
  its predicted boxes (the pixel-mask convention of the MIMIC-Ext-CXR-QBA validation, which
  unions all boxes of a finding), computed exactly on the rectangles (no rasterisation). With
  one box each it is the ordinary box IoU (``pycocotools.mask.iou``).
- :func:`map_50`, :func:`map_75`, :func:`map_50_75`: class-agnostic COCO average precision
  equal to ``pycocotools.cocoeval.COCOeval`` (``iouType="bbox"``, area "all", 100 detections
  per image, 101-point interpolation) with one image per item; ``map_50_75`` is the mean of
  AP@0.5 and AP@0.75 (seed 13.2), i.e. COCOeval with ``iouThrs=[0.5, 0.75]``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cxrbench.metrics.base import GenericStatistic, SufficientStats, mean_stats

Box = Sequence[float]
MAX_DETS = 100
REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


# ------------------------------------------------------------------------------- validation
def box_problem(box, width: float | None = None, height: float | None = None) -> str | None:
    """What is wrong with one box: ``"malformed"`` (not 4 finite numbers, or x2 < x1 / y2 < y1),
    ``"out_of_image"`` (outside ``[0, width] × [0, height]`` when the size is known), else None."""
    try:
        b = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        return "malformed"
    if b.shape != (4,) or not np.isfinite(b).all() or b[2] < b[0] or b[3] < b[1]:
        return "malformed"
    if width is not None and height is not None and np.isfinite(width) and np.isfinite(height):
        if b[0] < 0 or b[1] < 0 or b[2] > width or b[3] > height:
            return "out_of_image"
    return None


def _as_boxes(boxes) -> np.ndarray:
    if boxes is None:
        return np.zeros((0, 4))
    b = np.asarray([list(x) for x in boxes], dtype=np.float64)
    return b.reshape(-1, 4)


# ------------------------------------------------------------------------------- IoU
def union_area(boxes: np.ndarray) -> float:
    """Exact area of a union of axis-aligned rectangles (coordinate compression)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    if len(boxes) == 0:
        return 0.0
    if len(boxes) == 1:
        b = boxes[0]
        return float((b[2] - b[0]) * (b[3] - b[1]))
    xs = np.unique(boxes[:, [0, 2]])
    ys = np.unique(boxes[:, [1, 3]])
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside = np.zeros((len(cy), len(cx)), dtype=bool)
    for x1, y1, x2, y2 in boxes:
        inside |= ((cy > y1) & (cy < y2))[:, None] & ((cx > x1) & (cx < x2))[None, :]
    return float((np.diff(ys)[:, None] * np.diff(xs)[None, :])[inside].sum())


def _pairwise_intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.stack([x1, y1, x2, y2], axis=-1).reshape(-1, 4)


def box_set_iou(boxes_true, boxes_pred) -> float:
    """IoU of the union of ``boxes_true`` with the union of ``boxes_pred``:
    ``|∪T ∩ ∪P| / |∪T ∪ ∪P|``, where ``∪T ∩ ∪P`` is the union of the pairwise intersections.
    NaN when there is no reference box (not a localisation item) or both unions have zero
    area; 0 when there are reference boxes but no prediction."""
    t, p = _as_boxes(boxes_true), _as_boxes(boxes_pred)
    if len(t) == 0:
        return float("nan")
    if len(p) == 0:
        return 0.0
    area_t, area_p = union_area(t), union_area(p)
    inter = union_area(_pairwise_intersections(t, p))
    union = area_t + area_p - inter
    return float(inter / union) if union > 0 else float("nan")


def iou_items(boxes_true: Sequence, boxes_pred: Sequence) -> np.ndarray:
    if len(boxes_true) != len(boxes_pred):
        raise ValueError(f"{len(boxes_true)} reference box lists but {len(boxes_pred)} predicted")
    return np.array([box_set_iou(t, p) for t, p in zip(boxes_true, boxes_pred)], dtype=np.float64)


def iou_stats(boxes_true, boxes_pred) -> SufficientStats:
    return mean_stats("iou", iou_items(boxes_true, boxes_pred), signature="iou|union-of-boxes|exact")


def iou(boxes_true, boxes_pred) -> float:
    """Mean IoU over localisation items (seed 13.2): ``IoU = |∪T ∩ ∪P| / |∪T ∪ ∪P|`` per item
    (see :func:`box_set_iou`), items without reference boxes excluded. For single boxes equal
    to ``pycocotools.mask.iou`` (xywh, no +1) and to ``torchvision.ops.box_iou``."""
    return iou_stats(boxes_true, boxes_pred).value()


def pointing_items(boxes_true, boxes_pred, threshold: float = 0.5) -> np.ndarray:
    v = iou_items(boxes_true, boxes_pred)
    return np.where(np.isnan(v), np.nan, (v > threshold).astype(np.float64))


def pointing_accuracy_stats(boxes_true, boxes_pred, threshold: float = 0.5) -> SufficientStats:
    return mean_stats("pointing_accuracy", pointing_items(boxes_true, boxes_pred, threshold),
                      signature=f"iou>{threshold}")


def pointing_accuracy(boxes_true, boxes_pred, threshold: float = 0.5) -> float:
    """Fraction of localisation items with ``IoU > threshold`` (0.5; seed 13.2), IoU as in
    :func:`iou`."""
    return pointing_accuracy_stats(boxes_true, boxes_pred, threshold).value()


# ------------------------------------------------------------------------------- COCO mAP
def _box_iou_matrix(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    inter_w = np.clip(np.minimum(d[:, None, 2], g[None, :, 2]) - np.maximum(d[:, None, 0], g[None, :, 0]), 0, None)
    inter_h = np.clip(np.minimum(d[:, None, 3], g[None, :, 3]) - np.maximum(d[:, None, 1], g[None, :, 1]), 0, None)
    inter = inter_w * inter_h
    area_d = (d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1])
    area_g = (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
    union = area_d[:, None] + area_g[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _match_image(gt: np.ndarray, dt: np.ndarray, scores: np.ndarray, thresholds: Sequence[float]):
    """COCOeval.evaluateImg for one image, one category, no crowd, area "all": detections
    sorted by score (stable), the first MAX_DETS kept; each greedily takes the unmatched
    ground truth of highest IoU >= t (a later ground truth wins ties, as in COCOeval)."""
    order = np.argsort(-scores, kind="mergesort")[:MAX_DETS]
    dt, scores = dt[order], scores[order]
    if len(dt) == 0 or len(gt) == 0:  # nothing to match
        return scores, np.zeros((len(thresholds), len(dt)), dtype=bool)
    ious = _box_iou_matrix(dt, gt)
    tp = np.zeros((len(thresholds), len(dt)), dtype=bool)
    for ti, t in enumerate(thresholds):
        taken = np.zeros(len(gt), dtype=bool)
        for di in range(len(dt)):
            best, m = min(t, 1 - 1e-10), -1
            for gi in range(len(gt)):
                if taken[gi] or ious[di, gi] < best:
                    continue
                best, m = ious[di, gi], gi
            if m >= 0:
                taken[m] = True
                tp[ti, di] = True
    return scores, tp


def _average_precision(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> np.ndarray:
    """COCOeval.accumulate for one category: per threshold, 101-point interpolated AP
    (NaN where there is no ground truth, COCO's -1)."""
    if n_gt == 0:
        return np.full(tp.shape[0], np.nan)
    order = np.argsort(-scores, kind="mergesort")
    tp = tp[:, order]
    tp_sum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_sum = np.cumsum(~tp, axis=1, dtype=np.float64)
    out = np.zeros(tp.shape[0])
    nd = tp.shape[1]
    if nd == 0:
        return out
    for t in range(tp.shape[0]):
        rc = tp_sum[t] / n_gt
        pr = tp_sum[t] / (fp_sum[t] + tp_sum[t] + np.spacing(1))
        pr = np.maximum.accumulate(pr[::-1])[::-1]
        inds = np.searchsorted(rc, REC_THRS, side="left")
        q = np.where(inds < nd, pr[np.minimum(inds, nd - 1)], 0.0)
        out[t] = q.mean()
    return out


class _DetectionTable:
    """Per-item matches precomputed once; AP of any multiset of items is then a sort."""

    def __init__(self, boxes_true, boxes_pred, scores_pred, thresholds: Sequence[float]):
        if not (len(boxes_true) == len(boxes_pred) == len(scores_pred)):
            raise ValueError("boxes_true, boxes_pred and scores_pred must have one entry per item")
        self.thresholds = tuple(thresholds)
        scores, tps, n_det, n_gt = [], [], [], []
        for t, p, s in zip(boxes_true, boxes_pred, scores_pred):
            gt, dt = _as_boxes(t), _as_boxes(p)
            s = np.ones(len(dt)) if s is None else np.asarray(s, dtype=np.float64).reshape(-1)
            if len(s) != len(dt):
                raise ValueError(f"an item has {len(dt)} predicted boxes but {len(s)} scores")
            sc, tp = _match_image(gt, dt, s, self.thresholds)
            scores.append(sc)
            tps.append(tp)
            n_det.append(len(sc))
            n_gt.append(len(gt))
        self.scores = np.concatenate(scores) if scores else np.zeros(0)
        self.tp = np.concatenate(tps, axis=1) if tps else np.zeros((len(self.thresholds), 0), bool)
        self.n_det = np.asarray(n_det, dtype=np.int64)
        self.n_gt = np.asarray(n_gt, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.n_det)])[:-1]
        self._memo: tuple[np.ndarray, np.ndarray] | None = None

    def ap_cached(self, idx: np.ndarray) -> np.ndarray:
        """:meth:`ap` with a one-entry memo, so statistics sharing this table (AP@0.5, AP@0.75
        and their mean) sort a bootstrap resample's detections once."""
        idx = np.asarray(idx, dtype=np.int64)
        if self._memo is None or not np.array_equal(self._memo[0], idx):
            self._memo = (idx.copy(), self.ap(idx))
        return self._memo[1]

    def ap(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        lens = self.n_det[idx]
        total = int(lens.sum())
        # detections of the chosen items, concatenated in the order of idx (COCO's image order)
        starts = np.repeat(self.offsets[idx] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens)
        det = starts + np.arange(total)
        return _average_precision(self.scores[det], self.tp[:, det], int(self.n_gt[idx].sum()))


def map_stats(boxes_true, boxes_pred, scores_pred=None, thresholds: Sequence[float] = (0.5,),
              name: str | None = None) -> GenericStatistic:
    """COCO AP averaged over ``thresholds`` as a :class:`GenericStatistic` over items (each item
    one image); ``compute(idx)`` re-sorts the precomputed detections of the items ``idx``."""
    if scores_pred is None:
        scores_pred = [None] * len(boxes_pred)
    table = _DetectionTable(boxes_true, boxes_pred, scores_pred, thresholds)

    def compute(idx: np.ndarray) -> float:
        ap = table.ap(idx)
        return float(np.nanmean(ap)) if not np.isnan(ap).all() else float("nan")

    thr = ",".join(f"{t:g}" for t in thresholds)
    name = name or ("map_" + "_".join(f"{round(t * 100)}" for t in thresholds))
    return GenericStatistic(name, len(table.n_det), compute,
                            signature=f"coco-bbox-ap|class-agnostic|iou:{thr}|area:all|maxdets:{MAX_DETS}|101-point")


def map_family_stats(boxes_true, boxes_pred, scores_pred=None) -> dict[str, GenericStatistic]:
    """``map_50``, ``map_75`` and ``map_50_75`` over one shared detection table: the matching
    runs once, and a bootstrap resample's detections are sorted once for all three."""
    if scores_pred is None:
        scores_pred = [None] * len(boxes_pred)
    table = _DetectionTable(boxes_true, boxes_pred, scores_pred, (0.5, 0.75))

    def make(name: str, which: list[int], thr: str) -> GenericStatistic:
        def compute(idx: np.ndarray) -> float:
            ap = table.ap_cached(idx)[which]
            return float(np.nanmean(ap)) if not np.isnan(ap).all() else float("nan")

        return GenericStatistic(name, len(table.n_det), compute,
                                signature=f"coco-bbox-ap|class-agnostic|iou:{thr}|area:all|maxdets:{MAX_DETS}|101-point")

    return {"map_50": make("map_50", [0], "0.5"), "map_75": make("map_75", [1], "0.75"),
            "map_50_75": make("map_50_75", [0, 1], "0.5,0.75")}


def map_50(boxes_true, boxes_pred, scores_pred=None) -> float:
    """COCO AP at IoU 0.5 (``COCOeval.stats[1]``, one category, one image per item)."""
    return map_family_stats(boxes_true, boxes_pred, scores_pred)["map_50"].value()


def map_75(boxes_true, boxes_pred, scores_pred=None) -> float:
    """COCO AP at IoU 0.75 (``COCOeval.stats[2]``)."""
    return map_family_stats(boxes_true, boxes_pred, scores_pred)["map_75"].value()


def map_50_75(boxes_true, boxes_pred, scores_pred=None) -> float:
    """``(AP@0.5 + AP@0.75) / 2`` (seed 13.2): ``COCOeval`` with ``iouThrs=[0.5, 0.75]``,
    ``stats[0]``."""
    return map_family_stats(boxes_true, boxes_pred, scores_pred)["map_50_75"].value()


# ------------------------------------------------------------------------------- region sets
def set_f1(true: Sequence[str], pred: Sequence[str]) -> float:
    """F1 of two sets: ``2|T∩P| / (|T| + |P|)``; 1 when both are empty, 0 when one is."""
    t = set(true) if true is not None else set()
    p = set(pred) if pred is not None else set()
    if not t and not p:
        return 1.0
    return 2 * len(t & p) / (len(t) + len(p))


def multi_region_f1_items(regions_true, regions_pred) -> np.ndarray:
    if len(regions_true) != len(regions_pred):
        raise ValueError("regions_true and regions_pred differ in length")
    return np.array([set_f1(t, p) for t, p in zip(regions_true, regions_pred)], dtype=np.float64)


def multi_region_f1_stats(regions_true, regions_pred) -> SufficientStats:
    return mean_stats("multi_region_f1", multi_region_f1_items(regions_true, regions_pred), signature="set-f1|mean")


def multi_region_f1(regions_true, regions_pred) -> float:
    """Mean over items of the F1 between the reference and predicted region-name sets
    (seed 13.2 multi-region localisation F1). Equal to ``sklearn.metrics.f1_score(Y_true,
    Y_pred, average="samples", zero_division=1.0)`` on the binarised sets."""
    return multi_region_f1_stats(regions_true, regions_pred).value()
