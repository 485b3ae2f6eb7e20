"""`cxrbench errors` on the synthetic index with planted error patterns: errors exactly on the
questions a displaced box touches, exactly on high-overlap answer boxes, exactly on one question
type; each stratum, the propagation rate, the correlation, the graph-benefit test and the
misaligned list are checked against the planted truth."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cxrbench import questions
from cxrbench.data.vocabulary import region_category
from cxrbench.error_analysis import overlap, propagation
from cxrbench.error_analysis.report import ErrorOptions, analyze_run

OPTIONS = ErrorOptions(n_resamples=200, n_overlays=2, progress=False)
TYPE = "D03_where_is_finding"


@pytest.fixture(scope="module")
def base(synth_index, synth_root):
    """Every answerable QA pair of the index as a correct prediction, with what the planting needs."""
    from cxrbench.data.selection import answerable

    qa = pd.read_parquet(synth_index / "qa.parquet")
    studies = pd.read_parquet(synth_index / "studies.parquet")
    qa = qa[answerable(qa, studies)].reset_index(drop=True)
    frame = pd.DataFrame({
        "question_id": qa["question_id"], "study_id": qa["study_id"], "subject_id": qa["subject_id"],
        "question_type": qa["question_type"], "question": qa["question"], "answer": qa["answer"],
        "prediction": qa["answer"],
        "head": [questions.get(t).head for t in qa["question_type"]],
        "region_category": [region_category(r[0]) if len(r) else "other" for r in qa["answer_regions"]],
        "boxes_true": [[list(b) for b in boxes] for boxes in qa["answer_bboxes"]],
        "plausibility": np.where(np.arange(len(qa)) % 50 == 0, 0.1, 0.8),
    })
    nodes = pd.read_parquet(synth_index / "nodes.parquet")
    frame["max_iou"] = overlap.max_iou_column(frame["boxes_true"], frame["study_id"],
                                              overlap.image_boxes(nodes, studies))
    truth = pd.read_parquet(synth_root / "synthetic_truth" / "boxes.parquet")
    primary = dict(zip(studies["study_id"].astype("int64"), studies["image_id"].astype(str)))
    kinds, status, _ = propagation.truth_kinds(qa["obs_ids"], qa["study_id"], truth, primary)
    frame["kinds"], frame["status"] = kinds, status
    return frame


def _run(tmp_path, base: pd.DataFrame, wrong: np.ndarray, name: str):
    out = tmp_path / name
    out.mkdir()
    frame = base.drop(columns=["max_iou", "kinds", "status"]).copy()
    frame["correct"] = ~wrong
    frame["exact_match"] = (~wrong).astype(float)
    frame.loc[wrong, "prediction"] = "a wrong answer"
    frame.to_parquet(out / "predictions.parquet")
    (out / "metrics.json").write_text(json.dumps({"provenance": {"ablation_condition": name}}))
    return out


def test_errors_exactly_on_displaced_box_questions(base, synth_index, synth_root, tmp_path):
    displaced = np.array(["displaced" in k for k in base["kinds"]])
    assert displaced.sum() >= 10                       # the generator displaces 5.6% of observation boxes
    run = _run(tmp_path, base, displaced, "full")
    summary = analyze_run(run, tmp_path / "out", OPTIONS, index=synth_index, data=synth_root)
    prop = pd.read_csv(tmp_path / "out" / "propagation.csv").set_index("kind")
    assert prop.loc["displaced", "n"] == displaced.sum() and prop.loc["displaced", "error_rate"] == 1.0
    assert prop.loc["displaced", "meets_target"] == "no"
    assert prop.loc["displaced", "clean_error_rate"] == 0.0
    assert prop.loc["displaced", "excess"] == pytest.approx(1.0)
    missing = np.array(["missing" in k for k in base["kinds"]])   # wrong only where a displaced box also touches
    assert prop.loc["missing", "n"] == missing.sum() > 0
    assert prop.loc["missing", "error_rate"] == pytest.approx((missing & displaced).sum() / missing.sum())
    assert summary["propagation"]["design_kinds_absent"] == ["misclassified", "duplicated"]
    assert summary["propagation"]["source"] == "synthetic_truth"
    strata = pd.read_csv(tmp_path / "out" / "strata.csv").set_index(["group", "stratum"])
    assert strata.loc[("sg_status", "clean"), "error_rate"] == 0.0
    assert strata.loc[("overall", "overall"), "n_errors"] == displaced.sum()
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    assert (items["error"].to_numpy() == displaced).all()
    assert all("displaced" in k for k in items.loc[items["error"], "sg_error_kinds"])


def test_errors_exactly_on_high_overlap_boxes(base, synth_index, tmp_path):
    high = base["max_iou"].fillna(0).to_numpy() >= 0.5
    assert 0 < high.sum() < (base["max_iou"].notna()).sum()
    run = _run(tmp_path, base, high, "full")
    summary = analyze_run(run, tmp_path / "out", OPTIONS, index=synth_index)
    strata = pd.read_csv(tmp_path / "out" / "strata.csv")
    bins = strata[strata["group"] == "iou_bin"].set_index("stratum")["error_rate"]
    for label, rate in bins.items():
        assert rate == (1.0 if label in ("[0.5, 0.7)", "[0.7, 1]") else 0.0), label
    o = summary["overlap"]
    assert o["r"] > 0.5 and o["r_ci"][0] > 0 and o["rho"] > 0.5 and o["r_p_value"] < 1e-6
    assert o["mean_iou_errors"] >= 0.5 > o["mean_iou_correct"]


def test_errors_on_one_type_and_the_graph_benefit_against_a_baseline(base, synth_index, tmp_path):
    on_type = (base["question_type"] == TYPE).to_numpy()
    run = _run(tmp_path, base, on_type, "full")
    baseline = _run(tmp_path, base, np.zeros(len(base), dtype=bool), "no_scene_graph")
    # the bootstrap p-value is at least 1 / (B + 1): 26 types corrected need B > 26 / 0.05
    options = ErrorOptions(n_resamples=2000, n_overlays=0, progress=False)
    summary = analyze_run(run, tmp_path / "out", options, baseline_dir=baseline, index=synth_index)
    strata = pd.read_csv(tmp_path / "out" / "strata.csv")
    types = strata[strata["group"] == "question_type"].set_index("stratum")["error_rate"]
    assert types[TYPE] == 1.0 and (types.drop(TYPE) == 0.0).all()
    heads = strata[strata["group"] == "head"].set_index("stratum")["error_rate"]
    assert heads["region"] > 0 and heads["binary"] == 0.0
    benefit = pd.read_csv(tmp_path / "out" / "graph_benefit.csv")
    boot = benefit[benefit["test"] == "paired_bootstrap"].set_index("stratum")
    assert boot.loc[TYPE, "diff"] == -1.0 and boot.loc[TYPE, "effect"] == "hurts"
    assert (boot.drop(TYPE)["effect"] == "no_benefit").all()
    assert summary["graph_benefit"]["hurts"] == [TYPE]
    items = pd.read_parquet(tmp_path / "out" / "items.parquet")
    assert not items["baseline_error"].any()
    prop = pd.read_csv(tmp_path / "out" / "propagation.csv").set_index("kind")
    assert prop.loc["any", "baseline_error_rate"] == 0.0


def test_misaligned_cases_are_listed_lowest_first(base, synth_index, tmp_path):
    run = _run(tmp_path, base, np.zeros(len(base), dtype=bool), "full")
    summary = analyze_run(run, tmp_path / "out", OPTIONS, index=synth_index)
    cases = pd.read_csv(tmp_path / "out" / "misaligned.csv")
    assert len(cases) == int((base["plausibility"] < 0.35).sum()) == summary["misaligned"]["n_misaligned"]
    assert set(cases["plausibility"]) == {0.1}
    keys = list(zip(cases["study_id"], cases["question_id"]))
    assert keys == sorted(keys, key=lambda k: f"{k[0]}/{k[1]}")
    assert summary["misaligned"]["overlays"]["without_raw_attention"] == 2   # no shards: no overlay, counted


def test_the_command_writes_the_folder_and_refuses_a_foreign_one(base, synth_index, tmp_path):
    run = _run(tmp_path, base, (base["question_type"] == TYPE).to_numpy(), "full")
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "cxrbench", "errors", str(run), "--index", str(synth_index), "--out", str(out),
           "--n-resamples", "50", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert {"items.parquet", "strata.csv", "overlap.json", "propagation.csv", "misaligned.csv", "summary.json",
            "errors.md", "overlays"} <= {p.name for p in out.iterdir()}
    first = (out / "summary.json").read_bytes()
    assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
    assert (out / "summary.json").read_bytes() == first               # rerun: the same bytes
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    proc = subprocess.run(cmd[:-4] + [str(foreign), "--n-resamples", "50", "--no-progress"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1 and "not empty" in proc.stderr and (foreign / "notes.txt").read_text() == "mine"


def test_real_data_use_the_chexpert_disagreement_proxy(base, synth_index, tmp_path):
    """Without a truth folder the propagation comes from disagreements of the graph-derived
    has_finding answers with the study's CheXpert labels; errors planted exactly there."""
    import shutil

    from cxrbench.evaluate.inputs import add_reference_columns

    index = tmp_path / "index"
    shutil.copytree(synth_index, index)
    manifest = json.loads((index / "manifest.json").read_text())
    manifest.pop("roots", None)                           # a real install: no synthetic_truth to be found
    (index / "manifest.json").write_text(json.dumps(manifest))
    qa = pd.read_parquet(index / "qa.parquet")
    studies = pd.read_parquet(index / "studies.parquet")
    frame = add_reference_columns(base.drop(columns=["max_iou", "kinds", "status"]), qa, studies)
    binary = dict(zip(zip(qa["study_id"], qa["question_id"]), qa["answer_binary"]))
    frame["label_true"] = pd.array([binary[k] if binary[k] >= 0 else None
                                    for k in zip(frame["study_id"], frame["question_id"])], dtype="Int64")
    kinds, status = propagation.proxy_kinds(frame)
    wrong = np.array([bool(k) for k in kinds])
    assert wrong.sum() > 0 and status.count("clean") > 0      # the generator's labeler noise makes some
    out = tmp_path / "run"
    out.mkdir()
    frame["correct"] = ~wrong
    frame.to_parquet(out / "predictions.parquet")
    summary = analyze_run(out, tmp_path / "errors", OPTIONS, index=index)
    assert summary["propagation"]["source"] == "chexpert_proxy"
    prop = pd.read_csv(tmp_path / "errors" / "propagation.csv").set_index("kind")
    assert set(prop.index) == {"proxy_graph_positive", "proxy_graph_negative", "any"}
    assert prop.loc["any", "n"] == wrong.sum() and prop.loc["any", "error_rate"] == 1.0
    assert prop.loc["any", "clean_error_rate"] == 0.0
