"""Semantic answer-type accuracy (seed 13.1): does the prediction answer with the same kind of
thing as the reference?

Categories (:data:`CATEGORIES`): ``anatomical_location``, ``disease_finding``,
``measurement_severity``, ``device``, ``yes_no``, and ``other`` for answers with no concept.

Rules, applied to prediction and reference alike:

1. ``yes_no`` when the answer *is* a yes/no answer: ``yes``/``no``/``true``/``false`` alone or
   followed by punctuation ("Yes.", "No, there is no effusion."). "No pneumothorax." is not: it
   names a finding.
2. Otherwise the concepts of the answer (:class:`~cxrbench.metrics.clinical_terms.ConceptExtractor`,
   the same QuickUMLS index as clinical-term F1) are mapped through their UMLS semantic types
   (:data:`SEMTYPE_CATEGORY`) and the answer takes the category of its **last** concept
   (English puts the new information, the focus, at the end: "The effusion is *small*",
   "The effusion is located in the *left costophrenic angle*"). Laterality and direction words
   (semantic type T082, "left", "upper") only count when the answer has no other concept.
3. No concept: ``other``.

There is no reference implementation; tests check hand-worked answers of every category.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats, mean_stats
from cxrbench.metrics.clinical_terms import ConceptExtractor, get_extractor
from cxrbench.metrics.text import References, as_reference_lists

CATEGORIES = ("anatomical_location", "disease_finding", "measurement_severity", "device", "yes_no", "other")

SEMTYPE_CATEGORY: dict[str, str] = {
    "T017": "anatomical_location", "T023": "anatomical_location", "T029": "anatomical_location",
    "T030": "anatomical_location", "T082": "anatomical_location",
    "T033": "disease_finding", "T047": "disease_finding", "T046": "disease_finding", "T037": "disease_finding",
    "T190": "disease_finding", "T191": "disease_finding", "T184": "disease_finding", "T020": "disease_finding",
    "T061": "disease_finding",
    "T080": "measurement_severity", "T081": "measurement_severity",
    "T074": "device",
}
_QUALIFIER_TYPES = frozenset({"T082"})
_YES_NO = re.compile(r"^\s*(yes|no|true|false)\b\s*([,.;:!]|$)", re.IGNORECASE)


def _concept_category(semtypes: tuple[str, ...]) -> str | None:
    for t in semtypes:
        if t in SEMTYPE_CATEGORY:
            return SEMTYPE_CATEGORY[t]
    return None


def answer_category(text: str, extractor: ConceptExtractor | None = None) -> str:
    """The semantic category of one answer (rules in the module docstring)."""
    text = "" if text is None else str(text)
    if _YES_NO.match(text):
        return "yes_no"
    extractor = extractor or get_extractor()
    found = [(c, _concept_category(c.semtypes)) for c in extractor.concepts(text)]
    found = [(c, cat) for c, cat in found if cat is not None]
    if not found:
        return "other"
    main = [(c, cat) for c, cat in found if not set(c.semtypes) & _QUALIFIER_TYPES]
    return (main or found)[-1][1]


def semantic_type_items(y_true: References, y_pred: Sequence[str],
                        extractor: ConceptExtractor | None = None) -> np.ndarray:
    """Per item 1.0 when the prediction's category equals a reference's, else 0.0."""
    extractor = extractor or get_extractor()
    refs = as_reference_lists(y_true)
    if len(refs) != len(y_pred):
        raise ValueError(f"y_true has {len(refs)} items but y_pred has {len(y_pred)}")
    cache: dict[str, str] = {}

    def cat(t: str) -> str:
        if t not in cache:
            cache[t] = answer_category(t, extractor)
        return cache[t]

    return np.array([float(any(cat(str(p)) == cat(r) for r in rs)) for p, rs in zip(y_pred, refs)])


def semantic_type_accuracy_stats(y_true: References, y_pred: Sequence[str],
                                 extractor: ConceptExtractor | None = None) -> SufficientStats:
    extractor = extractor or get_extractor()
    return mean_stats("semantic_type_accuracy", semantic_type_items(y_true, y_pred, extractor),
                      signature="last-concept-category|" + extractor.signature)


def semantic_type_accuracy(y_true: References, y_pred: Sequence[str],
                           extractor: ConceptExtractor | None = None) -> float:
    """Fraction of items whose predicted answer falls in the reference answer's semantic
    category (:func:`answer_category`): ``(1/n) Σ_i [cat(pred_i) = cat(ref_i)]``."""
    return semantic_type_accuracy_stats(y_true, y_pred, extractor).value()
