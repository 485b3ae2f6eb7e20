"""A small book input set, laid out like `make demo`'s output, built by cxrbench's own commands.

``build_inputs(out, synth_root, synth_index, checkpoint)`` writes

    out/data -> synth_root (link), out/index -> synth_index (link)
    out/stats/                    cxrbench stats
    out/runs/full -> the checkpoint's run dir (link: train_log.jsonl, dynamics.csv, checkpoint/)
    out/runs/{no_scene_graph,late_fusion}/   train_log.jsonl + dynamics.csv (full's, scaled: §5 schema)
    out/eval/full/                cxrbench evaluate of the checkpoint on the test split
    out/eval/{no_scene_graph,late_fusion}/   cxrbench score of full's predictions with answers
                                  changed on a known share of items (plus cxrbench chexpert)
    out/eval/zeroshot-vqa-rad/    cxrbench evaluate --dataset vqa-rad on 40 real questions
    out/errors/                   cxrbench errors of full against no_scene_graph
    out/compare/                  cxrbench compare full against the other two

so every chapter of the book has its inputs (the study files of cxrbench ablate are read where
present and said to be absent here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
RESAMPLES = "100"
SKIP = ["--skip", "bertscore_f1"]
FAKE = {"no_scene_graph": 0.25, "late_fusion": 0.45}   # share of items whose answer is changed
CROSS = REPO / "tests" / "fixtures" / "crossdataset" / "vqa-rad" / "testset.json"


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(var, None)
    return env


def cx(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cxrbench", *args], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"cxrbench {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def _link(dst: Path, target: Path) -> None:
    if not dst.exists():
        dst.symlink_to(Path(target).resolve(), target_is_directory=True)


def fake_predictions(full: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """full's predictions with ``share`` of the items answered with another item's reference
    answer of the same question type (text, label, regions and boxes; box scores 1)."""
    from cxrbench.score.contract import REQUIRED

    rng = np.random.default_rng(seed)
    keep = [*REQUIRED, "study_id", "subject_id", "head", "question", "label_true", "label_pred", "score", "probs",
            "confidence", "regions_true", "regions_pred", "boxes_true", "boxes_pred", "box_scores", "image_width",
            "image_height", "region_category", "chexpert_true", "chexpert_prob", "chexpert_auto", "chexpert_gold",
            "finding_chexpert", "plausibility", "attention_entropy", "attention_tokens", "split"]
    out = full[[c for c in dict.fromkeys(keep) if c in full.columns]].copy()
    moved = {"answer": "prediction", "label_true": "label_pred", "regions_true": "regions_pred",
             "boxes_true": "boxes_pred"}
    qtypes = out["question_type"].to_numpy()
    rows = np.flatnonzero(rng.random(len(out)) < share)
    donors = np.array([rng.choice(np.flatnonzero(qtypes == qtypes[r])) for r in rows], dtype=int)
    for src, dst in moved.items():
        values = out[dst].to_numpy(copy=True)
        values[rows] = out[src].to_numpy()[donors]
        out[dst] = values
    scores = out["box_scores"].to_numpy(copy=True)
    scores[rows] = [np.ones(len(b)) for b in out["boxes_pred"].to_numpy()[rows]]
    out["box_scores"] = scores
    return out


def fake_training(src: Path, dst: Path, condition: str, factor: float) -> None:
    """A training run dir's dynamics.csv and train_log.jsonl: ``src``'s with losses times
    ``factor`` and accuracies divided by it (the contract's columns, another condition)."""
    dst.mkdir(parents=True, exist_ok=True)
    dyn = pd.read_csv(src / "dynamics.csv")
    dyn["condition"] = condition
    val = dyn["source"] == "validation"
    dyn.loc[val, "value"] = dyn.loc[val, "value"] / factor
    dyn.loc[~val, "value"] = dyn.loc[~val, "value"] * factor
    dyn.to_csv(dst / "dynamics.csv", index=False)
    lines = []
    for line in (src / "train_log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        lines.append(json.dumps({k: (v * factor if k.startswith("loss") and isinstance(v, float) else v)
                                 for k, v in rec.items()}))
    (dst / "train_log.jsonl").write_text("\n".join(lines) + "\n")


def zero_shot(out: Path, checkpoint: Path, n: int = 40) -> None:
    from PIL import Image

    rows = json.loads(CROSS.read_text())[:n]
    work = out.parent.parent / "zeroshot-src"   # the questions and placeholder images
    images = work / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for r in rows:
        name = images / r["image_name"]
        if not name.exists():
            Image.fromarray(rng.integers(0, 255, (96, 80)).astype(np.uint8)).save(name)
    questions = work / "testset.json"
    questions.write_text(json.dumps(rows))
    cx("evaluate", str(checkpoint), "--dataset", "vqa-rad", "--questions", str(questions), "--images", str(images),
       "--out", str(out), "--n-resamples", RESAMPLES, "--no-progress", *SKIP)


def build_inputs(out: Path, synth_root: Path, synth_index: Path, checkpoint: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    _link(out / "data", synth_root)
    _link(out / "index", synth_index)
    (out / "runs").mkdir(exist_ok=True)
    _link(out / "runs" / "full", Path(checkpoint).parent)
    if not (out / "stats" / "stats.json").exists():
        cx("stats", str(out / "index"), "--out", str(out / "stats"))
    if not (out / "eval" / "full" / "metrics.json").exists():
        cx("evaluate", str(checkpoint), "--split", "test", "--index", str(out / "index"), "--out",
           str(out / "eval" / "full"), "--n-resamples", RESAMPLES, "--no-progress", "--n-overlays", "3", *SKIP)
    full = pd.read_parquet(out / "eval" / "full" / "predictions.parquet")
    for i, (name, share) in enumerate(FAKE.items()):
        fake_training(out / "runs" / "full", out / "runs" / name, name, 1.0 + share)
        run = out / "eval" / name
        if not (run / "metrics.json").exists():
            src = out / f"{name}.parquet"
            fake_predictions(full, share, seed=i).to_parquet(src)
            cx("score", str(src), "--out", str(run), "--n-resamples", RESAMPLES, "--no-progress", *SKIP)
            cx("chexpert", str(run), "--n-resamples", RESAMPLES)
            src.unlink()
    if not (out / "eval" / "zeroshot-vqa-rad" / "metrics.json").exists():
        zero_shot(out / "eval" / "zeroshot-vqa-rad", checkpoint)
    if not (out / "errors" / "summary.json").exists():
        cx("errors", str(out / "eval" / "full"), "--baseline", str(out / "eval" / "no_scene_graph"), "--index",
           str(out / "index"), "--out", str(out / "errors"), "--n-resamples", RESAMPLES, "--unit", "pair",
           "--n-overlays", "3", "--no-progress")
    if not (out / "compare" / "comparison.json").exists():
        cx("compare", str(out / "eval" / "full"), *(str(out / "eval" / n) for n in FAKE), "--out",
           str(out / "compare"), "--n-resamples", RESAMPLES, "--unit", "pair", "--no-progress")   # 14 test studies: too few units for study-level tests
    return out


if __name__ == "__main__":      # development: python -m tests.book.builder OUT SYNTH_ROOT INDEX CHECKPOINT
    print(build_inputs(*(Path(a) for a in sys.argv[1:5])))


def build_study(study: Path, inputs: Path) -> Path:
    """A study dir (docs/contracts.md §7) over ``inputs``' runs as seed 0: the step folders as
    links, a study.json, and the summary tables written by cxrbench.ablate's own functions from
    the seed's comparison and the runs' dynamics (what ``cxrbench ablate`` writes at its end)."""
    from cxrbench.ablate import dynamics, expected, seeds

    conditions = ["full", *FAKE]
    for cond in conditions:
        for kind in ("runs", "eval"):
            (study / kind / cond).mkdir(parents=True, exist_ok=True)
            _link(study / kind / cond / "seed0", inputs / kind / cond)
    (study / "compare").mkdir(parents=True, exist_ok=True)
    _link(study / "compare" / "seed0", inputs / "compare")
    manifest = {"format": "cxrbench-study/1", "config": {"argument": "tiny", "overrides": [], "sha256": "c" * 64},
                "index": {"path": os.path.relpath((inputs / "index").resolve(), study.resolve()), "sha256": "i" * 64},
                "baseline": "full", "conditions": conditions, "seeds": [0], "split": "test",
                "runs": {f"{c}/seed0": {"condition": c, "seed": 0, "scene_graph": c == "full"} for c in conditions},
                "steps": []}
    (study / "study.json").write_text(json.dumps(manifest, indent=1))
    comparison = json.loads((inputs / "compare" / "comparison.json").read_text())
    cells = json.loads((inputs / "compare" / "ablation_matrix.json").read_text())["cells"]
    spread = seeds.seed_spread({0: comparison["rows"]})
    pd.DataFrame([{k: r[k] for k in seeds.COLUMNS} for r in spread], columns=list(seeds.COLUMNS)).to_csv(
        study / "seed_spread.csv", index=False)
    pd.DataFrame(expected.accuracy_rows({0: cells}), columns=list(expected.COLUMNS)).to_csv(
        study / "expected_matrix.csv", index=False)
    dyn = dynamics.collect_dynamics([dynamics.read_dynamics(inputs / "runs" / c / "dynamics.csv") for c in conditions])
    stt = dynamics.steps_to_target(dyn, baseline="full")
    stt.to_csv(study / "steps_to_target.csv", index=False)
    conv = dynamics.convergence(stt, {c: c == "full" for c in conditions}, baseline="full")
    (study / "convergence.json").write_text(json.dumps(conv, indent=1, default=str))
    return study
