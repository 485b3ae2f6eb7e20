"""Is the synthetic data learnable? The tiny full model against late fusion and majority answers.

Generates (or reuses) a synthetic dataset and its index, trains the ``tiny`` config under the
chosen conditions for the same number of optimizer steps through the real ``cxrbench train``
path (DeepSpeed, ZeRO-2, fp32 on CPU), answers the synthetic *test* split with each checkpoint
and prints per-head accuracy next to two majority baselines measured on the same rows:

* ``majority/head``: every question answered with its head's most frequent training label;
* ``majority/type``: every question answered with its question type's most frequent training
  label (the stronger one: "No" is the usual answer of a has_finding question).

Accuracy definitions are ``model.evaluation`` (binary/severity: label; region: the top region
is one of the true ones; text: exact finding set). The measurement quoted in docs/model.md
(about 35 minutes on 2 CPU cores: full ~20, late fusion ~8, data and answers the rest)::

    python benchmarks/learnability.py --workdir runs/learn4500 --patients 120 --steps 4500

It writes ``WORKDIR/learnability.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=REPO)


def majority_frames(truth, train_frame, train_targets):
    """Predictions frames of the two majority baselines (same rows and truth as ``truth``)."""
    from model.vocabularies import HEAD_NAMES
    from model.vocabularies import FINDING_CLASSES, REGION_CLASSES

    t = train_targets
    labels = []
    for i in range(len(t.head)):
        head = HEAD_NAMES[t.head[i]]
        if head == "binary":
            lab = int(t.binary[i]) if t.binary[i] >= 0 else None
        elif head == "severity":
            lab = int(t.severity[i]) if t.severity[i] >= 0 else None
        elif head == "region":
            lab = REGION_CLASSES[t.region_first[i]] if t.region_first[i] >= 0 else None
        else:
            lab = "|".join(FINDING_CLASSES[k] for k in np.flatnonzero(t.findings[i]))
        labels.append((head, str(train_frame["question_type"].iat[i]), lab))
    by_head: dict[str, Counter] = {}
    by_type: dict[tuple[str, str], Counter] = {}
    for head, qt, lab in labels:
        if lab is None:
            continue
        by_head.setdefault(head, Counter())[lab] += 1
        by_type.setdefault((head, qt), Counter())[lab] += 1

    def frame_for(choose):
        out = truth.copy()
        preds, regions, findings = [], [], []
        for row in truth.itertuples(index=False):
            lab = choose(row.head, row.question_type)
            preds.append(lab if row.head in ("binary", "severity") else None)
            regions.append([lab] if row.head == "region" else [])
            findings.append(lab.split("|") if row.head == "text" else [])
        out["label_pred"], out["regions_pred"], out["findings_pred"] = preds, regions, findings
        return out

    def top(counter):
        return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0]

    head_major = {h: top(c) for h, c in by_head.items()}
    type_major = {k: top(c) for k, c in by_type.items()}
    return (frame_for(lambda h, qt: head_major[h]),
            frame_for(lambda h, qt: type_major.get((h, qt), head_major[h])))


def paired_differences(frames: dict, first: str) -> dict:
    """Accuracy of ``first`` minus each other condition, with a study-level paired bootstrap,
    overall, per head and on has_finding questions (where a finding's own box matters most)."""
    import pandas as pd

    from cxrbench.metrics.base import mean_stats
    from cxrbench.stats.bootstrap import paired_bootstrap
    from model.evaluation import item_hits

    a = frames[first]
    hits_a, clusters = item_hits(a), pd.factorize(a["study_id"])[0]
    subsets = {"overall": np.ones(len(a), dtype=bool), **{f"head {h}": (a["head"] == h).to_numpy() for h in
               ("binary", "region", "severity", "text")}, "has_finding": (a["question_type"] == "D02_has_finding").to_numpy()}
    out = {}
    for other, b in frames.items():
        if other == first:
            continue
        assert (b["question_id"].to_numpy() == a["question_id"].to_numpy()).all()
        hits_b = item_hits(b)
        out[other] = {}
        for name, sel in subsets.items():
            ok = sel & ~np.isnan(hits_a) & ~np.isnan(hits_b)
            if not ok.any():
                continue
            r = paired_bootstrap(mean_stats("accuracy", np.where(ok, hits_b, np.nan)),
                                 mean_stats("accuracy", np.where(ok, hits_a, np.nan)), clusters,
                                 n_resamples=10_000, seed=0)
            out[other][name] = {"diff": r.diff, "ci": [r.ci_low, r.ci_high], "p": r.p_value, "n": int(ok.sum())}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="runs/learnability")
    parser.add_argument("--patients", type=int, default=120)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=4500, help="optimizer steps per condition")
    parser.add_argument("--conditions", nargs="+", default=["full", "late_fusion"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override for every run")
    args = parser.parse_args()

    work = Path(args.workdir).resolve()
    data, index = work / "data", work / "index"
    env = dict(os.environ)
    env.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    env.setdefault("OMP_NUM_THREADS", "1")
    cx = [sys.executable, "-m", "cxrbench"]
    if not (data / "mimic-ext-cxr-qba").exists():
        run(cx + ["synth", str(data), "--patients", str(args.patients), "--image-size", str(args.image_size),
                  "--seed", str(args.data_seed), "--quiet"], env)
    if not (index / "manifest.json").exists():
        run(cx + ["index", str(data), "--out", str(index)], env)
    timings = {}
    for cond in args.conditions:
        out = work / f"run_{cond}"
        meta = out / "checkpoint" / "training_metadata.json"
        if meta.exists() and json.loads(meta.read_text())["step"] == args.steps:
            continue
        t0 = time.time()
        extra = [x for o in args.overrides for x in ("--set", o)]
        run(cx + ["train", "--config", "tiny", "--index", str(index), "--out", str(out), "--condition", cond,
                  "--max-steps", str(args.steps), "--set", "train.eval_every_epoch=false", "--quiet",
                  *(["--resume"] if (out / "deepspeed" / "latest").exists() else []), *extra], env)
        timings[cond] = time.time() - t0

    import torch

    torch.set_num_threads(1)
    from model.checkpoint import load_checkpoint
    from model.data import IndexData
    from model.evaluation import head_accuracy
    from model.inference import Predictor
    from model.targets import derive_targets

    idx = IndexData.load(index)
    test = idx.answerable("test")   # no frontal image: no answer
    results, truth, frames = {}, None, {}
    for cond in args.conditions:
        bundle = load_checkpoint(work / f"run_{cond}" / "checkpoint")
        frame = Predictor(bundle, index).predict(test)
        results[cond] = head_accuracy(frame)
        frames[cond] = frame
        truth = frame if truth is None else truth
    train = idx.qa[idx.qa["split"] == "train"]
    bundle = load_checkpoint(work / f"run_{args.conditions[0]}" / "checkpoint")
    train_targets = derive_targets(train, bundle.vocabularies, idx.studies)
    by_head, by_type = majority_frames(truth, train, train_targets)
    results["majority/head"] = head_accuracy(by_head)
    results["majority/type"] = head_accuracy(by_type)

    cols = ["overall", "binary", "region", "severity", "text"]
    print(f"\nsynthetic test split: {len(test)} QA rows; {args.steps} optimizer steps per condition (tiny config)")
    print(f"{'':16s}" + "".join(f"{c:>10s}" for c in cols) + f"{'F1 text':>10s}")
    for name, r in results.items():
        vals = [r.get(f"accuracy/{c}") for c in cols] + [r.get("f1/text")]
        print(f"{name:16s}" + "".join(f"{v:10.3f}" if v is not None else f"{'-':>10s}" for v in vals))
    print("rows per head:", {c: results[args.conditions[0]].get(f"n/{c}") for c in cols})
    paired = paired_differences(frames, args.conditions[0])
    for other, rows in paired.items():
        print(f"\n{args.conditions[0]} - {other}, study-level paired bootstrap (10,000 resamples):")
        for name, r in rows.items():
            print(f"  {name:18s} {r['diff']:+.3f} [95% CI {r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]  p = {r['p']:.4f}  n = {r['n']}")
    report = {"steps": args.steps, "patients": args.patients, "image_size": args.image_size,
              "n_test_rows": len(test), "index_hash": idx.index_hash(), "train_seconds": timings, "results": results,
              "paired": paired}
    (work / "learnability.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"wrote {work / 'learnability.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
