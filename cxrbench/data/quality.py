"""Quality ratings of MIMIC-Ext-CXR-QBA and their raw encodings (``quality_mappings.csv``).

The release stores quality values as raw codes, in the JSON files (``study_quality``,
``obs_quality``, ``question_quality``, ``answer_quality``: one code per criterion plus the
overall ``rating``) and in the metadata files (column ``quality``: the overall rating code;
larger is better). ``quality_mappings.csv`` maps each (field, raw code) to its option name and
the grade it allows. The overall grade of a QA pair is the minimum over the scene graph and all
answers of the question (release, section 3a); "unrated" (the LLM evaluation failed) ranks
below every grade.

The criteria and the grade each option allows are the release's (project page, section 3a);
the raw code values are this project's encoding, documented in ``docs/data.md``: readers go
through ``quality_mappings.csv`` and never assume them.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Iterable, Mapping

from cxrbench import vocab
from cxrbench.errors import DataError

QUALITY_MAPPINGS = "quality_mappings.csv"
MAPPING_COLUMNS = ("quality_field", "raw_value", "name", "rating")

# overall rating: raw code -> grade (larger = better)
RATING_CODES: dict[str, int] = {"A++": 6, "A+": 5, "A": 4, "B": 3, "C": 2, "D": 1, "unrated": 0}

# criterion -> options, best last, each with the grade it allows (release section 3a)
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


def mapping_rows() -> list[dict[str, object]]:
    """Rows of ``quality_mappings.csv``: the overall rating first, then every criterion."""
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


class QualityMapping:
    """Raw code -> grade for the overall ``rating`` field (and the option names of criteria)."""

    def __init__(self, rows: Iterable[Mapping[str, object]], source: str = QUALITY_MAPPINGS):
        self.source = source
        self.grade: dict[str, dict[str, str]] = {}
        self.name: dict[str, dict[str, str]] = {}
        for i, row in enumerate(rows):
            try:
                field, raw, rating = str(row["quality_field"]), str(row["raw_value"]), str(row["rating"])
            except KeyError as err:
                raise DataError(source, f"row {i + 2}", f"missing column {err.args[0]!r}") from None
            if rating not in vocab.QUALITY_RANK:
                raise DataError(source, f"row {i + 2}", f"unknown rating {rating!r} (expected one of {', '.join(vocab.QUALITY_GRADES)})")
            self.grade.setdefault(field, {})[_norm_raw(raw)] = rating
            self.name.setdefault(field, {})[_norm_raw(raw)] = str(row.get("name", ""))
        if "rating" not in self.grade:
            raise DataError(source, None, "no rows for the overall 'rating' field")

    @classmethod
    def default(cls) -> "QualityMapping":
        return cls(mapping_rows(), "<built-in>")

    @classmethod
    def read(cls, path: str | Path) -> "QualityMapping":
        p = Path(path)
        try:
            with open(p, newline="") as fh:
                reader = csv.DictReader(fh)
                missing = [c for c in ("quality_field", "raw_value", "rating") if c not in (reader.fieldnames or [])]
                if missing:
                    raise DataError(str(p), "header", f"missing column(s) {', '.join(missing)}")
                return cls(list(reader), str(p))
        except FileNotFoundError:
            raise DataError(str(p), None, "file not found") from None

    def to_grade(self, value: object, file: str = "", record: str | None = None, field: str = "rating") -> str:
        """Grade of a raw quality value. Accepts raw codes (int or numeric string), the grade
        names themselves, a quality dict with a ``rating`` entry, and None/NaN (-> unrated)."""
        if isinstance(value, Mapping):
            value = value.get(field, value.get("overall", value.get("rating_code")))
        if value is None or (isinstance(value, float) and value != value):
            return "unrated"
        if isinstance(value, str) and value in vocab.QUALITY_RANK:
            return value
        raw = _norm_raw(value)
        grade = self.grade.get(field, {}).get(raw)
        if grade is None:
            raise DataError(file or self.source, record, f"quality value {value!r} has no mapping for field {field!r} in {self.source}")
        return grade


def _norm_raw(value: object) -> str:
    s = str(value).strip()
    try:
        f = float(s)
        return str(int(f)) if f == int(f) else s
    except ValueError:
        return s


def min_grade(grades: Iterable[str]) -> str:
    """The worst grade ("unrated" is the worst of all); "unrated" for an empty input."""
    worst = None
    for g in grades:
        if worst is None or vocab.QUALITY_RANK[g] < vocab.QUALITY_RANK[worst]:
            worst = g
    return worst or "unrated"


def at_least(grade: str, threshold: str) -> bool:
    return vocab.QUALITY_RANK[grade] >= vocab.QUALITY_RANK[threshold]
