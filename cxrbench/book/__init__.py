"""The report's reading and formatting API (``book/``, ``analyses/``; docs: book/README.md).

The notebooks of ``analyses/`` build every chapter of the Jupyter Book from run and study
directories, and only through this package:

- :mod:`cxrbench.book.settings`: where the inputs are (one setting: ``cxrbench.inputs`` in
  ``book/_config.yml``, overridden by ``CXRBENCH_BOOK_INPUTS``), publication mode, the figure folder;
- :mod:`cxrbench.book.inputs`: finds the run, study, comparison, statistics and error-analysis
  folders under the inputs and opens them with cxrbench's own readers (``cxrbench.runs.read_run``,
  their JSON files); no metric is recomputed here;
- :mod:`cxrbench.book.style`: the one figure style (column width, colour-blind-safe palette,
  PNG + PDF);
- :mod:`cxrbench.book.tables`: every table shown is also written as CSV and LaTeX;
- :mod:`cxrbench.book.formatting`: the statistics strings of design 15.3 (on cxrbench.stats.report);
- :mod:`cxrbench.book.publication`: what publication mode keeps out of the book;
- :mod:`cxrbench.book.targets`: the design's performance targets (18.2, 18.3).

Nothing here imports torch or the model package.
"""
