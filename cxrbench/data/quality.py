"""Quality ratings of MIMIC-Ext-CXR-QBA in every spelling the releases use, and the minimum rule.

A *rating* (the overall grade of a study, question or answer) is read from any of

- the release's self-describing strings ``N_GRADE``: ``0_`` (not rated: the LLM evaluation
  failed), ``1_D``, ``2_C``, ``3_B``, ``4_A``, ``5_A+``, ``6_A++`` (the numeric prefix orders them);
- plain integers ``N`` (or numeric strings) on the same scale;
- the grade names themselves (``"A+"``, ``"unrated"``);

and a *quality object* (``study_quality``, ``question_quality``, ``answer_quality``,
``extraction_quality``, ``obs_quality`` in the JSON) by its rating where it has one (``rating``,
``extraction_rating``), else as the minimum over its criteria (release section 3a): each
criterion value is an index into the criterion's options, worst first (or an option name), and
allows at most that option's grade. Criterion keys are accepted in the release's JSON spelling
(``region_extract_quality``, ``entity_extract_quality``, ``general_issue_level``, ...) and in the
project page's (``region_quality``, ``entity_quality``, ``issue_level``, ...).

``quality_mappings.csv`` (raw code -> grade per field) is used when its header is one we
recognise (:func:`load_mapping`); otherwise the index notes it in its manifest and decodes the
self-describing values. A value that none of these decodes is a ``DataError`` naming file and
record: never a silent "unrated".

The overall grade of a QA pair is the minimum over the scene graph and all answers of the
question (release, section 3a); "unrated" ranks below every grade.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Mapping

from cxrbench import vocab
from cxrbench.errors import DataError

QUALITY_MAPPINGS = "quality_mappings.csv"
MAPPING_COLUMNS = ("quality_field", "raw_value", "name", "rating")

# the scale of the N_GRADE strings: index N -> grade (0 = not rated)
RATING_SCALE: tuple[str, ...] = ("unrated", "D", "C", "B", "A", "A+", "A++")
RATING_CODES: dict[str, int] = {g: i for i, g in enumerate(RATING_SCALE)}
assert set(RATING_SCALE) == set(vocab.QUALITY_GRADES)

# keys of a quality object that hold its overall rating (first found wins)
RATING_KEYS = ("rating", "extraction_rating", "overall_rating", "overall", "rating_code")

# criterion -> options, worst first, each with the grade it allows (release section 3a)
CRITERIA: dict[str, tuple[tuple[str, str], ...]] = {
    "region_quality": (("NO_REGIONS", "B"), ("DEFAULT_REGIONS_ONLY", "B"), ("CONTAINS_DEFAULT_REGIONS", "A"),
                       ("CONTAINS_NON_RESOLVED_REGIONS", "A"), ("RESOLVED_REGIONS_ONLY", "A++")),
    "entity_quality": (("NO_ENTITIES", "B"), ("CONTAINS_NON_RESOLVED_ENTITIES", "A"), ("RESOLVED_ENTITIES_ONLY", "A++")),
    "sentence_name_quality": (("CHANGE_IN_SENTENCE_OR_NAME", "B"), ("UNDERSCORES_IN_SENTENCE_OR_NAME", "A"), ("NO_ISSUES", "A++")),
    "change_quality": (("CHANGE_SENTENCE_REMOVED", "B"), ("UNDERSCORES_IN_CHANGE_SENTENCE", "A"),
                       ("CONTAINS_NON_RESOLVED_CHANGES", "A"), ("NO_ISSUES", "A++")),
    "issue_level": (("DISCARDED", "D"), ("NON_INTERPRETABLE", "C"), ("MOSTLY_INTERPRETABLE", "B"), ("IGNORABLE", "A"),
                    ("FIXABLE", "A+"), ("NO_ISSUES", "A++")),
    "localization_quality": (("NO_LOCALIZATION", "B"), ("FALLBACK_LOCALIZATION", "B"), ("INCOMPLETE_LOCALIZATION", "A"),
                             ("BBOX_LOCALIZATION", "A++"), ("BBOX_AND_MASK_LOCALIZATION", "A++")),
    "entailment": (("NON_ALIGNED_CONTRADICTING", "D"), ("NON_ALIGNED_MISLEADING", "C"), ("NON_ALIGNED_NON_INFERABLE", "B"),
                   ("ALIGNED_GENERAL_STATEMENT", "A"), ("ALIGNED_NEGATIVE_NOT_MENTIONED", "A"),
                   ("ALIGNED_INFERABLE", "A++"), ("ALIGNED_MENTIONED", "A++")),
    "relevance": (("IRRELEVANT_INFO", "A"), ("REDUNDANT_INFO", "A"), ("RELEVANT_MAIN_ANSWER_FOR_RELATED_INFO", "A"),
                  ("RELATED_INFO_FOR_MAIN_ANSWER", "A+"), ("RELATED_INFO", "A++"), ("RELEVANT_MAIN_ANSWER", "A++")),
    "completeness": (("INCOMPLETE_MISLEADING", "C"), ("INCOMPLETE_NON_MISLEADING", "B"), ("NOT_ANSWERED", "B"),
                     ("DETAILS_MISSING", "A+"), ("FULLY_COMPLETE", "A++")),
    "question_clarity": (("UNANSWERABLE", "C"), ("UNRELATED_TO_CHEST_XRAY", "B"), ("UNCLEAR_QUESTION", "B"),
                         ("GRAMMATICAL_ERRORS", "A"), ("UNUSUAL_SENTENCE_STRUCTURE", "A"), ("OPTIMAL", "A++")),
    "answer_clarity": (("NOT_UNDERSTANDABLE", "C"), ("UNCLEAR_ANSWER", "B"), ("GRAMMATICAL_ERRORS", "A"),
                       ("UNUSUAL_SENTENCE_STRUCTURE", "A"), ("OPTIMAL", "A++")),
}
CRITERION_CODES: dict[str, dict[str, int]] = {f: {name: i for i, (name, _) in enumerate(opts)} for f, opts in CRITERIA.items()}
# the release JSON's spelling of the page's criterion names (real-release-evidence.md)
RELEASE_CRITERION_KEYS: dict[str, str] = {
    "region_quality": "region_extract_quality", "entity_quality": "entity_extract_quality",
    "issue_level": "general_issue_level",
}

_N_GRADE = re.compile(r"^(\d+)_([A-D]\+{0,2})?$")
_INT = re.compile(r"^[+-]?\d+(\.0*)?$")


def rating_string(grade: str) -> str:
    """The release's ``N_GRADE`` spelling of a grade: ``"A+"`` -> ``"5_A+"``, ``"unrated"`` -> ``"0_"``."""
    return f"{RATING_CODES[grade]}_{'' if grade == 'unrated' else grade}"


def rating_kind(value: Any) -> str | None:
    """Which spelling a rating value uses ("N_GRADE string", "integer", "grade name", "null"),
    None when it is none of them (``cxrbench check`` reports encodings with it)."""
    if value is None or (isinstance(value, float) and value != value):
        return "null"
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) or (hasattr(value, "dtype") and hasattr(value, "item")):
        return "integer" if float(value) == int(value) else None
    s = str(value).strip()
    if _N_GRADE.match(s):
        return "N_GRADE string"
    if s in vocab.QUALITY_RANK or s.lower() == "unrated":
        return "grade name"
    if _INT.match(s):
        return "integer"
    return None


def criterion_name(key: str) -> str | None:
    """The page's name of a criterion key in either spelling (``general_issue_level`` ->
    ``issue_level``, ``region_extract_quality`` -> ``region_quality``), None for other keys."""
    k = str(key).strip().lower()
    for cand in (k, k.replace("_extract_", "_"), k.removeprefix("general_"), k.removesuffix("_quality"),
                 k.removesuffix("_rating")):
        if cand in CRITERIA:
            return cand
    return None


def _self_describing(value: Any) -> str | None:
    """Grade of a self-describing rating value, None when it does not describe one."""
    kind = rating_kind(value)
    if kind == "null":
        return "unrated"
    if kind == "grade name":
        s = str(value).strip()
        return s if s in vocab.QUALITY_RANK else "unrated"
    if kind == "integer":
        n = int(float(value))
        return RATING_SCALE[n] if 0 <= n < len(RATING_SCALE) else None
    if kind == "N_GRADE string":
        n_str, grade = _N_GRADE.match(str(value).strip()).groups()
        n = int(n_str)
        if not 0 <= n < len(RATING_SCALE) or (grade or "") != ("" if n == 0 else RATING_SCALE[n]):
            return None   # "4_B": the prefix and the name disagree
        return RATING_SCALE[n]
    return None


def _plain(value: Any) -> Any:
    """numpy scalars as Python values, so that messages print ``9``, not ``np.int64(9)``."""
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


def _norm_raw(value: object) -> str:
    s = str(_plain(value)).strip()
    try:
        f = float(s)
        return str(int(f)) if f == int(f) else s
    except ValueError:
        return s


# ----------------------------------------------------------------------------------------------
# quality_mappings.csv

# column spellings of a mapping file we recognise: (field, raw value, grade), first found wins
_FIELD_COLS = ("quality_field", "field", "column", "quality_column")
_RAW_COLS = ("raw_value", "raw", "value", "code", "raw_code", "encoding")
_GRADE_COLS = ("rating", "grade", "rating_name", "quality_rating")


class QualityMapping:
    """(field, raw code) -> grade from a recognised ``quality_mappings.csv``."""

    def __init__(self, rows: Iterable[Mapping[str, object]], source: str = QUALITY_MAPPINGS,
                 columns: tuple[str, str, str] = ("quality_field", "raw_value", "rating")):
        self.source = source
        self.grade: dict[str, dict[str, str]] = {}
        fcol, rcol, gcol = columns
        for i, row in enumerate(rows):
            field, raw, rating = str(row[fcol]).strip(), _norm_raw(row[rcol]), str(row[gcol]).strip()
            grade = rating if rating in vocab.QUALITY_RANK else _self_describing(rating)
            if grade is None:
                raise DataError(source, f"row {i + 2}", f"unknown rating {rating!r} (expected one of "
                                f"{', '.join(vocab.QUALITY_GRADES)} or an N_GRADE string such as 4_A)")
            self.grade.setdefault(criterion_name(field) or field, {})[raw] = grade

    @classmethod
    def default(cls) -> "QualityMapping":
        return cls(mapping_rows(), "<built-in>")

    def lookup(self, field: str, value: Any) -> str | None:
        table = self.grade.get(field)
        return table.get(_norm_raw(value)) if table else None


def load_mapping(path: str | Path | None) -> tuple[QualityMapping | None, str | None]:
    """(mapping, note): the mapping when ``path`` has a header we recognise and rows that parse;
    else None and a one-line note saying why (the readers then decode self-describing values)."""
    if path is None:
        return None, f"{QUALITY_MAPPINGS} not found: ratings decoded from their self-describing spelling (N_GRADE)"
    p = Path(path)
    from cxrbench.errors import reading

    with reading(p, what="CSV file"):
        text = p.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    lower = {h.lower(): h for h in header}
    cols = [next((lower[c] for c in group if c in lower), None) for group in (_FIELD_COLS, _RAW_COLS, _GRADE_COLS)]
    if None in cols:
        shown = ", ".join(header[:6]) + (", ..." if len(header) > 6 else "")
        return None, (f"{p.name}: header ({shown}) not recognised (need a field, a raw value and a rating column): "
                      "ratings decoded from their self-describing spelling (N_GRADE)")
    try:
        return QualityMapping(list(reader), str(p), tuple(cols)), None  # type: ignore[arg-type]
    except DataError as err:
        return None, f"{err}: mapping not used; ratings decoded from their self-describing spelling (N_GRADE)"


def mapping_rows() -> list[dict[str, object]]:
    """Rows of the ``quality_mappings.csv`` the generator writes: the overall rating, then every criterion."""
    rows: list[dict[str, object]] = [
        {"quality_field": "rating", "raw_value": code, "name": grade, "rating": grade}
        for grade, code in sorted(RATING_CODES.items(), key=lambda kv: -kv[1])
    ]
    for f, opts in CRITERIA.items():
        rows += [{"quality_field": f, "raw_value": i, "name": name, "rating": grade} for i, (name, grade) in enumerate(opts)]
    return rows


def mapping_csv() -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=MAPPING_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(mapping_rows())
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# decoding


class QualityDecoder:
    """Grades of rating values and quality objects (see the module docstring).

    ``unknown_keys`` counts keys of quality objects that are neither a rating nor a known
    criterion (reported by the index manifest and ``cxrbench check``); they do not change a grade.
    """

    def __init__(self, mapping: QualityMapping | None = None):
        self.mapping = mapping
        self.source = mapping.source if mapping is not None else "self-describing ratings"
        self.unknown_keys: Counter = Counter()
        self._cache: dict[tuple[str, Any], str] = {}

    def rating(self, value: Any, file: str = "", record: str | None = None, field: str = "rating") -> str:
        """Grade of an overall rating value; ``DataError`` for a value nothing decodes."""
        value = _plain(value)
        try:
            return self._cache[(field, value)]
        except (KeyError, TypeError):
            pass
        grade = self.mapping.lookup(field, value) if self.mapping is not None else None
        if grade is None:
            grade = _self_describing(value)
        if grade is None:
            where = f", nor a code of {self.source}" if self.mapping is not None else ""
            raise DataError(file or self.source, record,
                            f"quality value {value!r} is not a rating (an N_GRADE string such as 4_A, an integer 0-6 "
                            f"or a grade name{where})")
        try:
            self._cache[(field, value)] = grade
        except TypeError:
            pass
        return grade

    def criterion(self, name: str, value: Any, file: str = "", record: str | None = None) -> str:
        """Grade a criterion's value allows (``name`` in the page's spelling)."""
        value = _plain(value)
        if value is None:
            return "unrated"
        grade = self.mapping.lookup(name, value) if self.mapping is not None else None
        if grade is not None:
            return grade
        opts = CRITERIA[name]
        if isinstance(value, str) and not _INT.match(value.strip()):
            for option, g in opts:
                if option == value.strip():
                    return g
        elif rating_kind(value) == "integer":
            i = int(float(value))
            if 0 <= i < len(opts):
                return opts[i][1]
        raise DataError(file or self.source, record, f"{name} value {value!r} is not one of its options "
                        f"(0-{len(opts) - 1} or {', '.join(o for o, _ in opts)})")

    def of_object(self, obj: Any, file: str = "", record: str | None = None) -> str:
        """Grade of a quality object (or of a bare rating value): its rating, else its criteria's minimum."""
        if not isinstance(obj, Mapping):
            return self.rating(obj, file, record)
        for key in RATING_KEYS:
            if key in obj:
                return self.rating(obj[key], file, record)
        grades = []
        for key, value in obj.items():
            name = criterion_name(key)
            if name is None:
                self.unknown_keys[str(key)] += 1
                continue
            grades.append(self.criterion(name, value, file, record))
        if grades:
            return min_grade(grades)
        if obj:  # keys we cannot read: refuse rather than call it "unrated"
            shown = ", ".join(map(str, list(obj)[:4]))
            raise DataError(file or self.source, record,
                            f"quality object has neither a rating nor a known criterion (keys: {shown})")
        return "unrated"

    # the spelling tests and earlier callers use
    def to_grade(self, value: Any, file: str = "", record: str | None = None) -> str:
        return self.of_object(value, file, record)


def min_grade(grades: Iterable[str]) -> str:
    """The worst grade ("unrated" is the worst of all); "unrated" for an empty input."""
    worst = None
    for g in grades:
        if worst is None or vocab.QUALITY_RANK[g] < vocab.QUALITY_RANK[worst]:
            worst = g
    return worst or "unrated"


def at_least(grade: str, threshold: str) -> bool:
    return vocab.QUALITY_RANK[grade] >= vocab.QUALITY_RANK[threshold]
