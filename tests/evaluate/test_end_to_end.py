"""`cxrbench evaluate` end to end: the tiny checkpoint on the synthetic test split (built from
the dataset root and from the index), a run killed mid-way and resumed, byte-identical
outputs; the zero-shot mode on real VQA-RAD / SLAKE questions with placeholder images."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrbench import questions, vocab

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SKIP = ["--skip", "bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall"]
COMMON = ["--split", "test", "--shard-size", "100", "--batch-size", "32", "--n-resamples", "200", "--no-progress",
          "--n-overlays", "3", *SKIP]
OUTPUTS = ("predictions.parquet", "metrics.json", "calibration.json", "chexpert_report.json", "chexpert_report.csv",
           "chexpert_report.md", "attention/summary.json")


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _evaluate(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "cxrbench", "evaluate", *args], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"evaluate failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def clean_run(tiny_checkpoint, synth_root, tmp_path_factory) -> Path:
    """An uninterrupted run that builds its index from the dataset root."""
    out = tmp_path_factory.mktemp("evaluate") / "clean"
    _evaluate(str(tiny_checkpoint), "--data", str(synth_root), "--out", str(out), *COMMON)
    return out


def _ci_ok(entry: dict) -> bool:
    v, (lo, hi) = entry["value"], entry["ci"]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return True
    return lo is not None and lo - 1e-9 <= v <= hi + 1e-9


def test_files_strata_and_cis(clean_run, synth_index, tiny_checkpoint):
    qa = pd.read_parquet(synth_index / "qa.parquet")
    test = qa[qa["split"] == "test"]
    pred = pd.read_parquet(clean_run / "predictions.parquet")
    assert sorted(pred["question_id"]) == sorted(test["question_id"]) and pred["question_id"].is_monotonic_increasing
    assert pred.columns[:4].tolist() == ["question_id", "study_id", "subject_id", "split"]
    assert {"plausibility", "attention_entropy", "exact_match", "correct", "chexpert_gold", "finding_chexpert"} <= set(pred.columns)
    assert (pred["split"] == "test").all()

    metrics = json.loads((clean_run / "metrics.json").read_text())
    assert set(metrics["by_question_type"]) == set(test["question_type"])
    assert set(metrics["by_head"]) == {questions.get(q).head for q in test["question_type"]}
    assert set(metrics["by_region_category"]) <= set(vocab.REGION_CATEGORIES) | {vocab.OTHER_REGION_CATEGORY}
    assert len(metrics["by_region_category"]) >= 3
    n_by_type = test["question_type"].value_counts()
    for qt, block in metrics["by_question_type"].items():
        assert block["exact_match"]["n"] == n_by_type[qt]
    for stratum in ("overall", "by_question_type", "by_head", "by_region_category"):
        blocks = [metrics[stratum]] if stratum == "overall" else list(metrics[stratum].values())
        for block in blocks:
            assert all(_ci_ok(e) for e in block.values()), stratum
    overall = metrics["overall"]
    assert overall["exact_match"]["n"] == len(test)
    assert overall["exact_match"]["value"] == pytest.approx(pred["correct"].mean())
    lo, hi = overall["exact_match"]["ci"]
    assert lo < hi
    for name in ("iou", "ece", "mcc", "auroc", "plausibility", "attention_entropy"):
        assert name in overall, name

    prov = metrics["provenance"]
    cfg = json.loads((tiny_checkpoint / "config.json").read_text())
    manifest = json.loads((synth_index / "manifest.json").read_text())
    assert prov["command"] == "cxrbench evaluate" and prov["split"] == "test"
    assert prov["ablation_condition"] == cfg["condition"]
    assert prov["inputs"]["index"]["sha256"] == manifest["content_hash"]
    assert len(prov["inputs"]["checkpoint"]["model_sha256"]) == 64
    assert prov["bootstrap"]["unit"] == "study_id" and prov["bootstrap"]["n_resamples"] == 200
    assert str(clean_run) not in (clean_run / "metrics.json").read_text()      # no absolute paths

    report = json.loads((clean_run / "chexpert_report.json").read_text())
    assert report["reference"]["kind"] == "radiologist"
    assert report["counts"]["studies"] == test["study_id"].nunique()
    assert set(report["aux_head"]) == set(vocab.CHEXPERT_LABELS)
    assert report["qa_has_finding"] and report["consistency"]["all"]["reference"]["n"] > 0
    cal = json.loads((clean_run / "calibration.json").read_text())
    assert cal["by_head"]["binary"]["top_label"]["ece"]["n"] == int((pred["head"] == "binary").sum())
    summary = json.loads((clean_run / "attention" / "summary.json").read_text())
    assert summary["counts"]["items"] == len(test)
    assert summary["counts"]["with_plausibility"] == int(pred["plausibility"].notna().sum()) > 0
    assert len(list((clean_run / "attention").glob("overlay_*.png"))) == 3
    assert all(o["image_found"] for o in summary["overlays"])
    assert (clean_run / "index" / "manifest.json").exists()


def test_killed_run_resumes_to_byte_identical_outputs(clean_run, tiny_checkpoint, synth_index, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "cxrbench", "evaluate", str(tiny_checkpoint), "--index", str(synth_index),
           "--out", str(out), *COMMON]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    shards = out / "shards"
    deadline = time.time() + 600
    while time.time() < deadline and len(list(shards.glob("shard-*.parquet"))) < 2 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_done = len(list(shards.glob("shard-*.parquet")))
    assert 2 <= n_done < 8 and not (out / "predictions.parquet").exists()
    stamps = {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.parquet")}

    _evaluate(str(tiny_checkpoint), "--index", str(synth_index), "--out", str(out), *COMMON)
    assert all(p.stat().st_mtime_ns == stamps[p.name] for p in shards.glob("shard-*.parquet") if p.name in stamps)
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (clean_run / name).read_bytes(), name
    for shard in sorted(shards.glob("shard-*.parquet")):
        assert shard.read_bytes() == (clean_run / "shards" / shard.name).read_bytes(), shard.name

    # other inputs in the same run dir are refused with a clear message
    proc = _evaluate(str(tiny_checkpoint), "--index", str(synth_index), "--out", str(out), *COMMON,
                     "--no-scene-graph", check=False)
    assert proc.returncode == 1 and "scene_graphs" in proc.stderr


# ----------------------------------------------------------------------------- zero-shot
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crossdataset"   # the real files, with the tests
VQA_RAD_QIDS = (1146, 1365, 724, 367, 210, 1539)      # yes/no, yes/no, region, side, modality, region
SLAKE_QIDS = (11938, 11943, 11935, 12298, 11934)        # no, "Left Lung, Right", "Chest", "Lower Left Lung", CT


def _subset(dataset: str, qids, tmp: Path) -> tuple[Path, Path]:
    from PIL import Image

    src = FIXTURES / ("vqa-rad/testset.json" if dataset == "vqa-rad" else "slake/test.json")
    rows = [r for r in json.loads(src.read_text()) if r["qid"] in qids]
    assert len(rows) == len(qids)
    path, images = tmp / f"{dataset}.json", tmp / f"{dataset}-images"
    path.write_text(json.dumps(rows))
    rng = np.random.default_rng(0)
    for r in rows:
        name = images / (r["image_name"] if dataset == "vqa-rad" else r["img_name"])
        name.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (96, 80)).astype(np.uint8)).save(name)
    return path, images


@pytest.mark.parametrize("dataset, qids", [("vqa-rad", VQA_RAD_QIDS), ("slake", SLAKE_QIDS)])
def test_zero_shot_cross_dataset(dataset, qids, tiny_checkpoint, tmp_path):
    from cxrbench.data.crossdataset import load_crossdataset

    path, images = _subset(dataset, qids, tmp_path)
    out = tmp_path / "run"
    _evaluate(str(tiny_checkpoint), "--dataset", dataset, "--questions", str(path), "--images", str(images),
              "--out", str(out), "--n-resamples", "100", "--no-progress", *SKIP)
    expected = load_crossdataset(dataset, path)
    pred = pd.read_parquet(out / "predictions.parquet")
    assert sorted(pred["question_id"]) == sorted(expected["question_id"])
    merged = pred.merge(expected[["question_id", "head", "answer_binary", "answer_regions", "content_type"]],
                        on="question_id", suffixes=("", "_ref"))
    assert (merged["head"] == merged["head_ref"]).all()
    binary = merged[merged["head"] == "binary"]
    assert set(binary["prediction"]) <= {"yes", "no"}
    assert binary["answer"].tolist() == ["yes" if b == 1 else "no" for b in binary["answer_binary"]]
    region = merged[merged["head"] == "region"]
    assert len(region) >= 1 and region["answer"].tolist() == [r[0] for r in region["answer_regions"]]
    assert set(region["prediction"]) <= set(vocab.HEAD_REGIONS)
    assert (merged["question_type"] == merged["content_type"]).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["by_answer_type"]) == set(expected["answer_type"])
    assert set(metrics["by_question_type"]) == set(expected["content_type"])
    closed = expected["answer_type"] == "CLOSED"
    em = pred.set_index("question_id").loc[expected.loc[closed, "question_id"], "exact_match"].mean()
    assert metrics["by_answer_type"]["CLOSED"]["exact_match"]["value"] == pytest.approx(em)
    assert metrics["provenance"]["dataset"] == dataset
    assert metrics["provenance"]["inference"]["scene_graphs"] == "none"
    assert str(tmp_path) not in (out / "metrics.json").read_text()
    assert not (out / "chexpert_report.json").exists()
    summary = json.loads((out / "attention" / "summary.json").read_text())
    assert summary["counts"]["without_roi"] == len(expected)            # no reference boxes


def test_no_scene_graph_mode_on_the_index_without_cis(tiny_checkpoint, synth_index, tmp_path):
    out = tmp_path / "nosg"
    args = [a if a != "200" else "0" for a in COMMON]          # --n-resamples 0: point estimates only
    _evaluate(str(tiny_checkpoint), "--index", str(synth_index), "--out", str(out), "--no-scene-graph", *args)
    from cxrbench.evaluate.shards import read_shards

    shards = read_shards(out)
    assert all(len(b) == 1 for b in shards["token_boxes"])                  # the global image token only
    pred = pd.read_parquet(out / "predictions.parquet")
    assert (pred["attention_entropy"] == 0.0).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["provenance"]["inference"]["scene_graphs"] == "none"
    assert metrics["overall"]["exact_match"]["ci"] == [None, None]
    assert metrics["overall"]["exact_match"]["value"] == pytest.approx(pred["correct"].mean())
    report = json.loads((out / "chexpert_report.json").read_text())
    assert report["aux_head"]["Edema"]["metrics"]["accuracy"]["ci"] == [None, None]
