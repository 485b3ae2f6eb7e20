"""The design's performance targets, to show beside the measured values (design 18.2, 18.3).

The design analysis gives them as ranges in percent; here they are fractions, the scale of
metrics.json. 18.3's question types are named as in the release (``is_abnormal`` with its
strategy) and resolved to the codes metrics.json uses by
:func:`cxrbench.questions.normalize_question_type`. Where a target names a metric the run does
not report (18.2's finding-classification F1: our text head reports no finding-level F1), the
book says so instead of substituting another metric.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cxrbench.questions import normalize_question_type


@dataclass(frozen=True)
class Target:
    stratum: str          # head (18.2) or question-type code (18.3)
    metric: str           # metrics.json metric name
    low: float
    high: float | None    # None: "low or more"
    label: str            # the design's wording
    note: str = ""        # 18.3: the training phase of the design


# 18.2: metric, target, question type, head (our 'text' head plays the design's category head)
HEAD_TARGETS = (
    Target("binary", "exact_match", 0.60, 0.70, "Exact match, binary (yes/no)"),
    Target("text", "f1", 0.55, 0.65, "F1, finding classification"),
    Target("region", "iou", 0.40, 0.50, "IoU, localisation"),
    Target("severity", "accuracy", 0.50, 0.60, "Accuracy, severity"),
    Target("text", "bertscore_f1", 0.75, None, "BERTScore, free text"),
)

# 18.3: (short name, strategy, low, high, phase); "accuracy" of a question is its exact match
_TYPE_RANGES = (
    ("is_abnormal", "abnormal", 0.70, 0.75, "Phase 1"),
    ("is_normal", "abnormal", 0.68, 0.73, "Phase 1"),
    ("has_finding", "finding", 0.65, 0.70, "Phase 1"),
    ("describe_finding", "finding", 0.55, 0.60, "Phase 2"),
    ("where_is_finding", "finding", 0.50, 0.55, "Phase 2"),
    ("how_severe_is_finding", "finding", 0.55, 0.60, "Phase 2"),
    ("describe_region", "region_abnormal", 0.50, 0.55, "Phase 2"),
    ("is_abnormal_region", "region_abnormal", 0.62, 0.67, "Phase 2"),
    ("indication", "indication", 0.45, 0.50, "Phase 3"),
)
TYPE_TARGETS = tuple(Target(normalize_question_type(short, strategy), "exact_match", lo, hi, short, phase)
                     for short, strategy, lo, hi, phase in _TYPE_RANGES)


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def position(value: float | None, target: Target) -> str:
    """Where the estimate lies: ``below``, ``within`` or ``above`` the target range; ``n/a``."""
    if _missing(value):
        return "n/a"
    if value < target.low:
        return "below"
    if target.high is not None and value > target.high:
        return "above"
    return "within" if target.high is not None else "meets"


def ci_position(low: float | None, high: float | None, target: Target) -> str:
    """What the whole CI says: ``entirely below`` / ``entirely above`` the range, or ``overlaps``."""
    if _missing(low) or _missing(high):
        return "n/a"
    if high < target.low:
        return "entirely below"
    if target.high is not None and low > target.high:
        return "entirely above"
    if target.high is None and low >= target.low:
        return "entirely above"
    return "overlaps"


def range_text(target: Target) -> str:
    if target.high is None:
        return f"≥ {target.low:.2f}"
    return f"{target.low:.2f}–{target.high:.2f}"
