"""Every table of the book is shown once and written twice: CSV (the numbers as read) and LaTeX
(as formatted), into the table folder of the settings, after the publication filter."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxrbench.book.publication import aggregate_only
from cxrbench.io import atomic_write_text


def _cell(x) -> str:
    # pipe tables: a '|' ends a cell; '*' and '_' at a word edge would start emphasis
    return str(x).replace("|", "\\|").replace("*", "\\*")


def _missing(v) -> bool:
    return v is None or (pd.api.types.is_scalar(v) and pd.isna(v))


def _whole_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    """Float columns holding only whole numbers (counts, steps, seeds with gaps) as integers: 30, not 30.0."""
    out = frame.copy()
    for col in out.columns:
        values = out[col]
        if pd.api.types.is_float_dtype(values) and values.notna().any() and (values.dropna() % 1 == 0).all():
            out[col] = values.astype("Int64")
    return out


def markdown(frame: pd.DataFrame) -> str:
    shown = frame.copy()
    for col in shown.columns:
        shown[col] = shown[col].map(lambda v: "" if _missing(v) else _cell(v))
    shown.columns = [_cell(c) for c in shown.columns]
    return shown.to_markdown(index=False, disable_numparse=True)


def write(frame: pd.DataFrame, name: str, folder: Path, raw: pd.DataFrame | None = None) -> list[Path]:
    """``NAME.csv`` (``raw`` when given: unformatted numbers) and ``NAME.tex`` (``frame``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv, tex = folder / f"{name}.csv", folder / f"{name}.tex"
    atomic_write_text(csv, (frame if raw is None else raw).to_csv(index=False, lineterminator="\n"))
    atomic_write_text(tex, frame.to_latex(index=False, escape=True, na_rep="", float_format=lambda x: f"{x:g}"))
    return [csv, tex]


def show(frame: pd.DataFrame, name: str, settings, caption: str | None = None, raw: pd.DataFrame | None = None):
    """Filter (publication mode), write CSV + LaTeX, and return the table for the notebook to
    display (Markdown, rendered as a table by the book)."""
    from IPython.display import Markdown

    frame = _whole_numbers(aggregate_only(frame, settings.publication))
    raw = None if raw is None else aggregate_only(raw, settings.publication)
    write(frame, name, settings.tables, raw)
    head = f"**Table {name}.** {caption}\n\n" if caption else ""
    return Markdown(head + markdown(frame) + "\n")
