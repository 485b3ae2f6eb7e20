"""Class labels of the label spaces (binary yes/no, severity) from a predictions frame.

The reference and predicted labels of a binary or severity question come from the
``label_true`` / ``label_pred`` columns where the predictor gave them, else from the answer texts
(:func:`cxrbench.metrics.text.binary_labels`, :func:`severity_label`). A text that gives no label
is counted (``<space>_reference_unparsed`` / ``<space>_prediction_unparsed``); a row without a
reference label is left out of the space.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrbench.metrics.registry import LABEL_SPACES
from cxrbench.score.contract import Warnings, qa_keys

_SEVERITY_WORDS = {"none": 0, "no": 0, "normal": 0, "absent": 0, "mild": 1, "minimal": 1, "slight": 1, "small": 1,
                   "moderate": 2, "severe": 3, "large": 3, "marked": 3, "extensive": 3}


def severity_label(text: str) -> int:
    """Severity class index (``vocab.SEVERITY_LEVELS``) of a severity answer: the first
    severity word in it ("The effusion is mild." -> 1); -1 when there is none. Words:
    none/no/normal/absent -> none; mild/minimal/slight/small -> mild; moderate; severe/large/
    marked/extensive -> severe."""
    from cxrbench.metrics.text import normalize_answer

    for w in normalize_answer(text).split():
        if w in _SEVERITY_WORDS:
            return _SEVERITY_WORDS[w]
    return -1


def _text_labels(texts, space: str) -> np.ndarray:
    from cxrbench.metrics.text import binary_labels

    if space == "binary":
        return binary_labels(texts)
    return np.array([severity_label(t) for t in texts], dtype=np.int64)


def space_labels(frame: pd.DataFrame, space: str, family: np.ndarray,
                 warnings: Warnings | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, y_pred, rows) of ``space`` over all rows: -1 outside the space or unparsed;
    ``rows`` are the space's questions with a reference label."""
    if space not in LABEL_SPACES:
        raise ValueError(f"unknown label space {space!r}")
    rows = family == space
    y_true = np.full(len(frame), -1, dtype=np.int64)
    y_pred = np.full(len(frame), -1, dtype=np.int64)
    y_true[rows] = _text_labels(frame["answer"].to_numpy()[rows], space)
    y_pred[rows] = _text_labels(frame["prediction"].to_numpy()[rows], space)
    for col, arr in (("label_true", y_true), ("label_pred", y_pred)):
        if col in frame.columns:
            given = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
            use = rows & ~np.isnan(given)
            arr[use] = given[use].astype(np.int64)
    if warnings is not None:
        keys = qa_keys(frame)
        warnings.add(f"{space}_reference_unparsed", keys[rows & (y_true < 0)])
        warnings.add(f"{space}_prediction_unparsed", keys[rows & (y_pred < 0)])
    return y_true, y_pred, rows & (y_true >= 0)
