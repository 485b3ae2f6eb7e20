"""Generate a synthetic MIMIC-CXR-JPG + MIMIC-Ext-CXR-QBA dataset root.

Writes OUT/mimic-cxr-jpg/ and OUT/mimic-ext-cxr-qba/ with the real releases' file names,
columns and JSON keys, plus OUT/synthetic_truth/ (clean findings, box noise, label noise).
The same seed gives a byte-identical tree, whatever the number of workers.

example:
  cxrbench synth data/synth --patients 120 --seed 0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output dataset root")
    parser.add_argument("--patients", type=int, default=120, help="number of patients (default: 120, ~420 studies)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--image-size", type=int, default=512, help="image width and height in pixels (default: 512)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (default: min(2, CPUs)); the output does not depend on it")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from cxrbench.data.synth.generate import generate

    info = generate(args.out, args.patients, seed=args.seed, image_size=args.image_size, workers=max(1, args.workers),
                    force=args.force, progress=not args.quiet)
    c = info["counts"]
    if info.get("up_to_date"):
        print(f"{args.out} is up to date ({args.patients} patients, seed {args.seed}); nothing to do")
        return 0
    print(f"wrote {args.out}: {args.patients} patients, {c['studies']} studies, {c['images']} images, "
          f"{c['questions']} QA pairs; boxes displaced {info['box_noise']['realised']['displaced']:.1%}, "
          f"missing or fallback {info['box_noise']['realised']['missing'] + info['box_noise']['realised']['fallback']:.1%}")
    return 0
