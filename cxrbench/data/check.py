"""``cxrbench check``: what the readers make of an install, on a sample, before a long index.

:func:`check_install` locates both releases, reads their tables, the first ``studies`` studies'
JSON and the first rows of each metadata table, and reports

- the releases found (folders relative to the working directory, versions) and their counts;
- which encoding each field uses (question ids, question types, answer ids, ratings, criterion
  keys, view positions, modifiers, id columns, zip folders, ...);
- every key, column or value the readers do not know, with its count and two examples
  (``unknown``: the readers ignore these; nothing they need is missing);
- every problem that stops the readers (``problems``: unknown rating values, missing zips,
  unreadable tables, studies the index's own builder refuses), with count and examples;
- whether an index would succeed: the sample studies are built by the index's own per-study
  code (:func:`cxrbench.data.study_rows.add_study`), not by a second reader.

The command exits 0 only when there is no problem.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from cxrbench import questions as Qreg
from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.data.quality import RELEASE_CRITERION_KEYS, QualityDecoder, criterion_name, load_mapping, rating_kind
from cxrbench.data.readers import StudyJson, read_qba_table, top_folder
from cxrbench.data.study_rows import ChunkSink, IndexFilters, StudyTask, WorkerContext, add_study
from cxrbench.data.study_tables import ids, load_study_tables, study_universe
from cxrbench.data.vocabulary import load_vocabulary
from cxrbench.errors import CxrbenchError, DataError

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_TEMPLATE_ID = re.compile(r"^[A-D]\d{0,2}_[a-z_]+?_\d+$")
DATASET_INFO_KEYS = frozenset({
    "dataset", "version", "regions", "region_names", "anatomical_regions", "all_regions", "region_info",
    "finding_entities", "entities", "obs_entities", "findings", "finding_names", "entity_info", "categories",
    "obs_categories", "finding_categories", "subcategories", "obs_subcategories", "finding_subcategories",
    "answer_types", "modifier_types", "modifiers", "probabilities", "certainties", "positiveness", "changes",
    "child_types", "region_relation_types", "question_types"})


@dataclass(frozen=True)
class CheckOptions:
    studies: int = 200          # studies whose JSON is read (the first ones in (patient, study) order)
    rows: int = 100_000         # metadata rows sampled per table (the first ones)


class Tally:
    """Counts with two examples each, by key."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.examples: dict[Any, list[str]] = {}

    def add(self, key: Any, example: Any = None, n: int = 1) -> None:
        self.counts[key] += n
        ex = self.examples.setdefault(key, [])
        if example is not None and len(ex) < 2 and str(example) not in ex:
            ex.append(str(example))

    def items(self) -> list[tuple[Any, int, list[str]]]:
        return [(k, n, self.examples.get(k, [])) for k, n in sorted(self.counts.items(), key=lambda kv: str(kv[0]))]

    def __bool__(self) -> bool:
        return bool(self.counts)


@dataclass
class CheckReport:
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, str] = field(default_factory=dict)
    encodings: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unknown: Tally = field(default_factory=Tally)     # (what, where, name) -> count, examples
    problems: Tally = field(default_factory=Tally)    # (what, where) -> count, examples
    sample: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        out = ["releases"]
        for name, r in self.releases.items():
            out.append(f"  {name}: {r['path']}" + (f" (version {r['version']})" if r.get("version") else ""))
        out.append("counts")
        out += [f"  {k}: {v}" for k, v in self.counts.items()]
        out.append("encodings")
        out += [f"  {k}: {v}" for k, v in self.encodings.items()]
        for n in self.notes:
            out.append(f"note: {n}")
        out.append(f"unknown (ignored by the readers): {sum(self.unknown.counts.values()) if self.unknown else 'none'}")
        for (what, where, name), n, ex in self.unknown.items():
            out.append(f"  {what} {name!s} in {where}: {n}" + (f" (e.g. {'; '.join(ex)})" if ex else ""))
        out.append(f"problems (the readers stop here): {len(self.problems.counts) if self.problems else 'none'}")
        for (what, where), n, ex in self.problems.items():
            out.append(f"  {what} in {where}: {n}" + (f" (e.g. {'; '.join(ex)})" if ex else ""))
        s = self.sample
        if self.ok:
            out.append(f"index: would succeed (sample of {s.get('studies', 0)} studies: {s.get('qa_pairs', 0)} QA pairs, "
                       f"{s.get('nodes', 0)} nodes)")
        else:
            out.append("index: would FAIL (see problems)")
        return out


def _shown(p: Path, root: str | Path | None) -> str:
    """A release folder as the user would name it: under ROOT when it is there."""
    if root is not None:
        base = Path(root).resolve()
        if p == base or base in p.parents:
            return str(Path(root) / os.path.relpath(p, base)) if p != base else str(root)
    return str(p)


def _name(path: Path | str) -> str:
    return Path(str(path)).name


def check_install(root: str | Path | None = None, jpg: str | Path | None = None, qba: str | Path | None = None,
                  options: CheckOptions | None = None) -> CheckReport:
    options = options or CheckOptions()
    rep = CheckReport()
    try:
        roots = L.resolve_roots(root, jpg, qba)
    except DataError as err:
        rep.problems.add(("release not found", str(err.file)), err.problem)
        return rep
    for name, path in (("MIMIC-CXR-JPG", roots.jpg), ("MIMIC-Ext-CXR-QBA", roots.qba)):
        rep.releases[name] = {"path": _shown(path, root), "version": path.name if _VERSION.match(path.name) else None}
    tables = _check_jpg(roots, rep)
    _check_qba_tables(roots, rep, options)
    decoder = _check_mapping(roots, rep)
    voc = _check_dataset_info(roots, rep)
    sj = StudyJson(roots.qba)
    if _check_archives(roots, sj, rep) and tables is not None:
        _check_sample(roots, sj, tables, decoder, voc, rep, options)
    sj.close()
    return rep


# ----------------------------------------------------------------------------------------------
# MIMIC-CXR-JPG


def _check_jpg(roots: L.Roots, rep: CheckReport):
    try:
        tables = load_study_tables(roots.jpg)
    except CxrbenchError as err:
        rep.problems.add(("unreadable table", _name(getattr(err, "file", roots.jpg))), str(err))
        return None
    splits = Counter(tables.split.tolist())
    rep.counts["MIMIC-CXR-JPG"] = (f"{len(tables.img_dicom):,} images, {len(tables.study_ids):,} studies, "
                                   f"{len(set(tables.subject_ids.tolist())):,} patients ("
                                   + ", ".join(f"{s} {splits[s]:,}" for s in vocab.SPLITS if splits[s]) + " studies)")
    views = Counter(tables.img_view.tolist())
    kinds = Counter()
    for v, n in views.items():
        kinds[L.view_kind(v) or "empty"] += n
    rep.encodings["ViewPosition (mimic-cxr metadata)"] = ", ".join(f"{v or '(empty)'} {n:,}" for v, n in views.most_common(6)) + (
        f" (+{len(views) - 6} more)" if len(views) > 6 else "")
    if not kinds["frontal"]:
        rep.problems.add(("no frontal (PA/AP) image", L.METADATA_CSV), ", ".join(list(views)[:2]))
    rep.counts["CheXpert labels"] = (f"{len(tables.chexpert):,} studies" if tables.chexpert else "absent") + (
        f", gold test labels {len(tables.gold):,} studies" if tables.gold else ", no gold test labels")
    rep.releases["MIMIC-CXR-JPG"]["version"] = rep.releases["MIMIC-CXR-JPG"]["version"] or (
        "2.1.0 (file names)" if (roots.jpg / L.GOLD_CSV).exists() else "2.0.0 (file names)")
    return tables


# ----------------------------------------------------------------------------------------------
# QBA metadata tables


def _check_qba_tables(roots: L.Roots, rep: CheckReport, options: CheckOptions) -> None:
    counts = []
    for table in L.QBA_TABLES:
        t = read_qba_table(roots.qba, table)
        if t is None:
            if table in ("study", "question"):
                rep.notes.append(f"{table}_metadata not found: the index reads {'the study list from qa.zip' if table == 'study' else 'grades and types from the JSON'}")
            continue
        where = f"{L.METADATA_DIR}/{t.path.name}"
        try:
            names = t.names()
        except CxrbenchError as err:
            rep.problems.add(("unreadable table", where), str(err))
            continue
        meanings = {n: L.column_meaning(n) for n in names}
        dup = Counter(meanings.values())
        for m in ("quality", "question_type", "question_strategy", "patient_id", "study_id"):
            if dup[m] > 1:
                rep.notes.append(f"{where}: several columns mean {m!r} ({', '.join(k for k, v in meanings.items() if v == m)}); "
                                 "the first is read")
        needed = {"study": ("patient_id", "study_id"), "question": ("patient_id", "study_id", "question_id", "quality",
                                                                    "question_type", "question_strategy")}.get(table, ())
        missing = [m for m in needed if m not in meanings.values()]
        if missing:
            rep.problems.add(("missing column", where), ", ".join(missing))
            continue
        n_rows, index_cols = _parquet_facts(t.path)
        counts.append(f"{table} {n_rows:,}" if n_rows is not None else f"{table} (csv.gz, not counted)")
        idc = [c for c in L.QBA_ID_COLUMNS[table] if c in meanings.values()]
        if table in ("study", "question", "image", "answer"):
            stored = "the Parquet pandas index" if index_cols and set(index_cols) >= {n for n in names if meanings[n] in idc} \
                else "ordinary columns"
            rep.encodings[f"{table}_metadata ids"] = f"{', '.join(idc)} as {stored}; columns " + ", ".join(
                n for n in names if meanings[n] not in idc and not n.startswith(L.PANDAS_INDEX_PREFIX))[:200]
        _sample_values(t, table, where, names, meanings, rep, options)
    rep.counts["MIMIC-Ext-CXR-QBA metadata rows"] = ", ".join(counts) or "no tables"


def _parquet_facts(path: Path) -> tuple[int | None, list[str]]:
    if path.suffix != ".parquet":
        return None, []
    import json

    pf = pq.ParquetFile(path)
    meta = (pf.schema_arrow.metadata or {}).get(b"pandas")
    index_cols = [c for c in json.loads(meta).get("index_columns", []) if isinstance(c, str)] if meta else []
    return pf.metadata.num_rows, index_cols


def _first_rows(t, wanted: list[str], rows: int):
    import pyarrow as pa

    got, n = [], 0
    for b in t.iter_batches(wanted, batch_size=min(rows, 65536)):
        got.append(b)
        n += b.num_rows
        if n >= rows:
            break
    return pa.concat_tables(got).slice(0, rows) if got else None


def _sample_values(t, table: str, where: str, names: list[str], meanings: dict[str, str], rep: CheckReport,
                   options: CheckOptions) -> None:
    by_meaning = {}
    for n in names:
        by_meaning.setdefault(meanings[n], n)
    unknown_cols = [n for n in names if not L.is_known_column(table, meanings[n])]
    wanted = [m for m in ("patient_id", "study_id", "question_id", "answer_id", "quality", "question_type",
                          "view_position") if m in by_meaning]
    try:
        sample = _first_rows(t, wanted, options.rows) if wanted else None
        for n in unknown_cols:   # count: rows of the sample that hold a value
            col = _first_rows(_Raw(t.path, n), [n], options.rows)
            vals = col.column(0).drop_null() if col is not None else None
            examples = vals.slice(0, 2).to_pylist() if vals is not None else []
            rep.unknown.add(("column", where, n), examples[0] if examples else None, len(vals) if vals is not None else 0)
            for v in examples[1:]:
                rep.unknown.add(("column", where, n), v, 0)
    except CxrbenchError as err:
        rep.problems.add(("unreadable table", where), str(err))
        return
    if sample is None or sample.num_rows == 0:
        return
    decoder = QualityDecoder()
    if "quality" in by_meaning:
        kinds: Counter = Counter()
        col = sample.column("quality")
        for v in pc.unique(col).to_pylist():
            kind = rating_kind(v)
            n = int(pc.sum(pc.equal(col, v)).as_py() or 0) if v is not None else col.null_count
            try:
                decoder.rating(v)
                kinds[kind] += n
            except DataError:
                i = pc.index(col, v).as_py()
                rec = ", ".join(f"{k} {sample.column(k)[i].as_py()}" for k in ("study_id", "question_id") if k in wanted)
                rep.problems.add(("unknown rating value", f"{where} column {by_meaning['quality']}"), f"{v!r} ({rec})", n)
        rep.encodings[f"{table} rating ({by_meaning['quality']})"] = ", ".join(f"{k} {n:,}" for k, n in kinds.most_common())
    if "question_type" in by_meaning:
        rep.encodings[f"{table} question_type"] = _question_types(sample.column("question_type").to_pylist(), where, rep)
    if "question_id" in by_meaning:
        rep.encodings[f"{table} question_id"] = _question_ids(sample.column("question_id").to_pylist(),
                                                              ids(sample.column("study_id"), "s", where).tolist())
    if "answer_id" in by_meaning:
        rep.encodings[f"{table} answer_id"] = str(sample.column("answer_id").type)
    if "view_position" in by_meaning:
        vals = Counter(sample.column("view_position").to_pylist())
        rep.encodings[f"{table} view_position"] = ", ".join(f"{v} {n:,}" for v, n in vals.most_common())
        for v, n in vals.items():
            if v is not None and L.view_kind(v) not in ("frontal", "lateral"):
                rep.unknown.add(("value", where, f"view_position {v!r}"), None, n)


class _Raw:
    """A table read by its stored column names (for columns whose meaning we do not know)."""

    def __init__(self, path: Path, column: str):
        self.path, self.column = path, column

    def iter_batches(self, wanted, batch_size: int = 65536):
        import pyarrow as pa

        from cxrbench.errors import reading

        with reading(self.path, what="table"):
            if self.path.suffix == ".parquet":
                for b in pq.ParquetFile(self.path).iter_batches(batch_size=batch_size, columns=[self.column]):
                    yield pa.Table.from_batches([b])
            else:
                import pyarrow.csv as pacsv

                reader = pacsv.open_csv(self.path, convert_options=pacsv.ConvertOptions(include_columns=[self.column]))
                for b in reader:
                    yield pa.Table.from_batches([b])


def _question_types(values: list, where: str, rep: CheckReport) -> str:
    kinds: Counter = Counter()
    for v, n in Counter(values).items():
        if v in Qreg.BY_CODE:
            kinds["codes (B03_is_abnormal)"] += n
        elif Qreg.normalize_question_type(str(v)) in Qreg.BY_CODE or any(q.short == v for q in Qreg.QUESTION_TYPES):
            kinds["short names (is_abnormal)"] += n
        else:
            kinds["unknown"] += n
            rep.unknown.add(("value", where, "question_type"), v, n)
    return ", ".join(f"{k} {n:,}" for k, n in kinds.most_common())


def _question_ids(qids: list, study_ids: list) -> str:
    if not qids:
        return "none"
    template = sum(1 for q in qids if _TEMPLATE_ID.match(str(q)))
    studies_of: dict[Any, set] = {}
    for q, s in zip(qids, study_ids):
        studies_of.setdefault(q, set()).add(s)
    recurring = sum(1 for s in studies_of.values() if len(s) > 1)
    style = "template names" if template == len(qids) else ("opaque ids" if not template else f"mixed ({template:,} template names)")
    example = next(iter(studies_of))
    return (f"{style} (e.g. {example}); {recurring:,} of {len(studies_of):,} distinct ids recur across studies: "
            + ("keyed by (study_id, question_id)" if recurring else "unique in the sample"))


# ----------------------------------------------------------------------------------------------
# mapping, vocabulary, archives


def _check_mapping(roots: L.Roots, rep: CheckReport) -> QualityDecoder:
    from cxrbench.data.study_tables import find_up

    path = find_up(roots.qba, L.QUALITY_MAPPINGS)
    try:
        mapping, note = load_mapping(path)
    except CxrbenchError as err:
        rep.problems.add(("unreadable file", L.QUALITY_MAPPINGS), str(err))
        return QualityDecoder()
    rep.encodings["quality_mappings.csv"] = "used (header recognised)" if mapping is not None else \
        note.removeprefix(f"{L.QUALITY_MAPPINGS}: ")
    return QualityDecoder(mapping)


def _check_dataset_info(roots: L.Roots, rep: CheckReport):
    import orjson

    from cxrbench.data.study_tables import find_up

    path = find_up(roots.qba, f"{L.METADATA_DIR}/{L.DATASET_INFO}")
    if path is None:
        rep.notes.append("dataset_info.json not found: region and entity names are not checked against a vocabulary")
        return None
    try:
        voc = load_vocabulary(path)
        info = orjson.loads(path.read_bytes())
    except CxrbenchError as err:
        rep.problems.add(("unreadable file", L.DATASET_INFO), str(err))
        return None
    for k in info:
        if k not in DATASET_INFO_KEYS:
            rep.unknown.add(("key", L.DATASET_INFO, k), None)
    rep.counts["vocabulary"] = f"{len(voc.regions)} regions, {len(voc.entities)} finding entities"
    if info.get("version"):
        v = rep.releases["MIMIC-Ext-CXR-QBA"]
        v["version"] = v["version"] or f"{info['version']} (dataset_info.json)"
    return voc


def _check_archives(roots: L.Roots, sj: StudyJson, rep: CheckReport) -> bool:
    ok = True
    for kind, name in (("qa", L.QA_ZIP), ("scene_graph", L.SCENE_ZIP)):
        try:
            src, path = sj._source(kind)
            n = sum(1 for _ in sj.studies(kind))
        except CxrbenchError as err:
            rep.problems.add(("missing or unreadable archive", name), getattr(err, "problem", str(err)))
            ok = False
            continue
        if src == "zip":
            folder = top_folder(sj._zip(path).namelist())
            rep.encodings[f"{name} members"] = f"top folder {folder!r}" if folder else "no top folder"
        else:
            rep.encodings[f"{name} members"] = f"extracted folder {path.name}/"
        rep.counts[f"{name}"] = f"{n:,} studies"
    return ok


# ----------------------------------------------------------------------------------------------
# sample studies through the index's own builder, and a census of their JSON


def _check_sample(roots: L.Roots, sj: StudyJson, tables, decoder: QualityDecoder, voc, rep: CheckReport,
                  options: CheckOptions) -> None:
    try:
        universe = study_universe(roots.qba, sj)
    except CxrbenchError as err:
        rep.problems.add(("unreadable table", "study_metadata"), str(err))
        return
    in_qa = set(sj.studies("qa"))
    no_qa = [k for k in universe if k not in in_qa]
    if no_qa:
        rep.unknown.add(("study without qa.json", L.QA_ZIP, "studies of the study list"), f"s{no_qa[0][1]}", len(no_qa))
    not_in_split = [k for k in universe if tables.position(k[1]) is None]
    key = ("study not in the split file", L.SPLIT_CSV, "studies (left out by the index)")
    for i, k in enumerate(not_in_split[:2]):
        rep.unknown.add(key, f"s{k[1]}", len(not_in_split) if i == 0 else 0)
    sample = [k for k in universe if tables.position(k[1]) is not None and k in in_qa][: options.studies]
    ctx = WorkerContext(sj, voc, decoder, IndexFilters())
    sink = ChunkSink()
    census = _Census(rep, decoder)
    built = 0
    for subject, study in sample:
        i = tables.position(study)
        task = StudyTask(subject, study, str(tables.split[i]), tables.images(i), [float("nan")] * len(vocab.CHEXPERT_LABELS),
                         None, None, None)
        try:
            for kind in ("scene_graph", "qa"):
                got = sj.load(subject, study, kind)
                if got is not None:
                    census.walk(kind, got[0], got[1])
            add_study(task, ctx, sink)
            built += 1
        except CxrbenchError as err:
            what = getattr(err, "problem", str(err)).split(" (")[0]
            rep.problems.add(("index would stop", what[:80]), str(err))
    census.finish()
    rep.sample = {"studies": built, "qa_pairs": sink.counts["qa_pairs"], "nodes": len(sink.nodes.cols["study_id"])}
    for key in sorted(decoder.unknown_keys):
        rep.unknown.add(("key", "quality objects", key), None, decoder.unknown_keys[key])


class _Census:
    """Keys and value spellings of the sampled JSON."""

    def __init__(self, rep: CheckReport, decoder: QualityDecoder):
        self.rep, self.decoder = rep, decoder
        self.spell: dict[str, Counter] = {}
        self.qids: list[tuple[str, int]] = []

    def _seen(self, field: str, spelling: str, n: int = 1) -> None:
        self.spell.setdefault(field, Counter())[spelling] += n

    def _keys(self, kind: str, obj: Any, file: str) -> None:
        if type(obj) is not dict:
            return
        known = L.JSON_KEYS[kind]
        for k in obj:
            if k not in known:
                self.rep.unknown.add(("key", f"{kind} objects", k), _name(file))

    def _quality(self, field: str, obj: Any, file: str) -> None:
        if obj is None:
            return
        if type(obj) is not dict:
            self._rating(field, obj, file)
            return
        for k, v in obj.items():
            if k in ("rating", "extraction_rating", "overall_rating", "overall", "rating_code"):
                self._rating(f"{field}.{k}", v, file)
            elif criterion_name(k) is not None:
                self._seen(f"{field} criterion keys", "release spelling" if k in RELEASE_CRITERION_KEYS.values() else
                           "page spelling" if k in RELEASE_CRITERION_KEYS else "spelled alike")
                self._seen(f"{field} criterion values", type(v).__name__)

    def _rating(self, field: str, value: Any, file: str) -> None:
        kind = rating_kind(value)
        try:
            self.decoder.rating(value)
            self._seen(field, kind or "?")
        except DataError:
            self.rep.problems.add(("unknown rating value", field), f"{value!r} ({_name(file)})")

    def walk(self, kind: str, doc: Any, file: str) -> None:
        if type(doc) is not dict:
            return
        if kind == "scene_graph":
            self._keys("scene graph", doc, file)
            self._quality("study_quality", doc.get("study_quality"), file)
            obs = doc.get("observations") or {}
            ind = doc.get("indication")
            if type(ind) is dict:
                self._keys("indication", ind, file)
                if type(ind.get("answer_for_indication")) is dict:
                    obs = {**obs, "OIND": ind["answer_for_indication"]}
            for o in obs.values():
                self._keys("observation", o, file)
                if type(o) is not dict:
                    continue
                self._quality("obs_quality", o.get("obs_quality"), file)
                mods = o.get("modifiers")
                if mods:
                    self._seen("observation modifiers", "pairs [[kind, value]]" if type(mods) is list else "dict {kind: [values]}")
                for r in o.get("regions") or ():
                    self._seen("observation regions", "objects {region: ...}" if type(r) is dict else "strings")
                self._localization(o.get("localization"), file)
            for r in (doc.get("regions") or {}).values():
                self._keys("region node", r, file)
            return
        self._keys("qa", doc, file)
        sid = doc.get("study_id")
        for q in doc.get("questions") or ():
            self._keys("question", q, file)
            if type(q) is not dict:
                continue
            self.qids.append((str(q.get("question_id")), sid))
            qt = q.get("question_type")
            self._seen("qa.json question_type", "codes" if qt in Qreg.BY_CODE else
                       "short names" if Qreg.get(str(qt), q.get("question_strategy")) else "unknown")
            if Qreg.get(str(qt), q.get("question_strategy")) is None:
                self.rep.unknown.add(("value", "qa.json", "question_type"), qt)
            self._quality("question_quality", q.get("question_quality"), file)
            self._quality("question extraction_quality", q.get("extraction_quality"), file)
            stack = list(q.get("answers") or ())
            while stack:
                a = stack.pop()
                self._keys("answer", a, file)
                if type(a) is not dict:
                    continue
                self._seen("answer_id", type(a.get("answer_id")).__name__)
                self._quality("answer_quality", a.get("answer_quality"), file)
                self._quality("answer extraction_quality", a.get("extraction_quality"), file)
                mods = a.get("modifiers")
                if mods:
                    self._seen("answer modifiers", "pairs [[kind, value]]" if type(mods) is list else "dict {kind: [values]}")
                self._localization(a.get("localization"), file)
                stack.extend(a.get("sub_answers") or ())

    def _localization(self, loc: Any, file: str) -> None:
        if type(loc) is not dict:
            return
        for item in loc.values():
            self._keys("localization", item, file)
            if type(item) is dict and "localization_quality" in item:
                v = item["localization_quality"]
                self._seen("localization_quality", "integers 0-4" if type(v) is int and 0 <= v <= 4 else f"other ({v!r})")

    def finish(self) -> None:
        enc = self.rep.encodings
        if self.qids:
            enc["qa.json question_id"] = _question_ids([q for q, _ in self.qids], [s for _, s in self.qids])
        for name, c in sorted(self.spell.items()):
            enc[name] = ", ".join(f"{k} {n:,}" for k, n in c.most_common())

