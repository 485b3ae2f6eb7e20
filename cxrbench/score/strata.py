"""The strata metrics are reported and compared in: one definition for score, evaluate and compare.

``metrics.json`` reports ``overall`` and, for each of :data:`GROUPS`, one stratum per value of
its column (``by_question_type``, ``by_head``, ``by_region_category``; more columns on request,
e.g. the cross-dataset answer type). ``compare`` pairs runs on ``overall``, the ``spatial`` and
``relational`` subsets of the ablation matrix (seed 16.2) and each question type.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from cxrbench import questions

GROUPS: tuple[tuple[str, str], ...] = (("by_question_type", "question_type"), ("by_head", "head"),
                                       ("by_region_category", "region_category"))


def report_strata(frame: pd.DataFrame, extra_columns: Iterable[str] = ()) -> dict[str, dict[str, np.ndarray]]:
    """``{"overall": {"": all rows}, "by_<col>": {value: mask, ...}, ...}`` for the columns the
    frame has; values in sorted order, empty values left out."""
    out: dict[str, dict[str, np.ndarray]] = {"overall": {"": np.ones(len(frame), dtype=bool)}}
    groups = list(GROUPS) + [(f"by_{c}", c) for c in extra_columns]
    for key, col in groups:
        if col not in frame.columns:
            continue
        values = frame[col].astype(object).where(frame[col].notna(), None)
        strings = np.array([None if v is None else str(v) for v in values], dtype=object)
        out[key] = {v: strings == v for v in sorted({s for s in strings if s is not None})}
    return out


def spatial_mask(frame: pd.DataFrame) -> np.ndarray:
    """Questions of the ablation matrix's spatial subset (localisation and region questions)."""
    qtype = frame["question_type"].astype(str).map(questions.normalize_question_type).to_numpy()
    entries = {qt: questions.get(qt) for qt in np.unique(qtype)}
    return np.isin(qtype, [qt for qt, e in entries.items() if e is not None and e.spatial])


def relational_mask(frame: pd.DataFrame) -> np.ndarray | None:
    """Questions :mod:`cxrbench.metrics.relational` parses as relational (at least one relation
    edge); None without a ``question`` column."""
    if "question" not in frame.columns:
        return None
    from cxrbench.metrics.relational import question_flags

    return np.asarray(question_flags(frame["question"].fillna("").astype(str).tolist())["relational"], dtype=bool)


def comparison_strata(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """overall, spatial, relational (when computable) and each question type, in registry order."""
    qtype = frame["question_type"].astype(str).map(questions.normalize_question_type).to_numpy()
    strata = {"overall": np.ones(len(frame), dtype=bool), "spatial": spatial_mask(frame)}
    relational = relational_mask(frame)
    if relational is not None:
        strata["relational"] = relational
    rank = {q.code: i for i, q in enumerate(questions.QUESTION_TYPES)}
    for qt in sorted(set(qtype), key=lambda q: (rank.get(q, len(rank)), q)):
        strata[qt] = qtype == qt
    return strata
