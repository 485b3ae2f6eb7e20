"""CheXpert labels of MIMIC-CXR-JPG (seed 3.4): automatic labels and radiologist gold labels.

Values are 1.0 (positive), 0.0 (negative), -1.0 (uncertain) or blank (not mentioned), in the
column order ``vocab.CHEXPERT_LABELS``. For training targets:

- **U-Ignore** (seed 3.2, use case 5, recommended): an uncertain label (-1) gets target 0 and
  mask 0, so it does not enter the loss.
- **Blank** ("not mentioned"): target 0 (absence is the likely truth: radiologists do not list
  what is not there) with mask ``blank_weight`` (default 0.5, the seed's "lower confidence";
  set 0 to ignore blanks, 1 to treat them as confident negatives).
- A study without a row (the labelers could not label it) gets mask 0 everywhere.
- Test studies use the radiologist labels of ``mimic-cxr-2.1.0-test-set-labeled.csv`` when
  ``gold_for_test`` (its "Airspace Opacity" column is "Lung Opacity"; it has ``study_id`` only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrbench import vocab
from cxrbench.data.readers import read_csv
from cxrbench.errors import DataError

VALID = (1.0, 0.0, -1.0)


def _validate(df: pd.DataFrame, path: Path, key: str) -> None:
    vals = df[list(vocab.CHEXPERT_LABELS)].to_numpy(dtype=float)
    bad = ~(np.isnan(vals) | np.isin(vals, VALID))
    if bad.any():
        r, c = map(int, np.argwhere(bad)[0])
        raise DataError(str(path), f"row {r + 2} ({key} {df[key].iloc[r]})",
                        f"{vocab.CHEXPERT_LABELS[c]} = {float(vals[r, c])!r} is not one of 1.0, 0.0, -1.0 or blank")


def read_labels(path: str | Path) -> pd.DataFrame:
    """``mimic-cxr-2.0.0-{chexpert,negbio}.csv.gz`` indexed by (subject_id, study_id)."""
    path = Path(path)
    df = read_csv(path)
    missing = [c for c in ("subject_id", "study_id", *vocab.CHEXPERT_LABELS) if c not in df.columns]
    if missing:
        raise DataError(str(path), "header", f"missing column(s) {', '.join(missing)}")
    for c in vocab.CHEXPERT_LABELS:
        df[c] = pd.to_numeric(df[c], errors="coerce") if df[c].dtype == object else df[c].astype(float)
    _validate(df, path, "study_id")
    df = df.astype({"subject_id": "int64", "study_id": "int64"})
    return df.set_index(["subject_id", "study_id"])[list(vocab.CHEXPERT_LABELS)]


def read_gold(path: str | Path) -> pd.DataFrame:
    """``mimic-cxr-2.1.0-test-set-labeled.csv`` indexed by study_id, columns renamed to CHEXPERT_LABELS."""
    path = Path(path)
    df = read_csv(path).rename(columns=vocab.GOLD_COLUMN_ALIASES)
    missing = [c for c in ("study_id", *vocab.CHEXPERT_LABELS) if c not in df.columns]
    if missing:
        raise DataError(str(path), "header", f"missing column(s) {', '.join(missing)}")
    for c in vocab.CHEXPERT_LABELS:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    _validate(df, path, "study_id")
    df = df.astype({"study_id": "int64"})
    return df.set_index("study_id")[list(vocab.CHEXPERT_LABELS)]


def u_ignore(values: np.ndarray, blank_weight: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Targets and loss mask for raw label values (shape (..., 14); NaN = blank).

    1 -> (1, 1); 0 -> (0, 1); -1 -> (0, 0) (U-Ignore); blank -> (0, ``blank_weight``).
    """
    v = np.asarray(values, dtype=np.float64)
    target = (v == 1.0).astype(np.float32)
    mask = np.where(np.isnan(v), blank_weight, np.where(v == -1.0, 0.0, 1.0)).astype(np.float32)
    return target, mask


def labels_from_entities(positive: list[tuple[str, tuple[str, ...]]], negative: list[tuple[str, tuple[str, ...]]],
                         uncertain: list[tuple[str, tuple[str, ...]]] = ()) -> np.ndarray:
    """Study-level label vector (14, NaN = blank) from (entity, categories) mentions, aggregated as
    the CheXpert labeler does: positive > uncertain > negative; "No Finding" = 1 when none of the
    12 pathology labels is positive or uncertain (support devices do not count), else blank."""
    from cxrbench.data.vocabulary import entity_chexpert

    out = np.full(len(vocab.CHEXPERT_LABELS), np.nan)
    idx = {label: i for i, label in enumerate(vocab.CHEXPERT_LABELS)}
    for group, val in ((negative, 0.0), (uncertain, -1.0), (positive, 1.0)):
        for name, cats in group:
            for label in entity_chexpert(name, tuple(cats)):
                i = idx[label]
                cur = out[i]
                if np.isnan(cur) or val == 1.0 or (val == -1.0 and cur == 0.0):
                    out[i] = val
    patho = [idx[label] for label in vocab.CHEXPERT_LABELS if label not in ("No Finding", "Support Devices")]
    if not np.isin(out[patho], (1.0, -1.0)).any():
        out[idx["No Finding"]] = 1.0
    return out


class ChexpertLabels:
    """Label lookup for training and evaluation (seed 3.4 ``CheXpertLabelLoader``)."""

    def __init__(self, labels_csv: str | Path, gold_csv: str | Path | None = None, blank_weight: float = 0.5):
        self.labels = read_labels(labels_csv)
        self.gold = read_gold(gold_csv) if gold_csv is not None and Path(gold_csv).exists() else None
        self.blank_weight = blank_weight

    def raw(self, subject_id: int, study_id: int, gold_for_test: bool = False) -> np.ndarray | None:
        """The 14 raw values (NaN = blank), or None when the study has no row."""
        if gold_for_test and self.gold is not None and study_id in self.gold.index:
            return self.gold.loc[study_id].to_numpy(dtype=float)
        key = (int(subject_id), int(study_id))
        if key in self.labels.index:
            return self.labels.loc[key].to_numpy(dtype=float)
        return None

    def get(self, subject_id: int, study_id: int, gold_for_test: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(targets, mask), each of shape (14,)."""
        raw = self.raw(subject_id, study_id, gold_for_test)
        if raw is None:
            n = len(vocab.CHEXPERT_LABELS)
            return np.zeros(n, np.float32), np.zeros(n, np.float32)
        return u_ignore(raw, self.blank_weight)
