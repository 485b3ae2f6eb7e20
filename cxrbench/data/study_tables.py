"""What the index driver knows about every study before its JSON is read: the small tables.

- :func:`load_study_tables`: split, images (view, size) and CheXpert labels of MIMIC-CXR-JPG as
  compact sorted arrays (~100 bytes per study);
- :func:`study_universe`: the (subject, study) pairs of the QBA release (``study_metadata``,
  else the listing of ``qa.zip``);
- :func:`study_grades`: each study's grade from ``study_metadata`` (its rating column, found by
  meaning: ``quality`` or ``study.quality.extraction_rating``);
- :func:`question_groups`: grade, type and strategy per question from ``question_metadata``,
  streamed in row batches and cut into one group per study with numpy (the table is grouped by
  study in (patient, study) order; :class:`NotGrouped` when it is not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cxrbench.data import layout as L
from cxrbench.data.chexpert import read_gold, read_labels
from cxrbench.data.quality import QualityDecoder
from cxrbench.data.readers import StudyJson, read_metadata_csv, read_qba_table, read_split_csv
from cxrbench.errors import DataError

QUESTION_COLUMNS = ("patient_id", "study_id", "question_id", "quality", "question_type", "question_strategy")


@dataclass
class StudyTables:
    """Per-study facts from the small tables, as compact sorted arrays."""

    study_ids: np.ndarray          # sorted int64
    subject_ids: np.ndarray
    split: np.ndarray              # object (str)
    img_start: np.ndarray          # images of study i: img_*[img_start[i]:img_start[i+1]]
    img_dicom: np.ndarray
    img_view: np.ndarray
    img_w: np.ndarray
    img_h: np.ndarray
    chexpert: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    gold: dict[int, np.ndarray] = field(default_factory=dict)

    def position(self, study_id: int) -> int | None:
        i = int(np.searchsorted(self.study_ids, study_id))
        return i if i < len(self.study_ids) and self.study_ids[i] == study_id else None

    def images(self, i: int) -> list[tuple[str, str, int, int]]:
        a, b = self.img_start[i], self.img_start[i + 1]
        return [(str(self.img_dicom[k]), str(self.img_view[k]), int(self.img_w[k]), int(self.img_h[k])) for k in range(a, b)]


def load_study_tables(jpg: Path) -> StudyTables:
    split = read_split_csv(jpg / L.SPLIT_CSV)
    meta = read_metadata_csv(jpg / L.METADATA_CSV)
    df = split.merge(meta[["dicom_id", "ViewPosition", "Rows", "Columns"]], on="dicom_id", how="left")
    nometa = df["Rows"].isna()
    if nometa.any():
        d = df["dicom_id"][nometa].iloc[0]
        raise DataError(str(jpg / L.METADATA_CSV), f"dicom_id {d}", "image listed in the split file has no metadata row")
    df = df.sort_values(["study_id", "dicom_id"], kind="stable").reset_index(drop=True)
    per_study = df.groupby("study_id", sort=True)
    nsplits = per_study["split"].nunique()
    if (nsplits > 1).any():
        sid = int(nsplits[nsplits > 1].index[0])
        raise DataError(str(jpg / L.SPLIT_CSV), f"study_id {sid}", "images of one study are in different splits")
    first = per_study.head(1)
    starts = np.concatenate([first.index.to_numpy(), [len(df)]])
    tables = StudyTables(
        study_ids=first["study_id"].to_numpy(np.int64), subject_ids=first["subject_id"].to_numpy(np.int64),
        split=first["split"].to_numpy(object), img_start=starts, img_dicom=df["dicom_id"].to_numpy(object),
        img_view=df["ViewPosition"].fillna("").to_numpy(object), img_w=df["Columns"].to_numpy(np.int32),
        img_h=df["Rows"].to_numpy(np.int32),
    )
    if (jpg / L.CHEXPERT_CSV).exists():
        lab = read_labels(jpg / L.CHEXPERT_CSV)
        vals = lab.to_numpy(np.float32)
        tables.chexpert = {(int(a), int(b)): vals[i] for i, (a, b) in enumerate(lab.index)}
    if (jpg / L.GOLD_CSV).exists():
        g = read_gold(jpg / L.GOLD_CSV)
        gv = g.to_numpy(np.float32)
        tables.gold = {int(s): gv[i] for i, s in enumerate(g.index)}
    return tables


def ids(col: pa.ChunkedArray | pa.Array, prefix: str, path: str) -> np.ndarray:
    """An id column (``"p10000032"`` strings or integers) as int64, vectorised."""
    if pa.types.is_integer(col.type):
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)
    try:
        s = pc.utf8_ltrim(pc.cast(col, pa.string()), characters=prefix)
        return np.asarray(pc.cast(s, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return np.array([L.strip_id(v, prefix, path) for v in col.to_pylist()], dtype=np.int64)


def _strings(col: pa.ChunkedArray | pa.Array) -> list:
    """A column as Python strings (None stays None): question ids exactly as the release spells them."""
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        col = pc.cast(col, pa.string())
    return col.to_pylist()


class NotGrouped(Exception):
    """``question_metadata`` is not grouped by (patient, study) in order."""


def question_groups(qba: Path, decoder: QualityDecoder) -> Iterator[tuple[tuple[int, int], dict[str, tuple[str, str, str]]]]:
    """((subject_id, study_id), {question_id: (grade, type, strategy)}), streamed in file order.
    Raises :class:`NotGrouped` when a study's rows are not contiguous or not in (subject, study) order."""
    table = read_qba_table(qba, "question")
    if table is None:
        return
    path = str(table.path)
    cur_key: tuple[int, int] | None = None
    cur: dict[str, tuple[str, str, str]] = {}
    last = (-1, -1)
    for batch in table.iter_batches(QUESTION_COLUMNS):
        pids = ids(batch.column("patient_id"), "p", path)
        sids = ids(batch.column("study_id"), "s", path)
        qids = _strings(batch.column("question_id"))
        grades = _grades(batch.column("quality"), qids, sids, path, decoder)
        qtype, strategy = _strings(batch.column("question_type")), _strings(batch.column("question_strategy"))
        cuts = np.flatnonzero((pids[1:] != pids[:-1]) | (sids[1:] != sids[:-1])) + 1
        starts = np.concatenate([[0], cuts]).tolist()
        ends = np.concatenate([cuts, [len(pids)]]).tolist()
        for a, b in zip(starts, ends):
            key = (int(pids[a]), int(sids[a]))
            group = dict(zip(qids[a:b], zip(grades[a:b], qtype[a:b], strategy[a:b])))
            if key == cur_key:
                cur.update(group)       # a study continued from the previous batch
                continue
            if cur_key is not None:
                yield cur_key, cur
            if key < last:
                raise NotGrouped(path)
            last, cur_key, cur = key, key, group
    if cur_key is not None:
        yield cur_key, cur


def _grades(col: pa.ChunkedArray, qids: list, sids: np.ndarray, path: str, decoder: QualityDecoder) -> list[str]:
    """Grades of a rating column, decoding each distinct value once (the first row with a value
    nothing decodes is named in the error)."""
    uniq = pc.unique(col)
    grade_of: dict[Any, str] = {}
    for v in uniq.to_pylist():
        try:
            grade_of[v] = decoder.rating(v, path)
        except DataError as err:
            i = pc.index(col, v).as_py()
            raise DataError(path, f"study s{int(sids[i])}, question {qids[i]}", err.problem) from None
    return [grade_of[v] for v in col.to_pylist()]


def study_grades(qba: Path, decoder: QualityDecoder) -> dict[int, str]:
    """study_id -> grade from ``study_metadata``'s rating column (empty without the table)."""
    t = read_qba_table(qba, "study")
    if t is None or "quality" not in {L.column_meaning(n) for n in t.names()}:
        return {}
    out: dict[int, str] = {}
    for batch in t.iter_batches(["study_id", "quality"]):
        sids = ids(batch.column("study_id"), "s", str(t.path))
        for s, qv in zip(sids.tolist(), batch.column("quality").to_pylist()):
            out[s] = decoder.rating(qv, str(t.path), f"study s{s}")
    return out


def study_universe(qba: Path, sj: StudyJson) -> list[tuple[int, int]]:
    """(subject_id, study_id) of every study of the QBA tree, sorted."""
    t = read_qba_table(qba, "study")
    keys: list[tuple[int, int]] = []
    if t is not None:
        for batch in t.iter_batches(["patient_id", "study_id"]):
            p = ids(batch.column("patient_id"), "p", str(t.path))
            s = ids(batch.column("study_id"), "s", str(t.path))
            keys += list(zip(p.tolist(), s.tolist()))
    else:
        keys = list(sj.studies("qa"))
    return sorted(set(keys))


def find_up(start: Path, rel: str) -> Path | None:
    """``rel`` under ``start`` or a parent folder (exports lack dataset_info.json and the mappings)."""
    for d in (start, *start.parents):
        if (d / rel).exists():
            return d / rel
    return None
