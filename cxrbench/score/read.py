"""Reading a predictions file (JSONL, CSV or Parquet) into the frame of the predictions contract.

Any failure to read (a damaged, truncated or mislabelled file, a zero-row file) is a one-line
:class:`~cxrbench.errors.DataError` naming the file, raised before any scoring work starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cxrbench.errors import DataError, reading
from cxrbench.score.contract import LIST_COLUMNS

FORMATS = {".jsonl": "JSON lines", ".json": "JSON lines", ".ndjson": "JSON lines", ".csv": "CSV", ".csv.gz": "CSV",
           ".parquet": "Parquet"}


def _suffix(path: Path) -> str:
    return "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix


def _read_jsonl(path: Path) -> pd.DataFrame:
    import orjson

    records = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
            except orjson.JSONDecodeError as err:
                raise DataError(path, f"line {lineno}", f"invalid JSON: {err}") from None
            if not isinstance(rec, dict):
                raise DataError(path, f"line {lineno}", "each line must be a JSON object")
            records.append(rec)
    return pd.DataFrame.from_records(records)


def _parse_lists(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """List columns given as JSON strings (CSV) become lists."""
    import orjson

    for col in LIST_COLUMNS:
        if col in frame.columns and frame[col].map(lambda v: isinstance(v, str)).any():
            def parse(v, col=col):
                if isinstance(v, str):
                    try:
                        return orjson.loads(v) if v.strip() else None
                    except orjson.JSONDecodeError:
                        raise DataError(path, None, f"column {col}: not a JSON list: {v[:60]!r}") from None
                return v
            frame[col] = frame[col].map(parse)
    return frame


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """The predictions frame of ``path`` (.jsonl/.json lines, .csv[.gz], .parquet)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "file not found")
    suffix = _suffix(path)
    if suffix not in FORMATS:
        raise DataError(path, None, f"unknown predictions format {path.suffix!r} (use .jsonl, .csv or .parquet)")
    with reading(path, what=f"{FORMATS[suffix]} file"):
        if FORMATS[suffix] == "JSON lines":
            frame = _read_jsonl(path)
        elif FORMATS[suffix] == "CSV":
            frame = pd.read_csv(path, dtype={"question_id": str, "question_type": str, "answer": str,
                                             "prediction": str}, keep_default_na=False, na_values=[""])
        else:
            frame = pd.read_parquet(path)
    if len(frame) == 0:
        raise DataError(path, None, "no predictions (zero rows)")
    return _parse_lists(frame, path)
