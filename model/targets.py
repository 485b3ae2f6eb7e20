"""The one place answer labels are derived: training targets and inference's true labels.

Training (``model.data``) and prediction (``model.inference``: ``label_true``,
``regions_true``, ``chexpert_true``) both call :func:`derive_targets`, with the vocabularies
frozen into the checkpoint, so the two can never disagree.

Per QA row of the index (docs/contracts.md section 2):

* head: ``cxrbench.questions`` routing (seed 5.3); for question types outside the registry
  (VQA-RAD, SLAKE) a small rule on the question's first words (:func:`infer_head`).
* binary: ``answer_binary`` (1 yes, 0 no; -1 -> ignored and counted).
* region: multi-hot over the 26 head regions of ``answer_regions`` (fine names folded by the
  vocabularies' ``region_to_head``); no foldable region -> ignored and counted.
* severity: index of ``answer_severity`` in ``SEVERITY_LEVELS``; null -> ignored and counted.
* text: multi-hot over the 14 CheXpert findings that the answer's *positive* entities count
  towards (``answer_entities`` of an answer whose ``answer_positiveness`` is ``pos``; a
  ``mixed`` answer uses ``answer_entities_positive`` when the index has it, else the study's
  CheXpert positives among the answer's entities); none -> "No Finding".
* auxiliary CheXpert (seed 3.3, U-Ignore): per study, target 1 for 1.0, 0 for 0.0, weight 0
  for uncertain -1.0, target 0 with weight ``nan_weight`` for not mentioned (NaN, seed 3.4).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from cxrbench import questions
from cxrbench.vocab import CHEXPERT_LABELS, OTHER_REGION_CATEGORY
from model.vocabularies import HEAD_INDEX
from model.decisions import NO_FINDING
from model.vocabularies import FINDING_CLASSES, REGION_CLASSES, SEVERITY_CLASSES, Vocabularies

_REGION_INDEX = {r: i for i, r in enumerate(REGION_CLASSES)}
_FINDING_INDEX = {f: i for i, f in enumerate(FINDING_CLASSES)}
_CLOSED = re.compile(r"^\s*(is|are|was|were|does|do|did|can|could|has|have|had|should|will|would)\b", re.I)


def infer_head(question: str) -> str:
    """Head for a question type outside the registry: yes/no questions -> binary, "where" ->
    region, "how severe"/"severity" -> severity, anything else -> text."""
    q = str(question or "")
    if _CLOSED.match(q):
        return "binary"
    low = q.lower()
    if low.startswith("where") or "which side" in low or "which lung" in low:
        return "region"
    if "how severe" in low or "severity" in low:
        return "severity"
    return "text"


def item_head(question_type: Any, question: Any = None) -> str:
    entry = questions.get(str(question_type)) if question_type is not None and question_type == question_type else None
    return entry.head if entry is not None else infer_head(question)


@dataclass
class Targets:
    """Targets of n items; ``*_valid`` false where the label is missing (not trained on)."""

    head: np.ndarray                 # (n,) int: index into model.vocabularies.HEAD_NAMES
    binary: np.ndarray               # (n,) int: 1 yes, 0 no, -1 missing
    region: np.ndarray               # (n, 26) float multi-hot
    region_valid: np.ndarray         # (n,) bool
    region_first: np.ndarray         # (n,) int: the first answer region that folds onto a head class, -1 none
    severity: np.ndarray             # (n,) int, -1 missing
    findings: np.ndarray             # (n, 14) float multi-hot (text head)
    chexpert: np.ndarray             # (n, 14) float targets of the auxiliary head
    chexpert_weight: np.ndarray      # (n, 14) float: 1, nan_weight (not mentioned) or 0 (uncertain)
    region_category: np.ndarray      # (n,) object: category of the item's region (stratification)
    missing: Counter = field(default_factory=Counter)   # labels missing per head (reported)

    def valid(self) -> np.ndarray:
        """(n,) bool: the item has a label for its own head."""
        h = self.head
        return np.where(h == HEAD_INDEX["binary"], self.binary >= 0,
               np.where(h == HEAD_INDEX["region"], self.region_valid,
               np.where(h == HEAD_INDEX["severity"], self.severity >= 0, True)))


def _list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, float) and value != value:
        return []
    return list(value)


def chexpert_targets(labels: Any, nan_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """U-Ignore targets and weights from a study's 14 CheXpert values (1/0/-1/NaN)."""
    values = np.full(len(CHEXPERT_LABELS), np.nan) if labels is None else np.asarray(labels, dtype=np.float64)
    if values.shape != (len(CHEXPERT_LABELS),):
        values = np.full(len(CHEXPERT_LABELS), np.nan)
    target = (values == 1.0).astype(np.float32)
    weight = np.where(np.isnan(values), nan_weight, np.where(values == -1.0, 0.0, 1.0)).astype(np.float32)
    return target, weight


def finding_multi_hot(entities: list[str], vocabs: Vocabularies) -> np.ndarray:
    out = np.zeros(len(FINDING_CLASSES), dtype=np.float32)
    for entity in entities:
        for label in vocabs.chexpert_labels(entity):
            out[_FINDING_INDEX[label]] = 1.0
    if not out.any():
        out[NO_FINDING] = 1.0
    return out


def region_multi_hot(regions: list[str], vocabs: Vocabularies) -> np.ndarray:
    out = np.zeros(len(REGION_CLASSES), dtype=np.float32)
    for name in regions:
        head = vocabs.head_region(name)
        if head is not None:
            out[_REGION_INDEX[head]] = 1.0
    return out


def positive_entities(row: Mapping[str, Any], study_chexpert: Any, vocabs: Vocabularies) -> list[str]:
    """Entities the answer asserts as present (see the module docstring)."""
    positiveness = row.get("answer_positiveness")
    entities = [str(e) for e in _list(row.get("answer_entities"))]
    if positiveness == "pos":
        return entities
    if positiveness == "mixed":
        explicit = row.get("answer_entities_positive")
        if explicit is not None and not (isinstance(explicit, float) and explicit != explicit):
            return [str(e) for e in explicit]
        values = np.asarray(study_chexpert if study_chexpert is not None else [np.nan] * 14, dtype=np.float64)
        positive = {CHEXPERT_LABELS[i] for i in range(len(CHEXPERT_LABELS)) if values.shape == (14,) and values[i] == 1.0}
        return [e for e in entities if set(vocabs.chexpert_labels(e)) & positive]
    return []


def derive_targets(qa, vocabs: Vocabularies, studies=None, nan_weight: float = 0.5) -> Targets:
    """Targets of every row of ``qa`` (a pandas frame with the index's qa.parquet columns).

    ``studies``: the index's studies frame (``study_id``, ``chexpert``) for the auxiliary and
    text targets; without it those targets are all missing (weight 0).
    """
    n = len(qa)
    chex_by_study: dict[int, Any] = {}
    if studies is not None and "chexpert" in studies:
        chex_by_study = dict(zip(studies["study_id"].astype("int64"), studies["chexpert"]))
    head = np.zeros(n, dtype=np.int64)
    binary = np.full(n, -1, dtype=np.int64)
    region = np.zeros((n, len(REGION_CLASSES)), dtype=np.float32)
    region_first = np.full(n, -1, dtype=np.int64)
    severity = np.full(n, -1, dtype=np.int64)
    findings = np.zeros((n, len(FINDING_CLASSES)), dtype=np.float32)
    chexpert = np.zeros((n, len(FINDING_CLASSES)), dtype=np.float32)
    chex_w = np.zeros((n, len(FINDING_CLASSES)), dtype=np.float32)
    category = np.empty(n, dtype=object)
    missing: Counter = Counter()
    columns = list(qa.columns)
    for i, values in enumerate(qa.itertuples(index=False, name=None)):
        row = dict(zip(columns, values))
        h = item_head(row.get("question_type"), row.get("question"))
        head[i] = HEAD_INDEX[h]
        b = row.get("answer_binary")
        if b is not None and b == b and int(b) in (0, 1):
            binary[i] = int(b)
        regions = [str(r) for r in _list(row.get("answer_regions"))]
        region[i] = region_multi_hot(regions, vocabs)
        heads = [vocabs.head_region(r) for r in regions]
        region_first[i] = next((_REGION_INDEX[h] for h in heads if h is not None), -1)
        sev = row.get("answer_severity")
        if isinstance(sev, str) and sev in SEVERITY_CLASSES:
            severity[i] = SEVERITY_CLASSES.index(sev)
        study_chex = chex_by_study.get(int(row["study_id"])) if "study_id" in row and row["study_id"] == row["study_id"] else None
        findings[i] = finding_multi_hot(positive_entities(row, study_chex, vocabs), vocabs)
        if study_chex is not None:
            chexpert[i], chex_w[i] = chexpert_targets(study_chex, nan_weight)
        category[i] = vocabs.region_category(regions[0]) if regions else OTHER_REGION_CATEGORY
        if h == "binary" and binary[i] < 0:
            missing["binary"] += 1
        elif h == "region" and not region[i].any():
            missing["region"] += 1
        elif h == "severity" and severity[i] < 0:
            missing["severity"] += 1
    return Targets(head=head, binary=binary, region=region, region_valid=region.any(axis=1),
                   region_first=region_first,
                   severity=severity, findings=findings, chexpert=chexpert, chexpert_weight=chex_w,
                   region_category=category, missing=missing)


def class_weights(positives: np.ndarray, total: float) -> np.ndarray:
    """w_i = (N / N_i) ** 0.5 (seed 3.2, use case 4), rescaled to mean 1 over the classes.

    Classes never seen (N_i = 0) get the largest weight of the seen ones. The rescaling keeps
    the loss on the scale of the unweighted loss, so the head loss weights keep their meaning.
    """
    positives = np.asarray(positives, dtype=np.float64)
    seen = positives > 0
    w = np.ones_like(positives)
    if seen.any() and total > 0:
        w[seen] = np.sqrt(total / positives[seen])
        w[~seen] = w[seen].max()
    return (w / w.mean()).astype(np.float32)


def prior_log_odds(positives: np.ndarray, total: float, floor: float = 1e-3) -> np.ndarray:
    """log(p / (1 - p)) of each class's share p = N_i / N, clipped to [floor, 1 - floor] (classes
    never or always seen stay finite): the output bias at which a sigmoid head starts at the
    prior (``heads.prior_init``)."""
    positives = np.asarray(positives, dtype=np.float64)
    p = np.clip(positives / total if total > 0 else np.full_like(positives, 0.5), floor, 1.0 - floor)
    return np.log(p / (1.0 - p)).astype(np.float32)
