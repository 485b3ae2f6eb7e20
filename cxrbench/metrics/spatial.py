"""Spatial metrics (seed 13.2): box IoU, pointing accuracy, COCO mAP, multi-region F1.

Boxes are ``[x1, y1, x2, y2]`` in pixels of the image they belong to (docs/contracts.md). An
item (a localisation question) has a list of reference boxes and a list of predicted boxes.

- :func:`iou` of an item is the IoU of the *union* of its reference boxes with the union of
  its predicted boxes (the pixel-mask convention of the MIMIC-Ext-CXR-QBA validation, which
  unions all boxes of a finding), computed exactly on the rectangles (no rasterisation). With
  one box each it is the ordinary box IoU (``pycocotools.mask.iou``).
- :func:`map_50`, :func:`map_75`, :func:`map_50_75`, :func:`map_coco`: class-agnostic COCO
  average precision equal to ``pycocotools.cocoeval.COCOeval`` (``iouType="bbox"``, area "all",
  100 detections per image, 101-point interpolation) with one image per item; ``map_50_75`` is
  the mean of AP@0.5 and AP@0.75 (seed 13.2), i.e. COCOeval with ``iouThrs=[0.5, 0.75]``;
  ``map_coco`` is COCO's own mAP, AP averaged over IoU 0.50:0.05:0.95 (COCOeval's defaults).
  Their statistics are :class:`~cxrbench.metrics.base.WeightedStatistic`: boxes are matched once
  per item, and a bootstrap resample's AP is the precision-recall curve of the score-sorted
  detections weighted by their item's count (:class:`DetectionTable`), equal to COCOeval on
  the resample with the drawn items duplicated.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats, WeightedStatistic, mean_stats

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
    in_y = (cy[None, :] > boxes[:, 1, None]) & (cy[None, :] < boxes[:, 3, None])      # (boxes, cells in y)
    in_x = (cx[None, :] > boxes[:, 0, None]) & (cx[None, :] < boxes[:, 2, None])      # (boxes, cells in x)
    inside = (in_y[:, :, None] & in_x[:, None, :]).any(axis=0)
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


def _one_box(boxes) -> np.ndarray | None:
    """The item's box as (4,) floats when it has exactly one, else None."""
    if boxes is None or len(boxes) != 1:
        return None
    b = np.asarray(boxes[0], dtype=np.float64)
    return b if b.shape == (4,) else None


def iou_items(boxes_true: Sequence, boxes_pred: Sequence) -> np.ndarray:
    """:func:`box_set_iou` of every item. Items with one reference and one predicted box (most
    localisation answers) are computed together, the union formula reduced to two rectangles;
    the others one by one."""
    if len(boxes_true) != len(boxes_pred):
        raise ValueError(f"{len(boxes_true)} reference box lists but {len(boxes_pred)} predicted")
    out = np.full(len(boxes_true), np.nan)
    single, t1, p1 = [], [], []
    for i, (t, p) in enumerate(zip(boxes_true, boxes_pred)):
        a, b = _one_box(t), _one_box(p)
        if a is not None and b is not None:
            single.append(i)
            t1.append(a)
            p1.append(b)
        else:
            out[i] = box_set_iou(t, p)
    if single:
        t, p = np.stack(t1), np.stack(p1)

        def area(x):   # degenerate rectangles have no area (union_area drops them)
            return np.clip(x[:, 2] - x[:, 0], 0, None) * np.clip(x[:, 3] - x[:, 1], 0, None)

        inter = (np.clip(np.minimum(t[:, 2], p[:, 2]) - np.maximum(t[:, 0], p[:, 0]), 0, None)
                 * np.clip(np.minimum(t[:, 3], p[:, 3]) - np.maximum(t[:, 1], p[:, 1]), 0, None))
        union = area(t) + area(p) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            out[single] = np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)
    return out


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
    return pointing_accuracy_from_iou(iou_items(boxes_true, boxes_pred), threshold)


def pointing_accuracy_from_iou(iou_values, threshold: float = 0.5) -> SufficientStats:
    """Pointing accuracy from the items' IoU (:func:`iou_items`), NaN where undefined."""
    v = np.asarray(iou_values, dtype=np.float64)
    return mean_stats("pointing_accuracy", np.where(np.isnan(v), np.nan, (v > threshold).astype(np.float64)),
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
    sorted by score (stable), the first MAX_DETS kept; each in turn takes the unmatched ground
    truth of highest IoU >= t (a later ground truth wins ties, as in COCOeval), at every
    threshold at once."""
    order = np.argsort(-scores, kind="mergesort")[:MAX_DETS]
    dt, scores = dt[order], scores[order]
    if len(dt) == 0 or len(gt) == 0:  # nothing to match
        return scores, np.zeros((len(thresholds), len(dt)), dtype=bool)
    ious = _box_iou_matrix(dt, gt)
    floor = np.minimum(np.asarray(thresholds, dtype=np.float64), 1 - 1e-10)[:, None]   # COCOeval's min(t, 1 - 1e-10)
    tp = np.zeros((len(thresholds), len(dt)), dtype=bool)
    taken = np.zeros((len(thresholds), len(gt)), dtype=bool)
    rows = np.arange(len(thresholds))
    for di in range(len(dt)):
        iou = np.where(taken, -np.inf, ious[di][None, :])
        last = len(gt) - 1 - np.argmax(iou[:, ::-1], axis=1)      # the highest IoU, the last of equals
        hit = iou[rows, last] >= floor[:, 0]
        tp[hit, di] = True
        taken[rows[hit], last[hit]] = True
    return scores, tp


class _Layout:
    """The score-sorted detection sequence as weighted entries, and its TP runs per threshold.

    An entry stands for one detection drawn as often as its item (weight = the item's count).
    Only the ends of runs of consecutive true positives can carry the precision envelope at a
    recall level (inside a run of TPs precision rises, inside a run of FPs recall stays put), so
    a resample's AP needs the cumulative weights at the run boundaries only.

    Exception: an item with several detections of one score. COCOeval lists a resample's copies
    of an image one after the other, each copy with all its tied detections, so the pattern of
    the tie block repeats per copy; there the block is expanded to ``copies`` entries per
    detection, entry ``k`` weighing 1 when the item was drawn more than ``k`` times.
    """

    def __init__(self, item: np.ndarray, tp: np.ndarray, block_start: np.ndarray, copies: int):
        nd = len(item)
        expand = np.diff(np.r_[block_start, nd]) > 1           # blocks of >= 2 tied detections
        if copies > 1 and expand.any():
            start_of = np.repeat(block_start, np.diff(np.r_[block_start, nd]))
            multi = np.repeat(expand, np.diff(np.r_[block_start, nd]))
            reps = np.where(multi, copies, 1)
            pos = np.repeat(np.arange(nd), reps)
            k = np.arange(len(pos)) - np.repeat(np.cumsum(reps) - reps, reps)
            order = np.lexsort((pos - start_of[pos], k, start_of[pos]))  # by block, copy, place in block
            pos, k = pos[order], k[order]
            self.copy = np.where(multi[pos], k, -1)
        else:
            pos = np.arange(nd)
            self.copy = None
        self.item = item[pos]
        # the TP runs of every threshold, concatenated: run j spans entries starts[j]..ends[j];
        # threshold t owns runs bounds[t]:bounds[t + 1]
        starts, ends = [], []
        for t in range(tp.shape[0]):
            s = tp[t, pos]
            prev, nxt = np.r_[False, s[:-1]], np.r_[s[1:], False]
            starts.append(np.flatnonzero(s & ~prev))
            ends.append(np.flatnonzero(s & ~nxt))
        self.starts, self.ends = np.concatenate(starts), np.concatenate(ends)
        self.after_ends = self.ends + 1      # columns of the cumulative weights (a leading zero column)
        self.bounds = np.cumsum([0] + [len(e) for e in ends])
        self.lift = np.repeat(np.arange(len(ends)), np.diff(self.bounds))   # threshold of each run

    def weights(self, w: np.ndarray) -> np.ndarray:
        out = w[:, self.item]
        if self.copy is not None:
            drawn = self.copy >= 0
            out[:, drawn] = out[:, drawn] > self.copy[drawn]
        return out


class DetectionTable:
    """COCO matches of every item at every threshold, computed once; the AP of any weighting of
    the items (a bootstrap resample) is then a weighted precision-recall curve, no re-matching.

    Items are images; a weighting draws item ``i`` ``w_i`` times, which COCOeval sees as ``w_i``
    copies of the image, the copies of an item next to each other and the items in their order
    (ties in score are broken by image order, as COCOeval's stable sort does). ``ap(weights)``
    evaluates a ``(b, len(items))`` block of integer weightings at once.
    """

    def __init__(self, boxes_true, boxes_pred, scores_pred, thresholds: Sequence[float]):
        if not (len(boxes_true) == len(boxes_pred) == len(scores_pred)):
            raise ValueError("boxes_true, boxes_pred and scores_pred must have one entry per item")
        self.thresholds = tuple(float(t) for t in thresholds)
        self.n_items = len(boxes_true)
        scores, tps, det_item, n_gt = [], [], [], np.zeros(self.n_items, dtype=np.int64)
        for i, (t, p, s) in enumerate(zip(boxes_true, boxes_pred, scores_pred)):
            if (t is None or len(t) == 0) and (p is None or len(p) == 0):
                continue                     # an item with no box at all adds nothing to match
            gt, dt = _as_boxes(t), _as_boxes(p)
            s = np.ones(len(dt)) if s is None else np.asarray(s, dtype=np.float64).reshape(-1)
            if len(s) != len(dt):
                raise ValueError(f"an item has {len(dt)} predicted boxes but {len(s)} scores")
            sc, tp = _match_image(gt, dt, s, self.thresholds)
            scores.append(sc)
            tps.append(tp)
            det_item.append(np.full(len(sc), i, dtype=np.int64))
            n_gt[i] = len(gt)
        score = np.concatenate(scores) if scores else np.zeros(0)
        tp = np.concatenate(tps, axis=1) if tps else np.zeros((len(self.thresholds), 0), bool)
        item = np.concatenate(det_item) if det_item else np.zeros(0, dtype=np.int64)
        # the items that matter: with a ground truth or a detection
        self.items = np.flatnonzero((n_gt > 0) | (np.bincount(item, minlength=self.n_items) > 0))
        position = np.full(self.n_items, -1, dtype=np.int64)
        position[self.items] = np.arange(len(self.items))
        order = np.argsort(-score, kind="mergesort")     # COCOeval.accumulate's sort of all detections
        self._init(position[item[order]], score[order], tp[:, order], n_gt[self.items])

    def _init(self, item: np.ndarray, score: np.ndarray, tp: np.ndarray, n_gt: np.ndarray) -> None:
        self.det_item, self.det_score, self.det_tp, self.n_gt = item, score, tp, n_gt
        new = np.r_[True, (item[1:] != item[:-1]) | (score[1:] != score[:-1])] if len(item) else np.zeros(0, bool)
        self.block_start = np.flatnonzero(new)           # runs of one item's tied detections
        expand = np.diff(np.r_[self.block_start, len(item)]) > 1
        self.tied_items = np.unique(item[self.block_start[expand]])
        self._layouts: dict[int, _Layout] = {}
        self._subtables: dict[bytes, DetectionTable] = {}
        self._memo: tuple[np.ndarray, np.ndarray] | None = None

    def select(self, positions: np.ndarray) -> "DetectionTable":
        """The table of ``items[positions]`` alone (cached: a metric family shares it)."""
        positions = np.asarray(positions, dtype=np.int64)
        if np.array_equal(positions, np.arange(len(self.items))):
            return self    # a stratum holding all of the table's items: the same values, computed once
        key = positions.tobytes()
        sub = self._subtables.get(key)
        if sub is None:
            rank = np.full(len(self.items), -1, dtype=np.int64)
            rank[positions] = np.arange(len(positions))
            keep = rank[self.det_item] >= 0
            sub = DetectionTable.__new__(DetectionTable)
            sub.thresholds, sub.n_items, sub.items = self.thresholds, len(positions), np.arange(len(positions))
            sub._init(rank[self.det_item[keep]], self.det_score[keep], self.det_tp[:, keep], self.n_gt[positions])
            self._subtables[key] = sub
        return sub

    def _layout(self, copies: int) -> _Layout:
        copies = copies if self.tied_items.size else 1
        if copies not in self._layouts:
            self._layouts[copies] = _Layout(self.det_item, self.det_tp, self.block_start, copies)
        return self._layouts[copies]

    def ap(self, weights: np.ndarray) -> np.ndarray:
        """AP at each threshold, ``(b, T)``, of a ``(b, len(items))`` block of integer weights
        (NaN where the weighting holds no ground truth, COCO's -1), by the compiled kernel
        (:mod:`cxrbench.metrics._ap_kernel`; each row independent of the others, on every core).
        The last block is memoised, so the members of a family (AP@0.5, AP@0.75, their means)
        evaluate it once."""
        if self._memo is not None and self._memo[0] is weights:
            return self._memo[1]
        from cxrbench.metrics._ap_kernel import weighted_ap

        w = np.ascontiguousarray(weights, dtype=np.int64)
        if not len(self.det_item):
            out = np.where((w @ self.n_gt == 0)[:, None], np.nan, np.zeros((w.shape[0], len(self.thresholds))))
        else:
            copies = int(w[:, self.tied_items].max(initial=1)) if self.tied_items.size else 1
            lay = self._layout(copies)
            copy = lay.copy if lay.copy is not None else np.full(len(lay.item), -1, dtype=np.int64)
            out = weighted_ap(w, self.n_gt.astype(np.int64), lay.item.astype(np.int64), copy.astype(np.int64),
                              lay.starts.astype(np.int64), lay.after_ends.astype(np.int64),
                              np.asarray(lay.bounds, dtype=np.int64), REC_THRS)
        self._memo = (weights, out)
        return out

    def _ap_reference(self, w: np.ndarray) -> np.ndarray:
        """The kernel's arithmetic as whole-array numpy operations: its cross-check in the tests."""
        b, T = w.shape[0], len(self.thresholds)
        G = w.astype(np.int64) @ self.n_gt                   # ground truths of each weighting
        out = np.zeros((b, T))
        out[G == 0] = np.nan
        if not len(self.det_item) or not (G > 0).any():
            return out
        copies = int(w[:, self.tied_items].max(initial=1)) if self.tied_items.size else 1
        lay = self._layout(copies)
        m, bounds = len(lay.ends), lay.bounds
        if m == 0:
            return out
        # counts fit int32 with room: offsets of T segments of at most G + 1 values are added below
        span = int(G.max()) + 1
        dtype = np.int32 if int(w.sum(axis=1).max(initial=0)) * max(copies, 1) + T * span < 2**31 else np.int64
        A = np.zeros((b, len(lay.item) + 1), dtype=dtype)    # A[:, e + 1]: detections drawn up to entry e
        np.cumsum(lay.weights(w.astype(dtype)), axis=1, out=A[:, 1:])
        drawn = np.take(A, lay.after_ends, axis=1)           # tp + fp at each run end
        gained = drawn - np.take(A, lay.starts, axis=1)      # TPs drawn in each run
        ctp = np.empty_like(gained)                          # TPs up to each run end, per threshold
        for t in range(T):
            np.cumsum(gained[:, bounds[t]:bounds[t + 1]], axis=1, out=ctp[:, bounds[t]:bounds[t + 1]])
        precision = np.empty(b * m + 1)                      # flat, and one more: a segment may end at the end
        precision[-1] = -np.inf
        np.divide(ctp, drawn + np.spacing(1), out=precision[:-1].reshape(b, m))   # COCOeval: tp / (fp + tp + eps)
        # recall level k needs the first point with fl(ctp / G) >= REC_THRS[k]: the least such
        # integer ctp, found exactly (COCOeval compares the float recall)
        Gf = np.where(G > 0, G, 1).astype(np.float64)[:, None]
        need = np.clip(np.ceil(REC_THRS[None, :] * Gf), 0, Gf)
        for _ in range(4):
            need -= (need > 0) & ((need - 1) / Gf >= REC_THRS[None, :])
            need += (need / Gf < REC_THRS[None, :]) & (need < Gf)
        # first run end reaching each level, per (row, threshold): one search per row, each
        # threshold's segment lifted by its own offset, larger than any count
        ctp += (lay.lift * span).astype(dtype)[None, :]
        queries = (need.astype(np.int64)[:, None, :] + (np.arange(T) * span)[None, :, None]).reshape(b, -1)
        first = np.stack([np.searchsorted(ctp[r], queries[r], side="left") for r in range(b)]).reshape(b, T, -1)
        first -= bounds[:-1][None, :, None]
        start = np.arange(b)[:, None] * m + bounds[:-1][None, :]                                 # (b, T)
        size = np.diff(bounds)[None, :, None]
        found = first < size
        # interpolated precision at level k = max precision from its first point on: maxima of the
        # stretches between consecutive levels' first points (one reduceat; a level reaching no
        # point starts at its segment's end, so the last stretch found runs to that end), then a
        # running max from the last level down
        flat = start[:, :, None] + np.where(found, first, size)
        stretch = np.maximum.reduceat(precision, flat.ravel()).reshape(first.shape)
        stretch[~found] = -np.inf
        q = np.maximum.accumulate(stretch[:, :, ::-1], axis=2)[:, :, ::-1]
        q[~found] = 0.0
        out[:] = np.where((G > 0)[:, None], q.mean(axis=2), np.nan)
        return out


COCO_IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)  # COCOeval's
_SIGNATURE = "coco-bbox-ap|class-agnostic|iou:{thr}|area:all|maxdets:" + str(MAX_DETS) + "|101-point"


def _map_statistic(name: str, table: DetectionTable, which: Sequence[int], thr: str) -> WeightedStatistic:
    which = list(which)

    def evaluator(tab: DetectionTable):
        return lambda weights: _nanmean_rows(tab.ap(weights)[:, which])

    return WeightedStatistic(name, table.n_items, table.items, evaluator(table),
                             lambda positions: evaluator(table.select(positions)),
                             signature=_SIGNATURE.format(thr=thr))


def _nanmean_rows(x: np.ndarray) -> np.ndarray:
    """Mean of each row over its defined values (NaN where none is: no ground truth)."""
    ok = ~np.isnan(x)
    n = ok.sum(axis=1)
    return np.where(n > 0, np.where(ok, x, 0.0).sum(axis=1) / np.maximum(n, 1), np.nan)


def map_stats(boxes_true, boxes_pred, scores_pred=None, thresholds: Sequence[float] = (0.5,),
              name: str | None = None) -> WeightedStatistic:
    """COCO AP averaged over ``thresholds`` as a :class:`WeightedStatistic` over items (each
    item one image): the matching runs once; a resample weighs each detection by its item's
    count."""
    if scores_pred is None:
        scores_pred = [None] * len(boxes_pred)
    table = DetectionTable(boxes_true, boxes_pred, scores_pred, thresholds)
    name = name or ("map_" + "_".join(f"{round(t * 100)}" for t in thresholds))
    return _map_statistic(name, table, range(len(thresholds)), ",".join(f"{t:g}" for t in thresholds))


def map_family_stats(boxes_true, boxes_pred, scores_pred=None) -> dict[str, WeightedStatistic]:
    """``map_50``, ``map_75``, ``map_50_75`` and ``map_coco`` over one shared detection table at
    COCO's ten IoU thresholds 0.50:0.05:0.95 (which hold 0.5 and 0.75 exactly): the matching
    runs once, and a block of resamples is evaluated once for all four."""
    if scores_pred is None:
        scores_pred = [None] * len(boxes_pred)
    table = DetectionTable(boxes_true, boxes_pred, scores_pred, COCO_IOU_THRESHOLDS)
    i50, i75 = COCO_IOU_THRESHOLDS.tolist().index(0.5), COCO_IOU_THRESHOLDS.tolist().index(0.75)
    return {"map_50": _map_statistic("map_50", table, [i50], "0.5"),
            "map_75": _map_statistic("map_75", table, [i75], "0.75"),
            "map_50_75": _map_statistic("map_50_75", table, [i50, i75], "0.5,0.75"),
            "map_coco": _map_statistic("map_coco", table, range(len(COCO_IOU_THRESHOLDS)), "0.5:0.05:0.95")}


def map_50(boxes_true, boxes_pred, scores_pred=None) -> float:
    """COCO AP at IoU 0.5 (``COCOeval.stats[1]``, one category, one image per item)."""
    return map_stats(boxes_true, boxes_pred, scores_pred, (0.5,)).value()


def map_75(boxes_true, boxes_pred, scores_pred=None) -> float:
    """COCO AP at IoU 0.75 (``COCOeval.stats[2]``)."""
    return map_stats(boxes_true, boxes_pred, scores_pred, (0.75,)).value()


def map_50_75(boxes_true, boxes_pred, scores_pred=None) -> float:
    """``(AP@0.5 + AP@0.75) / 2`` (seed 13.2): ``COCOeval`` with ``iouThrs=[0.5, 0.75]``,
    ``stats[0]``. Not COCO's mAP: that is :func:`map_coco`."""
    return map_stats(boxes_true, boxes_pred, scores_pred, (0.5, 0.75), name="map_50_75").value()


def map_coco(boxes_true, boxes_pred, scores_pred=None) -> float:
    """COCO's mAP, AP averaged over IoU 0.50:0.05:0.95 (``COCOeval.stats[0]`` with its default
    ``iouThrs``): the number detection papers quote as "AP" or "mAP@[.5:.95]"."""
    return map_stats(boxes_true, boxes_pred, scores_pred, COCO_IOU_THRESHOLDS, name="map_coco").value()


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
