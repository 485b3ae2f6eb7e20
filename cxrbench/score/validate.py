"""Validation of a predictions frame against the contract (docs/contracts.md §3).

Every contract column is checked for type and range before any metric runs. What would change a
number without a word is an error naming the file, the QA pair and the problem: a label outside
its head's classes or not an integer, a probability outside [0, 1], single-label probabilities
that do not sum to 1, non-text answers, malformed boxes, duplicate keys. What a run can still be
scored with honestly is a counted warning with example keys (empty predictions, NaN confidences,
boxes outside the image, unknown question types).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrbench import questions
from cxrbench.errors import DataError
from cxrbench.metrics import registry
from cxrbench.score.contract import REQUIRED, Warnings, blank_mask, check_keys, is_blank

# classes per head (label_true / label_pred are class indices; binary 1 = yes)
HEAD_CLASSES: dict[str, int] = {"binary": 2, "region": 26, "severity": 4}
SINGLE_LABEL_HEADS = ("binary", "severity")       # softmax heads: probs sum to 1
PROBS_SUM_TOLERANCE = 1e-3


def family(frame: pd.DataFrame) -> np.ndarray:
    """The evaluation family of every row ('' for question types the registry does not know)."""
    table = {q: registry.family_of(q) or "" for q in frame["question_type"].unique()}
    return frame["question_type"].map(table).to_numpy(dtype=object)


def heads(frame: pd.DataFrame) -> np.ndarray:
    """The answer head of every row: the ``head`` column where given, else the question type's."""
    table = {q: (questions.get(q).head if questions.get(q) else "") for q in frame["question_type"].unique()}
    own = frame["question_type"].map(table).to_numpy(dtype=object)
    if "head" not in frame.columns:
        return own
    given = frame["head"].to_numpy(dtype=object)
    return np.array([own[i] if is_blank(g) else str(g) for i, g in enumerate(given)], dtype=object)


def _text_column(frame: pd.DataFrame, col: str, keys: np.ndarray, source: str) -> None:
    values = frame[col]
    not_text = np.fromiter((type(v) is not str for v in values.to_numpy(dtype=object)), dtype=bool, count=len(values))
    bad = ~blank_mask(values) & not_text
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = frame[col].iloc[i]
        raise DataError(source, keys[i], f"{col} must be text, got {type(v).__name__} {v!r:.60}; "
                        f"{int(bad.sum())} row(s) in all")


def _numeric(frame: pd.DataFrame, col: str, keys: np.ndarray, source: str) -> np.ndarray:
    """A column as floats; a value that is not a number is an error (never silently NaN)."""
    raw = frame[col]
    v = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = v.isna() & ~blank_mask(raw)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(source, keys[i], f"{col} is not a number: {raw.iloc[i]!r}")
    return v.to_numpy()


def _check_labels(frame: pd.DataFrame, keys: np.ndarray, head: np.ndarray, source: str) -> None:
    for col in ("label_true", "label_pred"):
        if col not in frame.columns:
            continue
        v = _numeric(frame, col, keys, source)
        ok = ~np.isnan(v)
        frac = ok & (v != np.round(v))
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise DataError(source, keys[i], f"{col} {v[i]:g} is not a class index (an integer)")
        k = np.array([HEAD_CLASSES.get(h, -1) for h in head])
        out = ok & ((v < 0) | ((k > 0) & (v >= k)))
        if out.any():
            i = int(np.flatnonzero(out)[0])
            classes = f"0..{k[i] - 1} for the {head[i]} head" if k[i] > 0 else "a non-negative class index"
            raise DataError(source, keys[i], f"{col} {int(v[i])} outside the head's classes ({classes}); "
                            f"{int(out.sum())} row(s) in all")


def _check_probs(frame: pd.DataFrame, keys: np.ndarray, head: np.ndarray, source: str) -> None:
    if "probs" not in frame.columns:
        return
    for i, (p, h) in enumerate(zip(frame["probs"].tolist(), head)):
        if p is None or (isinstance(p, float) and np.isnan(p)):
            continue
        try:
            arr = np.asarray(list(p), dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(source, keys[i], f"probs must be a list of numbers, got {p!r:.60}") from None
        if arr.size == 0:
            continue
        if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
            raise DataError(source, keys[i], f"probs outside [0, 1]: {[round(float(x), 4) for x in arr[:6]]}")
        k = HEAD_CLASSES.get(h, len(registry.LABEL_SPACES.get(h, ())) or None)
        if h == "text":
            continue                                     # 14 independent findings; length set by the model
        if k is not None and h in HEAD_CLASSES and arr.size != k:
            raise DataError(source, keys[i], f"probs has {arr.size} values, the {h} head has {k} classes")
        if h in SINGLE_LABEL_HEADS and abs(arr.sum() - 1.0) > PROBS_SUM_TOLERANCE:
            raise DataError(source, keys[i], f"probs of the {h} head sum to {arr.sum():.4f}, not 1 "
                            f"(tolerance {PROBS_SUM_TOLERANCE:g})")


def _check_unit_interval(frame, col, keys, source, warnings, fam) -> None:
    v = _numeric(frame, col, keys, source)
    bad = (v < 0) | (v > 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(source, keys[i], f"{col} {v[i]:g} outside [0, 1]")
    counted = np.isnan(v) if col == "confidence" else np.isnan(v) & (fam == "binary")
    warnings.add(f"nan_{col}", keys[counted])
    frame[col] = v


def _box_array(rows: list) -> tuple[np.ndarray, np.ndarray] | None:
    """All boxes of a box column as one (n_boxes, 4) float array and each box's row, or None when
    some box is not four numbers (the slow path then names it)."""
    lengths = np.fromiter((0 if b is None else len(b) for b in rows), dtype=np.int64, count=len(rows))
    flat = [box for b in rows if b is not None for box in b]
    try:
        boxes = np.asarray(flat, dtype=np.float64).reshape(len(flat), -1) if flat else np.zeros((0, 4))
    except (TypeError, ValueError):
        return None
    if boxes.shape[1] != 4:
        return None
    return boxes, np.repeat(np.arange(len(rows)), lengths)


def _check_boxes(frame, keys, source, warnings) -> None:
    """Every box four finite numbers with x2 >= x1 and y2 >= y1 (else an error naming the QA pair);
    boxes outside their image (where its size is known) are counted. The rule is
    :func:`cxrbench.metrics.spatial.box_problem`'s, applied to all boxes at once."""
    from cxrbench.metrics.spatial import box_problem

    n = len(frame)
    size = np.full((n, 2), np.nan)
    for j, c in enumerate(("image_width", "image_height")):
        if c in frame.columns:
            size[:, j] = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=np.float64)
    for col in ("boxes_true", "boxes_pred"):
        if col not in frame.columns:
            continue
        frame[col] = _none_for_missing(frame[col])
        rows = frame[col].tolist()
        found = _box_array(rows)
        if found is None:
            bad_rows = range(n)
        else:
            boxes, row = found
            bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
            bad_rows = np.unique(row[bad])
            w, h = size[row, 0], size[row, 1]
            known = np.isfinite(w) & np.isfinite(h)
            with np.errstate(invalid="ignore"):
                out = known & ~bad & ((boxes[:, 0] < 0) | (boxes[:, 1] < 0) | (boxes[:, 2] > w) | (boxes[:, 3] > h))
            warnings.add(f"{col}_out_of_image", keys[np.unique(row[out])])
        for i in bad_rows:                       # name the first malformed box (box_problem's rule)
            for box in rows[i] or ():
                if box_problem(box) == "malformed":
                    shown = list(box) if hasattr(box, "__iter__") else box
                    raise DataError(source, keys[i], f"{col}: malformed box {shown!r} "
                                    "(need [x1, y1, x2, y2] with x2 >= x1, y2 >= y1)")
    if "box_scores" in frame.columns and "boxes_pred" in frame.columns:
        frame["box_scores"] = _none_for_missing(frame["box_scores"])
        for key, b, sc in zip(keys, frame["boxes_pred"].tolist(), frame["box_scores"].tolist()):
            if sc is not None and len(sc) != len(b if b is not None else ()):
                raise DataError(source, key, f"{len(b if b is not None else ())} predicted boxes but {len(sc)} box_scores")


def _none_for_missing(column: pd.Series) -> pd.Series:
    """A list column with None (not NaN) where a row has no list."""
    column = column.astype(object)
    return column.where(column.notna(), None)


def validate(frame: pd.DataFrame, source: str, warnings: Warnings) -> pd.DataFrame:
    """Check and normalise a predictions frame; raise :class:`DataError` or count warnings.
    Returns the normalised copy (question types as release codes, numbers as floats, lists as
    lists)."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(source, None, f"missing required column(s) {missing}; have {sorted(frame.columns)}")
    if len(frame) == 0:
        raise DataError(source, None, "no predictions (zero rows)")
    frame = frame.reset_index(drop=True).copy()
    qid_blank = blank_mask(frame["question_id"])
    frame["question_id"] = frame["question_id"].astype(object).where(qid_blank, frame["question_id"].astype(str))
    keys = check_keys(frame, source)
    frame["question_id"] = frame["question_id"].astype(str)
    for col in ("question_type", "answer"):
        blank = blank_mask(frame[col])
        if blank.any():
            raise DataError(source, keys[int(np.flatnonzero(blank)[0])],
                            f"empty {col}" + (" (the reference answer)" if col == "answer" else "")
                            + f"; {int(blank.sum())} row(s) in all")
    for col in ("answer", "prediction"):
        _text_column(frame, col, keys, source)
    blank_pred = blank_mask(frame["prediction"])
    warnings.add("empty_prediction", keys[blank_pred])
    frame["prediction"] = frame["prediction"].where(~blank_pred, "").astype(str)
    frame["answer"] = frame["answer"].astype(str)
    from cxrbench.metrics.text import MAX_TEXT_CHARS, truncate_texts

    long = truncate_texts(frame["answer"])[1] | truncate_texts(frame["prediction"])[1]
    warnings.add(f"text_truncated_to_{MAX_TEXT_CHARS}_chars", keys[long])   # the text metrics read the first part
    strategy = frame["question_strategy"] if "question_strategy" in frame.columns else [None] * len(frame)
    frame["question_type"] = [questions.normalize_question_type(q, s) for q, s in zip(frame["question_type"], strategy)]
    warnings.add("unknown_question_type", keys[~frame["question_type"].isin(questions.BY_CODE).to_numpy()])
    head, fam = heads(frame), family(frame)
    _check_labels(frame, keys, head, source)
    _check_probs(frame, keys, head, source)
    for col in ("confidence", "score"):
        if col in frame.columns:
            _check_unit_interval(frame, col, keys, source, warnings, fam)
    _check_boxes(frame, keys, source, warnings)
    for col in ("regions_true", "regions_pred", "answer_entities"):
        if col in frame.columns:
            frame[col] = _none_for_missing(frame[col])
    return frame
