"""The metric registry: which metrics score which questions (seed 13.5), and how each is built.

Every metric is one :class:`MetricSpec` in :data:`METRICS`. The spec carries everything scoring
and comparison need: the statistic constructor (a ``*_stats`` function of the metric modules,
adapted to the inputs of its kind), what rows it needs, whether its per-item outcome is binary
or continuous, its direction and whether it is a rate. ``cxrbench.score`` and
``cxrbench.compare`` loop over this table; neither names a metric. Adding a metric is one
:func:`register` call (or one entry below) plus its functions in ``cxrbench.metrics``.

Which questions a metric scores: its question type's evaluation family
(``cxrbench.questions.QuestionType.family``) selects primary and secondary metrics
(:data:`FAMILY_METRICS`); every question also gets the text metrics (every answer is a text
answer) and the conditional ones where their columns exist; a spec's ``scope`` adds it to more
families (``"all"``: every question). Question types the registry does not know (another
dataset's: VQA-RAD "PRES", SLAKE "Organ") get the text and conditional metrics only.

Kinds and the inputs their constructor receives (``cxrbench.score.statistics`` builds them):

==========  ===============================================  =====================================
kind        constructor input                                examples
==========  ===============================================  =====================================
``item``    :class:`MetricInputs` of the rows it applies to  exact_match, token_f1, iou, bertscore
``corpus``  :class:`MetricInputs` of every row               bleu4
``labels``  :class:`LabelInputs` of one label space          accuracy, sensitivity, mcc, kappa
``auroc``   :class:`LabelInputs` with the binary ``score``   auroc
``ece``     :class:`MetricInputs` with ``correct``           ece
``map``     :class:`MetricInputs` of the rows with boxes     map_50, map_75, map_50_75, map_coco
                                                             (map_50_75: mean of AP@0.5 and AP@0.75,
                                                             the seed's; map_coco: COCO's 0.50:0.95)
``subset``  :class:`MetricInputs` + ``mask`` of the subset   relationship_accuracy, multi_hop
==========  ===============================================  =====================================

An ``item`` metric's statistic has the ``mean_stats`` layout (value, defined): its per-item
values are the column ``cxrbench score`` writes into predictions.parquet, and ``compare``
rebuilds the statistic from that column without running the metric again.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Mapping

import numpy as np

from cxrbench import questions

KINDS = ("item", "corpus", "labels", "auroc", "ece", "map", "subset")
# Label spaces of the ``labels`` metrics: the family whose questions they score, its classes
LABEL_SPACES: dict[str, tuple[int, ...]] = {"binary": (0, 1), "severity": (0, 1, 2, 3)}
AUROC_BINS = 100     # binned AUROC (exact on <= 100 distinct scores; bound reported otherwise)


@contextmanager
def _quiet_model_loading(quiet: bool):
    """transformers' weight-loading bars and info logs off while a model loads (--no-progress)."""
    if not quiet:
        yield
        return
    from transformers.utils import logging as hf_logging

    was_enabled, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if was_enabled:
            hf_logging.enable_progress_bar()


@dataclass
class MetricResources:
    """The models and indexes model-based metrics need, built on first use (and only then)."""

    bertscore_model: str | None = None
    bertscore_layers: int | None = None
    umls_index: str | None = None
    progress: bool = True

    @cached_property
    def bertscore(self):
        from cxrbench.errors import CxrbenchError
        from cxrbench.metrics import bertscore

        try:
            with _quiet_model_loading(not self.progress):
                return bertscore.get_scorer(self.bertscore_model, self.bertscore_layers)
        except FileNotFoundError as err:
            raise CxrbenchError(f"--bertscore-model: {err}") from None

    @cached_property
    def extractor(self):
        from cxrbench.errors import CxrbenchError
        from cxrbench.metrics import clinical_terms

        try:
            return clinical_terms.get_extractor(self.umls_index)
        except FileNotFoundError as err:
            raise CxrbenchError(f"--umls-index: {err}") from None


@dataclass
class MetricInputs:
    """The rows a metric is computed on: the sub-frame, its references and predictions."""

    frame: Any                        # pandas DataFrame (the rows the metric applies to)
    resources: MetricResources = field(default_factory=MetricResources)
    mask: np.ndarray | None = None    # subset metrics: the subset's rows (within ``frame``)

    @cached_property
    def refs(self) -> list[str]:
        """The reference answers, cut at the text metrics' length cap (``text.MAX_TEXT_CHARS``)."""
        from cxrbench.metrics.text import truncate_texts

        return truncate_texts(self.frame["answer"].tolist())[0]

    @cached_property
    def preds(self) -> list[str]:
        """The predictions, cut at the text metrics' length cap (``text.MAX_TEXT_CHARS``)."""
        from cxrbench.metrics.text import truncate_texts

        return truncate_texts(self.frame["prediction"].tolist())[0]

    def column(self, name: str) -> list:
        return self.frame[name].tolist()

    def floats(self, name: str) -> np.ndarray:
        return self.frame[name].to_numpy(dtype=np.float64)


@dataclass
class LabelInputs:
    """Class labels of one label space (rows with a parseable reference)."""

    space: str
    y_true: np.ndarray
    y_pred: np.ndarray
    score: np.ndarray | None = None   # binary: P(yes), NaN where missing

    @property
    def labels(self) -> list[int]:
        return list(LABEL_SPACES[self.space])


@dataclass(frozen=True)
class MetricSpec:
    """One metric: what it is computed from and how (see the module docstring).

    ``statistic``: the constructor, ``f(inputs) -> Statistic`` (``map``: ``f(inputs) -> {name:
    Statistic}`` for the whole family, shared by its members). ``needs``: columns that must exist
    and be non-null on a row for the metric to apply to it. ``outcome`` (item metrics): ``binary``
    when every item scores 0 or 1 (McNemar applies), ``continuous`` for graded scores (paired t,
    Wilcoxon); declared, never read from the data. ``spaces`` (labels, auroc): the label spaces it
    is computed in. ``scope``: families it applies to beyond :data:`FAMILY_METRICS` (``"all"``:
    every question). ``model_based``: runs a model or an index (BERTScore, QuickUMLS), so it
    may be skipped on a quick look and its signature depends on the resources.
    ``from_column``: an item metric whose per-item values the predictor writes itself (the
    attention scores of ``cxrbench evaluate``); scoring averages the column, it computes nothing.
    """

    name: str
    kind: str
    statistic: Callable[..., Any]
    needs: tuple[str, ...] = ()
    outcome: str = ""
    higher_is_better: bool = True
    rate: bool = True                 # a fraction in [0, 1]
    spaces: tuple[str, ...] = ()
    scope: tuple[str, ...] = ()
    model_based: bool = False
    from_column: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "item" and self.outcome not in ("binary", "continuous"):
            raise ValueError(f"{self.name}: an item metric declares its outcome (binary or continuous)")


# ------------------------------------------------------------------------- constructors
# Adapters from a kind's inputs to the metric modules' ``*_stats`` functions (imported lazily,
# so that importing the registry stays cheap).
def _text(fn: str) -> Callable[[MetricInputs], Any]:
    def build(x: MetricInputs):
        from cxrbench.metrics import text

        return getattr(text, fn)(x.refs, x.preds)
    return build


def _bertscore(x: MetricInputs):
    from cxrbench.metrics import bertscore

    return bertscore.bertscore_f1_stats(x.refs, x.preds, x.resources.bertscore, progress=x.resources.progress)


def _clinical_term_f1(x: MetricInputs):
    from cxrbench.metrics import clinical_terms

    return clinical_terms.clinical_term_f1_stats(x.refs, x.preds, x.resources.extractor, x.resources.progress)


def _semantic_type(x: MetricInputs):
    from cxrbench.metrics import semantic_type

    return semantic_type.semantic_type_accuracy_stats(x.refs, x.preds, x.resources.extractor)


def _boxes(fn: str) -> Callable[[MetricInputs], Any]:
    def build(x: MetricInputs):
        from cxrbench.metrics import spatial

        return getattr(spatial, fn)(x.column("boxes_true"), x.column("boxes_pred"))
    return build


def _pointing(x: MetricInputs):
    """Pointing accuracy is IoU > 0.5: read the items' IoU where scoring computed it already."""
    from cxrbench.metrics import spatial

    if "iou" in x.frame.columns:
        return spatial.pointing_accuracy_from_iou(x.floats("iou"))
    return spatial.pointing_accuracy_stats(x.column("boxes_true"), x.column("boxes_pred"))


def _multi_region_f1(x: MetricInputs):
    from cxrbench.metrics import spatial

    return spatial.multi_region_f1_stats(x.column("regions_true"), x.column("regions_pred"))


def _graph_entity_recall(x: MetricInputs):
    from cxrbench.metrics import relational

    return relational.graph_entity_recall_stats(x.column("answer_entities"), x.preds, x.resources.extractor)


def _given(name: str) -> Callable[[MetricInputs], Any]:
    """A per-item score the predictor already wrote (attention), averaged."""
    def build(x: MetricInputs):
        from cxrbench.metrics import attention

        return getattr(attention, f"{name}_stats")(x.floats(name))
    return build


def _bleu4(x: MetricInputs):
    from cxrbench.metrics import text

    return text.bleu4_stats(x.refs, x.preds)


def _confusion(metric: str) -> Callable[[LabelInputs], Any]:
    def build(y: LabelInputs):
        from cxrbench.metrics import classification

        if metric in ("accuracy", "mcc"):
            kw: dict = {"metric": metric}
        elif metric == "kappa":
            kw = {"metric": "kappa", "weights": "quadratic" if y.space == "severity" else None}
        else:
            kw = {"metric": metric, "average": "binary" if y.space == "binary" else "macro", "pos_label": 1}
        return classification.confusion_stats(metric, y.y_true, y.y_pred, y.labels, **kw)
    return build


def _auroc(y: LabelInputs):
    from cxrbench.metrics import classification

    return classification.auroc_stats(y.y_true, y.score, max_bins=AUROC_BINS)


def _ece(x: MetricInputs):
    from cxrbench.metrics import calibration

    return calibration.ece_stats(x.floats("correct"), x.floats("confidence"))


def _map_family(x: MetricInputs) -> Mapping[str, Any]:
    from cxrbench.metrics import spatial

    scores = x.column("box_scores") if "box_scores" in x.frame.columns else [None] * len(x.frame)
    return spatial.map_family_stats(x.column("boxes_true"), x.column("boxes_pred"), scores)


def _subset(x: MetricInputs, name: str):
    from cxrbench.metrics import relational

    return relational.subset_accuracy_stats(name, x.floats("exact_match"), x.mask)


def _subset_of(name: str) -> Callable[[MetricInputs], Any]:
    return lambda x: _subset(x, name)


_BOXES = ("boxes_true", "boxes_pred")
_LABELS = ("binary", "severity")
METRICS: dict[str, MetricSpec] = {}


def register(spec: MetricSpec) -> MetricSpec:
    """Add (or replace) a metric. ``scope`` decides which questions it scores beyond the family
    tables; a metric outside every table and without a scope is computed nowhere."""
    METRICS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    METRICS.pop(name, None)


for _spec in (
    # answer text (seed 13.1)
    MetricSpec("exact_match", "item", _text("exact_match_stats"), outcome="binary"),
    MetricSpec("token_f1", "item", _text("token_f1_stats"), outcome="continuous"),
    MetricSpec("bleu4", "corpus", _bleu4),
    MetricSpec("rouge_l", "item", _text("rouge_l_stats"), outcome="continuous"),
    MetricSpec("bertscore_f1", "item", _bertscore, rate=False, outcome="continuous", model_based=True),
    MetricSpec("clinical_term_f1", "item", _clinical_term_f1, outcome="continuous", model_based=True),
    MetricSpec("semantic_type_accuracy", "item", _semantic_type, outcome="binary", model_based=True),
    # spatial (13.2)
    MetricSpec("iou", "item", _boxes("iou_stats"), _BOXES, outcome="continuous"),
    MetricSpec("pointing_accuracy", "item", _pointing, _BOXES, outcome="binary"),
    MetricSpec("map_50", "map", _map_family, _BOXES),
    MetricSpec("map_75", "map", _map_family, _BOXES),
    MetricSpec("map_50_75", "map", _map_family, _BOXES),
    MetricSpec("map_coco", "map", _map_family, _BOXES),
    MetricSpec("multi_region_f1", "item", _multi_region_f1, ("regions_true", "regions_pred"), outcome="continuous"),
    MetricSpec("spatial_relation_accuracy", "subset", _subset_of("spatial_relation_accuracy"),
               ("question", "exact_match")),
    MetricSpec("ece", "ece", _ece, ("confidence", "correct"), higher_is_better=False),
    # classification / clinical (13.3)
    *(MetricSpec(m, "labels", _confusion(m), spaces=_LABELS, rate=m not in ("mcc", "kappa"))
      for m in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "mcc", "kappa")),
    MetricSpec("auroc", "auroc", _auroc, ("score",), spaces=("binary",)),
    # relational (13.4)
    MetricSpec("graph_entity_recall", "item", _graph_entity_recall, ("answer_entities",), outcome="continuous",
               model_based=True),
    MetricSpec("relationship_accuracy", "subset", _subset_of("relationship_accuracy"), ("question", "exact_match")),
    MetricSpec("multi_hop_accuracy", "subset", _subset_of("multi_hop_accuracy"), ("question", "exact_match")),
    # attention (14.2-14.3), painted by cxrbench evaluate
    MetricSpec("plausibility", "item", _given("plausibility"), ("plausibility",), outcome="continuous",
               from_column=True),
    MetricSpec("attention_entropy", "item", _given("attention_entropy"), ("attention_entropy",),
               higher_is_better=False, rate=False, outcome="continuous", from_column=True),
):
    register(_spec)

# the relational question subsets: metric -> flag of cxrbench.metrics.relational.question_flags
SUBSET_FLAGS: dict[str, str] = {"relationship_accuracy": "relational", "multi_hop_accuracy": "multi_hop",
                                "spatial_relation_accuracy": "spatial_relation"}


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
                         ("map_coco", "spatial_relation_accuracy", "multi_region_f1")),
    "entity": MetricSet(("token_f1", "clinical_term_f1"), ("bertscore_f1", "graph_entity_recall")),
    "severity": MetricSet(("exact_match", "accuracy", "kappa"), ("mcc",)),
    "binary": MetricSet(("exact_match", "sensitivity"),
                        ("specificity", "auroc", "ppv", "npv", "f1", "accuracy", "mcc", "kappa")),
    "open": MetricSet(("bertscore_f1", "rouge_l"), ("bleu4", "graph_entity_recall")),
}


def family_of(question_type: str) -> str | None:
    """The evaluation family of a question type (code or short name), None if unknown."""
    q = questions.get(question_type)
    return q.family if q is not None else None


def metrics_for(question_type: str) -> tuple[str, ...]:
    """All metrics a question type is scored with: its family's primary and secondary metrics,
    the text metrics, the conditional ones (these apply only where their columns exist), and
    registered metrics whose scope covers the family."""
    fam = family_of(question_type)
    own = FAMILY_METRICS[fam].all if fam in FAMILY_METRICS else ()
    scoped = tuple(n for n, s in METRICS.items() if "all" in s.scope or (fam is not None and fam in s.scope))
    return tuple(m for m in dict.fromkeys(own + TEXT_METRICS + CONDITIONAL_METRICS + scoped) if m in METRICS)


def primary_metrics(question_type: str) -> tuple[str, ...]:
    fam = family_of(question_type)
    return FAMILY_METRICS[fam].primary if fam in FAMILY_METRICS else ("exact_match", "token_f1")


def order(names) -> list[str]:
    """Metric names in registry order (unknown names last, alphabetically)."""
    rank = {n: i for i, n in enumerate(METRICS)}
    return sorted(names, key=lambda n: (rank.get(n, len(rank)), n))


assert all(m in METRICS for s in FAMILY_METRICS.values() for m in s.all)
assert all(m in METRICS for m in TEXT_METRICS + CONDITIONAL_METRICS)
assert set(FAMILY_METRICS) <= set(questions.FAMILIES)
assert set(LABEL_SPACES) <= set(questions.FAMILIES)
