"""Attention misalignment (design 17.2): questions whose plausibility is below 0.35 (the 14.2
"misaligned" band), listed with their question, type and an overlay, and what they share.

The overlays are :func:`cxrbench.reports.attention.render_overlay` of the run's raw attention
(``RUN/shards``), as evaluate paints its own; the first ``n_overlays`` cases (lowest plausibility
first, ties by QA-pair key) get one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrbench.score.contract import qa_keys

THRESHOLD = 0.35
HIGH_OVERLAP = 0.5
COLUMNS = ("question_id", "study_id", "question_type", "question", "answer", "prediction", "error", "plausibility",
           "attention_entropy", "max_iou", "sg_error_kinds", "overlay")


def misaligned_cases(items: pd.DataFrame, threshold: float = THRESHOLD) -> pd.DataFrame:
    """The items with plausibility below ``threshold``, lowest first (ties: QA-pair key)."""
    cases = items[items["plausibility"].notna() & (items["plausibility"] < threshold)].copy()
    cases["_key"] = qa_keys(cases)
    cases = cases.sort_values(["plausibility", "_key"], kind="stable").drop(columns="_key")
    cases["overlay"] = ""
    for col in COLUMNS:
        if col not in cases.columns:
            cases[col] = np.nan
    return cases[list(COLUMNS)].reset_index(drop=True)


def write_overlays(cases: pd.DataFrame, run_dir: Path, out_dir: Path, n: int, image_root: Path | None) -> dict:
    """Overlay PNGs of the first ``n`` cases into ``out_dir``; fills ``cases['overlay']``.
    Returns counts (written, images not found, cases without raw attention)."""
    from cxrbench.evaluate.shards import SHARD_DIR, read_shards
    from cxrbench.io import atomic_write_bytes
    from cxrbench.reports.attention import render_overlay

    counts = {"written": 0, "image_not_found": 0, "without_raw_attention": 0}
    if n <= 0 or cases.empty:
        return counts
    if not (Path(run_dir) / SHARD_DIR).is_dir():
        counts["without_raw_attention"] = int(min(n, len(cases)))
        return counts
    raw = read_shards(run_dir)
    raw = raw.set_index(pd.Index(qa_keys(raw)))
    for pos, key in enumerate(qa_keys(cases.iloc[:n])):
        if key not in raw.index or not isinstance(raw.at[key, "attn_text_visual"], (list, np.ndarray)):
            counts["without_raw_attention"] += 1
            continue
        row = raw.loc[key].to_dict()
        png, found = render_overlay(row, image_root)
        name = f"misaligned_{pos:03d}_{cases.at[pos, 'question_type']}.png"
        atomic_write_bytes(Path(out_dir) / name, png)
        cases.at[pos, "overlay"] = name
        counts["written"] += 1
        counts["image_not_found"] += not found
    return counts


def summarize(cases: pd.DataFrame, items: pd.DataFrame, high_overlap: float = HIGH_OVERLAP) -> dict:
    """How many, per type, and what the misaligned cases share (the root-cause table of 17.2)."""
    scored = items["plausibility"].notna()

    def share(mask) -> float | None:
        return float(np.mean(mask)) if len(cases) else None

    kinds = cases["sg_error_kinds"].apply(lambda k: len(k) > 0 if isinstance(k, (list, np.ndarray)) else False)
    per_type = {}
    for qt, g in items[scored].groupby("question_type", sort=True):
        k = int((g["plausibility"] < THRESHOLD).sum())
        per_type[str(qt)] = {"n_scored": int(len(g)), "misaligned": k, "share": k / len(g)}
    return {"threshold": THRESHOLD, "n_scored": int(scored.sum()), "n_misaligned": int(len(cases)),
            "share_of_scored": float(len(cases) / scored.sum()) if scored.any() else None,
            "by_question_type": per_type,
            "share_touched_by_scene_graph_error": share(kinds),
            "share_high_overlap": share(cases["max_iou"].fillna(-1) >= high_overlap),
            "high_overlap": high_overlap,
            "error_rate_misaligned": share(cases["error"].astype(bool)),
            "error_rate_aligned": float(items.loc[scored & (items["plausibility"] >= THRESHOLD), "error"].mean())
            if (scored & (items["plausibility"] >= THRESHOLD)).any() else None}
