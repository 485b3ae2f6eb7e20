"""The Parquet index of a dataset root (docs/contracts.md §2): ``cxrbench index``.

``build_index`` joins every QA pair with its study, patient, split, quality grade, view, primary
frontal image (PA before AP), image path and CheXpert labels, and writes ``qa.parquet``,
``studies.parquet``, ``nodes.parquet`` and ``manifest.json``. The key of a QA pair is
(``study_id``, ``question_id``), ``question_id`` exactly as the release spells it (in the real
release a template name that recurs in every study).

How it stays fast and bounded on the real release (227,239 studies, 42M QA pairs):

- per-study facts come from the small tables (:mod:`cxrbench.data.study_tables`: split, image
  metadata, CheXpert; ~100 bytes per study), grade/type/strategy per question from
  ``question_metadata`` streamed in row batches alongside the studies (the table is grouped by
  study; if it is not, those fields are read from the JSON instead, and the manifest says so);
- the JSON (answer texts, tags, boxes) is read in place from the zips by a pool of worker
  processes over chunks of studies (:mod:`cxrbench.data.study_rows` builds each study's rows);
  each chunk's rows come back as Arrow tables and are appended to the Parquet files as row
  groups, so memory does not grow with the number of QA pairs;
- the output folder is claimed first (:class:`cxrbench.outputs.OutputDir`: a folder the index
  did not write is refused, never deleted), the files are written into its staging folder and
  committed together at the end; a failure in any worker stops the pool and is reported with
  its file and record, and the previous index (if any) stays as it was.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from tqdm import tqdm

from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.data.parallel import ordered_map
from cxrbench.data.quality import QualityDecoder, QualityMapping, load_mapping
from cxrbench.data.readers import StudyJson, read_qba_table
from cxrbench.data.study_rows import (
    NODES_SCHEMA,
    QA_SCHEMA,
    STUDIES_SCHEMA,
    ChunkSink,
    IndexFilters,
    StudyTask,
    WorkerContext,
    add_study,
    answer_binary,
    complexity_of,
    primary_image,
)
from cxrbench.data.study_tables import (
    NotGrouped,
    StudyTables,
    find_up,
    load_study_tables,
    question_groups,
    study_grades,
    study_universe,
)
from cxrbench.data.vocabulary import UnknownCounter, Vocabulary, load_vocabulary
from cxrbench.errors import CxrbenchError, DataError
from cxrbench.io import atomic_write_json, file_sha256, provenance
from cxrbench.outputs import OutputDir

__all__ = ["IndexFilters", "build_index", "answer_binary", "complexity_of", "primary_image", "QA_SCHEMA",
           "STUDIES_SCHEMA", "NODES_SCHEMA", "OUTPUT_FILES"]

OUTPUT_FILES = ("qa.parquet", "studies.parquet", "nodes.parquet", "manifest.json")
EXAMPLES = 3   # studies named per tolerated problem in the manifest and the console summary

# ----------------------------------------------------------------------------------------------
# worker side

_W: dict[str, WorkerContext] = {}


def _init_worker(qba_root: str, voc: Vocabulary | None, mapping: QualityMapping | None, filters: IndexFilters) -> None:
    _W["ctx"] = WorkerContext(StudyJson(qba_root), voc, QualityDecoder(mapping), filters)


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Parsed JSON is a tree (no reference cycles), freed by reference counting as each study is
    done; the cyclic collector would only rescan its ~10^5 fresh objects per study, which cost
    about 30% of the index's CPU time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def process_chunk(tasks: list[StudyTask]) -> dict[str, Any]:
    """Rows of a chunk of studies (runs in a worker process)."""
    ctx = _W["ctx"]
    sink = ChunkSink()
    before = ctx.json.bytes_read
    with _no_cyclic_gc():
        for t in tasks:
            add_study(t, ctx, sink)
    quality_keys, ctx.quality.unknown_keys = ctx.quality.unknown_keys, Counter()
    return {"qa": sink.qa.table(), "studies": sink.studies.table(), "nodes": sink.nodes.table(), "counts": sink.counts,
            "unknown": sink.unknown, "examples": sink.examples, "quality_keys": quality_keys,
            "bytes": ctx.json.bytes_read - before, "n": len(tasks)}


# ----------------------------------------------------------------------------------------------
# driver side


class _Tolerated:
    """Counts of tolerated problems with their first examples (``manifest.json`` → ``tolerance``, ``missing``)."""

    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = {}

    def note(self, key: str, example: str | None = None, n: int = 1) -> None:
        self.counts[key] += n
        if example is not None:
            ex = self.examples.setdefault(key, [])
            if len(ex) < EXAMPLES:
                ex.append(example)

    def merge(self, counts: Counter, examples: dict[str, list[str]]) -> None:
        self.counts.update(counts)
        for key, ex in examples.items():
            mine = self.examples.setdefault(key, [])
            mine.extend(ex[: EXAMPLES - len(mine)])


def _check_filters(filters: IndexFilters) -> None:
    if filters.min_quality is not None and filters.min_quality not in vocab.QUALITY_RANK:
        raise CxrbenchError(f"unknown quality grade {filters.min_quality!r} (one of {', '.join(vocab.QUALITY_GRADES)})")
    bad = [s for s in filters.splits if s not in vocab.SPLITS]
    if bad:
        raise CxrbenchError(f"unknown split {bad[0]!r} (one of {', '.join(vocab.SPLITS)})")


class _TaskStream:
    """The studies to index, in (subject, study) order, each with what the tables say about it."""

    def __init__(self, roots: L.Roots, tables: StudyTables, universe: list[tuple[int, int]], grades: dict[int, str],
                 decoder: QualityDecoder, filters: IndexFilters, tolerated: _Tolerated, notes: list[str]):
        self.roots, self.tables, self.universe, self.grades = roots, tables, universe, grades
        self.decoder, self.filters, self.tolerated, self.notes = decoder, filters, tolerated, notes
        self.use_meta = read_qba_table(roots.qba, "question") is not None
        if not self.use_meta:
            notes.append("question_metadata not found: quality, type and strategy read from the JSON")
        self._groups = question_groups(roots.qba, decoder)
        self._pending: tuple[tuple[int, int], dict] | None = None

    def _qmeta(self, key: tuple[int, int]) -> dict | None:
        """The question metadata of study ``key`` ({} when the table has none for it)."""
        if not self.use_meta:
            return None
        try:
            while True:
                if self._pending is None:
                    self._pending = next(self._groups, None)
                if self._pending is None or self._pending[0] > key:
                    return {}
                if self._pending[0] == key:
                    qmeta, self._pending = self._pending[1], None
                    return qmeta
                self.tolerated.note("question_metadata_studies_not_in_study_list", f"s{self._pending[0][1]}")
                self._pending = None
        except NotGrouped as err:
            self.notes.append(f"{err.args[0]} is not grouped by (patient_id, study_id) in order: "
                              "quality, type and strategy read from the JSON instead")
            self.use_meta = False
            return None

    def __iter__(self) -> Iterator[StudyTask]:
        t, f = self.tables, self.filters
        nan = [float("nan")] * len(vocab.CHEXPERT_LABELS)
        for key in self.universe:
            qmeta = self._qmeta(key)
            subject, study = key
            i = t.position(study)
            if i is None:
                self.tolerated.note("studies_not_in_split_file", f"s{study}")
                continue
            if int(t.subject_ids[i]) != subject:
                raise DataError(str(self.roots.jpg / L.SPLIT_CSV), f"study_id {study}",
                                f"subject_id {int(t.subject_ids[i])} differs from the QBA release's p{subject}")
            split = str(t.split[i])
            if f.splits and split not in f.splits:
                self.tolerated.note("studies_excluded_by_split")
                continue
            images = t.images(i)
            if f.frontal_only:
                images = [im for im in images if L.view_kind(im[1]) == "frontal"]
                if not images:
                    self.tolerated.note("studies_excluded_no_frontal")
                    continue
            cx, gold = t.chexpert.get((subject, study)), t.gold.get(study)
            yield StudyTask(subject, study, split, images, [float(v) for v in cx] if cx is not None else nan,
                            [float(v) for v in gold] if gold is not None else None, self.grades.get(study), qmeta)


def _chunks(tasks: Iterator[StudyTask], size: int) -> Iterator[list[StudyTask]]:
    buf: list[StudyTask] = []
    for t in tasks:
        buf.append(t)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


class _Writers:
    """The three Parquet files of the index, appended chunk by chunk."""

    def __init__(self, folder: Path):
        import pyarrow.parquet as pq

        self.folder = folder
        self.files = {name: pq.ParquetWriter(folder / f"{name}.parquet", schema, compression="zstd")
                      for name, schema in (("qa", QA_SCHEMA), ("studies", STUDIES_SCHEMA), ("nodes", NODES_SCHEMA))}
        self.rows: Counter = Counter()
        self.split_rows: Counter = Counter()

    def write(self, res: dict[str, Any]) -> None:
        import pyarrow.compute as pc

        for name, w in self.files.items():
            if res[name].num_rows:
                w.write_table(res[name])
                self.rows[name] += res[name].num_rows
        if res["qa"].num_rows:
            vc = pc.value_counts(res["qa"].column("split"))
            for v, n in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()):
                self.split_rows[v] += n

    def close(self) -> dict[str, str]:
        for w in self.files.values():
            w.close()
        return {f"{name}.parquet": file_sha256(self.folder / f"{name}.parquet") for name in self.files}


def build_index(roots: L.Roots, out: str | Path, filters: IndexFilters | None = None, workers: int = 1,
                chunk_size: int = 64, progress: bool = True, command: str = "cxrbench index",
                overwrite: bool = False) -> dict[str, Any]:
    """Build the index folder ``out`` for the releases at ``roots``; returns the manifest.

    ``out`` is claimed for ``cxrbench index`` (:class:`OutputDir`): an empty or new folder, or a
    previous index; any other folder is refused unless ``overwrite`` (which still replaces only
    the index's own files)."""
    filters = filters or IndexFilters()
    _check_filters(filters)
    out = Path(out)
    folder = OutputDir.claim(out, "cxrbench index", overwrite=overwrite)
    notes: list[str] = []
    tolerated = _Tolerated()
    mapping, note = load_mapping(find_up(roots.qba, L.QUALITY_MAPPINGS))
    if note:
        notes.append(note)
        tolerated.note("quality_mappings_not_used")
    decoder = QualityDecoder(mapping)
    vocab_path = find_up(roots.qba, f"{L.METADATA_DIR}/{L.DATASET_INFO}")
    voc = load_vocabulary(vocab_path) if vocab_path else None
    if voc is None:
        notes.append("dataset_info.json not found: region and entity names not checked against a vocabulary")
    tables = load_study_tables(roots.jpg)
    universe = study_universe(roots.qba, StudyJson(roots.qba))
    grades = study_grades(roots.qba, decoder)
    stream = _TaskStream(roots, tables, universe, grades, decoder, filters, tolerated, notes)
    staging = folder.staging()
    writers = _Writers(staging)
    unknown, quality_keys = UnknownCounter(), Counter()
    json_bytes = 0
    bar = tqdm(total=len(universe), desc="index studies", unit="study", disable=not progress)
    try:
        results = ordered_map(process_chunk, _chunks(iter(stream), chunk_size), workers, _init_worker,
                              (str(roots.qba), voc, mapping, filters))
        with contextlib.closing(results):
            for res in results:
                writers.write(res)
                tolerated.merge(res["counts"], res["examples"])
                unknown.update(res["unknown"])
                quality_keys.update(res["quality_keys"])
                json_bytes += res["bytes"]
                bar.update(res["n"])
        files = writers.close()
    except BaseException:
        writers.close()
        folder.discard()
        raise
    finally:
        bar.close()
        ctx = _W.pop("ctx", None)   # the in-process worker of a one-worker run
        if ctx is not None:
            ctx.json.close()
    manifest = _manifest(roots, out, filters, command, writers, tolerated, unknown, quality_keys, notes, files,
                         len(universe), json_bytes)
    atomic_write_json(staging / "manifest.json", manifest)
    folder.commit()
    return manifest


def _manifest(roots: L.Roots, out: Path, filters: IndexFilters, command: str, writers: _Writers, tolerated: _Tolerated,
              unknown: UnknownCounter, quality_keys: Counter, notes: list[str], files: dict[str, str], n_studies: int,
              json_bytes: int) -> dict[str, Any]:
    content_hash = hashlib.sha256("".join(f"{k}:{v}\n" for k, v in sorted(files.items())).encode()).hexdigest()
    counts = tolerated.counts
    tolerance = {k: int(v) for k, v in sorted(counts.items()) if k != "qa_pairs"}
    tolerance.update(unknown.as_dict())
    if quality_keys:
        tolerance["unknown_quality_keys"] = dict(sorted(quality_keys.items()))
    missing = {k: {"count": int(counts[k]), "examples": ex} for k, ex in sorted(tolerated.examples.items()) if counts[k]}
    rows = writers.rows
    return {
        "provenance": provenance(command, filters=filters.as_dict()),
        # relative to the index folder: no absolute paths, and the index moves with the data
        "roots": roots.as_dict(relative_to=out),
        "filters": filters.as_dict(),
        "rows": {"qa": rows["qa"], "studies": rows["studies"], "nodes": rows["nodes"],
                 "qa_by_split": dict(sorted(writers.split_rows.items()))},
        "tolerance": tolerance,
        "missing": missing,
        "tolerance_policy": {
            "missing box": "answer_bboxes empty / node bbox null: consumers use the whole image (counted here)",
            "fallback box": "a parent region's box released by the dataset (is_fallback): used as given, counted",
            "unknown region or entity": "mapped to the vocabulary's unknown index by consumers, counted here",
            "missing study": "studies of the QBA study list absent from the split file, question metadata of studies "
                             "absent from the study list, studies without qa.json or scene graph: left out or "
                             "indexed without, counted with examples under 'missing'",
        },
        "notes": notes,
        "files": files,
        "content_hash": content_hash,
        "read": {"studies": n_studies, "json_bytes": json_bytes},
    }
