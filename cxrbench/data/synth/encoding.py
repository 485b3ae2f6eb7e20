"""How the synthetic release spells what the generator made: the real release's encodings, or the
project's earlier (legacy) spelling.

The generator builds every study once, in one internal form (:mod:`.patient`, :mod:`.qa`); an
:class:`Encoding` turns it into files. Both encodings therefore hold exactly the same data, which
is what lets a test index the same tree in both and compare.

``real`` (the default of ``cxrbench synth``) follows ``shared/reference/real-release-evidence.md``:

- ``question_id`` is the question template's code with a counter (``B09_describe_abnormal_subcat_001``),
  recurring in every study that has that question; ``answer_id`` an integer 1, 2, ... within its
  question (depth first); ``question_type`` in the JSON and the metadata holds the code;
- ratings are ``N_GRADE`` strings (``4_A``, ``0_`` for not rated): ``answer_quality.rating``,
  ``question_quality.rating``, ``study_quality.extraction_rating``; criterion dicts are integers
  under the release's keys (``region_extract_quality``, ``general_issue_level``, ...) without a rating;
- observation ``modifiers`` are ``[kind, value]`` pairs;
- metadata columns carry their table's prefix and nested keys joined by dots
  (``study.quality.extraction_rating``, ``img.view_position`` with values frontal / lateral,
  ``answer_img.has_bboxes``, ...), and in the Parquet files the id columns are the pandas index;
- zip members sit in a top folder (``qa/p10/...``, ``scene_data/p10/...``).

``legacy`` writes what the project wrote before (opaque 12-character question and answer ids,
short question types, integer ratings, plain column names, no top folder): readers must keep
reading it, and tests use it.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from cxrbench import questions as Qreg
from cxrbench.data import layout as L
from cxrbench.data.quality import RATING_SCALE, RELEASE_CRITERION_KEYS, rating_string

ENCODINGS = ("real", "legacy")
S, I64, I32, I8, F64, B = pa.string(), pa.int64(), pa.int32(), pa.int8(), pa.float64(), pa.bool_()

LEGACY_SCHEMAS: dict[str, pa.Schema] = {
    "patient": pa.schema([("patient_id", S), ("split", S), ("total_studies", I32), ("total_study_timespan", F64)]),
    "study": pa.schema([("patient_id", S), ("study_id", S), ("split", S), ("quality", I8), ("num_observations", I32),
                        ("num_images", I32), ("procedure", S), ("timestamp_since_first", F64), ("timespan_since_prev", F64)]),
    "image": pa.schema([("patient_id", S), ("study_id", S), ("image_id", S), ("view_position", S), ("patient_orientation", S),
                        ("width", I32), ("height", I32), ("localization_quality", I8)]),
    "question": pa.schema([("patient_id", S), ("study_id", S), ("question_id", S), ("quality", I8), ("question_type", S),
                           ("question_strategy", S), ("contains_report_answers", B), ("contains_template_answers", B),
                           ("num_answers", I32)]),
    "question_image": pa.schema([("patient_id", S), ("study_id", S), ("question_id", S), ("image_id", S), ("localization_quality", I8)]),
    "answer": pa.schema([("patient_id", S), ("study_id", S), ("question_id", S), ("answer_id", S), ("quality", I8),
                         ("answer_type", S), ("answer_level", I8), ("from_report", B)]),
    "answer_image": pa.schema([("patient_id", S), ("study_id", S), ("question_id", S), ("answer_id", S), ("image_id", S),
                               ("num_regions", I32), ("localization_quality", I8)]),
}
assert all(tuple(LEGACY_SCHEMAS[t].names) == L.QBA_COLUMNS[t] for t in L.QBA_TABLES)

# real spelling: (column, type, internal row key or a function of the internal row)
_ID_TYPES = {"patient_id": S, "study_id": S, "question_id": S, "answer_id": I64, "image_id": S}


def _rating(key: str):
    return lambda r: rating_string(RATING_SCALE[r[key]])


REAL_COLUMNS: dict[str, list[tuple[str, pa.DataType, Any]]] = {
    "patient": [("split", S, "split"), ("patient.total_studies", I32, "total_studies"),
                ("patient.total_study_timespan", F64, "total_study_timespan")],
    "study": [("split", S, "split"), ("study.quality.extraction_rating", S, _rating("quality")),
              ("study.num_observations", I32, "num_observations"), ("study.num_images", I32, "num_images"),
              ("study.procedure", S, "procedure"), ("study.timestamp_since_first", F64, "timestamp_since_first"),
              ("study.timespan_since_prev", F64, "timespan_since_prev")],
    "image": [("img.view_position", S, lambda r: "frontal" if L.view_kind(r["view_position"]) == "frontal" else "lateral"),
              ("img.patient_orientation", S, "patient_orientation"),
              ("img.size", pa.list_(I32), lambda r: [r["width"], r["height"]]),
              ("img.localization_quality", I8, "localization_quality")],
    "question": [("question.question_type", S, "question_type"), ("question.question_strategy", S, "question_strategy"),
                 ("question.quality.rating", S, _rating("quality")),
                 ("question.contains_report_answers", B, "contains_report_answers"),
                 ("question.contains_template_answers", B, "contains_template_answers"),
                 ("question.num_answers", I32, "num_answers")],
    "question_image": [("question_img.quality.localization_quality", I8, "localization_quality")],
    "answer": [("answer.answer_type", S, "answer_type"), ("answer.answer_level", I8, "answer_level"),
               ("answer.from_report", B, "from_report"), ("answer.positiveness", S, "_positiveness"),
               ("answer.quality.rating", S, _rating("quality"))],
    "answer_image": [("answer_img.num_regions", I32, "num_regions"),
                     ("answer_img.is_localization_missing", B, "_is_localization_missing"),
                     ("answer_img.has_bboxes", B, "_has_bboxes"), ("answer_img.has_masks", B, "_has_masks"),
                     ("answer_img.quality.localization_quality", I8, "localization_quality")],
}


def _real_schema(table: str) -> pa.Schema:
    """Data columns first, then the id columns, with the pandas metadata that makes the id
    columns the DataFrame's index (as ``DataFrame.set_index(ids).to_parquet()`` writes them)."""
    ids = L.QBA_ID_COLUMNS[table]
    fields = [pa.field(n, t) for n, t, _ in REAL_COLUMNS[table]] + [pa.field(i, _ID_TYPES[i]) for i in ids]
    schema = pa.schema(fields)
    frame = schema.empty_table().to_pandas().set_index(list(ids))
    return schema.with_metadata(pa.Schema.from_pandas(frame, preserve_index=True).metadata)


class StudyIds:
    """The real spelling of one study's question and answer ids (the internal ids are opaque)."""

    def __init__(self, questions: list[dict]):
        self.question: dict[str, str] = {}
        self.answer: dict[tuple[str, str], int] = {}
        per_code: dict[str, int] = {}
        for q in questions:
            code = Qreg.normalize_question_type(q["question_type"], q["question_strategy"])
            k = per_code[code] = per_code.get(code, 0) + 1
            self.question[q["question_id"]] = f"{code}_{k:03d}"
            n = 0
            stack = list(reversed(q["answers"]))
            while stack:
                a = stack.pop()
                n += 1
                self.answer[(q["question_id"], a["answer_id"])] = n
                stack.extend(reversed(a["sub_answers"]))


class Encoding:
    """The legacy spelling: the internal form as it is."""

    name = "legacy"
    zip_folders = {"qa": "", "scene_data": ""}

    def study_ids(self, questions: list[dict]) -> StudyIds | None:
        return None

    def qa_doc(self, doc: dict, ids: StudyIds | None) -> dict:
        return doc

    def scene_graph(self, sg: dict) -> dict:
        return sg

    def schema(self, table: str) -> pa.Schema:
        return LEGACY_SCHEMAS[table]

    def rows(self, table: str, rows: list[dict], ids: dict[str, StudyIds | None]) -> list[dict]:
        return rows

    def member(self, zip_name: str, subject_id: int, study_id: int, kind: str) -> str:
        return self.zip_folders[zip_name] + L.study_member(subject_id, study_id, kind)


class RealEncoding(Encoding):
    name = "real"
    zip_folders = {"qa": "qa/", "scene_data": "scene_data/"}

    def study_ids(self, questions: list[dict]) -> StudyIds:
        return StudyIds(questions)

    def qa_doc(self, doc: dict, ids: StudyIds | None) -> dict:
        assert ids is not None
        return {**doc, "questions": [self._question(q, ids) for q in doc["questions"]]}

    def _question(self, q: dict, ids: StudyIds) -> dict:
        qid = q["question_id"]

        def answer(a: dict) -> dict:
            return {**a, "answer_id": ids.answer[(qid, a["answer_id"])],
                    "answer_quality": _with_rating_string(a["answer_quality"]),
                    "extraction_quality": _release_criteria(a["extraction_quality"]),
                    "sub_answers": [answer(s) for s in a["sub_answers"]]}

        return {**q, "question_id": ids.question[qid],
                "question_type": Qreg.normalize_question_type(q["question_type"], q["question_strategy"]),
                "extraction_quality": {}, "question_quality": _with_rating_string(q["question_quality"]),
                "answers": [answer(a) for a in q["answers"]]}

    def scene_graph(self, sg: dict) -> dict:
        sq = dict(sg["study_quality"])
        rating = sq.pop("rating")
        out = {**sg, "study_quality": {"extraction_rating": rating_string(RATING_SCALE[rating]), **_release_criteria(sq)},
               "observations": {k: _observation(o) for k, o in sg["observations"].items()}}
        if sg.get("indication"):
            out["indication"] = {**sg["indication"],
                                 "answer_for_indication": _observation(sg["indication"]["answer_for_indication"])}
        return out

    def schema(self, table: str) -> pa.Schema:
        return _REAL_SCHEMAS[table]

    def rows(self, table: str, rows: list[dict], ids: dict[str, StudyIds | None]) -> list[dict]:
        cols = REAL_COLUMNS[table]
        out = []
        for r in rows:
            new = {n: (get(r) if callable(get) else r[get]) for n, _, get in cols}
            for i in L.QBA_ID_COLUMNS[table]:
                new[i] = r[i]
            if "question_id" in new:
                sid = ids[r["study_id"]]
                if "answer_id" in new:
                    new["answer_id"] = sid.answer[(r["question_id"], r["answer_id"])]
                new["question_id"] = sid.question[r["question_id"]]
            if table == "question":
                new["question.question_type"] = Qreg.normalize_question_type(r["question_type"], r["question_strategy"])
            out.append(new)
        return out


_REAL_SCHEMAS = {t: _real_schema(t) for t in L.QBA_TABLES}


def _with_rating_string(q: dict) -> dict:
    return {**q, "rating": rating_string(RATING_SCALE[q["rating"]])} if "rating" in q else dict(q)


def _release_criteria(q: dict) -> dict:
    """Criterion integers under the release's keys, without a rating (and without keys the release
    does not have, such as the generator's own ``certainty``)."""
    from cxrbench.data.quality import CRITERIA

    return {RELEASE_CRITERION_KEYS.get(k, k): v for k, v in q.items() if k in CRITERIA}


def _observation(o: dict) -> dict:
    return {**o, "modifiers": [[k, v] for k, vs in o["modifiers"].items() for v in vs],
            "obs_quality": _release_criteria(o["obs_quality"])}


def get(name: str) -> Encoding:
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r} (one of {', '.join(ENCODINGS)})")
    return RealEncoding() if name == "real" else Encoding()


def csv_table(table: pa.Table) -> pa.Table:
    """A table as the ``.csv.gz`` files hold it: list columns as JSON text (CSV has no lists)."""
    cols = {}
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_list(col.type):
            col = pa.array([None if v is None else json.dumps(v) for v in col.to_pylist()], pa.string())
        cols[name] = col
    return pa.table(cols)
