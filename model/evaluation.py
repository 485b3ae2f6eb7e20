"""Per-head accuracy of a predictions frame (validation during training, the learnability check).

These are quick model-selection numbers over the frame :class:`model.inference.Predictor`
returns, not the evaluation suite (``cxrbench evaluate`` / ``cxrbench score`` compute the
metrics of record, with confidence intervals):

* binary, severity: ``label_pred == label_true``;
* region: the top predicted region is one of the answer's regions;
* text: the predicted finding set equals the true set (exact), and micro-F1 over findings;
* overall: mean of the per-item hits over all items with a label (text: exact set match).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def item_hits(frame) -> np.ndarray:
    """(n,) float: 1/0 per item with a label, NaN where the item has none."""
    hits = np.full(len(frame), np.nan)
    for k, row in enumerate(frame.itertuples(index=False)):
        if row.head in ("binary", "severity"):
            if row.label_true is not None and row.label_true == row.label_true:
                hits[k] = float(int(row.label_pred) == int(row.label_true))
        elif row.head == "region":
            if len(row.regions_true):
                hits[k] = float(row.regions_pred[0] in set(row.regions_true))
        else:
            hits[k] = float(set(row.findings_pred) == set(row.findings_true))
    return hits


def head_accuracy(frame) -> dict[str, Any]:
    """``{"accuracy/overall": ..., "accuracy/<head>": ..., "n/<head>": ..., "f1/text": ...}``."""
    hits = item_hits(frame)
    out: dict[str, Any] = {}
    ok = ~np.isnan(hits)
    out["accuracy/overall"] = float(hits[ok].mean()) if ok.any() else None
    out["n/overall"] = int(ok.sum())
    heads = frame["head"].to_numpy()
    for head in ("binary", "region", "severity", "text"):
        sel = ok & (heads == head)
        out[f"accuracy/{head}"] = float(hits[sel].mean()) if sel.any() else None
        out[f"n/{head}"] = int(sel.sum())
    text = frame[frame["head"] == "text"]
    tp = fp = fn = 0
    for true, pred in zip(text["findings_true"], text["findings_pred"]):
        t, p = set(true), set(pred)
        tp, fp, fn = tp + len(t & p), fp + len(p - t), fn + len(t - p)
    out["f1/text"] = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else None
    return out
