"""Generate a synthetic MIMIC-CXR-JPG + MIMIC-Ext-CXR-QBA dataset root.

Writes OUT/mimic-cxr-jpg/ and OUT/mimic-ext-cxr-qba/ with the real releases' file names,
columns and JSON keys, plus OUT/synthetic_truth/ (clean findings, box noise, label noise).
The same seed gives a byte-identical tree, whatever the number of workers; a rerun with the
same settings does nothing. OUT must be new, empty or an earlier synthetic root.

--encoding real writes the real release's encodings (template-name question ids that recur in
every study, integer answer ids, N_GRADE rating strings, prefixed metadata columns with the id
columns as the Parquet index, top folders in the zips); --encoding legacy the project's earlier
spelling (docs/data.md, "Encodings").

example:
  cxrbench synth data/synth --patients 120 --seed 0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from cxrbench.data.synth.encoding import ENCODINGS
    from cxrbench.data.synth.generate import DEFAULT_ENCODING

    parser.add_argument("out", type=Path, help="output dataset root")
    parser.add_argument("--patients", type=int, default=120, help="number of patients (default: 120, ~420 studies)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--image-size", type=int, default=512, help="image width and height in pixels (default: 512)")
    parser.add_argument("--encoding", choices=ENCODINGS, default=DEFAULT_ENCODING,
                        help=f"how the files spell the data (default: {DEFAULT_ENCODING})")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (default: min(2, CPUs)); the output does not depend on it")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a root made with other settings, or write into a folder this command did not "
                             "create (replacing only the entries it writes)")
    parser.add_argument("--force", action="store_true", dest="overwrite", help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quiet", action="store_true", dest="no_progress", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from cxrbench.data.synth.generate import generate

    info = generate(args.out, args.patients, seed=args.seed, image_size=args.image_size, workers=max(1, args.workers),
                    force=args.overwrite, progress=not args.no_progress, encoding=args.encoding)
    c = info["counts"]
    if info.get("up_to_date"):
        print(f"{args.out} is up to date ({args.patients} patients, seed {args.seed}, {args.encoding} encoding); nothing to do")
        return 0
    noise = info["box_noise"]["realised"]
    print(f"wrote {args.out}: {args.patients} patients, {c['studies']} studies, {c['images']} images, "
          f"{c['questions']} QA pairs ({args.encoding} encoding); boxes displaced {noise['displaced']:.1%}, "
          f"missing or fallback {noise['missing'] + noise['fallback']:.1%}")
    return 0
