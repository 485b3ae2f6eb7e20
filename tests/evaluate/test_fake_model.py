"""`cxrbench evaluate` through the checkpoint-loader hook with a fake model, model package blocked:
the run dir, --unit reaching every report, the QA-pair key, and a rerun's identical bytes."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cxrbench.errors import CxrbenchError
from cxrbench.evaluate.pipeline import EvaluateOptions, evaluate_index
from cxrbench.predictor import PredictorSettings, load_predictor
from cxrbench.score import ScoreOptions
from tests.evaluate.fakes import FakePredictor, registered_fake_checkpoint

SKIP = ("bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall")


@pytest.fixture()
def fake_checkpoint(tmp_path):
    with registered_fake_checkpoint(tmp_path / "fake-ckpt", "planted") as ckpt:
        yield ckpt


def _options(**score) -> EvaluateOptions:
    return EvaluateOptions(score=ScoreOptions(n_resamples=50, skip=SKIP, progress=False, **score), shard_size=64,
                           n_overlays=1, progress=False)


def test_the_loader_hook_finds_the_model_and_refuses_unknown_folders(fake_checkpoint, tmp_path):
    predictor = load_predictor(fake_checkpoint, PredictorSettings())
    assert isinstance(predictor, FakePredictor) and predictor.identity["condition"] == "planted"
    (tmp_path / "unknown").mkdir()
    with pytest.raises(CxrbenchError, match="no checkpoint loader recognises this directory .*asked: fake"):
        load_predictor(tmp_path / "unknown", PredictorSettings())
    with pytest.raises(CxrbenchError, match="checkpoint directory not found"):
        load_predictor(tmp_path / "missing", PredictorSettings())


def test_evaluate_writes_the_run_dir_and_the_unit_reaches_every_report(fake_checkpoint, synth_index, tmp_path):
    out = tmp_path / "run"
    metrics = evaluate_index(fake_checkpoint, synth_index, "test", out, _options(unit="subject_id"))
    assert metrics["provenance"]["bootstrap"]["unit"] == "subject_id"
    assert metrics["provenance"]["ablation_condition"] == "planted"
    # the predictor's own per-item scores keep their constructors' signatures
    sigs = metrics["provenance"]["metrics"]
    assert sigs["plausibility"]["signature"] == "iou|minmax|threshold:0.5"
    assert sigs["attention_entropy"]["signature"] == "shannon|nats"
    assert json.loads((out / "calibration.json").read_text())["unit"] == "subject_id"
    assert json.loads((out / "chexpert_report.json").read_text())["bootstrap"]["unit"] == "subject_id"
    assert json.loads((out / "attention" / "summary.json").read_text())["unit"] == "subject_id"
    pred = pd.read_parquet(out / "predictions.parquet")
    qa = pd.read_parquet(synth_index / "qa.parquet")
    assert len(pred) == int((qa["split"] == "test").sum()) - metrics["provenance"]["excluded"]["no_frontal_image"][
        "qa_pairs"]
    assert not pred.duplicated(["study_id", "question_id"]).any()


def test_a_rerun_is_byte_identical_and_the_study_is_part_of_the_key(fake_checkpoint, synth_index, tmp_path):
    """The index re-keyed the real release's way: every study's questions get template ids that
    recur across studies; the run keeps every QA pair and answers each from its own study."""
    qa = pd.read_parquet(synth_index / "qa.parquet")
    templated = synth_index.parent / (synth_index.name + "-templated")
    if not (templated / "manifest.json").exists():
        import shutil

        shutil.copytree(synth_index, templated, dirs_exist_ok=True)
        qa = qa.assign(question_id=qa["question_type"] + "_" + qa.groupby(["study_id", "question_type"]).cumcount()
                       .map("{:03d}".format))
        qa.to_parquet(templated / "qa.parquet", index=False)
    assert pd.read_parquet(templated / "qa.parquet")["question_id"].duplicated().any()
    a = evaluate_index(fake_checkpoint, templated, "test", tmp_path / "a", _options())
    evaluate_index(fake_checkpoint, templated, "test", tmp_path / "b", _options())
    for name in ("predictions.parquet", "metrics.json", "calibration.json", "attention/summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    pred = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    assert pred["question_id"].duplicated().any() and not pred.duplicated(["study_id", "question_id"]).any()
    assert a["provenance"]["n_items"] == len(pred)
    # the has_finding join is by key: every study's own question gets its own CheXpert classes
    test_qa = pd.read_parquet(templated / "qa.parquet").query("split == 'test'")
    assert len(pred.merge(test_qa[["study_id", "question_id"]], on=["study_id", "question_id"])) == len(pred)
