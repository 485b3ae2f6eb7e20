"""Publication mode: what a book built from real MIMIC data may show (its data use agreement
forbids redistributing the datasets' content).

In publication mode the book holds aggregates only: no question or answer text, no predicted
answer text (it is written from the same templates), no study, subject, image or QA-pair
identifiers, no images or attention overlays of studies. Tables pass :func:`aggregate_only`,
images are shown only when :func:`images_allowed`, and warnings are shown as counts
(:func:`counts_only`). The chapters also leave out whole sections (lists of cases) when it is on.
"""

from __future__ import annotations

import pandas as pd

# columns that carry dataset content or identifiers (docs/contracts.md §2, §3, §8)
CONTENT_COLUMNS = frozenset({
    "question", "answer", "answer_full", "prediction", "model_answer", "answer_norm", "variables",
    "study_id", "subject_id", "question_id", "image_id", "dicom_id", "image_path", "key", "examples",
    "overlay", "file",
})


def aggregate_only(frame: pd.DataFrame, publication: bool) -> pd.DataFrame:
    """The table without content or identifier columns when ``publication``."""
    if not publication:
        return frame
    return frame[[c for c in frame.columns if str(c) not in CONTENT_COLUMNS]]


def images_allowed(publication: bool) -> bool:
    """Images of studies (X-rays, attention overlays) only outside publication mode."""
    return not publication


def counts_only(warnings: dict | None) -> dict[str, int]:
    """``metrics.json`` warnings as counts (their examples are QA-pair keys: study ids)."""
    out = {}
    for name, w in (warnings or {}).items():
        out[name] = int(w.get("count", 0)) if isinstance(w, dict) else int(w or 0)
    return out
