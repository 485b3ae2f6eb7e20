"""Pre-training distribution analysis of an index (seed 2.6.1): polarity, region categories,
complexity, question types, quality grades and views, per split and overall.

Writes OUT/stats.json and one CSV + Markdown table per dimension. OUT must be new, empty or an
earlier stats folder (--overwrite replaces only the files this command writes).

example:
  cxrbench stats data/index --out data/stats
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index", type=Path, help="index directory (cxrbench index)")
    parser.add_argument("--out", type=Path, required=True, help="output directory for stats.json and the tables")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder this command did not create (replaces only its own files)")


def run(args: argparse.Namespace) -> int:
    from cxrbench.data.distribution import ALL, EXPECTED_COVERAGE, analyse

    stats = analyse(args.index, args.out, overwrite=args.overwrite)
    a = stats["binary_balance"][ALL]
    rc = stats["region_categories"][ALL]
    yes = f"{a['yes_share']:.1%}" if a["yes_share"] is not None else "n/a"
    print(f"wrote {args.out}: {stats['n_qa'][ALL]} QA pairs; yes share {yes} (goal 50%); region categories "
          + ", ".join(f"{k} {v['share']:.0%} ({v['status']})" if v["share"] is not None else f"{k} n/a"
                      for k, v in rc.items() if k in EXPECTED_COVERAGE))
    return 0
