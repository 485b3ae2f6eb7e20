"""What an evaluation reads: a split of an index, the checkpoint's identity, the reference
columns the reports need."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrbench import vocab
from cxrbench.errors import CxrbenchError, DataError, reading
from cxrbench.io import file_sha256
from cxrbench.score.contract import qa_keys

INDEX_FILES = ("qa.parquet", "studies.parquet", "manifest.json")


def load_split(index_dir: str | Path, split: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The QA rows of ``split`` in key order (question_id, then study_id: the order of every
    evaluation), the studies table and the manifest."""
    import pyarrow.parquet as pq

    index_dir = Path(index_dir)
    for name in INDEX_FILES:
        if not (index_dir / name).exists():
            raise DataError(index_dir / name, None, "missing: not an index directory (cxrbench index ROOT --out DIR)")
    with reading(index_dir / "qa.parquet", what="Parquet file"):
        if "split" not in pq.read_schema(index_dir / "qa.parquet").names:
            raise DataError(index_dir / "qa.parquet", None, "no 'split' column")
        # read only the split's rows: a full release index holds tens of millions of QA pairs
        qa = pd.read_parquet(index_dir / "qa.parquet", filters=[("split", "==", split)])
    if qa.empty:
        raise CxrbenchError(f"{index_dir}: no QA pairs in split {split!r}")
    qa = qa.sort_values(["question_id", "study_id"], kind="stable").reset_index(drop=True)
    with reading(index_dir / "studies.parquet", what="Parquet file"):
        studies = pd.read_parquet(index_dir / "studies.parquet")
    with reading(index_dir / "manifest.json", what="JSON file"):
        manifest = json.loads((index_dir / "manifest.json").read_text())
    return qa, studies, manifest


def drop_unanswerable(qa: pd.DataFrame, studies: pd.DataFrame, where: Path) -> tuple[pd.DataFrame, dict]:
    """Remove the QA pairs the model cannot answer (:func:`cxrbench.data.selection.answerable`:
    no frontal image), counted and warned about."""
    from cxrbench.data.selection import answerable

    keep = answerable(qa, studies)
    lost = qa.loc[~keep, "study_id"]
    excluded = {"no_frontal_image": {"qa_pairs": int(len(lost)), "studies": int(lost.nunique())}}
    if len(lost):
        if keep.sum() == 0:
            raise DataError(where, None, "no study of the split has a frontal (PA/AP) image to answer from")
        print(f"warning: {len(lost)} QA pairs of {lost.nunique()} studies without a frontal (PA/AP) image "
              f"are not evaluated (counted in metrics.json provenance: excluded)", file=sys.stderr)
    return qa[keep].reset_index(drop=True), excluded


def index_hash(index_dir: Path, manifest: dict) -> str:
    """The index's content hash from its manifest, else the SHA-256 of its qa.parquet."""
    return manifest.get("content_hash") or manifest.get("hash") or file_sha256(index_dir / "qa.parquet")


def checkpoint_identity(path: str | Path) -> dict[str, str]:
    """Name and hashes of a checkpoint directory (weights and config files), for provenance."""
    path = Path(path)
    out = {"name": path.name}
    for name in ("model.safetensors", "config.json"):
        if (path / name).exists():
            out[name.split(".")[0] + "_sha256"] = file_sha256(path / name)
    return out


def _finding_names(variables: Any, entities: Any) -> list[str]:
    """The finding a has_finding question asks about: its template variable, else the
    answer's entities."""
    if isinstance(variables, str) and variables.strip():
        try:
            variables = json.loads(variables)
        except json.JSONDecodeError:
            variables = None
    if isinstance(variables, dict):
        for key in ("finding", "finding_entity", "entity", "obs_entity", "finding_name"):
            value = variables.get(key)
            if isinstance(value, str) and value:
                return [value]
            if isinstance(value, (list, tuple)) and value:
                return [str(v) for v in value]
    if entities is None or isinstance(entities, float):
        return []
    return [str(e) for e in entities]


def finding_chexpert(qa: pd.DataFrame) -> list[list[str]]:
    """Per QA row, the CheXpert classes its has_finding question asks about (empty for other
    question types and for findings outside the 14 classes)."""
    from cxrbench.data.vocabulary import entity_chexpert

    out = []
    variables = qa["variables"] if "variables" in qa.columns else [None] * len(qa)
    entities = qa["answer_entities"] if "answer_entities" in qa.columns else [None] * len(qa)
    for qt, var, ent in zip(qa["question_type"], variables, entities):
        if qt != "D02_has_finding":
            out.append([])
            continue
        labels: list[str] = []
        for name in _finding_names(var, ent):
            labels.extend(x for x in entity_chexpert(name) if x not in labels)
        out.append(sorted(labels, key=vocab.CHEXPERT_LABELS.index))
    return out


def _label_list(value: Any) -> list[float] | None:
    if value is None or isinstance(value, float):
        return None
    arr = np.asarray(value, dtype=np.float64)
    return [float(v) for v in arr] if arr.shape == (len(vocab.CHEXPERT_LABELS),) else None


def add_reference_columns(pred: pd.DataFrame, qa: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Join what the CheXpert report needs from the index: ``subject_id``, the automatic and
    the radiologist labels of the study (``chexpert_auto``, ``chexpert_gold``), and the
    CheXpert classes of has_finding questions (``finding_chexpert``, joined on the QA-pair key)."""
    pred = pred.copy()
    by_study = studies.drop_duplicates("study_id").set_index("study_id")
    sid = pred["study_id"]
    if "subject_id" not in pred.columns and "subject_id" in by_study.columns:
        pred["subject_id"] = sid.map(by_study["subject_id"]).astype("Int64")
    for src, dst in (("chexpert", "chexpert_auto"), ("chexpert_gold", "chexpert_gold")):
        if src in by_study.columns:
            pred[dst] = [_label_list(by_study[src].get(s)) for s in sid]
    per_pair = dict(zip(qa_keys(qa), finding_chexpert(qa)))
    pred["finding_chexpert"] = [per_pair.get(k, []) for k in qa_keys(pred)]
    return pred
