"""What ``cxrbench errors`` reads: the run's QA pairs joined with the index, and the truth.

The index is ``--index``, else ``RUN/index`` (evaluate ``--data`` builds it there), else the
index of ``--data ROOT`` built into ``OUT/index``. The generator's truth folder is
``ROOT/synthetic_truth`` (``--data``), else the one beside the index's MIMIC-Ext-CXR-QBA root;
without one the data are taken as real (the CheXpert proxy).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cxrbench.errors import CxrbenchError, DataError, reading
from cxrbench.score.contract import qa_keys

TRUTH = "synthetic_truth"
TRUTH_BOXES = "boxes.parquet"
QA_COLUMNS = ("question_id", "study_id", "obs_ids")


@dataclass
class ErrorInputs:
    items: pd.DataFrame           # the run's predictions in their order, with obs_ids from the index
    studies: pd.DataFrame
    nodes: pd.DataFrame
    truth: pd.DataFrame | None    # synthetic_truth/boxes.parquet, or None (real data)
    index_dir: Path
    image_root: Path | None


def find_index(run_dir: Path, index: Path | None, data: Path | None, out_dir: Path, progress: bool) -> Path:
    if index is not None:
        return Path(index)
    if (Path(run_dir) / "index" / "manifest.json").is_file():
        return Path(run_dir) / "index"
    if data is not None:
        from cxrbench.evaluate.pipeline import build_index_for

        return build_index_for(Path(data), Path(out_dir) / "index", progress)
    raise CxrbenchError(f"{run_dir}: no index/ in the run dir; give --index INDEX or --data ROOT")


def find_truth(data: Path | None, index_dir: Path) -> Path | None:
    from cxrbench.detect.dataset import index_roots

    candidates = [Path(data) / TRUTH] if data is not None else []
    try:
        _, _, qba = index_roots(index_dir)
        candidates.append(qba.parent / TRUTH)
    except DataError:
        pass
    return next((c for c in candidates if (c / TRUTH_BOXES).is_file()), None)


def _read(path: Path, columns=None) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(path, None, "missing")
    with reading(path, what="Parquet file"):
        return pd.read_parquet(path, columns=columns)


def load(run_frame: pd.DataFrame, index_dir: Path, truth_dir: Path | None) -> ErrorInputs:
    """Join ``obs_ids`` onto the run's QA pairs (QA-pair key); every pair must be in the index."""
    from cxrbench.detect.dataset import index_roots

    index_dir = Path(index_dir)
    qa = _read(index_dir / "qa.parquet", list(QA_COLUMNS))
    studies = _read(index_dir / "studies.parquet", ["study_id", "image_id"])
    nodes = _read(index_dir / "nodes.parquet", ["study_id", "image_id", "bbox"])
    by_key = dict(zip(qa_keys(qa), qa["obs_ids"]))
    keys = qa_keys(run_frame)
    missing = [k for k in keys if k not in by_key]
    if missing:
        raise DataError(index_dir / "qa.parquet", missing[0], f"{len(missing)} QA pair(s) of the run are not in this "
                        "index: give the index the run was evaluated on")
    items = run_frame.copy()
    items["obs_ids"] = [by_key[k] for k in keys]
    truth = None
    if truth_dir is not None:
        truth = _read(Path(truth_dir) / TRUTH_BOXES)
        need = [c for c in ("study_id", "image_id", "obs_id", "noise") if c not in truth.columns]
        if need:
            raise DataError(Path(truth_dir) / TRUTH_BOXES, None, f"missing column(s) {', '.join(need)}")
    try:
        _, image_root, _ = index_roots(index_dir)
    except DataError:
        image_root = None
    return ErrorInputs(items, studies, nodes, truth, index_dir, image_root)
