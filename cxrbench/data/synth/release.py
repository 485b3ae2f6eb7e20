"""Writing the two release trees (and the clean truth) deterministically and incrementally.

Byte-identical output for a seed: zip entries sorted with a fixed timestamp and attributes,
gzip with ``mtime=0`` and no file name, Parquet with fixed writer options and a fixed schema,
JSON with sorted keys where we write it ourselves, rows in (subject, study) order. Tables are
streamed (one Parquet row group and one CSV chunk per batch of studies), so the generator's
memory does not grow with the number of patients.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.data.quality import mapping_csv
from cxrbench.data.synth import lexicon as X
from cxrbench.data.synth.encoding import Encoding, StudyIds, csv_table
from cxrbench.data.synth.patient import StudyRecord
from cxrbench.io import dumps_json

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
S, I64, I32, I8, F64, B = pa.string(), pa.int64(), pa.int32(), pa.int8(), pa.float64(), pa.bool_()

SCHEMAS: dict[str, pa.Schema] = {  # the MIMIC-CXR-JPG tables and the truth (the QBA tables: encoding.py)
    "jpg_metadata": pa.schema([("dicom_id", S), ("subject_id", I64), ("study_id", I64), ("PerformedProcedureStepDescription", S),
                               ("ViewPosition", S), ("Rows", I64), ("Columns", I64), ("StudyDate", I64), ("StudyTime", F64),
                               ("ProcedureCodeSequence_CodeMeaning", S), ("ViewCodeSequence_CodeMeaning", S),
                               ("PatientOrientationCodeSequence_CodeMeaning", S)]),
    "jpg_split": pa.schema([("dicom_id", S), ("study_id", I64), ("subject_id", I64), ("split", S)]),
    "truth_findings": pa.schema([("study_id", I64), ("subject_id", I64), ("entity", S), ("side", S), ("severity", I8),
                                 ("regions", pa.list_(S)), ("probability", S), ("change", S), ("drawn", S)]),
    "truth_boxes": pa.schema([("study_id", I64), ("image_id", S), ("obs_id", S), ("region", S),
                              ("clean_bbox", pa.list_(F64)), ("bbox", pa.list_(F64)), ("noise", S)]),
}
assert tuple(SCHEMAS["jpg_metadata"].names) == L.METADATA_COLUMNS and tuple(SCHEMAS["jpg_split"].names) == L.SPLIT_COLUMNS


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


class TableSink:
    """One table written as ``.parquet`` and/or ``.csv.gz``, a batch at a time (list columns as JSON text in the CSV)."""

    def __init__(self, stem: Path, schema: pa.Schema, parquet: bool = True, csv_gz: bool = True):
        stem.parent.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.pq = pq.ParquetWriter(str(stem) + ".parquet", schema, compression="zstd", write_statistics=True) if parquet else None
        self._csv_file = open(str(stem) + ".csv.gz", "wb") if csv_gz else None
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._csv_file, mtime=0, compresslevel=6) if csv_gz else None
        self._csv = pacsv.CSVWriter(self._gz, csv_table(schema.empty_table()).schema) if csv_gz else None
        self.rows = 0

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=self.schema)
        if self.pq is not None:
            self.pq.write_table(table)
        if self._csv is not None:
            self._csv.write_table(csv_table(table))
        self.rows += len(rows)

    def close(self) -> None:
        if self.pq is not None:
            self.pq.close()
        if self._csv is not None:
            self._csv.close()
            self._gz.close()
            self._csv_file.close()


class ZipSink:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.zf = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.last = ""

    def add(self, name: str, data: bytes) -> None:
        if name <= self.last:
            raise RuntimeError(f"zip entries must be written in sorted order: {name} after {self.last}")
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        info.create_system = 3
        self.zf.writestr(info, data)
        self.last = name

    def close(self) -> None:
        self.zf.close()


class QBASink:
    """Metadata tables + the two zips of one QBA tree (the full release or an export), in an encoding."""

    def __init__(self, root: Path, enc: Encoding, zips: bool = True):
        self.root, self.enc = root, enc
        meta = root / L.METADATA_DIR if zips else root  # metadata-only subsets are themselves metadata folders
        self.tables = {t: TableSink(meta / f"{t}_metadata", enc.schema(t)) for t in L.QBA_TABLES}
        self.scene = ZipSink(root / L.SCENE_ZIP) if zips else None
        self.qa = ZipSink(root / L.QA_ZIP) if zips else None
        self.buffer: dict[str, list[dict]] = {t: [] for t in L.QBA_TABLES}
        self.ids: dict[str, StudyIds | None] = {}

    def add_rows(self, rows: dict[str, list[dict]], study_key: str | None = None, ids: StudyIds | None = None) -> None:
        for t in L.QBA_TABLES:
            self.buffer[t].extend(rows.get(t, ()))
        if study_key is not None:
            self.ids[study_key] = ids

    def add_json(self, subject_id: int, study_id: int, scene_graph: bytes, metadata: bytes, qa: bytes) -> None:
        enc = self.enc
        self.scene.add(enc.member("scene_data", subject_id, study_id, "metadata"), metadata)
        self.scene.add(enc.member("scene_data", subject_id, study_id, "scene_graph"), scene_graph)
        self.qa.add(enc.member("qa", subject_id, study_id, "qa"), qa)

    def flush(self) -> None:
        for t in L.QBA_TABLES:
            self.tables[t].write(self.enc.rows(t, self.buffer[t], self.ids))
            self.buffer[t] = []
        self.ids = {}

    def close(self) -> None:
        self.flush()
        for t in self.tables.values():
            t.close()
        for z in (self.scene, self.qa):
            if z is not None:
                z.close()


def dataset_info() -> dict[str, Any]:
    """``metadata/dataset_info.json`` of the synthetic release (keys documented in docs/data.md)."""
    from cxrbench.questions import QUESTION_TYPES

    return {
        "dataset": "MIMIC-Ext-CXR-QBA (synthetic, cxrbench)",
        "version": "1.0.0",
        "regions": [r.name for r in X.REGIONS],
        "region_info": {r.name: {"parent": r.parent, "laterality": r.laterality, "localized": r.localized} for r in X.REGIONS},
        "finding_entities": [e.name for e in X.ENTITIES],
        "entity_info": {e.name: {"categories": list(e.categories), "subcategories": list(e.subcategories),
                                 "default_regions": list(e.default_regions)} for e in X.ENTITIES},
        "categories": list(X.CATEGORIES),
        "subcategories": list(X.SUBCATEGORIES),
        "answer_types": list(X.ANSWER_TYPES),
        "modifier_types": {k: list(v) for k, v in X.MODIFIER_VALUES.items()},
        "probabilities": list(X.PROBABILITIES),
        "certainties": list(X.CERTAINTIES),
        "positiveness": list(X.POSITIVENESS),
        "changes": list(X.CHANGES),
        "child_types": list(X.CHILD_TYPES),
        "region_relation_types": list(X.REGION_RELATION_TYPES),
        "question_types": {s: [q.short for q in QUESTION_TYPES if q.strategy == s]
                           for s in dict.fromkeys(q.strategy for q in QUESTION_TYPES)},
    }


def _fmt_label(v: float | None) -> str:
    return "" if v is None else f"{v:.1f}"


def write_label_csv(path: Path, header: list[str], rows: Iterable[list[Any]], gz: bool) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow(r)
    data = buf.getvalue().encode()
    path.write_bytes(gzip_bytes(data) if gz else data)


class ReleaseWriter:
    """Writes everything under ``out`` as studies arrive (in subject, study order)."""

    FLUSH_EVERY = 64  # studies per Parquet row group / CSV chunk (fixed: the output must not depend on timing)

    def __init__(self, out: Path, enc: Encoding):
        self.out = out
        self.jpg = out / L.JPG_DIR
        self.qba = out / L.QBA_DIR
        self.truth = out / L.TRUTH_DIR
        for d in (self.jpg, self.qba, self.truth):
            d.mkdir(parents=True, exist_ok=True)
        self.full = QBASink(self.qba, enc)
        self.exports = {name: QBASink(self.qba / L.EXPORTS_DIR / name, enc) for name in L.EXPORTS}
        self.subsets = {(e, sub): QBASink(self.qba / L.EXPORTS_DIR / e / L.METADATA_DIR / sub, enc, zips=False)
                        for e, subs in L.EXPORT_SUBSETS.items() for sub in subs}
        self.jpg_tables = {"jpg_metadata": [], "jpg_split": []}
        self.jpg_meta = pq_free_csv_sink(self.jpg / L.METADATA_CSV, SCHEMAS["jpg_metadata"])
        self.jpg_split = pq_free_csv_sink(self.jpg / L.SPLIT_CSV, SCHEMAS["jpg_split"])
        self.truth_sinks = {k: TableSink(self.truth / k, SCHEMAS[f"truth_{k}"], csv_gz=False) for k in ("findings", "boxes")}
        self.truth_buffer: dict[str, list[dict]] = {"findings": [], "boxes": []}
        self.image_paths: list[str] = []
        self.labels: list[tuple[int, int, str, list, list]] = []
        self.patients: dict[int, dict] = {}
        self.kept_patients: dict[object, set[str]] = {k: set() for k in (*self.exports, *self.subsets)}
        self.n = 0

    def add(self, rec: StudyRecord) -> None:
        for rel, data in rec.image_files:
            p = self.jpg / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            self.image_paths.append(rel)
        key = f"s{rec.study_id}"
        self.full.add_rows(rec.rows, key, rec.ids)
        self.full.add_json(rec.subject_id, rec.study_id, rec.scene_graph, rec.study_metadata_json, rec.qa)
        for name, ex in rec.exports.items():
            sink = self.exports[name]
            sink.add_rows(ex["rows"], key, rec.ids)
            sink.add_json(rec.subject_id, rec.study_id, rec.scene_graph, rec.study_metadata_json, ex["qa"])
            self.kept_patients[name].add(f"p{rec.subject_id}")
            for sub, threshold in L.EXPORT_SUBSETS.get(name, {}).items():
                sub_rows = _subset_rows(ex["rows"], threshold)
                self.subsets[(name, sub)].add_rows(sub_rows, key, rec.ids)
                if sub_rows["question"]:
                    self.kept_patients[(name, sub)].add(f"p{rec.subject_id}")
        self.jpg_tables["jpg_metadata"].extend(rec.rows["jpg_metadata"])
        self.jpg_tables["jpg_split"].extend(rec.rows["jpg_split"])
        for k in self.truth_buffer:
            self.truth_buffer[k].extend(rec.truth.get(k, ()))
        self.labels.append((rec.subject_id, rec.study_id, rec.split, rec.chexpert_graph, rec.chexpert_gold))
        p = self.patients.setdefault(rec.subject_id, {"split": rec.split, "n": 0})
        ts = rec.rows["study"][0]["timestamp_since_first"]
        p["n"] += 1
        p["span"] = max(p.get("span", 0.0), ts)
        self.n += 1
        if self.n % self.FLUSH_EVERY == 0:
            self.flush()

    def flush(self) -> None:
        self.full.flush()
        for s in (*self.exports.values(), *self.subsets.values()):
            s.flush()
        self.jpg_meta.write(self.jpg_tables["jpg_metadata"])
        self.jpg_split.write(self.jpg_tables["jpg_split"])
        self.jpg_tables = {"jpg_metadata": [], "jpg_split": []}
        for k, rows in self.truth_buffer.items():
            self.truth_sinks[k].write(rows)
            self.truth_buffer[k] = []

    def close(self, chexpert_rows: list[list[Any]], negbio_rows: list[list[Any]], gold_rows: list[list[Any]],
              truth_labels: list[dict], generator_info: dict) -> None:
        self.flush()
        prows = [{"patient_id": f"p{sid}", "split": p["split"], "total_studies": p["n"], "total_study_timespan": p.get("span", 0.0)}
                 for sid, p in sorted(self.patients.items())]
        self.full.tables["patient"].write(prows)
        for key, sink in (*self.exports.items(), *self.subsets.items()):
            sink.tables["patient"].write([r for r in prows if r["patient_id"] in self.kept_patients[key]])
        self.full.close()
        for s in (*self.exports.values(), *self.subsets.values()):
            s.close()
        self.jpg_meta.close()
        self.jpg_split.close()
        for s in self.truth_sinks.values():
            s.close()
        (self.jpg / L.IMAGE_FILENAMES).write_text("".join(p + "\n" for p in self.image_paths))
        header = ["subject_id", "study_id", *vocab.CHEXPERT_LABELS]
        write_label_csv(self.jpg / L.CHEXPERT_CSV, header, chexpert_rows, gz=True)
        write_label_csv(self.jpg / L.NEGBIO_CSV, header, negbio_rows, gz=True)
        gold_header = ["study_id", *[("Airspace Opacity" if label == "Lung Opacity" else label) for label in vocab.CHEXPERT_LABELS]]
        write_label_csv(self.jpg / L.GOLD_CSV, gold_header, gold_rows, gz=False)
        (self.qba / L.METADATA_DIR / L.DATASET_INFO).write_text(dumps_json(dataset_info()))
        (self.qba / L.QUALITY_MAPPINGS).write_text(mapping_csv())
        t = pa.Table.from_pylist(truth_labels, schema=pa.schema([
            ("study_id", I64), ("label", S), ("graph", F64), ("chexpert", F64), ("negbio", F64), ("reason_chexpert", S),
            ("reason_negbio", S)]))
        pq.write_table(t, self.truth / "chexpert_noise.parquet", compression="zstd")
        (self.truth / "generator.json").write_text(dumps_json(generator_info))
        (self.truth / "README.md").write_text(TRUTH_README)


def pq_free_csv_sink(path: Path, schema: pa.Schema) -> TableSink:
    stem = Path(str(path)[: -len(".csv.gz")])
    return TableSink(stem, schema, parquet=False)


def _subset_rows(rows: dict[str, list[dict]], threshold: str) -> dict[str, list[dict]]:
    from cxrbench.data.quality import RATING_CODES

    keep_q = {r["question_id"] for r in rows["question"] if r["quality"] >= RATING_CODES[threshold]}
    out = {t: [r for r in rows[t] if "question_id" not in r or r["question_id"] in keep_q] for t in L.QBA_TABLES if t != "patient"}
    if not keep_q:
        out["study"], out["image"] = [], []
    return out


TRUTH_README = """# synthetic_truth

Written by `cxrbench synth` beside the two release trees. The readers never need it; it holds
what the release does not know, so error analysis can measure how scene-graph noise propagates.

- `findings.parquet`: the true positive findings of every study (entity, side, severity 1-3 or
  0, regions whose box the pattern is drawn in, how the report words it, change vs the previous
  study, and how it is drawn: a render pattern or `anatomy` for cardiomegaly, mediastinal
  widening, low lung volumes, rotation and rib fractures). Everything not listed is absent.
- `boxes.parquet`: every observation box per image with its clean box, the released box and the
  noise applied: `none`, `displaced` (shifted by 25-60% of its size), `missing` (no box
  released, the region listed in `missing_localization`) or `fallback` (the parent region's
  box released, `is_fallback: true`).
- `chexpert_noise.parquet`: per study and CheXpert label, the value derived from the scene
  graph (`graph`, NaN = blank), the released CheXpert and NegBio values, and why they differ
  (`labeler_miss`, `uncertain_phrase`, `negation_error`, `spurious_mention`, `not_labelled`).
- `generator.json`: seed, sizes, noise rates asked for and realised.
"""
