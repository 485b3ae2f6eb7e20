"""Build the Parquet index of a dataset root (synthetic or real).

DATA_ROOT holds both releases (mimic-cxr-jpg/ and mimic-ext-cxr-qba/, or PhysioNet's
physionet.org/files/<name>/<version>/ layout); --jpg-root / --qba-root give them separately
(a QBA export such as exports/A_frontal works as --qba-root too). Writes INDEX/qa.parquet,
studies.parquet, nodes.parquet and manifest.json (docs/contracts.md section 2). INDEX must be
new, empty or an earlier index: any other folder is refused (--overwrite replaces only the
index's own files, never anything else). Run `cxrbench check DATA_ROOT` first on a new install.

examples:
  cxrbench index data/synth --out data/index
  cxrbench index /physionet --out idx/test-A --split test --min-quality A --frontal-only
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cxrbench import vocab


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, nargs="?", help="dataset root holding both releases")
    parser.add_argument("--out", type=Path, required=True, help="index directory to write")
    parser.add_argument("--jpg-root", type=Path, help="MIMIC-CXR-JPG release folder (overrides the search in ROOT)")
    parser.add_argument("--qba-root", type=Path, help="MIMIC-Ext-CXR-QBA release (or export) folder")
    parser.add_argument("--min-quality", choices=vocab.QUALITY_GRADES, help="keep QA pairs of this grade or better")
    parser.add_argument("--frontal-only", action="store_true", help="keep studies with a PA/AP image, and only those images")
    parser.add_argument("--split", action="append", choices=vocab.SPLITS, help="keep this split (repeatable; default: all)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default: min(2, CPUs))")
    parser.add_argument("--chunk-size", type=int, default=64, help="studies per work unit and Parquet row group (default: 64)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (replaces only the index's own files)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quiet", action="store_true", dest="no_progress", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from cxrbench.data.index import IndexFilters, build_index
    from cxrbench.data.layout import resolve_roots
    from cxrbench.errors import CxrbenchError

    if args.root is None and (args.jpg_root is None or args.qba_root is None):
        raise CxrbenchError("give ROOT, or both --jpg-root and --qba-root")
    roots = resolve_roots(args.root, args.jpg_root, args.qba_root)
    filters = IndexFilters(args.min_quality, args.frontal_only, tuple(args.split or ()))
    m = build_index(roots, args.out, filters, workers=max(1, args.workers), chunk_size=max(1, args.chunk_size),
                    progress=not args.no_progress, overwrite=args.overwrite)
    for line in summary(m, args.out):
        print(line)
    return 0


def summary(manifest: dict, out: Path) -> list[str]:
    """The console summary: rows, what was tolerated, which studies were left out (count and examples), notes."""
    t, r = manifest["tolerance"], manifest["rows"]
    lines = [f"wrote {out}: {r['qa']} QA pairs, {r['studies']} studies, {r['nodes']} nodes; "
             f"missing boxes {t.get('answers_missing_box', 0)} answers / {t.get('observation_nodes_missing_box', 0)} nodes, "
             f"unknown regions {t['unknown_regions']['count']}, unknown entities {t['unknown_entities']['count']}"]
    for key, entry in manifest.get("missing", {}).items():
        more = ", ..." if entry["count"] > len(entry["examples"]) else ""
        lines.append(f"{key.replace('_', ' ')}: {entry['count']} (e.g. {', '.join(entry['examples'])}{more})")
    lines += [f"note: {note}" for note in manifest["notes"]]
    return lines
