"""Which metrics score which questions (seed 13.5), and what each metric needs.

A question type's evaluation family (``cxrbench.questions.QuestionType.family``) selects its
primary and secondary metrics; every question additionally gets the text metrics (every
answer is a text answer). Question types the registry does not know (another dataset's:
VQA-RAD "PRES", SLAKE "Organ") get the text metrics only. Adding a metric is one
:data:`METRICS` entry; adding a question family is one :data:`FAMILY_METRICS` entry.

``cxrbench.score`` reads this table to decide, per stratum, which statistics to build from
which columns.
"""

from __future__ import annotations

from dataclasses import dataclass

from cxrbench import questions


@dataclass(frozen=True)
class MetricSpec:
    """What a metric is computed from.

    ``kind``: ``item`` (mean of a per-item score column of the same name), ``corpus`` (BLEU:
    summed segment statistics), ``binary`` / ``severity`` (confusion matrix of the head's
    labels), ``auroc``, ``ece``, ``map``, ``subset`` (exact match over a question subset).
    ``needs``: columns that must exist (and be non-null on a row) for the metric to apply.
    ``outcome`` (per-item metrics only): ``binary`` when every item scores 0 or 1 (McNemar
    applies), ``continuous`` for graded per-item scores (paired t, Wilcoxon). Declared, not
    read from the data: a continuous score that happens to be 0 or 1 on every item of a run
    must not switch its tests.
    """

    name: str
    kind: str
    needs: tuple[str, ...] = ()
    higher_is_better: bool = True
    rate: bool = True            # a fraction in [0, 1]
    outcome: str = ""


METRICS: dict[str, MetricSpec] = {m.name: m for m in (
    # answer text (seed 13.1)
    MetricSpec("exact_match", "item", outcome="binary"),
    MetricSpec("token_f1", "item", outcome="continuous"),
    MetricSpec("bleu4", "corpus"),
    MetricSpec("rouge_l", "item", outcome="continuous"),
    MetricSpec("bertscore_f1", "item", rate=False, outcome="continuous"),
    MetricSpec("clinical_term_f1", "item", outcome="continuous"),
    MetricSpec("semantic_type_accuracy", "item", outcome="binary"),
    # spatial (13.2)
    MetricSpec("iou", "item", ("boxes_true", "boxes_pred"), outcome="continuous"),
    MetricSpec("pointing_accuracy", "item", ("boxes_true", "boxes_pred"), outcome="binary"),
    MetricSpec("map_50", "map", ("boxes_true", "boxes_pred")),
    MetricSpec("map_75", "map", ("boxes_true", "boxes_pred")),
    MetricSpec("map_50_75", "map", ("boxes_true", "boxes_pred")),
    MetricSpec("multi_region_f1", "item", ("regions_true", "regions_pred"), outcome="continuous"),
    MetricSpec("spatial_relation_accuracy", "subset", ("question",), outcome="binary"),
    MetricSpec("ece", "ece", ("confidence",), higher_is_better=False),
    # classification / clinical (13.3)
    MetricSpec("accuracy", "labels"),
    MetricSpec("sensitivity", "labels"),
    MetricSpec("specificity", "labels"),
    MetricSpec("ppv", "labels"),
    MetricSpec("npv", "labels"),
    MetricSpec("f1", "labels"),
    MetricSpec("mcc", "labels", rate=False),
    MetricSpec("kappa", "labels", rate=False),
    MetricSpec("auroc", "auroc", ("score",)),
    # relational (13.4)
    MetricSpec("graph_entity_recall", "item", ("answer_entities",), outcome="continuous"),
    MetricSpec("relationship_accuracy", "subset", ("question",), outcome="binary"),
    MetricSpec("multi_hop_accuracy", "subset", ("question",), outcome="binary"),
    # attention (14.2-14.3), painted by cxrbench evaluate
    MetricSpec("plausibility", "item", ("plausibility",), outcome="continuous"),
    MetricSpec("attention_entropy", "item", ("attention_entropy",), higher_is_better=False, rate=False, outcome="continuous"),
)}


@dataclass(frozen=True)
class MetricSet:
    primary: tuple[str, ...]
    secondary: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.primary + self.secondary))


# Every answer is text: these apply to every question, known type or not.
TEXT_METRICS: tuple[str, ...] = ("exact_match", "token_f1", "bleu4", "rouge_l", "bertscore_f1",
                                 "clinical_term_f1", "semantic_type_accuracy")
# Where the columns exist, any question: calibration, attention, relational subsets.
CONDITIONAL_METRICS: tuple[str, ...] = ("ece", "plausibility", "attention_entropy", "relationship_accuracy",
                                        "multi_hop_accuracy")

# Seed 13.5, stratification 1 (family -> primary / secondary metrics).
FAMILY_METRICS: dict[str, MetricSet] = {
    "spatial": MetricSet(("iou", "pointing_accuracy", "map_50_75", "map_50", "map_75"),
                         ("spatial_relation_accuracy", "multi_region_f1")),
    "entity": MetricSet(("token_f1", "clinical_term_f1"), ("bertscore_f1", "graph_entity_recall")),
    "severity": MetricSet(("exact_match", "accuracy", "kappa"), ("mcc",)),
    "binary": MetricSet(("exact_match", "sensitivity"),
                        ("specificity", "auroc", "ppv", "npv", "f1", "accuracy", "mcc", "kappa")),
    "open": MetricSet(("bertscore_f1", "rouge_l"), ("bleu4", "graph_entity_recall")),
}

# Which label space the ``labels`` metrics use for a family.
LABEL_SPACE: dict[str, str] = {"binary": "binary", "severity": "severity"}


def family_of(question_type: str) -> str | None:
    """The evaluation family of a question type (code or short name), None if unknown."""
    q = questions.get(question_type)
    return q.family if q is not None else None


def metrics_for(question_type: str) -> tuple[str, ...]:
    """All metrics a question type is scored with: its family's primary and secondary metrics,
    the text metrics, and the conditional ones (these apply only where their columns exist)."""
    fam = family_of(question_type)
    own = FAMILY_METRICS[fam].all if fam in FAMILY_METRICS else ()
    return tuple(dict.fromkeys(own + TEXT_METRICS + CONDITIONAL_METRICS))


def primary_metrics(question_type: str) -> tuple[str, ...]:
    fam = family_of(question_type)
    return FAMILY_METRICS[fam].primary if fam in FAMILY_METRICS else ("exact_match", "token_f1")


assert all(m in METRICS for s in FAMILY_METRICS.values() for m in s.all)
assert all(m in METRICS for m in TEXT_METRICS + CONDITIONAL_METRICS)
assert set(FAMILY_METRICS) <= set(questions.FAMILIES)
