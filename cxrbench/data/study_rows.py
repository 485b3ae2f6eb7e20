"""The index rows of one study: its study row, its QA rows and its scene-graph nodes.

Runs in the index's worker processes (:mod:`cxrbench.data.index` is the driver). State is
explicit: a :class:`WorkerContext` (readers, vocabulary, quality decoder, filters: fixed for the
run) and a :class:`ChunkSink` (the column builders and counters of one chunk of studies, shipped
back to the driver as Arrow tables). :func:`add_study` reads a study's two JSON files, validates
them and appends its rows; each step is a function of its own.

Any failure leaves as a one-line :class:`~cxrbench.errors.DataError` naming the file (and the
record where the readers know it), so that it crosses the process boundary and the driver can
stop the pool and report it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson
import pyarrow as pa

from cxrbench import questions as Qreg
from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.data.quality import QualityDecoder, at_least, min_grade
from cxrbench.data.readers import Sizes, StudyJson, validate_qa, validate_scene_graph
from cxrbench.data.vocabulary import UnknownCounter, Vocabulary, head_region, normalize_name, region_category
from cxrbench.errors import CxrbenchError, DataError

F32, F64, S, I64, I8, B = pa.float32(), pa.float64(), pa.string(), pa.int64(), pa.int8(), pa.bool_()
LS, LF = pa.list_(S), pa.list_(F64)

STUDY_FIELDS = [
    ("study_id", I64), ("subject_id", I64), ("split", S), ("study_quality", S), ("n_images", I8), ("image_id", S),
    ("view", S), ("image_path", S), ("image_width", pa.int32()), ("image_height", pa.int32()),
    ("chexpert", pa.list_(F32)), ("chexpert_gold", pa.list_(F32)), ("n_observations", pa.int32()),
    ("region_categories", LS),
]
STUDIES_SCHEMA = pa.schema(STUDY_FIELDS)
QA_SCHEMA = pa.schema([
    ("question_id", S), ("question_type", S), ("question_strategy", S), ("question", S), ("variables", S),
    ("obs_ids", LS), ("quality", S), ("complexity", S), ("answer", S), ("answer_full", S), ("answer_positiveness", S),
    ("answer_binary", I8), ("answer_regions", LS), ("answer_head_regions", LS), ("answer_entities", LS),
    ("answer_categories", LS), ("answer_severity", S), ("answer_bboxes", pa.list_(LF)), ("answer_is_fallback", B),
    ("answer_missing_box", B), ("n_answers", pa.int32()),
    *[f for f in STUDY_FIELDS if f[0] != "region_categories"],
])
NODES_SCHEMA = pa.schema([
    ("study_id", I64), ("image_id", S), ("node_id", S), ("node_kind", S), ("bbox", LF), ("bboxes", pa.list_(LF)),
    ("is_fallback", B), ("regions", LS), ("entities", LS), ("categories", LS), ("laterality", S),
])
QA_OWN_COLUMNS = tuple(n for n in QA_SCHEMA.names if n not in STUDIES_SCHEMA.names)
SEVERITY_RANK = {s: i for i, s in enumerate(vocab.SEVERITY_LEVELS)}


@dataclass(frozen=True)
class IndexFilters:
    min_quality: str | None = None      # keep QA pairs with grade >= this ("unrated" ranks last)
    frontal_only: bool = False          # keep studies with a frontal (PA/AP) image
    splits: tuple[str, ...] = ()        # empty: all splits

    def as_dict(self) -> dict[str, Any]:
        return {"min_quality": self.min_quality, "frontal_only": self.frontal_only, "splits": list(self.splits) or "all"}


@dataclass
class StudyTask:
    """What the driver knows about a study from the tables (the worker reads its JSON)."""

    subject_id: int
    study_id: int
    split: str
    images: list[tuple[str, str, int, int]]               # (dicom_id, view, width, height)
    chexpert: list[float]
    chexpert_gold: list[float] | None
    study_grade: str | None                               # from study_metadata, None: from the scene graph
    qmeta: dict[str, tuple[str, str, str]] | None         # question_id -> (grade, question_type, strategy)


@dataclass
class WorkerContext:
    """Fixed for a run: where the JSON is, the vocabulary, how quality values decode, the filters."""

    json: StudyJson
    vocab: Vocabulary | None
    quality: QualityDecoder
    filters: IndexFilters
    # caches of pure functions of names and types (the same few hundred values recur 42M times)
    _codes: dict[tuple[str, Any], tuple[str, str | None, str]] = field(default_factory=dict)
    _known: set[tuple[str, str]] = field(default_factory=set)

    def code(self, short: str, strategy: Any) -> tuple[str, str | None, str]:
        """(code, head, default complexity) of a question type in either spelling."""
        key = (short, strategy)
        got = self._codes.get(key)
        if got is None:
            code = Qreg.normalize_question_type(short, strategy)
            qt = Qreg.BY_CODE.get(code)
            got = self._codes[key] = (code, qt.head if qt else None, qt.complexity if qt else "single_entity")
        return got


class Columns:
    """Column lists of one Arrow table, filled row by row."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.cols: dict[str, list] = {n: [] for n in schema.names}

    def add(self, row: Mapping[str, Any]) -> None:
        for n, col in self.cols.items():
            col.append(row[n])

    def add_many(self, rows: list[tuple], names: tuple[str, ...], shared: Mapping[str, Any]) -> None:
        """Rows given as tuples over ``names``, each joined with the values of ``shared`` (the study's)."""
        for i, n in enumerate(names):
            self.cols[n].extend([r[i] for r in rows])
        for n, v in shared.items():
            if n in self.cols:
                self.cols[n].extend([v] * len(rows))

    def table(self) -> pa.Table:
        return pa.table(self.cols, schema=self.schema)


@dataclass
class ChunkSink:
    """Rows and counters of one chunk of studies."""

    qa: Columns = field(default_factory=lambda: Columns(QA_SCHEMA))
    studies: Columns = field(default_factory=lambda: Columns(STUDIES_SCHEMA))
    nodes: Columns = field(default_factory=lambda: Columns(NODES_SCHEMA))
    counts: Counter = field(default_factory=Counter)
    unknown: UnknownCounter = field(default_factory=UnknownCounter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, key: str, example: str, keep: int = 3) -> None:
        """Count ``key`` and keep its first examples (the manifest names what it tolerated)."""
        self.counts[key] += 1
        ex = self.examples.setdefault(key, [])
        if len(ex) < keep:
            ex.append(example)


# ----------------------------------------------------------------------------------------------
# one study


def add_study(task: StudyTask, ctx: WorkerContext, sink: ChunkSink) -> None:
    """Append the rows of ``task``'s study to ``sink``; every failure is a DataError naming the file."""
    try:
        _add_study(task, ctx, sink)
    except CxrbenchError:
        raise
    except Exception as err:  # an input shape the validators did not foresee: name the study, do not hang or trace
        text = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise DataError(ctx.json.member_name(task.subject_id, task.study_id, "qa"), None,
                        f"cannot index this study ({type(err).__name__}{': ' + text if text else ''})") from None


def _add_study(task: StudyTask, ctx: WorkerContext, sink: ChunkSink) -> None:
    sizes = Sizes({d: (float(w), float(h)) for d, _, w, h in task.images})
    prim = primary_image(task.images)
    if prim is None:
        sink.counts["studies_without_frontal_image"] += 1
    sg, sg_file = read_scene_graph(task, ctx, sink, sizes)
    grade = task.study_grade if task.study_grade is not None else scene_graph_grade(sg, sg_file, ctx)
    observations: dict = sg.get("observations") or {}
    if prim is not None:
        add_nodes(task.study_id, prim[0], sg, ctx, sink)
    study = study_row(task, prim, grade, observations)
    sink.studies.add(study)
    got = ctx.json.load(task.subject_id, task.study_id, "qa")
    if got is None:
        sink.note("missing_qa", f"s{task.study_id}")
        return
    qa, qa_file = got
    validate_qa(qa, qa_file, sizes)
    check_ids(qa, task, qa_file)
    rows = []
    for q in qa["questions"]:
        row = question_row(q, task, grade, prim[0] if prim else None, qa_file, ctx, sink)
        if row is not None:
            rows.append(row)
    sink.qa.add_many(rows, QA_OWN_COLUMNS, study)
    sink.counts["qa_pairs"] += len(rows)


def primary_image(images: list[tuple[str, str, int, int]]) -> tuple[str, str, int, int] | None:
    """The study's primary frontal image: PA before AP (before an unspecified "frontal"), then by
    dicom_id; None without a frontal image."""
    frontal = [im for im in images if str(im[1]).upper() in L.FRONTAL_RANK]
    return min(frontal, key=lambda im: (L.FRONTAL_RANK[str(im[1]).upper()], im[0])) if frontal else None


def read_scene_graph(task: StudyTask, ctx: WorkerContext, sink: ChunkSink, sizes: Sizes) -> tuple[dict, str]:
    """The study's validated scene graph ({} when the release has none, counted)."""
    got = ctx.json.load(task.subject_id, task.study_id, "scene_graph")
    if got is None:
        sink.note("missing_scene_graph", f"s{task.study_id}")
        return {}, ""
    sg, sg_file = got
    validate_scene_graph(sg, sg_file, sizes)
    check_ids(sg, task, sg_file)
    return sg, sg_file


def scene_graph_grade(sg: Mapping, file: str, ctx: WorkerContext) -> str:
    """The study's grade from its scene graph's ``study_quality`` (used when study_metadata lacks it)."""
    return ctx.quality.of_object(sg.get("study_quality"), file, "study_quality") if sg else "unrated"


def check_ids(doc: Mapping, t: StudyTask, file: str) -> None:
    for key, prefix, want in (("patient_id", "p", t.subject_id), ("study_id", "s", t.study_id)):
        if key in doc and doc[key] is not None:
            got = L.strip_id(doc[key], prefix, file, key)
            if got != want:
                raise DataError(file, key, f"{key} {doc[key]!r} does not match the file's study (p{t.subject_id}/s{t.study_id})")


def study_row(task: StudyTask, prim: tuple[str, str, int, int] | None, grade: str, observations: Mapping) -> dict[str, Any]:
    pid = prim[0] if prim else None
    return {
        "study_id": task.study_id, "subject_id": task.subject_id, "split": task.split, "study_quality": grade,
        "n_images": len(task.images), "image_id": pid, "view": prim[1] if prim else None,
        "image_path": L.image_relpath(task.subject_id, task.study_id, pid) if pid else None,
        "image_width": prim[2] if prim else None, "image_height": prim[3] if prim else None,
        "chexpert": task.chexpert, "chexpert_gold": task.chexpert_gold, "n_observations": len(observations),
        "region_categories": _dedup(region_category(r) for o in observations.values() for r in _region_names(o)),
    }


# ----------------------------------------------------------------------------------------------
# scene-graph nodes


def add_nodes(study_id: int, image_id: str, sg: Mapping, ctx: WorkerContext, sink: ChunkSink) -> None:
    """Nodes on the primary image: observations (not the indication answer) and region nodes."""
    for oid, o in (sg.get("observations") or {}).items():
        regs = _region_names(o)
        ents = list(o.get("obs_entities") or [])
        count_unknown(regs, ents, ctx, sink)
        node_row(sink, ctx, study_id, image_id, str(oid), "observation", o.get("localization"), regs, ents,
                 list(o.get("obs_categories") or []), o.get("laterality"))
    for name, r in (sg.get("regions") or {}).items():
        count_unknown([name], [], ctx, sink)
        is_obj = type(r) is dict
        node_row(sink, ctx, study_id, image_id, str(name), "region", r.get("localization") if is_obj else None, [str(name)],
                 [], [], r.get("laterality") if is_obj else None)


def node_row(sink: ChunkSink, ctx: WorkerContext, study_id: int, image_id: str, node_id: str, kind: str, loc: Any,
             regions: list[str], entities: list[str], categories: list[str], laterality: Any) -> None:
    item = loc.get(image_id) if type(loc) is dict else None
    boxes = list((item or {}).get("bboxes") or ())   # validated numbers
    fallback = bool((item or {}).get("is_fallback"))
    if not boxes and localizable(regions, ctx.vocab):
        sink.counts[f"{kind}_nodes_missing_box"] += 1
    if fallback:
        sink.counts[f"{kind}_nodes_fallback_box"] += 1
    sink.nodes.add({"study_id": study_id, "image_id": image_id, "node_id": node_id, "node_kind": kind,
                    "bbox": _enclosing(boxes), "bboxes": boxes, "is_fallback": fallback, "regions": regions,
                    "entities": entities, "categories": categories,
                    "laterality": laterality if isinstance(laterality, str) else None})


# ----------------------------------------------------------------------------------------------
# QA rows


def question_row(q: Mapping, task: StudyTask, study_grade: str, image_id: str | None, file: str,
                 ctx: WorkerContext, sink: ChunkSink) -> tuple | None:
    """One QA row (a tuple over ``QA_OWN_COLUMNS``), None when the quality filter drops it.

    The hot loop of the index (42M questions on the real release): plain loops, no helpers
    per answer."""
    qid = q["question_id"]
    qid = qid if type(qid) is str else str(qid)
    meta = task.qmeta.get(qid) if task.qmeta is not None else None
    if meta is not None:
        grade, short, strategy = meta
    else:
        if task.qmeta is not None:
            sink.note("question_not_in_metadata", f"s{task.study_id}/{qid}")
        short, strategy = q["question_type"], q.get("question_strategy")
        grade = question_grade(q, study_grade, file, ctx)
    min_q = ctx.filters.min_quality
    if min_q is not None and not at_least(grade, min_q):
        sink.counts["qa_below_min_quality"] += 1
        return None
    code, head, complexity = ctx.code(short, strategy)
    answers = q["answers"]
    mains = [a for a in answers if a.get("answer_type", "main_answer") == "main_answer"] or answers[:1]
    regions: dict[str, None] = {}
    entities: dict[str, None] = {}
    categories: dict[str, None] = {}
    pos: set = set()
    sev_best = -1
    boxes: list[list[float]] = []
    fallback = missing = False
    for a in mains:
        a_regions = a.get("regions") or ()
        for r in a_regions:
            regions[r] = None
        for e in a.get("obs_entities") or ():
            entities[e] = None
        for c in a.get("obs_categories") or ():
            categories[c] = None
        p = a.get("positiveness")
        if p is not None:
            pos.add(p)
        mods = a.get("modifiers")
        if mods:
            for kind, value in (_pairs(mods) if type(mods) is dict else mods):
                if kind == "severity":
                    rank = SEVERITY_RANK.get(value, -1)
                    if rank > sev_best:
                        sev_best = rank
        if image_id is not None:
            loc = (a.get("localization") or {}).get(image_id)
            if loc:
                bb = loc.get("bboxes")
                if bb:
                    boxes.extend(bb)   # validated: four JSON numbers each (Arrow makes them float64)
                fallback = fallback or bool(loc.get("is_fallback"))
                if not bb and localizable(a_regions, ctx.vocab):
                    missing = True
            elif localizable(a_regions, ctx.vocab):
                missing = True
    count_unknown(regions, entities, ctx, sink)
    if missing:
        sink.counts["answers_missing_box"] += 1
    if fallback:
        sink.counts["answers_fallback_box"] += 1
    severity = vocab.SEVERITY_LEVELS[sev_best] if sev_best >= 0 else ("none" if head == "severity" else None)
    variables = q.get("variables")
    refs = variables.get("region_reference") if type(variables) is dict else None
    if refs:
        complexity = "multi_hop" if len(refs) >= 2 else "relational"
    texts: list[str] = []
    _texts(answers, texts)
    main_texts = [a["text"] for a in mains]
    return (
        qid, code, strategy, q["question"],
        orjson.dumps(variables, option=orjson.OPT_SORT_KEYS).decode() if variables else "{}",
        [x if type(x) is str else str(x) for x in q.get("obs_ids") or ()], grade, complexity, " ".join(main_texts),
        " ".join(texts), "none" if not pos else (pos.pop() if len(pos) == 1 else "mixed"),
        _binary(main_texts[0], code, head) if mains else -1, list(regions),
        _dedup(h for h in map(head_region, regions) if h), list(entities), list(categories), severity, boxes,
        fallback, missing, len(texts),
    )


def _texts(answers: list, out: list[str]) -> None:
    """Every answer's text, depth first (answers, then their sub-answers)."""
    for a in answers:
        out.append(a["text"])
        subs = a.get("sub_answers")
        if subs:
            _texts(subs, out)


def question_grade(q: Mapping, study_grade: str, file: str, ctx: WorkerContext) -> str:
    """Overall grade from the JSON = minimum over the scene graph (the study's grade), the
    question and every answer of the question (release, section 3a)."""
    qid = q.get("question_id")
    grades = [study_grade, ctx.quality.of_object(q.get("question_quality"), file, f"question {qid}")]
    stack = list(q["answers"])
    while stack:
        a = stack.pop()
        if "answer_quality" in a:
            grades.append(ctx.quality.of_object(a["answer_quality"], file, f"question {qid}, answer {a.get('answer_id')}"))
        stack.extend(a.get("sub_answers") or ())
    return min_grade(grades)


def complexity_of(code: str, variables: Mapping[str, Any]) -> str:
    """Seed 2.6.1 dimension 3: the type's default level, raised by relational region references
    (one relation hop: relational; two or more: multi_hop)."""
    refs = variables.get("region_reference") if type(variables) is dict else None
    if refs:
        return "multi_hop" if len(refs) >= 2 else "relational"
    qt = Qreg.BY_CODE.get(code)
    return qt.complexity if qt else "single_entity"


def answer_binary(text: str, code: str) -> int:
    """1 / 0 from the leading "Yes" / "No" of a yes/no question's main answer, -1 otherwise.

    Only questions the registry routes to the binary head count ("No abnormalities are seen."
    answers a description question); for types the registry does not know, the word must be
    followed by a comma or a full stop ("No, ...", "Yes.")."""
    qt = Qreg.BY_CODE.get(code)
    return _binary(text, code, qt.head if qt is not None else None)


def _binary(text: str, code: str, head: str | None) -> int:
    """:func:`answer_binary` with the registry's head of ``code`` already looked up (None: unknown type)."""
    if head is not None and head != "binary":
        return -1
    t = text.lstrip()[:4].lower()
    word = "yes" if t.startswith("yes") else "no" if t.startswith("no") else None
    if word is None:
        return -1
    rest = t[len(word):len(word) + 1]
    ok = not rest.isalpha() if head is not None else rest in (",", ".", "")
    return (1 if word == "yes" else 0) if ok else -1


# ----------------------------------------------------------------------------------------------
# names


def count_unknown(regions, entities, ctx: WorkerContext, sink: ChunkSink) -> None:
    """Count names outside the vocabulary (``Vocabulary.region_index`` normalises them first)."""
    voc = ctx.vocab
    if voc is None:
        return
    known = ctx._known
    for r in regions:
        if ("r", r) not in known:
            if voc.region_index(r, sink.unknown) != voc.unknown_region_index:
                known.add(("r", r))
    for e in entities:
        if ("e", e) not in known:
            if voc.entity_index(e, sink.unknown) != voc.unknown_entity_index:
                known.add(("e", e))


def localizable(regions, voc: Vocabulary | None) -> bool:
    """Whether a box is expected: some region is one the release localises."""
    if not regions:
        return False
    if voc is None or not voc.localized_regions:
        return True
    return any(normalize_name(r) in voc.localized_regions for r in regions)


def _pairs(modifiers: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``{"severity": ["mild"], ...}`` (the project page's observation spelling) as ``[kind, value]`` pairs."""
    return [(k, v) for k, vs in modifiers.items() for v in (vs if isinstance(vs, list) else [vs])]


def _region_names(o: Mapping) -> list[str]:
    return [r["region"] if type(r) is dict else r for r in (o.get("regions") or [])]


def _dedup(xs) -> list:
    return list(dict.fromkeys(xs))


def _enclosing(boxes: list[list[float]]) -> list[float] | None:
    if not boxes:
        return None
    if len(boxes) == 1:
        return boxes[0]
    return [min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
