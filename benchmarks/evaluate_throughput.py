"""Throughput of `cxrbench evaluate` on the synthetic test split, extrapolated to the real one.

Two stages, each against a baseline measured in the same run:

1. **Inference** (QA pairs/s): the evaluate stage (``cxrbench.evaluate.shards.run_sharded``:
   shards written atomically, per-item attention painting, plausibility and entropy) against
   the bare ``predict`` of the predictor ``cxrbench.predictor.load_predictor`` builds (the model
   plug-in's, as evaluate gets it) on the same rows (fresh predictors, so both pay the
   per-image backbone features). The ratio is the cost of resumability and attention scoring.
2. **Metrics + CIs** (QA pairs/s): ``cxrbench.evaluate.pipeline.write_run`` (score_frame with bootstrap
   CIs for every stratum, the CheXpert report, calibration, attention summaries and overlays,
   all files written) against ``score_frame`` with point estimates only (``n_resamples=0``).
   Measured on the split and on the split replicated ``--replicate`` times (new question and
   study ids), to see how the stage scales before extrapolating.

The extrapolation to the real test split (333K QA pairs in 3,254 studies, see
benchmarks/bootstrap_speed.py) divides by the rate of the larger measurement; it holds for
this CPU with the threads shown, not for a GPU (inference there is not measured here).
Model-based text metrics (BERTScore, QuickUMLS terms) are skipped unless --with-model-metrics.

    python benchmarks/evaluate_throughput.py                     # builds synth data + tiny checkpoint
    python benchmarks/evaluate_throughput.py --checkpoint CK --index IDX --replicate 4
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REAL_TEST_QA = 333_000
REAL_TEST_STUDIES = 3_254
MODEL_METRICS = ("bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall")


def build_inputs(work: Path, patients: int) -> tuple[Path, Path]:
    from cxrbench.data.index import build_index
    from cxrbench.data.layout import resolve_roots
    from cxrbench.data.synth.generate import generate

    root, index, run = work / "root", work / "index", work / "train"
    generate(root, patients, seed=0, image_size=128, workers=1, force=True, progress=False)
    build_index(resolve_roots(root), index, workers=1, progress=False)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "torch_extensions"))
    cmd = [sys.executable, "-m", "cxrbench", "train", "--config", "tiny", "--index", str(index), "--out", str(run),
           "--quiet", "--max-steps", "30", "--set", "train.batch_size=16", "--set", "train.save_every=30",
           "--set", "train.num_threads=1"]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return run / "checkpoint", index


def replicate(pred: pd.DataFrame, times: int) -> pd.DataFrame:
    """``times`` copies of a predictions frame with fresh question and study ids."""
    parts = []
    for k in range(times):
        part = pred.copy()
        part["question_id"] = [f"{q}-r{k}" for q in part["question_id"]]
        part["study_id"] = part["study_id"] + k * 10_000_000
        if "subject_id" in part.columns:
            part["subject_id"] = part["subject_id"] + k * 10_000_000
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--index", type=Path)
    ap.add_argument("--patients", type=int, default=16, help="synthetic patients when building the inputs")
    ap.add_argument("--replicate", type=int, default=8, help="copies of the split for the metric-stage scaling")
    ap.add_argument("--n-resamples", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for inference")
    ap.add_argument("--with-model-metrics", action="store_true", help="also BERTScore and QuickUMLS metrics")
    a = ap.parse_args()

    import torch

    from cxrbench.evaluate.inputs import add_reference_columns, drop_unanswerable, load_split
    from cxrbench.evaluate.pipeline import RAW_ATTENTION, EvaluateOptions, _attention_postprocess, write_run
    from cxrbench.evaluate.shards import SHARD_SIZE, run_sharded
    from cxrbench.outputs import OutputDir
    from cxrbench.predictor import PredictorSettings, load_predictor
    from cxrbench.reports.attention import attention_columns
    from cxrbench.score import ScoreOptions, score_frame

    torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp(prefix="cxrbench-evalbench-"))
    if a.checkpoint is None or a.index is None:
        t = time.perf_counter()
        a.checkpoint, a.index = build_inputs(work, a.patients)
        print(f"built synthetic inputs ({a.patients} patients) and a tiny checkpoint in {time.perf_counter() - t:.0f} s")
    qa, studies, _ = load_split(a.index, "test")
    qa, _ = drop_unanswerable(qa, studies, a.index / "studies.parquet")   # as evaluate does
    n = len(qa)
    settings = PredictorSettings(index_dir=a.index, batch_size=a.batch_size, device="cpu", progress=False)
    load_predictor(a.checkpoint, settings).predict(qa.iloc[:8])        # warm-up (kernels, imports)

    bare_predictor, stage_predictor = load_predictor(a.checkpoint, settings), load_predictor(a.checkpoint, settings)
    t = time.perf_counter()
    bare = bare_predictor.predict(qa)
    t_bare = time.perf_counter() - t
    t = time.perf_counter()
    pred = run_sharded(stage_predictor.predict, qa, work / "run" / "shards", inputs={"bench": 1}, shard_size=SHARD_SIZE,
                       postprocess=_attention_postprocess, overwrite=True, progress=False)
    t_stage = time.perf_counter() - t
    t = time.perf_counter()
    attention_columns(bare)
    t_paint = time.perf_counter() - t
    pred = add_reference_columns(pred, qa, studies)

    skip = () if a.with_model_metrics else MODEL_METRICS
    no_map = (*skip, "map_50", "map_75", "map_50_75")
    raw = list(RAW_ATTENTION)
    score_frame(pred.iloc[:40].drop(columns=raw), ScoreOptions(n_resamples=10, skip=skip, progress=False))  # warm-up
    rows = []
    for times in (1, a.replicate):
        frame = pred if times == 1 else replicate(pred, times)
        t0 = time.perf_counter()
        score_frame(frame.drop(columns=raw), ScoreOptions(n_resamples=0, skip=skip, progress=False))
        t1 = time.perf_counter()
        score_frame(frame.drop(columns=raw), ScoreOptions(n_resamples=a.n_resamples, skip=no_map, progress=False))
        t2 = time.perf_counter()
        options = EvaluateOptions(score=ScoreOptions(n_resamples=a.n_resamples, skip=skip, progress=False),
                                  progress=False)
        write_run(OutputDir.claim(work / f"metrics-{times}", "cxrbench evaluate"), frame, options, {"split": "test"},
                  image_root=None)
        t3 = time.perf_counter()
        rows.append({"times": times, "n": len(frame), "studies": frame["study_id"].nunique(), "point": t1 - t0,
                     "ci_no_map": t2 - t1, "full": t3 - t2})

    print(f"\nsynthetic test split: {n} QA pairs, {qa['study_id'].nunique()} studies; torch threads {a.threads}, "
          f"batch {a.batch_size}; {os.cpu_count()} CPUs")
    print("\ninference")
    print(f"  bare Predictor.predict       {n / t_bare:8.1f} QA/s  ({t_bare:.1f} s)  [baseline]")
    print(f"  evaluate stage (shards+attn) {n / t_stage:8.1f} QA/s  ({t_stage:.1f} s)  ratio {t_stage / t_bare:.2f}x")
    print(f"  attention painting alone     {n / t_paint:8.1f} QA/s  ({t_paint:.2f} s)")
    print(f"\nmetrics + CIs ({a.n_resamples} resamples, unit study; skipped: {', '.join(skip) or 'none'})")
    for r in rows:
        m, pt = r["n"], r["point"]
        print(f"  x{r['times']:<2d} {m:6d} QA / {r['studies']:4d} studies:"
              f" point estimates {m / pt:7.1f} QA/s ({pt:.1f} s) [baseline];"
              f" CIs without mAP {m / r['ci_no_map']:6.1f} QA/s ({r['ci_no_map']:.1f} s, {r['ci_no_map'] / pt:.1f}x);"
              f" evaluate's full stage {m / r['full']:6.1f} QA/s ({r['full']:.1f} s, {r['full'] / pt:.1f}x)")
    rate_inf = n / t_stage
    (n1, t1), (n2, t2) = [(r["n"], r["full"]) for r in rows]
    slope = (t2 - t1) / (n2 - n1) if n2 > n1 else t1 / n1
    fixed = max(0.0, t1 - slope * n1)
    (c1, d1), (c2, d2) = [(r["n"], r["ci_no_map"]) for r in rows]
    slope_nomap = (d2 - d1) / (c2 - c1) if c2 > c1 else d1 / c1
    print(f"\nextrapolated to the real test split ({REAL_TEST_QA:,} QA pairs, {REAL_TEST_STUDIES:,} studies), this CPU:")
    print(f"  inference        {REAL_TEST_QA / rate_inf / 3600:6.2f} h at {rate_inf:.1f} QA/s (linear in QA pairs)")
    print(f"  metrics + CIs    {(fixed + slope * REAL_TEST_QA) / 3600:6.2f} h (linear fit of the two sizes: "
          f"{fixed:.0f} s + {slope * 1000:.1f} ms/QA)")
    print(f"    of which without mAP {(max(0.0, d1 - slope_nomap * c1) + slope_nomap * REAL_TEST_QA) / 60:6.1f} min "
          f"({slope_nomap * 1000:.2f} ms/QA); the rest is the mAP family, the reports and their files")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
