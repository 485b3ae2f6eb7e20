"""Attention analysis of an evaluation run (seed 14.1-14.3): heatmaps, plausibility, entropy.

The model attends over *visual tokens* (one per scene-graph node, or global image features in
the zero-shot mode), each with a pixel box on the image. For every question the predictor
returns two attention vectors over those tokens: ``attn_text_visual`` (question tokens ->
visual tokens, VisualBERT's cross-modal attention) and ``attn_sim`` (the Scene-embedded
Interaction Module), plus ``token_boxes``.

**Painting rule** (:func:`paint`). A heatmap is a grid over the image, ``grid`` cells on its long
side (square-ish cells, the aspect ratio kept). Each token's weight is spread *uniformly over
its box*: every cell whose centre lies in the box (``x1 <= cx < x2``, the same cell rule as
:func:`cxrbench.metrics.attention.boxes_mask`) receives ``weight / n_cells_of_box``, and the
tokens' contributions are summed. The map is then an attention *density*: its total equals the
total weight, a large box (the whole image) spreads thin and a small box concentrates its
weight, so overlapping tokens add up where they overlap. Along an axis where a box is too thin
to hold a cell centre, it takes the one row (column) of cells holding its centre, so no token's
weight is lost; a token with no box covers the whole image (counted as ``tokens_without_box``).

**Plausibility** (14.2): IoU of the heatmap (min-max normalised to [0, 1], thresholded at 0.5)
with the reference ROI, the union of the answer's boxes (``boxes_true``), computed by
:func:`cxrbench.metrics.attention.plausibility`. Questions without reference boxes get no
plausibility (NaN) and are counted (``without_roi``): they are left out of every mean.

**Entropy** (14.3): Shannon entropy in nats of the raw token weights,
:func:`cxrbench.metrics.attention.attention_entropy`. Its maximum is ``ln N`` for ``N`` tokens,
so the seed's fixed bands (< 2 low, 2-4 medium, > 4 high) read differently with few tokens:
the normalised entropy ``H / ln N`` is reported beside it.

The text->visual map gives the per-item ``plausibility`` and ``attention_entropy`` columns of
predictions.parquet (the metrics ``cxrbench.score`` turns into means with CIs); the SIM map
gives ``plausibility_sim`` and ``attention_entropy_sim``.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from cxrbench import questions
from cxrbench.io import atomic_write_bytes, atomic_write_json
from cxrbench.metrics import attention as am
from cxrbench.metrics.base import mean_stats
from cxrbench.score.contract import qa_keys
from cxrbench.stats.report import metric_entry

SOURCES = {"text_visual": "attn_text_visual", "sim": "attn_sim"}
DEFAULT_GRID = 64
THRESHOLD = 0.5


# ------------------------------------------------------------------------------------ painting
def grid_shape(image_size: tuple[float, float], grid: int = DEFAULT_GRID) -> tuple[int, int]:
    """``(rows, cols)`` of the heatmap of an image of ``(width, height)`` pixels: ``grid`` cells on
    the long side, the short side in proportion (at least one cell)."""
    width, height = float(image_size[0]), float(image_size[1])
    if not (width > 0 and height > 0):
        raise ValueError(f"image size must be positive, got {image_size}")
    if width >= height:
        return max(1, round(grid * height / width)), grid
    return grid, max(1, round(grid * width / height))


def _cell_range(lo: float, hi: float, centres: np.ndarray, cell: float) -> tuple[int, int]:
    a, b = int(np.searchsorted(centres, lo, "left")), int(np.searchsorted(centres, hi, "left"))
    if b > a:
        return a, b
    j = int(np.clip(math.floor(0.5 * (lo + hi) / cell), 0, len(centres) - 1))  # the box centre's cell
    return j, j + 1


def paint(weights: Sequence[float], boxes: Sequence[Sequence[float] | None], image_size: tuple[float, float],
          grid: int = DEFAULT_GRID) -> np.ndarray:
    """Heatmap ``(rows, cols)`` of token ``weights`` spread uniformly over their pixel ``boxes``
    (``[x1, y1, x2, y2]``; None = whole image) on an image of ``image_size = (width, height)``.
    See the module docstring for the rule; ``heatmap.sum() == sum(weights)``."""
    w = np.asarray(weights, dtype=np.float64)
    if len(boxes) != len(w):
        raise ValueError(f"{len(w)} weights but {len(boxes)} token boxes")
    if not np.isfinite(w).all():
        raise ValueError("attention weights have NaN or infinite values")
    rows, cols = grid_shape(image_size, grid)
    width, height = float(image_size[0]), float(image_size[1])
    cw, ch = width / cols, height / rows
    cx, cy = (np.arange(cols) + 0.5) * cw, (np.arange(rows) + 0.5) * ch
    heat = np.zeros((rows, cols), dtype=np.float64)
    for weight, box in zip(w, boxes):
        if box is None or len(box) == 0:
            heat += weight / heat.size
            continue
        x1, y1, x2, y2 = (float(v) for v in box)
        j0, j1 = _cell_range(x1, x2, cx, cw)
        i0, i1 = _cell_range(y1, y2, cy, ch)
        heat[i0:i1, j0:j1] += weight / ((i1 - i0) * (j1 - j0))
    return heat


# --------------------------------------------------------------------------------- per item
def _boxes(value: Any) -> list:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    return [None if b is None else list(b) for b in value]


def item_scores(weights, token_boxes, image_size, roi_boxes, grid: int = DEFAULT_GRID) -> dict[str, float]:
    """Plausibility, entropy (nats) and normalised entropy of one question's attention vector."""
    w = np.asarray(weights if weights is not None else [], dtype=np.float64)
    if w.size == 0 or w.sum() <= 0:
        return {"plausibility": math.nan, "entropy": math.nan, "entropy_norm": math.nan}
    heat = paint(w, _boxes(token_boxes), image_size, grid)
    roi = [b for b in _boxes(roi_boxes) if b is not None]
    plaus = am.plausibility(heat, roi, image_size=image_size, threshold=THRESHOLD) if roi else math.nan
    return {"plausibility": plaus, "entropy": am.attention_entropy(w),
            "entropy_norm": am.attention_entropy(w, normalized=True)}


def _image_size(row) -> tuple[float, float] | None:
    w, h = row.get("image_width"), row.get("image_height")
    if w is None or h is None or not (w == w and h == h) or w <= 0 or h <= 0:
        return None
    return float(w), float(h)


def attention_columns(frame: pd.DataFrame, grid: int = DEFAULT_GRID) -> pd.DataFrame:
    """Per-item attention scores of a predictions frame: ``plausibility``,
    ``attention_entropy``, ``attention_entropy_norm`` (text->visual) and the same with a
    ``_sim`` suffix, one row per input row (NaN where there is nothing to score; see
    :func:`attention_counts` for why)."""
    out: dict[str, list[float]] = {}
    cols = [c for c in ("token_boxes", "image_width", "image_height", "boxes_true") if c in frame.columns]
    for source, column in SOURCES.items():
        suffix = "" if source == "text_visual" else "_sim"
        values: dict[str, list[float]] = {"plausibility": [], "entropy": [], "entropy_norm": []}
        records = frame[cols + ([column] if column in frame.columns else [])].to_dict("records")
        for row in records:
            size = _image_size(row)
            weights = row.get(column)
            if size is None or weights is None or len(weights) == 0:
                scores = {"plausibility": math.nan, "entropy": math.nan, "entropy_norm": math.nan}
            else:
                boxes = _boxes(row.get("token_boxes")) or [None] * len(weights)
                scores = item_scores(weights, boxes, size, row.get("boxes_true"), grid)
            for key in values:
                values[key].append(scores[key])
        out["plausibility" + suffix] = values["plausibility"]
        out["attention_entropy" + suffix] = values["entropy"]
        out["attention_entropy_norm" + suffix] = values["entropy_norm"]
    # how many visual tokens the question attended over (compare: raw entropy depends on it)
    weights = frame[SOURCES["text_visual"]] if SOURCES["text_visual"] in frame.columns else [None] * len(frame)
    out["attention_tokens"] = [np.nan if w is None or isinstance(w, float) else float(len(w)) for w in weights]
    return pd.DataFrame(out, index=frame.index)


def attention_counts(frame: pd.DataFrame) -> dict[str, int]:
    """What could not be scored, from a frame holding the attention columns: questions without
    an attention vector (or image size), questions with attention but no reference box
    (``without_roi``: no plausibility), and tokens without a box (painted over the whole image)."""
    e = frame["attention_entropy"].to_numpy(dtype=np.float64) if "attention_entropy" in frame.columns else None
    p = frame["plausibility"].to_numpy(dtype=np.float64) if "plausibility" in frame.columns else None
    counts = {"items": int(len(frame))}
    if e is not None and p is not None:
        counts["without_attention"] = int(np.isnan(e).sum())
        counts["without_roi"] = int((np.isfinite(e) & np.isnan(p)).sum())
        counts["with_plausibility"] = int(np.isfinite(p).sum())
    if "token_boxes" in frame.columns:
        counts["tokens_without_box"] = int(sum(sum(b is None for b in boxes) for boxes in frame["token_boxes"]
                                               if boxes is not None and not isinstance(boxes, float)))
    return counts


# -------------------------------------------------------------------------------- summaries
def _short(code: str) -> str:
    qt = questions.get(code)
    return qt.short if qt is not None else code


def _ci(values: np.ndarray, clusters, n_resamples: int, seed: int, name: str) -> dict:
    from cxrbench.stats.bootstrap import bootstrap_ci

    values = np.asarray(values, dtype=np.float64)
    n = int(np.isfinite(values).sum())
    if n == 0:
        return metric_entry(None, None, 0)
    stat = mean_stats(name, values)
    res = bootstrap_ci(stat, clusters, n_resamples=n_resamples, seed=seed) if n_resamples > 0 else None
    return metric_entry(stat.value(), res, n)


def summarize(frame: pd.DataFrame, *, n_resamples: int = 10_000, seed: int = 0,
              cluster: str | None = "study_id") -> dict:
    """Attention summaries by question type for both sources (text->visual, SIM).

    Per type: mean plausibility and the fraction of questions at or above the clinical
    threshold (0.65), the plausibility band counts (14.2); mean entropy, the entropy band counts,
    the seed's expected bands for the type (14.3) and the fraction of questions inside them.
    Means and fractions carry bootstrap CIs (resampling ``cluster``, default studies).
    """
    out: dict[str, Any] = {
        "plausibility_threshold": am.PLAUSIBILITY_CLINICAL_THRESHOLD,
        "plausibility_bands": _bands_json(am.PLAUSIBILITY_BANDS),
        "entropy_bands": _bands_json(am.ENTROPY_BANDS),
        "expected_entropy": {k: list(v) for k, v in am.EXPECTED_ENTROPY.items()},
        "sources": {},
    }
    groups = [("overall", np.ones(len(frame), dtype=bool))]
    groups += [(qt, (frame["question_type"] == qt).to_numpy()) for qt in sorted(frame["question_type"].unique())]
    clusters_all = frame[cluster].to_numpy() if cluster and cluster in frame.columns else None
    out["unit"] = cluster if clusters_all is not None else "question_id"
    for source, suffix in (("text_visual", ""), ("sim", "_sim")):
        pcol, ecol = "plausibility" + suffix, "attention_entropy" + suffix
        if pcol not in frame.columns or ecol not in frame.columns:
            continue
        table = {}
        for name, mask in groups:
            sub = frame.loc[mask]
            clusters = None if clusters_all is None else clusters_all[mask]
            p = sub[pcol].to_numpy(dtype=np.float64)
            e = sub[ecol].to_numpy(dtype=np.float64)
            has_p = np.isfinite(p)
            above = np.where(has_p, (p >= am.PLAUSIBILITY_CLINICAL_THRESHOLD).astype(float), np.nan)
            entry = {
                "n": int(len(sub)),
                "n_with_roi": int(has_p.sum()),
                "n_without_roi": int((~has_p).sum()),
                "plausibility": _ci(p, clusters, n_resamples, seed, "plausibility"),
                "fraction_clinically_acceptable": _ci(above, clusters, n_resamples, seed, "acceptable"),
                "plausibility_bands": _band_counts(p, am.PLAUSIBILITY_BANDS),
                "attention_entropy": _ci(e, clusters, n_resamples, seed, "attention_entropy"),
                "entropy_bands": _band_counts(e, am.ENTROPY_BANDS),
            }
            expected = am.EXPECTED_ENTROPY.get(_short(name)) if name != "overall" else None
            entry["expected_entropy_bands"] = list(expected) if expected else None
            if expected:
                inside = np.array([np.nan if not np.isfinite(v) else float(am.entropy_as_expected(_short(name), v))
                                   for v in e])
                entry["fraction_entropy_as_expected"] = _ci(inside, clusters, n_resamples, seed, "as_expected")
            else:
                entry["fraction_entropy_as_expected"] = None
            table[name] = entry
        out["sources"][source] = table
    return out


def _bands_json(bands) -> list[dict]:
    """Bands as JSON: an open end (±inf) is written as null."""
    return [{"low": b.low if math.isfinite(b.low) else None, "high": b.high if math.isfinite(b.high) else None,
             "label": b.label, "meaning": b.meaning} for b in bands]


def _band_counts(values: np.ndarray, bands) -> dict[str, int]:
    labels = [am.band_of(v, bands) for v in values if np.isfinite(v)]
    counts = Counter(labels)
    return {b.label: int(counts.get(b.label, 0)) for b in bands}


# --------------------------------------------------------------------------------- overlays
def pick_overlay_items(frame: pd.DataFrame, k: int = 8) -> list[int]:
    """Positions of up to ``k`` representative items for overlay figures, deterministic: for
    each question type in sorted order, the scored item whose plausibility is nearest the type's
    median (ties: smallest QA-pair key), then the next question type, round robin."""
    if "plausibility" not in frame.columns:
        return []
    ok = frame["plausibility"].notna().to_numpy()
    keys = qa_keys(frame).astype(str)
    picks: list[int] = []
    per_type = []
    for qt in sorted(frame.loc[ok, "question_type"].unique()):
        pos = np.flatnonzero(ok & (frame["question_type"] == qt).to_numpy())
        p = frame["plausibility"].to_numpy(dtype=float)[pos]
        order = np.lexsort((keys[pos], np.abs(p - np.median(p))))
        per_type.append(list(pos[order]))
    while len(picks) < k and any(per_type):
        for items in per_type:
            if items and len(picks) < k:
                picks.append(int(items.pop(0)))
    return picks


def _load_gray(path: Path | None, size: tuple[float, float]) -> tuple[np.ndarray, bool]:
    from PIL import Image

    if path is not None and path.is_file():
        with Image.open(path) as im:
            return np.asarray(im.convert("L"), dtype=np.float64), True
    return np.zeros((int(size[1]), int(size[0])), dtype=np.float64), False


def render_overlay(row: dict, image_root: str | Path | None, grid: int = DEFAULT_GRID) -> tuple[bytes, bool]:
    """One PNG: the X-ray in grey, the text->visual heatmap over it, the thresholded mask
    outline, the reference ROI boxes (green), question / answers / scores in the title.
    Returns the PNG bytes and whether the image file was found (else a black canvas)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    size = _image_size(row)
    heat = paint(row["attn_text_visual"], _boxes(row.get("token_boxes")) or [None] * len(row["attn_text_visual"]),
                 size, grid)
    path = Path(image_root) / row["image_path"] if image_root is not None and row.get("image_path") else None
    image, found = _load_gray(path, size)
    extent = (0, size[0], size[1], 0)
    # matplotlib's default style whatever this process set before (the book's style changes the
    # dpi and the bounding box): an overlay's bytes depend on its inputs only
    with plt.style.context("default"):
        fig, ax = plt.subplots(figsize=(5, 5.6), dpi=100)
        ax.imshow(image, cmap="gray", extent=extent)
        norm = (heat - heat.min()) / (heat.max() - heat.min()) if heat.max() > heat.min() else np.ones_like(heat)
        ax.imshow(norm, cmap="jet", alpha=0.4, extent=extent, interpolation="nearest", vmin=0, vmax=1)
        if heat.max() > heat.min():
            cx = (np.arange(heat.shape[1]) + 0.5) * size[0] / heat.shape[1]
            cy = (np.arange(heat.shape[0]) + 0.5) * size[1] / heat.shape[0]
            ax.contour(cx, cy, norm, levels=[THRESHOLD], colors="white", linewidths=0.8)
        for box in _boxes(row.get("boxes_true")):
            x1, y1, x2, y2 = box
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor="lime", linewidth=1.5))
        ax.set_axis_off()
        title = (f"{row.get('question_type', '')}: {str(row.get('question', ''))[:70]}\n"
                 f"ref: {str(row.get('answer', ''))[:45]} | pred: {str(row.get('prediction', ''))[:45]}\n"
                 f"plausibility {row['plausibility']:.2f}  entropy {row['attention_entropy']:.2f} nats")
        ax.set_title(title, fontsize=7)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
        plt.close(fig)
    return buf.getvalue(), found


def write_attention_outputs(frame: pd.DataFrame, out_dir: str | Path, *, image_root: str | Path | None,
                            n_overlays: int = 8, n_resamples: int = 10_000, seed: int = 0,
                            unit: str | None = "study_id", grid: int = DEFAULT_GRID,
                            provenance: dict | None = None) -> dict:
    """Write ``summary.json`` (summaries, counts, overlay list) and ``overlay_*.png`` under
    ``out_dir``; ``frame`` holds the attention columns and the raw attention vectors. CIs
    resample ``unit`` (the run's resampling unit)."""
    out_dir = Path(out_dir)
    summary = summarize(frame, n_resamples=n_resamples, seed=seed, cluster=unit)
    summary["grid_long_side"] = grid
    summary["counts"] = attention_counts(frame)
    overlays = []
    missing_images = 0
    records = frame.to_dict("records")
    for rank, pos in enumerate(pick_overlay_items(frame, n_overlays)):
        row = records[pos]
        png, found = render_overlay(row, image_root, grid)
        missing_images += not found
        name = f"overlay_{rank:02d}_{row['question_type']}.png"
        atomic_write_bytes(out_dir / name, png)
        overlays.append({"file": name, "question_id": row["question_id"], "study_id": row.get("study_id"),
                         "question_type": row["question_type"],
                         "plausibility": row["plausibility"], "attention_entropy": row["attention_entropy"],
                         "image_found": found})
    summary["overlays"] = overlays
    summary["counts"]["overlay_images_not_found"] = missing_images
    if provenance is not None:
        summary["provenance"] = provenance
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
