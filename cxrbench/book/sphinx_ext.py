"""Sphinx extension of the book (``sphinx.extra_extensions`` in book/_config.yml).

The notebooks run in kernels started by the build, in their own folder; they learn where the
book is from ``$CXRBENCH_BOOK_DIR``, which this sets, and read the book's settings
(:mod:`cxrbench.book.settings`) from its ``_config.yml``. Setting variables given relative to the
folder the build was started from are made absolute here, before any kernel starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from cxrbench.book import settings


def _config_inited(app, config) -> None:
    os.environ[settings.ENV_BOOK_DIR] = str(Path(app.srcdir).resolve())
    for var in settings.ENV.values():
        raw = os.environ.get(var)
        if raw and var != settings.ENV["publication"] and not Path(raw).expanduser().is_absolute():
            os.environ[var] = str((Path.cwd() / raw).resolve())


def setup(app):
    app.connect("config-inited", _config_inited)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
