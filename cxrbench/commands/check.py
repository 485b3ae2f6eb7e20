"""Check what the readers make of a dataset install, on a sample, before a long index.

Locates both releases (as `cxrbench index` does), reads their tables, the first rows of every
QBA metadata table and the JSON of the first --studies studies, and prints: the releases and
versions found, counts, which encoding each field uses, every key, column or value the readers
do not know (with its count and two examples; they are ignored), every problem that would stop
the readers, and whether an index would succeed (the sample studies go through the index's own
per-study builder). Exit status 0 only when there is no problem. Run it first on a new install.

examples:
  cxrbench check /physionet
  cxrbench check --jpg-root /data/mimic-cxr-jpg/2.1.0 --qba-root /data/mimic-ext-cxr-qba/1.0.0 --studies 500
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, nargs="?", help="dataset root holding both releases")
    parser.add_argument("--jpg-root", type=Path, help="MIMIC-CXR-JPG release folder (overrides the search in ROOT)")
    parser.add_argument("--qba-root", type=Path, help="MIMIC-Ext-CXR-QBA release (or export) folder")
    parser.add_argument("--studies", type=int, default=200, help="studies whose JSON is read (default: 200, the first ones)")
    parser.add_argument("--rows", type=int, default=100_000, help="metadata rows sampled per table (default: 100000)")


def run(args: argparse.Namespace) -> int:
    from cxrbench.data.check import CheckOptions, check_install
    from cxrbench.errors import CxrbenchError

    if args.root is None and (args.jpg_root is None or args.qba_root is None):
        raise CxrbenchError("give ROOT, or both --jpg-root and --qba-root")
    if args.studies < 1 or args.rows < 1:
        raise CxrbenchError("--studies and --rows must be at least 1")
    report = check_install(args.root, args.jpg_root, args.qba_root, CheckOptions(studies=args.studies, rows=args.rows))
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1
