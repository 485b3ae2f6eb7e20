"""Answer text from head outputs, so the text metrics apply to every head (seed 5.2 "template filling").

A head predicts a label (yes/no, a set of regions, a severity level, a set of findings); the
answer text is looked up, most specific first:

1. the answer bank, by (question text, label): the answer most often given in training to
   this exact question with this label ("Is there cardiomegaly?" + yes -> "Yes, there is
   cardiomegaly.");
2. the answer bank, by (question type, label);
3. a fixed template ("Yes.", "Left lung and right lung.", "Mild.", "There is cardiomegaly.").

Privacy: MIMIC answers can be rewritten report sentences. The bank keeps a text only when it
is the answer of at least ``min_studies`` different studies (default 5), i.e. a template, never
one patient's sentence. It is stored in the checkpoint as ``answer_bank.json``.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

import numpy as np

from model.vocabularies import HEAD_NAMES
from model.vocabularies import FINDING_CLASSES, REGION_CLASSES, SEVERITY_CLASSES

NO_FINDING = "No Finding"


def normalize_question(question: str) -> str:
    return re.sub(r"\s+", " ", str(question).strip().lower())


def label_key(head: str, *, binary: int | None = None, regions: Iterable[str] = (), severity: int | None = None,
              findings: Iterable[str] = ()) -> str:
    if head == "binary":
        return "yes" if binary == 1 else "no"
    if head == "region":
        return "|".join(sorted(regions))
    if head == "severity":
        return SEVERITY_CLASSES[severity] if severity is not None and severity >= 0 else ""
    return "|".join(sorted(findings))


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def template_answer(head: str, key: str) -> str:
    parts = [p for p in key.split("|") if p]
    if head == "binary":
        return "Yes." if key == "yes" else "No."
    if head == "region":
        text = _join(parts) or "no specific region"
    elif head == "severity":
        text = key or "none"
    else:
        findings = [p for p in parts if p != NO_FINDING]
        if not findings:
            return "No abnormal findings."
        return f"There is {_join([f.lower() for f in findings])}."
    return text[:1].upper() + text[1:] + "."


def target_keys(targets, index: np.ndarray | None = None) -> list[str]:
    """Label keys of training items (from :class:`model.targets.Targets`)."""
    idx = np.arange(len(targets.head)) if index is None else index
    keys = []
    for i in idx:
        head = HEAD_NAMES[targets.head[i]]
        keys.append(label_key(
            head, binary=int(targets.binary[i]),
            regions=[REGION_CLASSES[j] for j in np.flatnonzero(targets.region[i])],
            severity=int(targets.severity[i]),
            findings=[FINDING_CLASSES[j] for j in np.flatnonzero(targets.findings[i])]))
    return keys


class AnswerBank:
    def __init__(self, by_question: dict[str, dict[str, str]] | None = None,
                 by_type: dict[str, dict[str, str]] | None = None, min_studies: int = 5):
        self.by_question = by_question or {}
        self.by_type = by_type or {}
        self.min_studies = min_studies

    @classmethod
    def build(cls, qa, targets, min_studies: int = 5) -> "AnswerBank":
        """From the training split's QA rows and their targets (the same rows, same order)."""
        import pandas as pd

        frame = pd.DataFrame({
            "q": [normalize_question(q) for q in qa["question"]],
            "qt": qa["question_type"].astype(str).to_numpy(),
            "key": target_keys(targets),
            "answer": qa["answer"].fillna("").astype(str).to_numpy(),
            "study": qa["study_id"].to_numpy(),
        })
        frame = frame[frame["answer"].str.len() > 0]

        def best(group_cols: list[str]) -> dict[str, dict[str, str]]:
            counts = (frame.groupby(group_cols + ["answer"], sort=True)["study"].nunique()
                      .rename("n").reset_index())
            counts = counts[counts["n"] >= min_studies]
            counts = counts.sort_values(group_cols + ["n", "answer"], ascending=[True] * len(group_cols) + [False, True],
                                        kind="stable").drop_duplicates(group_cols, keep="first")
            out: dict[str, dict[str, str]] = {}
            for row in counts.itertuples(index=False):
                out.setdefault(getattr(row, group_cols[0]), {})[row.key] = row.answer
            return out

        return cls(best(["q", "key"]), best(["qt", "key"]), min_studies)

    def answer(self, head: str, key: str, question: str, question_type: Any) -> str:
        text = self.by_question.get(normalize_question(question), {}).get(key)
        if text is None:
            text = self.by_type.get(str(question_type), {}).get(key)
        return text if text is not None else template_answer(head, key)

    def to_json(self) -> dict[str, Any]:
        return {"min_studies": self.min_studies, "by_question": self.by_question, "by_type": self.by_type}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "AnswerBank":
        return cls(data.get("by_question", {}), data.get("by_type", {}), int(data.get("min_studies", 5)))
