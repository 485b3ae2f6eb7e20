"""Readers and validation for both releases (real and synthetic alike).

- :class:`StudyJson` reads a study's ``scene_graph.json`` / ``metadata.json`` / ``qa.json`` from
  ``scene_data.zip`` / ``qa.zip`` *in place* (never extracted), or from extracted ``scene_data/``
  and ``qa/`` folders; a leading folder inside the zip (``qa/p10/...``) is detected.
- :func:`read_csv` is the one CSV reader; ``read_*_csv`` read the MIMIC-CXR-JPG tables;
  :func:`read_qba_table` a QBA metadata table (Parquet preferred, ``.csv.gz`` otherwise), its
  columns found by meaning (``layout.column_meaning``), the id columns as plain columns or as
  the Parquet file's pandas index.
- Validation raises :class:`~cxrbench.errors.DataError` naming file, record and problem:
  malformed JSON, missing required fields, unknown split values, boxes with x2 < x1 or y2 < y1
  or outside the image. What the seed says to tolerate is *counted* by the caller instead
  (missing boxes, unknown vocabulary; see :mod:`cxrbench.data.index`).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.errors import DataError, reading

REQUIRED_SCENE_GRAPH = ("observations",)
REQUIRED_OBSERVATION = ("obs_entities", "positiveness", "localization")
REQUIRED_QA = ("questions",)
REQUIRED_QUESTION = ("question_id", "question_type", "question", "answers")
REQUIRED_ANSWER = ("answer_type", "text")
BOX_TOLERANCE = 0.005  # boxes may exceed the image by 0.5% of its size (min 2 px): rounding of derived boxes


# ----------------------------------------------------------------------------------------------
# JSON members of the zips / folders


class StudyJson:
    """Per-study JSON of one QBA tree, from the zips or from extracted folders.

    Zip members are found with or without a top folder (``qa/p10/p10000032/s50414267.qa.json``
    as in the release, or ``p10/...``). Any failure to read a member (a damaged deflate stream,
    a truncated zip) is a one-line ``DataError`` naming the member.
    """

    def __init__(self, qba_root: str | Path):
        self.root = Path(qba_root)
        self._zips: dict[str, zipfile.ZipFile] = {}
        self._prefix: dict[str, str] = {}
        self._sources: dict[str, tuple[str, Path]] = {}
        self.bytes_read = 0

    def _source(self, kind: str) -> tuple[str, Path]:
        """("zip", path) or ("dir", path) holding members of ``kind`` (qa / scene_graph / metadata)."""
        name = "qa" if kind == "qa" else "scene_data"
        got = self._sources.get(name)
        if got is None:
            z, d = self.root / f"{name}.zip", self.root / name
            if z.exists():
                got = ("zip", z)
            elif d.is_dir():
                got = ("dir", d)
            else:
                raise DataError(str(self.root), None, f"neither {name}.zip nor an extracted {name}/ folder found")
            self._sources[name] = got
        return got

    def _zip(self, path: Path) -> zipfile.ZipFile:
        key = str(path)
        zf = self._zips.get(key)
        if zf is None:
            with reading(path, what="zip file"):
                zf = zipfile.ZipFile(path)
                names = zf.namelist()
            self._zips[key] = zf
            self._prefix[key] = top_folder(names)
        return zf

    def top_folder(self, kind: str) -> str | None:
        """The folder the members of ``kind`` sit in inside their zip ("" for none), None for folders."""
        src, path = self._source(kind)
        if src != "zip":
            return None
        self._zip(path)
        return self._prefix[str(path)]

    def member_name(self, subject_id: int, study_id: int, kind: str) -> str:
        src, path = self._source(kind)
        rel = L.study_member(subject_id, study_id, kind)
        if src == "zip":
            self._zip(path)
            return f"{path}:{self._prefix[str(path)]}{rel}"
        return str(path / rel)

    def read_bytes(self, subject_id: int, study_id: int, kind: str) -> tuple[bytes, str] | None:
        """(raw bytes, display name of the file) or None when the study has no such member."""
        src, path = self._source(kind)
        rel = L.study_member(subject_id, study_id, kind)
        if src == "zip":
            zf = self._zip(path)
            name = self._prefix[str(path)] + rel
            label = f"{path}:{name}"
            try:
                info = zf.getinfo(name)
            except KeyError:
                return None
            with reading(label, what="zip member"):
                data = zf.read(info)
        else:
            p = path / rel
            label = str(p)
            if not p.exists():
                return None
            with reading(label):
                data = p.read_bytes()
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


def top_folder(names: Iterable[str]) -> str:
    """The folder in front of the study members of a zip listing ("qa/" in the release, or "")."""
    for name in names:
        m = L.STUDY_RE.search(name)
        if m:
            return name[: m.start() + (1 if name[m.start()] == "/" else 0)]
    return ""


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
    """A box ``[x1, y1, x2, y2]`` in pixels of its image: four finite JSON numbers (not strings, not
    booleans), x1 <= x2, y1 <= y2, inside the image up to ``BOX_TOLERANCE``. Returns it as floats."""
    try:
        if type(box) is not list and type(box) is not tuple:
            raise TypeError
        x1, y1, x2, y2 = box
        if not all(type(v) is float or type(v) is int for v in box) or not all(math.isfinite(v) for v in box):
            raise TypeError
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


class Sizes:
    """The images of a study with the box limits each allows (``BOX_TOLERANCE``), computed once per study."""

    _UNBOUNDED = (float("-inf"), float("-inf"), float("inf"), float("inf"))

    def __init__(self, sizes: Mapping[str, tuple[float, float]]):
        self.sizes = dict(sizes)
        self.limits = {}
        for iid, (w, h) in self.sizes.items():
            tx, ty = max(2.0, BOX_TOLERANCE * w), max(2.0, BOX_TOLERANCE * h)
            self.limits[iid] = (-tx, -ty, w + tx, h + ty)

    def get(self, iid: str, default=(None, None)):
        return self.sizes.get(iid, default)

    def check(self, iid: str, boxes: Any, file: str, record: Callable[[], str]) -> None:
        """Every box of ``boxes`` on image ``iid`` (the common case in one comparison chain per box;
        :func:`check_box` words the error)."""
        lo_x, lo_y, hi_x, hi_y = self.limits.get(iid, self._UNBOUNDED)
        try:
            for box in boxes:
                x1, y1, x2, y2 = box
                if not (lo_x <= x1 <= x2 <= hi_x and lo_y <= y1 <= y2 <= hi_y) or bool in (type(x1), type(y1), type(x2), type(y2)):
                    raise ValueError
        except (TypeError, ValueError):
            if type(boxes) is not list:
                raise DataError(file, f"{record()}, image {iid}", "'bboxes' must be a list of boxes") from None
            w, h = self.sizes.get(iid, (None, None))
            for box in boxes:
                check_box(box, w, h, file, f"{record()}, image {iid}")


def _boxes_ok(loc: Any, limits: Mapping[str, tuple[float, float, float, float]]) -> bool:
    """The common case of :func:`check_localization` in one loop: every box of a localization
    mapping four numbers in order inside its image. False sends the caller to the wording path."""
    unbounded = Sizes._UNBOUNDED
    try:
        for iid, item in loc.items():
            boxes = item.get("bboxes")
            if boxes:
                lo_x, lo_y, hi_x, hi_y = limits.get(iid, unbounded)
                for x1, y1, x2, y2 in boxes:
                    if not (lo_x <= x1 <= x2 <= hi_x and lo_y <= y1 <= y2 <= hi_y) or \
                            bool in (type(x1), type(y1), type(x2), type(y2)):
                        return False
    except (AttributeError, TypeError, ValueError):
        return False
    return True


def _sizes(sizes: Mapping[str, tuple[float, float]] | Sizes) -> Sizes:
    return sizes if isinstance(sizes, Sizes) else Sizes(sizes)


def check_localization(loc: Any, sizes: Mapping[str, tuple[float, float]] | Sizes, file: str,
                       record: str | Callable[[], str]) -> None:
    """Validate every box of a ``localization`` mapping (image_id -> {bboxes, ...}). ``record``
    may be a function that words the record (only called when there is a problem)."""
    if not loc:
        return
    rec = record if callable(record) else (lambda: record)
    if type(loc) is not dict:
        raise DataError(file, rec(), f"'localization' must map image ids to objects, got {type(loc).__name__}")
    sz = _sizes(sizes)
    for iid, item in loc.items():
        if type(item) is not dict:
            raise DataError(file, f"{rec()}, image {iid}", "localization entry is not an object")
        boxes = item.get("bboxes")
        if boxes:
            sz.check(iid, boxes, file, rec)


def validate_scene_graph(doc: Any, file: str, sizes: Mapping[str, tuple[float, float]] | Sizes) -> None:
    require(doc, REQUIRED_SCENE_GRAPH, file, "scene graph")
    obs = doc["observations"]
    if type(obs) is not dict:
        raise DataError(file, "scene graph", "'observations' must be an object keyed by obs_id")
    sz = _sizes(sizes)
    for oid, o in obs.items():
        if type(o) is not dict or "obs_entities" not in o or "positiveness" not in o or "localization" not in o:
            require(o, REQUIRED_OBSERVATION, file, f"observation {oid}")
        loc = o["localization"]
        if loc and not _boxes_ok(loc, sz.limits):
            check_localization(loc, sz, file, lambda oid=oid: f"observation {oid}")
    regions = doc.get("regions") or {}
    if type(regions) is not dict:
        raise DataError(file, "scene graph", "'regions' must be an object keyed by region name")
    for name, r in regions.items():
        if type(r) is dict:
            loc = r.get("localization")
            if loc and not _boxes_ok(loc, sz.limits):
                check_localization(loc, sz, file, lambda name=name: f"region {name}")


def validate_qa(doc: Any, file: str, sizes: Mapping[str, tuple[float, float]] | Sizes) -> None:
    require(doc, REQUIRED_QA, file, "qa")
    if type(doc["questions"]) is not list:
        raise DataError(file, "qa", "'questions' must be a list")
    sz = _sizes(sizes)
    limits = sz.limits
    for i, q in enumerate(doc["questions"]):
        qid = q.get("question_id", f"#{i}") if type(q) is dict else f"#{i}"
        require(q, REQUIRED_QUESTION, file, f"question {qid}")
        stack = [(q["answers"], "answers")]
        while stack:
            answers, key = stack.pop()
            if type(answers) is not list:
                raise DataError(file, f"question {qid}", f"'{key}' must be a list")
            for j, a in enumerate(answers):
                if type(a) is not dict or "answer_type" not in a or type(a.get("text")) is not str:
                    aid = a.get("answer_id", f"#{j}") if type(a) is dict else f"#{j}"
                    require(a, REQUIRED_ANSWER, file, f"question {qid}, answer {aid}")
                    raise DataError(file, f"question {qid}, answer {aid}",
                                    f"'text' must be a string, got {type(a['text']).__name__}")
                loc = a.get("localization")
                if loc and not _boxes_ok(loc, limits):
                    check_localization(loc, sz, file,
                                       lambda j=j, a=a, qid=qid: f"question {qid}, answer {a.get('answer_id', f'#{j}')}")
                subs = a.get("sub_answers")
                if subs:
                    stack.append((subs, "sub_answers"))


# ----------------------------------------------------------------------------------------------
# MIMIC-CXR-JPG tables


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds, so that messages print ``9``, not ``np.int64(9)``."""
    return value.item() if hasattr(value, "dtype") and hasattr(value, "item") else value


def read_csv(path: str | Path, **kw: Any) -> pd.DataFrame:
    """THE CSV reader of the data layer (``pandas.read_csv``, gzip by suffix): any failure to
    read is a one-line ``DataError`` naming the file."""
    path = Path(path)
    with reading(path, what="CSV file"):
        return pd.read_csv(path, **kw)


def _need(df: pd.DataFrame, cols: Iterable[str], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(str(path), "header", f"missing column(s) {', '.join(missing)}")


def read_split_csv(path: str | Path) -> pd.DataFrame:
    """``mimic-cxr-2.0.0-split.csv.gz``: dicom_id, study_id, subject_id, split (validated)."""
    path = Path(path)
    df = read_csv(path, dtype={"dicom_id": str, "split": str})
    _need(df, L.SPLIT_COLUMNS, path)
    bad = ~df["split"].isin(vocab.SPLITS)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(str(path), f"row {i + 2} (dicom_id {df['dicom_id'].iloc[i]})",
                        f"unknown split value {plain(df['split'].iloc[i])!r} (expected one of {', '.join(vocab.SPLITS)})")
    return _int_columns(df[list(L.SPLIT_COLUMNS)], ("study_id", "subject_id"), path)


def read_metadata_csv(path: str | Path) -> pd.DataFrame:
    """``mimic-cxr-2.0.0-metadata.csv.gz``: the columns cxrbench uses, validated."""
    path = Path(path)
    cols = ["dicom_id", "subject_id", "study_id", "ViewPosition", "Rows", "Columns"]
    df = read_csv(path, dtype={"dicom_id": str, "ViewPosition": str}, usecols=lambda c: c in cols)
    _need(df, cols, path)
    for c in ("Rows", "Columns"):
        bad = ~(pd.to_numeric(df[c], errors="coerce") > 0)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(str(path), f"row {i + 2} (dicom_id {df['dicom_id'].iloc[i]})",
                            f"{c} must be a positive integer, got {plain(df[c].iloc[i])!r}")
    return _int_columns(df, ("subject_id", "study_id", "Rows", "Columns"), path)


def _int_columns(df: pd.DataFrame, cols: Sequence[str], path: Path) -> pd.DataFrame:
    """``cols`` as int64; the first value that is not an integer is a ``DataError`` naming its row."""
    out = {}
    for c in cols:
        num = pd.to_numeric(df[c], errors="coerce")
        bad = num.isna() | (num != num.round())
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(str(path), f"row {i + 2}", f"{c} must be an integer, got {plain(df[c].iloc[i])!r}")
        out[c] = num.astype("int64")
    return df.assign(**out)


# ----------------------------------------------------------------------------------------------
# QBA metadata tables


def qba_table_path(qba_root: str | Path, table: str) -> Path | None:
    """``metadata/<table>_metadata.parquet``, else ``.csv.gz`` (the release has both)."""
    meta = Path(qba_root) / L.METADATA_DIR
    for ext in (".parquet", ".csv.gz"):
        p = meta / f"{table}_metadata{ext}"
        if p.exists():
            return p
    return None


def resolve_columns(names: Sequence[str], wanted: Sequence[str], path: str) -> dict[str, str]:
    """Meaning -> actual column name (``layout.column_meaning``; the first column with a meaning wins)."""
    by_meaning: dict[str, str] = {}
    for n in names:
        by_meaning.setdefault(L.column_meaning(n), n)
    out = {}
    for w in wanted:
        if w not in by_meaning:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise DataError(path, "header", f"no column holds {w!r} (columns: {shown})")
        out[w] = by_meaning[w]
    return out


@dataclass
class QBATable:
    """A QBA metadata table opened for column-wise, batch-wise reading. Columns are asked for by
    meaning (``layout.column_meaning``: ``quality`` finds ``study.quality.extraction_rating``);
    the id columns may be ordinary columns or, in Parquet, the stored pandas index."""

    path: Path

    def names(self) -> list[str]:
        """The column names as stored (a Parquet file's pandas index columns included)."""
        with reading(self.path, what=self._what):
            if self.path.suffix == ".parquet":
                return list(pq.ParquetFile(self.path).schema_arrow.names)
            import pyarrow.csv as pacsv

            return list(pacsv.open_csv(self.path, read_options=pacsv.ReadOptions(block_size=1 << 20)).schema.names)

    @property
    def _what(self) -> str:
        return "Parquet file" if self.path.suffix == ".parquet" else "CSV file"

    def iter_batches(self, wanted: Sequence[str], batch_size: int = 65536) -> Iterator[pa.Table]:
        """Batches with the columns ``wanted`` (meanings), named by them (memory: one batch at a time)."""
        with reading(self.path, what=self._what):
            if self.path.suffix == ".parquet":
                pf = pq.ParquetFile(self.path)
                cols = resolve_columns(pf.schema_arrow.names, wanted, str(self.path))
                batches = pf.iter_batches(batch_size=batch_size, columns=list(dict.fromkeys(cols.values())))
            else:
                import pyarrow.csv as pacsv

                reader = pacsv.open_csv(self.path, read_options=pacsv.ReadOptions(block_size=1 << 24),
                                        convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
                cols = resolve_columns(reader.schema.names, wanted, str(self.path))
                batches = reader
            for b in batches:
                t = pa.Table.from_batches([b])
                yield pa.table({w: t.column(cols[w]) for w in wanted})

    def read(self, wanted: Sequence[str]) -> pd.DataFrame:
        tables = list(self.iter_batches(wanted))
        if not tables:
            return pd.DataFrame(columns=list(wanted))
        return pa.concat_tables(tables).to_pandas()


def read_qba_table(qba_root: str | Path, table: str) -> QBATable | None:
    p = qba_table_path(qba_root, table)
    return QBATable(p) if p is not None else None
