"""Where the book finds its inputs and what it may show: the book's settings.

One setting per question, each a key of the ``cxrbench:`` section of ``book/_config.yml`` that an
environment variable overrides:

=============  ============================  ==============================  =====================
key            variable                      default                         meaning
=============  ============================  ==============================  =====================
``inputs``     ``CXRBENCH_BOOK_INPUTS``      ``../runs/demo``                study, demo output or run dir
``publication`` ``CXRBENCH_BOOK_PUBLICATION`` ``auto``                       aggregates only (on/off/auto)
``figures``    ``CXRBENCH_BOOK_FIGURES``     ``_build/figures``              PNG + PDF of every figure
``tables``     ``CXRBENCH_BOOK_TABLES``      ``_build/tables``               CSV + LaTeX of every table
=============  ============================  ==============================  =====================

Paths in ``_config.yml`` are relative to the book folder; paths in the variables are relative
to the folder ``jupyter-book build`` was started from (:mod:`cxrbench.book.sphinx_ext` makes
them absolute before any notebook runs). ``publication: auto`` is on unless every dataset the
inputs were made from is the synthetic generator's (MIMIC's data use agreement forbids
redistributing its content, so real data is aggregates only unless the user says otherwise).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

from cxrbench.errors import CxrbenchError, reading

ENV_BOOK_DIR = "CXRBENCH_BOOK_DIR"
ENV = {"inputs": "CXRBENCH_BOOK_INPUTS", "publication": "CXRBENCH_BOOK_PUBLICATION",
       "figures": "CXRBENCH_BOOK_FIGURES", "tables": "CXRBENCH_BOOK_TABLES"}
DEFAULTS = {"inputs": "../runs/demo", "publication": "auto", "figures": "_build/figures", "tables": "_build/tables"}
SECTION = "cxrbench"
CONFIG = "_config.yml"
_ON, _OFF = {"on", "true", "1", "yes"}, {"off", "false", "0", "no"}


@dataclass(frozen=True)
class BookSettings:
    book_dir: Path | None
    inputs: Path
    publication: bool
    publication_reason: str
    synthetic: bool
    figures: Path
    tables: Path


def find_book_dir(start: Path | None = None) -> Path | None:
    """The book folder: ``$CXRBENCH_BOOK_DIR`` (set during a build), else the first of the
    current folder and its parents that is a book (``_config.yml``) or holds ``book/``."""
    if os.environ.get(ENV_BOOK_DIR):
        return Path(os.environ[ENV_BOOK_DIR]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for cand in (folder, folder / "book"):
            if (cand / CONFIG).is_file() and SECTION in _read_config(cand / CONFIG):
                return cand
    return None


def _read_config(path: Path) -> dict:
    with reading(path, what="YAML file"):
        data = yaml.safe_load(path.read_text()) or {}
    return data if isinstance(data, dict) else {}


def config_section(book_dir: Path | None) -> dict:
    if book_dir is None or not (book_dir / CONFIG).is_file():
        return {}
    section = _read_config(book_dir / CONFIG).get(SECTION) or {}
    if not isinstance(section, dict):
        raise CxrbenchError(f"{book_dir / CONFIG}: the '{SECTION}' section must be a mapping")
    return section


def _value(key: str, section: dict, book_dir: Path | None) -> tuple[str, Path]:
    """The setting's raw value and the folder a relative path in it is relative to."""
    if os.environ.get(ENV[key]):
        return os.environ[ENV[key]], Path.cwd()
    base = book_dir if book_dir is not None else Path.cwd()
    return str(section.get(key, DEFAULTS[key])), base


def _path(key: str, section: dict, book_dir: Path | None) -> Path:
    raw, base = _value(key, section, book_dir)
    path = Path(raw).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def publication_switch(raw: str) -> bool | None:
    """``on`` → True, ``off`` → False, ``auto`` → None (decided from the data)."""
    word = str(raw).strip().lower()
    if word in _ON:
        return True
    if word in _OFF:
        return False
    if word == "auto":
        return None
    raise CxrbenchError(f"publication mode must be on, off or auto, not {raw!r} ({ENV['publication']} or "
                        f"'{SECTION}.publication' in {CONFIG})")


def load(book_dir: Path | None = None) -> BookSettings:
    """The settings in force (environment over ``_config.yml`` over the defaults)."""
    from cxrbench.book.inputs import synthetic_status

    book_dir = book_dir or find_book_dir()
    section = config_section(book_dir)
    inputs = _path("inputs", section, book_dir)
    synthetic, why = synthetic_status(inputs)
    switch = publication_switch(_value("publication", section, book_dir)[0])
    if switch is None:
        publication = not synthetic
        reason = f"auto: {why}"
    else:
        publication = switch
        reason = "set " + ("on" if switch else "off") + f" ({why})"
    return BookSettings(book_dir, inputs, publication, reason, synthetic, _path("figures", section, book_dir),
                        _path("tables", section, book_dir))
