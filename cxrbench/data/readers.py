"""Readers and validation for both releases (real and synthetic alike).

- :class:`StudyJson` reads a study's ``scene_graph.json`` / ``metadata.json`` / ``qa.json`` from
  ``scene_data.zip`` / ``qa.zip`` *in place* (never extracted), or from extracted ``scene_data/``
  and ``qa/`` folders; a leading folder inside the zip (``qa/p10/...``) is detected.
- ``read_*_csv`` read the MIMIC-CXR-JPG tables; :func:`read_qba_table` a QBA metadata table
  (Parquet preferred, ``.csv.gz`` otherwise), accepting the column spellings of
  ``layout.QBA_ALIASES``.
- Validation raises :class:`~cxrbench.errors.DataError` naming file, record and problem:
  malformed JSON, missing required fields, unknown split values, boxes with x2 < x1 or y2 < y1
  or outside the image. What the seed says to tolerate is *counted* by the caller instead
  (missing boxes, unknown vocabulary; see :mod:`cxrbench.data.index`).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.errors import DataError

REQUIRED_SCENE_GRAPH = ("observations",)
REQUIRED_OBSERVATION = ("obs_entities", "positiveness", "localization")
REQUIRED_QA = ("questions",)
REQUIRED_QUESTION = ("question_id", "question_type", "question", "answers")
REQUIRED_ANSWER = ("answer_type", "text")
BOX_TOLERANCE = 0.005  # boxes may exceed the image by 0.5% of its size (min 2 px): rounding of derived boxes


# ----------------------------------------------------------------------------------------------
# JSON members of the zips / folders


class StudyJson:
    """Per-study JSON of one QBA tree, from the zips or from extracted folders."""

    def __init__(self, qba_root: str | Path):
        self.root = Path(qba_root)
        self._zips: dict[str, zipfile.ZipFile] = {}
        self._prefix: dict[str, str] = {}
        self.bytes_read = 0

    def _source(self, kind: str) -> tuple[str, Path]:
        """("zip", path) or ("dir", path) holding members of ``kind`` (qa / scene_graph / metadata)."""
        name = "qa" if kind == "qa" else "scene_data"
        z = self.root / f"{name}.zip"
        if z.exists():
            return "zip", z
        d = self.root / name
        if d.is_dir():
            return "dir", d
        raise DataError(str(self.root), None, f"neither {name}.zip nor an extracted {name}/ folder found")

    def _zip(self, path: Path) -> zipfile.ZipFile:
        key = str(path)
        zf = self._zips.get(key)
        if zf is None:
            try:
                zf = zipfile.ZipFile(path)
            except zipfile.BadZipFile as err:
                raise DataError(key, None, f"not a valid zip file: {err}") from None
            self._zips[key] = zf
            prefix = ""
            for name in zf.namelist():
                m = L.STUDY_RE.search(name)
                if m:
                    prefix = name[: m.start() + (1 if name[m.start()] == "/" else 0)]
                    break
            self._prefix[key] = prefix
        return zf

    def member_name(self, subject_id: int, study_id: int, kind: str) -> str:
        src, path = self._source(kind)
        rel = L.study_member(subject_id, study_id, kind)
        if src == "zip":
            self._zip(path)
            return f"{path.name}:{self._prefix[str(path)]}{rel}"
        return str(path / rel)

    def read_bytes(self, subject_id: int, study_id: int, kind: str) -> tuple[bytes, str] | None:
        """(raw bytes, display name of the file) or None when the study has no such member."""
        src, path = self._source(kind)
        rel = L.study_member(subject_id, study_id, kind)
        if src == "zip":
            zf = self._zip(path)
            name = self._prefix[str(path)] + rel
            try:
                data = zf.read(name)
            except KeyError:
                return None
            label = f"{path}:{name}"
        else:
            p = path / rel
            if not p.exists():
                return None
            data = p.read_bytes()
            label = str(p)
        self.bytes_read += len(data)
        return data, label

    def load(self, subject_id: int, study_id: int, kind: str) -> tuple[dict, str] | None:
        got = self.read_bytes(subject_id, study_id, kind)
        if got is None:
            return None
        data, label = got
        return parse_json(data, label), label

    def studies(self, kind: str = "qa") -> Iterator[tuple[int, int]]:
        """(subject_id, study_id) of every study with a ``kind`` member, in listing order."""
        src, path = self._source(kind)
        if src == "zip":
            names: Iterable[str] = self._zip(path).namelist()
        else:
            names = (str(p.relative_to(path)) for p in sorted(path.rglob(f"*.{kind}.json")))
        for n in names:
            m = L.STUDY_RE.search(n)
            if m and m.group(4) == kind:
                yield int(m.group(2)), int(m.group(3))

    def close(self) -> None:
        for z in self._zips.values():
            z.close()
        self._zips.clear()


def parse_json(data: bytes, file: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise DataError(file, f"char {err.pos}", f"malformed JSON: {err.msg}") from None


# ----------------------------------------------------------------------------------------------
# validation


def require(obj: Any, fields: Sequence[str], file: str, record: str) -> None:
    if type(obj) is not dict and not isinstance(obj, Mapping):
        raise DataError(file, record, f"expected a JSON object, got {type(obj).__name__}")
    for f in fields:
        if f not in obj:
            raise DataError(file, record, f"missing required field {f!r}")


def check_box(box: Any, width: float | None, height: float | None, file: str, record: str) -> list[float]:
    """A box ``[x1, y1, x2, y2]`` in pixels of its image: four numbers, x1 <= x2, y1 <= y2, inside
    the image up to ``BOX_TOLERANCE``. Returns it as floats."""
    try:
        if type(box) is not list and type(box) is not tuple:
            raise TypeError
        x1, y1, x2, y2 = box
        x1, y1, x2, y2 = float(x1), float(y1), float(x2), float(y2)
    except (TypeError, ValueError):
        raise DataError(file, record, f"bbox {box!r} is not four numbers [x1, y1, x2, y2]") from None
    if x2 < x1:
        raise DataError(file, record, f"bbox {list(box)} has x2 < x1")
    if y2 < y1:
        raise DataError(file, record, f"bbox {list(box)} has y2 < y1")
    if width is not None and height is not None:
        tx, ty = max(2.0, BOX_TOLERANCE * width), max(2.0, BOX_TOLERANCE * height)
        if x1 < -tx or y1 < -ty or x2 > width + tx or y2 > height + ty:
            raise DataError(file, record, f"bbox {list(box)} lies outside the {width:g}x{height:g} image")
    return [x1, y1, x2, y2]


def check_localization(loc: Any, sizes: Mapping[str, tuple[float, float]], file: str, record: str) -> None:
    """Validate every box of a ``localization`` mapping (image_id -> {bboxes, ...})."""
    if not loc:
        return
    if type(loc) is not dict:
        raise DataError(file, record, f"'localization' must map image ids to objects, got {type(loc).__name__}")
    for iid, item in loc.items():
        if type(item) is not dict:
            raise DataError(file, f"{record}, image {iid}", "localization entry is not an object")
        boxes = item.get("bboxes")
        if boxes:
            w, h = sizes.get(iid, (None, None))
            for box in boxes:
                check_box(box, w, h, file, f"{record}, image {iid}")


def validate_scene_graph(doc: Any, file: str, sizes: Mapping[str, tuple[float, float]]) -> None:
    require(doc, REQUIRED_SCENE_GRAPH, file, "scene graph")
    obs = doc["observations"]
    if type(obs) is not dict:
        raise DataError(file, "scene graph", "'observations' must be an object keyed by obs_id")
    for oid, o in obs.items():
        require(o, REQUIRED_OBSERVATION, file, f"observation {oid}")
        check_localization(o["localization"], sizes, file, f"observation {oid}")
    for name, r in (doc.get("regions") or {}).items():
        if type(r) is dict:
            check_localization(r.get("localization"), sizes, file, f"region {name}")


def validate_qa(doc: Any, file: str, sizes: Mapping[str, tuple[float, float]]) -> None:
    require(doc, REQUIRED_QA, file, "qa")
    if type(doc["questions"]) is not list:
        raise DataError(file, "qa", "'questions' must be a list")
    for i, q in enumerate(doc["questions"]):
        qid = q.get("question_id", f"#{i}") if type(q) is dict else f"#{i}"
        require(q, REQUIRED_QUESTION, file, f"question {qid}")
        stack = [(q["answers"], "answers")]
        while stack:
            answers, key = stack.pop()
            if type(answers) is not list:
                raise DataError(file, f"question {qid}", f"'{key}' must be a list")
            for j, a in enumerate(answers):
                if type(a) is not dict or "answer_type" not in a or "text" not in a:
                    aid = a.get("answer_id", f"#{j}") if type(a) is dict else f"#{j}"
                    require(a, REQUIRED_ANSWER, file, f"question {qid}, answer {aid}")
                loc = a.get("localization")
                if loc:
                    check_localization(loc, sizes, file, f"question {qid}, answer {a.get('answer_id', f'#{j}')}")
                subs = a.get("sub_answers")
                if subs:
                    stack.append((subs, "sub_answers"))


# ----------------------------------------------------------------------------------------------
# MIMIC-CXR-JPG tables


def _read_csv(path: Path, **kw: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kw)
    except FileNotFoundError:
        raise DataError(str(path), None, "file not found") from None
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as err:
        raise DataError(str(path), None, f"unreadable CSV: {err}") from None


def _need(df: pd.DataFrame, cols: Iterable[str], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(str(path), "header", f"missing column(s) {', '.join(missing)}")


def read_split_csv(path: str | Path) -> pd.DataFrame:
    """``mimic-cxr-2.0.0-split.csv.gz``: dicom_id, study_id, subject_id, split (validated)."""
    path = Path(path)
    df = _read_csv(path, dtype={"dicom_id": str, "split": str})
    _need(df, L.SPLIT_COLUMNS, path)
    bad = ~df["split"].isin(vocab.SPLITS)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(str(path), f"row {i + 2} (dicom_id {df['dicom_id'].iloc[i]})",
                        f"unknown split value {df['split'].iloc[i]!r} (expected one of {', '.join(vocab.SPLITS)})")
    return df[list(L.SPLIT_COLUMNS)].astype({"study_id": "int64", "subject_id": "int64"})


def read_metadata_csv(path: str | Path) -> pd.DataFrame:
    """``mimic-cxr-2.0.0-metadata.csv.gz``: the columns cxrbench uses, validated."""
    path = Path(path)
    cols = ["dicom_id", "subject_id", "study_id", "ViewPosition", "Rows", "Columns"]
    df = _read_csv(path, dtype={"dicom_id": str, "ViewPosition": str}, usecols=lambda c: c in cols)
    _need(df, cols, path)
    for c in ("Rows", "Columns"):
        bad = ~(pd.to_numeric(df[c], errors="coerce") > 0)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(str(path), f"row {i + 2} (dicom_id {df['dicom_id'].iloc[i]})", f"{c} must be a positive integer, got {df[c].iloc[i]!r}")
    return df.astype({"subject_id": "int64", "study_id": "int64", "Rows": "int64", "Columns": "int64"})


# ----------------------------------------------------------------------------------------------
# QBA metadata tables


def qba_table_path(qba_root: str | Path, table: str) -> Path | None:
    meta = Path(qba_root) / L.METADATA_DIR
    for ext in (".parquet", ".csv.gz"):
        p = meta / f"{table}_metadata{ext}"
        if p.exists():
            return p
    return None


def resolve_columns(names: Sequence[str], wanted: Sequence[str], path: str) -> dict[str, str]:
    """Canonical column -> actual column name, using ``layout.QBA_ALIASES``."""
    out = {}
    for w in wanted:
        for alias in L.QBA_ALIASES.get(w, (w,)):
            if alias in names:
                out[w] = alias
                break
        else:
            raise DataError(path, "header", f"missing column {w!r} (accepted spellings: {', '.join(L.QBA_ALIASES.get(w, (w,)))})")
    return out


@dataclass
class QBATable:
    """A QBA metadata table opened for column-wise, batch-wise reading."""

    path: Path
    columns: dict[str, str] = field(default_factory=dict)

    def iter_batches(self, wanted: Sequence[str], batch_size: int = 65536) -> Iterator[pa.Table]:
        """Batches with the canonical column names ``wanted`` (memory: one batch at a time)."""
        if self.path.suffix == ".parquet":
            pf = pq.ParquetFile(self.path)
            names = pf.schema_arrow.names
            cols = resolve_columns(names, wanted, str(self.path))
            for b in pf.iter_batches(batch_size=batch_size, columns=list(cols.values())):
                t = pa.Table.from_batches([b])
                yield t.rename_columns([next(k for k, v in cols.items() if v == n) for n in t.column_names])
        else:
            import pyarrow.csv as pacsv

            reader = pacsv.open_csv(self.path, read_options=pacsv.ReadOptions(block_size=1 << 24),
                                    convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
            names = reader.schema.names
            cols = resolve_columns(names, wanted, str(self.path))
            for b in reader:
                t = pa.Table.from_batches([b]).select(list(cols.values()))
                yield t.rename_columns([next(k for k, v in cols.items() if v == n) for n in t.column_names])

    def read(self, wanted: Sequence[str]) -> pd.DataFrame:
        tables = list(self.iter_batches(wanted))
        if not tables:
            return pd.DataFrame(columns=list(wanted))
        return pa.concat_tables(tables).to_pandas()


def read_qba_table(qba_root: str | Path, table: str) -> QBATable | None:
    p = qba_table_path(qba_root, table)
    return QBATable(p) if p is not None else None
