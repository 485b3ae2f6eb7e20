"""Overlapping-box confusion (design 17.1 category 2): the answer box's overlap with its neighbours.

For each QA pair with answer boxes (``boxes_true``), :func:`max_neighbour_iou` is the largest IoU
of an answer box with any *other* distinct box of its image's scene-graph nodes (the released
boxes the model sees). Identical boxes count once (a region node and an observation located
exactly on it are one box), and a box is not its own neighbour; the QA pair takes the largest value
over its answer boxes (the most confusable one). IoU is :mod:`cxrbench.metrics.spatial`'s.

:func:`overlap_correlation` relates errors to that overlap: the point-biserial correlation
(Pearson's r of the 0/1 error against the IoU; ``scipy.stats.pointbiserialr``) with a bootstrap
CI over studies (r is a function of five sums: the fast path of ``cxrbench.stats``), and Spearman's
rho, which only assumes a monotone relation.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from cxrbench.metrics.base import SufficientStats
from cxrbench.metrics.spatial import _box_iou_matrix

IOU_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)
NO_BOX = "none"


def bin_labels() -> list[str]:
    edges = IOU_EDGES
    return [f"[{a:g}, {b:g})" if i < len(edges) - 2 else f"[{a:g}, {b:g}]"
            for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]


def iou_bin(values: np.ndarray) -> np.ndarray:
    """The bin label of each max IoU (:data:`NO_BOX` for NaN: no answer box)."""
    v = np.asarray(values, dtype=float)
    labels = np.array(bin_labels(), dtype=object)
    idx = np.clip(np.searchsorted(IOU_EDGES, v, side="right") - 1, 0, len(labels) - 1)
    return np.where(np.isnan(v), NO_BOX, labels[idx])


def image_boxes(nodes: pd.DataFrame, studies: pd.DataFrame) -> dict[int, np.ndarray]:
    """Per study, the distinct node boxes on its primary image (index nodes.parquet, ``bbox``)."""
    primary = dict(zip(studies["study_id"].astype("int64"), studies["image_id"].astype(str)))
    out: dict[int, list] = {}
    for sid, image, box in zip(nodes["study_id"].astype("int64"), nodes["image_id"].astype(str), nodes["bbox"]):
        if primary.get(int(sid)) != image or box is None or (isinstance(box, float) and box != box) or len(box) != 4:
            continue
        out.setdefault(int(sid), []).append([float(x) for x in box])
    return {sid: np.unique(np.asarray(boxes, dtype=float), axis=0) for sid, boxes in out.items()}


def max_neighbour_iou(answer_boxes, neighbours: np.ndarray | None) -> float:
    """The largest IoU of any answer box with a distinct other box (module docstring); NaN
    without answer boxes, 0 when the image has no other box."""
    boxes = [list(b) for b in (answer_boxes if answer_boxes is not None else []) if b is not None and len(b) == 4]
    if not boxes:
        return float("nan")
    if neighbours is None or not len(neighbours):
        return 0.0
    a = np.asarray(boxes, dtype=float)
    iou = _box_iou_matrix(a, neighbours)
    itself = (a[:, None, :] == neighbours[None, :, :]).all(axis=-1)
    iou = np.where(itself, -1.0, iou)
    return float(max(iou.max(), 0.0))


def max_iou_column(boxes_true, study_ids, boxes_by_study: Mapping[int, np.ndarray]) -> np.ndarray:
    return np.array([max_neighbour_iou(b, boxes_by_study.get(int(s))) for b, s in zip(boxes_true, study_ids)],
                    dtype=float)


def pearson_stats(x: np.ndarray, y: np.ndarray) -> SufficientStats:
    """Pearson's r of the items' (x, y) as a function of per-item sums (x, y, x², y², xy, 1)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x0, y0 = np.where(ok, x, 0.0), np.where(ok, y, 0.0)
    stats = np.stack([x0, y0, x0 * x0, y0 * y0, x0 * y0, ok.astype(float)], axis=1)

    def reduce(t: np.ndarray) -> np.ndarray:
        n = t[..., 5]
        with np.errstate(invalid="ignore", divide="ignore"):
            sxy = t[..., 4] - t[..., 0] * t[..., 1] / n
            sxx = t[..., 2] - t[..., 0] ** 2 / n
            syy = t[..., 3] - t[..., 1] ** 2 / n
            r = sxy / np.sqrt(sxx * syy)
        return np.where((n > 1) & (sxx > 0) & (syy > 0), r, np.nan)

    return SufficientStats("pearson_r", stats, reduce, "pearson|sums")


def overlap_correlation(error: np.ndarray, max_iou: np.ndarray, clusters=None, *, n_resamples: int = 10_000,
                        seed: int = 0) -> dict:
    """Correlation of errors (bool) with the answer box's max neighbour IoU (module docstring)."""
    from scipy import stats as sps

    from cxrbench.stats.bootstrap import bootstrap_ci

    e = np.asarray(error, dtype=float)
    v = np.asarray(max_iou, dtype=float)
    ok = ~np.isnan(v)
    out = {"n": int(ok.sum()), "r": None, "r_p_value": None, "r_ci": [None, None], "rho": None, "rho_p_value": None,
           "mean_iou_errors": None, "mean_iou_correct": None}
    if ok.sum() < 3 or np.ptp(e[ok]) == 0 or np.ptp(v[ok]) == 0:
        out["note"] = "undefined: fewer than 3 QA pairs with an answer box, or errors or overlaps all equal"
        return out
    r = sps.pointbiserialr(e[ok], v[ok])
    rho = sps.spearmanr(e[ok], v[ok])
    ci = bootstrap_ci(pearson_stats(np.where(ok, e, np.nan), v), clusters, n_resamples=n_resamples, seed=seed)
    out.update(r=float(r.statistic), r_p_value=float(r.pvalue), r_ci=[ci.ci_low, ci.ci_high],
               rho=float(rho.statistic), rho_p_value=float(rho.pvalue),
               mean_iou_errors=float(v[ok & (e == 1)].mean()) if (ok & (e == 1)).any() else None,
               mean_iou_correct=float(v[ok & (e == 0)].mean()) if (ok & (e == 0)).any() else None)
    return out
