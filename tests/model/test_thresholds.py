"""Per-finding thresholds of the text head (model/thresholds.py): decision rule, tuning, use."""

import json

import numpy as np
import pandas as pd
import pytest

from model.checkpoint import load_checkpoint
from model.inference import Predictor
from model.decisions import NO_FINDING, decide_findings
from model.thresholds import tune_finding_thresholds
from model.vocabularies import FINDING_CLASSES

ATELECTASIS, EDEMA = FINDING_CLASSES.index("Atelectasis"), FINDING_CLASSES.index("Edema")


def test_decision_rule_by_hand():
    p = np.full((3, 14), 0.1)
    p[0, ATELECTASIS] = 0.6                       # above 0.5
    p[1, EDEMA] = 0.3                             # below 0.5, above its own 0.25
    t = np.full(14, 0.5)
    t[EDEMA] = 0.25
    sets = decide_findings(p, t)
    assert [FINDING_CLASSES[k] for k in np.flatnonzero(sets[0])] == ["Atelectasis"]
    assert [FINDING_CLASSES[k] for k in np.flatnonzero(sets[1])] == ["Edema"]
    assert [FINDING_CLASSES[k] for k in np.flatnonzero(sets[2])] == ["No Finding"]   # nothing chosen


def test_tuning_recovers_a_well_ranked_but_underconfident_head():
    # atelectasis positives score 0.30, negatives 0.10: ranked perfectly, never above 0.5
    rng = np.random.default_rng(0)
    n = 200
    truth = np.zeros((n, 14), dtype=bool)
    pos = rng.random(n) < 0.4
    truth[pos, ATELECTASIS] = True
    truth[~pos, NO_FINDING] = True
    probs = np.full((n, 14), 0.05)
    probs[:, ATELECTASIS] = np.where(pos, 0.30, 0.10)
    thresholds, before, after = tune_finding_thresholds(probs, truth)
    assert before == pytest.approx((~pos).mean())         # 0.5 everywhere: always "No Finding"
    assert after == 1.0
    assert 0.10 < thresholds[ATELECTASIS] <= 0.30
    others = np.delete(thresholds, ATELECTASIS)
    assert (others == 0.5).all()                          # nothing to gain: they stay put
    # deterministic, and a second tuning from the result changes nothing
    again, _, _ = tune_finding_thresholds(probs, truth)
    np.testing.assert_array_equal(thresholds, again)


def test_tuning_validates_shapes():
    with pytest.raises(ValueError, match="must both be"):
        tune_finding_thresholds(np.zeros((3, 13)), np.zeros((3, 13), dtype=bool))


def test_training_tunes_on_validation_and_inference_uses_the_thresholds(tiny_checkpoint, synth_index):
    cfg = json.loads((tiny_checkpoint / "config.json").read_text())
    meta = json.loads((tiny_checkpoint / "training_metadata.json").read_text())
    tuned = cfg["model"]["heads"]["finding_thresholds"]
    assert len(tuned) == 14 and all(0.0 < t < 1.0 for t in tuned)
    report = meta["thresholds"]
    assert report["split"] == "validate" and report["text_rows"] > 0
    assert report["exact_match_tuned"] >= report["exact_match_at_default"]
    assert list(report["thresholds"].values()) == tuned

    bundle = load_checkpoint(tiny_checkpoint)
    qa = pd.read_parquet(synth_index / "qa.parquet")
    test = qa[qa["split"] == "test"].groupby("question_type").head(3)
    bundle.config.heads.finding_thresholds = [0.0] * 14          # everything passes
    every = Predictor(bundle, synth_index).predict(test)
    text = every[every["head"] == "text"]
    assert len(text) and all(sorted(f) == sorted(FINDING_CLASSES) for f in text["findings_pred"])
    bundle.config.heads.finding_thresholds = [1.01] * 14         # nothing passes
    none = Predictor(bundle, synth_index).predict(test)
    assert all(list(f) == ["No Finding"] for f in none.loc[none["head"] == "text", "findings_pred"])


def test_retuning_a_saved_checkpoint_reproduces_the_training_time_thresholds(tiny_checkpoint, synth_index, tmp_path):
    import shutil

    from model.thresholds import retune_checkpoint

    copy = tmp_path / "checkpoint"
    shutil.copytree(tiny_checkpoint, copy)
    cfg = json.loads((copy / "config.json").read_text())
    trained = cfg["model"]["heads"]["finding_thresholds"]
    cfg["model"]["heads"]["finding_thresholds"] = None          # as a checkpoint from before tuning
    (copy / "config.json").write_text(json.dumps(cfg))
    report = retune_checkpoint(copy, synth_index)
    assert list(report["thresholds"].values()) == trained
    assert load_checkpoint(copy).config.heads.finding_thresholds == trained
    assert json.loads((copy / "training_metadata.json").read_text())["thresholds"]["split"] == "validate"
