"""The data layer: both releases' layouts, readers and validation, the synthetic generator, the index.

- ``layout``: file names, columns and folders of MIMIC-CXR-JPG and MIMIC-Ext-CXR-QBA; ``resolve_roots``.
- ``readers``: per-study JSON from the zips (or extracted folders), tables, validation (``DataError``).
- ``vocabulary``: the release's vocabularies with unknown indices; head-region, region-category and
  CheXpert name rules.
- ``quality``: quality codes, ``quality_mappings.csv``, the minimum rule.
- ``chexpert``: CheXpert / NegBio / gold labels, U-Ignore.
- ``index`` (+ ``index_cli``): the Parquet index (``cxrbench index``); ``distribution``: ``cxrbench stats``.
- ``synth``: the synthetic generator (``cxrbench synth``).

See docs/data.md.
"""
