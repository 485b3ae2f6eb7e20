"""The predictions contract (docs/contracts.md §3): columns, the QA-pair key, counted warnings.

The key of a QA pair is (``study_id``, ``question_id``): in MIMIC-Ext-CXR-QBA ``question_id`` is
a template name (``B09_describe_abnormal_subcat_006``) that recurs in every study, so the study
is part of the key. A predictions file without ``study_id`` is keyed by ``question_id`` alone,
which must then be unique. :func:`qa_keys` is the one place that builds the key; score (duplicate
detection, warnings' examples), compare (pairing runs) and evaluate (shards, joins) all use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cxrbench.errors import DataError

REQUIRED: tuple[str, ...] = ("question_id", "question_type", "answer", "prediction")
KEY: tuple[str, ...] = ("study_id", "question_id")
# columns holding lists (JSON strings in CSV files)
LIST_COLUMNS: tuple[str, ...] = ("boxes_true", "boxes_pred", "box_scores", "regions_true", "regions_pred",
                                 "answer_entities", "probs")
N_EXAMPLES = 5


def is_blank(v) -> bool:
    """None, NaN, pandas' NA (a nullable Int64 column's null), or a string of white space."""
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def blank_mask(column: pd.Series) -> np.ndarray:
    """:func:`is_blank` of every value of a column, vectorised (the hot path of 333K-row files)."""
    mask = column.isna().to_numpy(dtype=bool).copy()
    if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
        values = column.to_numpy(dtype=object)
        is_str = np.fromiter((type(v) is str for v in values), dtype=bool, count=len(values))
        if is_str.any():
            # a plain loop: numpy's fixed-width strings would copy every text at the longest one's size
            mask[is_str] = [not v.strip() for v in values[is_str]]
    return mask


def _study_part(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    return str(v)


def qa_keys(frame: pd.DataFrame) -> np.ndarray:
    """One key string per row: ``"<study_id>/<question_id>"``, or ``question_id`` alone where the
    frame has no ``study_id`` (or the row's is empty). Stable across file formats: study ids read
    as floats (CSV with gaps) print as integers."""
    qid = frame["question_id"].astype(str).to_numpy()
    if "study_id" not in frame.columns:
        return qid.astype(object)
    study = [_study_part(v) for v in frame["study_id"].tolist()]
    return np.array([q if s is None else f"{s}/{q}" for s, q in zip(study, qid)], dtype=object)


def check_keys(frame: pd.DataFrame, source: str) -> np.ndarray:
    """The rows' keys, after checking that every row has a question_id and that no key repeats.

    A repeated ``question_id`` without a ``study_id`` column gets its own message: that is the
    real release's template ids, and the fix is to add the study."""
    blank = blank_mask(frame["question_id"])
    if blank.any():
        raise DataError(source, f"row {int(np.flatnonzero(blank)[0])}", "empty question_id")
    keys = qa_keys(frame)
    dup = pd.Series(keys).duplicated(keep=False).to_numpy()
    if dup.any():
        first = keys[np.flatnonzero(dup)[0]]
        rows = np.flatnonzero(keys == first)[:3].tolist()
        n_dup = int(pd.Series(keys).duplicated().sum())
        if "study_id" not in frame.columns:
            raise DataError(source, first, f"question_id repeats (rows {rows}; {n_dup} repeat(s) in all) and there is "
                            "no study_id column to tell the QA pairs apart: in MIMIC-Ext-CXR-QBA a question_id is a "
                            "template name that recurs in every study, so the key of a QA pair is (study_id, "
                            "question_id); add a study_id column")
        raise DataError(source, first, f"duplicate QA pair (study_id, question_id) (rows {rows}); "
                        f"{n_dup} duplicate(s) in all")
    return keys


@dataclass
class Warnings:
    """Counted, reported problems: name -> (count, first example keys)."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, ids) -> None:
        ids = [str(i) for i in ids]
        if not ids:
            return
        self.counts[name] = self.counts.get(name, 0) + len(ids)
        ex = self.examples.setdefault(name, [])
        ex.extend(ids[: max(0, N_EXAMPLES - len(ex))])

    def to_dict(self) -> dict:
        return {k: {"count": self.counts[k], "examples": self.examples[k]} for k in sorted(self.counts)}

    def total(self) -> int:
        return sum(self.counts.values())
