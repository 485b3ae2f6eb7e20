"""The question-type registry: one entry per MIMIC-Ext-CXR-QBA question type.

The canonical identifier is the release's coded name (``B03_is_abnormal``): the short name
alone is ambiguous (``describe_device`` is both B12, abnormal strategy, and D05, finding
strategy). ``normalize_question_type`` maps either spelling to the code.

Each entry says which answer head answers it (seed 5.3), which evaluation family it belongs to
(seed 13.5: the family selects the metrics, see ``cxrbench.metrics.registry``) and its
complexity level (seed 2.6.1). Adding a question type is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

HEADS = ("binary", "region", "severity", "text")
FAMILIES = ("binary", "spatial", "severity", "entity", "open")
COMPLEXITY = ("single_entity", "multi_entity", "relational", "multi_hop")


@dataclass(frozen=True)
class QuestionType:
    code: str          # release identifier, e.g. "B03_is_abnormal"
    short: str         # the name in qa.json "question_type", e.g. "is_abnormal"
    strategy: str      # qa.json "question_strategy"
    head: str          # answer head that answers it (HEADS)
    family: str        # evaluation family (FAMILIES)
    complexity: str    # default complexity level (COMPLEXITY); a parse may raise it per question

    @property
    def spatial(self) -> bool:
        """In the 'spatial' subset of the ablation matrix (seed 16.2): localisation and region questions."""
        return self.family == "spatial" or self.strategy == "region_abnormal"


_T = QuestionType
QUESTION_TYPES: tuple[QuestionType, ...] = (
    _T("A_indication", "indication", "indication", "text", "open", "multi_entity"),
    _T("B01_describe_all", "describe_all", "abnormal", "text", "open", "multi_entity"),
    _T("B02_describe_abnormal", "describe_abnormal", "abnormal", "text", "open", "multi_entity"),
    _T("B03_is_abnormal", "is_abnormal", "abnormal", "binary", "binary", "multi_entity"),
    _T("B04_is_normal", "is_normal", "abnormal", "binary", "binary", "multi_entity"),
    _T("B08_describe_subcat", "describe_subcat", "abnormal", "text", "open", "multi_entity"),
    _T("B09_describe_abnormal_subcat", "describe_abnormal_subcat", "abnormal", "text", "open", "multi_entity"),
    _T("B10_is_abnormal_subcat", "is_abnormal_subcat", "abnormal", "binary", "binary", "multi_entity"),
    _T("B11_is_normal_subcat", "is_normal_subcat", "abnormal", "binary", "binary", "multi_entity"),
    _T("B12_describe_device", "describe_device", "abnormal", "text", "entity", "multi_entity"),
    _T("B13_has_devices", "has_devices", "abnormal", "binary", "binary", "multi_entity"),
    _T("B14_describe_acquisition", "describe_acquisition", "abnormal", "text", "open", "single_entity"),
    _T("B15_describe_imaging_artifacts", "describe_imaging_artifacts", "abnormal", "text", "open", "multi_entity"),
    _T("B16_has_imaging_artifacts", "has_imaging_artifacts", "abnormal", "binary", "binary", "multi_entity"),
    _T("C01_describe_region", "describe_region", "region_abnormal", "text", "open", "single_entity"),
    _T("C02_describe_abnormal_region", "describe_abnormal_region", "region_abnormal", "text", "open", "single_entity"),
    _T("C03_is_abnormal_region", "is_abnormal_region", "region_abnormal", "binary", "binary", "single_entity"),
    _T("C04_is_normal_region", "is_normal_region", "region_abnormal", "binary", "binary", "single_entity"),
    _T("C07_describe_region_device", "describe_region_device", "region_abnormal", "text", "entity", "single_entity"),
    _T("C08_has_region_device", "has_region_device", "region_abnormal", "binary", "binary", "single_entity"),
    _T("D01_describe_finding", "describe_finding", "finding", "text", "entity", "single_entity"),
    _T("D02_has_finding", "has_finding", "finding", "binary", "binary", "single_entity"),
    _T("D03_where_is_finding", "where_is_finding", "finding", "region", "spatial", "single_entity"),
    _T("D04_how_severe_is_finding", "how_severe_is_finding", "finding", "severity", "severity", "single_entity"),
    _T("D05_describe_device", "describe_device", "finding", "text", "entity", "single_entity"),
    _T("D06_has_device", "has_device", "finding", "binary", "binary", "single_entity"),
    _T("D07_where_is_device", "where_is_device", "finding", "region", "spatial", "single_entity"),
)
BY_CODE: dict[str, QuestionType] = {q.code: q for q in QUESTION_TYPES}
_BY_SHORT_STRATEGY: dict[tuple[str, str], QuestionType] = {(q.short, q.strategy): q for q in QUESTION_TYPES}
_SHORT_COUNT: dict[str, int] = {}
for _q in QUESTION_TYPES:
    _SHORT_COUNT[_q.short] = _SHORT_COUNT.get(_q.short, 0) + 1
_BY_UNAMBIGUOUS_SHORT: dict[str, QuestionType] = {q.short: q for q in QUESTION_TYPES if _SHORT_COUNT[q.short] == 1}
STRATEGIES = tuple(dict.fromkeys(q.strategy for q in QUESTION_TYPES))


def normalize_question_type(question_type: str, strategy: str | None = None) -> str:
    """Return the release code for ``question_type`` (code or short name; ``strategy`` resolves
    ambiguous short names). Unknown types (another dataset's, a user's) are returned unchanged.
    """
    qt = str(question_type).strip()
    if qt in BY_CODE:
        return qt
    if strategy is not None and (qt, strategy) in _BY_SHORT_STRATEGY:
        return _BY_SHORT_STRATEGY[(qt, strategy)].code
    if qt in _BY_UNAMBIGUOUS_SHORT:
        return _BY_UNAMBIGUOUS_SHORT[qt].code
    return qt


def get(question_type: str, strategy: str | None = None) -> QuestionType | None:
    """The registry entry for a question type in either spelling, or None for unknown types."""
    return BY_CODE.get(normalize_question_type(question_type, strategy))
