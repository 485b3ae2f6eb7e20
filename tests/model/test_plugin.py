"""model/plugin.py: the checkpoint loader cxrbench evaluate finds through its entry point."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from cxrbench.errors import CxrbenchError
from cxrbench.predictor import Predictor as PredictorProtocol
from cxrbench.predictor import PredictorSettings, load_predictor, loaders
from model.checkpoint import FORMAT
from tests.fixtures.model import REPO


def test_can_load_reads_only_config_json_and_imports_no_torch(tmp_path):
    ours, other, empty = tmp_path / "ours", tmp_path / "other", tmp_path / "empty"
    for d in (ours, other, empty):
        d.mkdir()
    (ours / "config.json").write_text(json.dumps({"format": FORMAT}))
    (other / "config.json").write_text(json.dumps({"format": "someone-else/1"}))
    code = ("import sys; from model.plugin import LOADER; "
            f"print([LOADER.can_load(p) for p in ({str(ours)!r}, {str(other)!r}, {str(empty)!r})], "
            "[m for m in ('torch', 'transformers', 'timm', 'deepspeed') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[True, False, False] []"


def test_the_entry_point_registers_the_loader():
    assert "ssgvqa" in [loader.name for loader in loaders()]


def test_load_predictor_gives_todays_predictions(tiny_checkpoint, synth_index):
    from model.checkpoint import load_checkpoint
    from model.data import IndexData
    from model.inference import Predictor

    index = IndexData.load(synth_index)
    rows = index.answerable("test").groupby("question_type").head(3)
    predictor = load_predictor(tiny_checkpoint, PredictorSettings(index_dir=synth_index, batch_size=16, progress=False,
                                                                  device="auto"))     # evaluate's default
    assert isinstance(predictor, PredictorProtocol)
    assert predictor.identity["condition"] == "full" and predictor.identity["step"] > 0
    assert predictor.image_root == index.image_root
    expected = Predictor(load_checkpoint(tiny_checkpoint), synth_index, batch_size=16).predict(rows)
    pd.testing.assert_frame_equal(predictor.predict(rows), expected)

    zero_shot = load_predictor(tiny_checkpoint, PredictorSettings(index_dir=synth_index, scene_graphs="none"))
    assert zero_shot.identity["use_scene_graph"] is False
    expected = Predictor(load_checkpoint(tiny_checkpoint), synth_index, use_scene_graph=False).predict(rows)
    pd.testing.assert_frame_equal(zero_shot.predict(rows), expected)
    assert not zero_shot.predict(rows)["probs"].equals(predictor.predict(rows)["probs"])


def test_detected_scene_graphs_need_their_folder(tiny_checkpoint, synth_index):
    # end to end with a detector's graphs: tests/detect/test_evaluate_detected.py
    with pytest.raises(CxrbenchError, match="needs the folder of detected scene graphs"):
        load_predictor(tiny_checkpoint, PredictorSettings(index_dir=synth_index, scene_graphs="detected"))


def test_auto_device_is_this_ranks_gpu_or_the_cpu(monkeypatch):
    import torch

    from model.plugin import resolve_device

    assert resolve_device("cpu") == "cpu" and resolve_device("cuda:3") == "cuda:3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("auto") == "cuda:2"


def test_the_predictions_meet_the_scoring_contract(tiny_checkpoint, synth_index):
    """The predictor's frame (nullable Int64 labels, list columns) is what cxrbench score reads."""
    from cxrbench.score import ScoreOptions, score_frame
    from model.data import IndexData

    rows = IndexData.load(synth_index).answerable("test").groupby("question_type").head(2)
    frame = load_predictor(tiny_checkpoint, PredictorSettings(index_dir=synth_index)).predict(rows)
    assert frame["label_true"].isna().any()                     # text rows: no class label
    skip = ("bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall")
    _, metrics = score_frame(frame.drop(columns=["attn_text_visual", "attn_sim", "token_boxes"]),
                             ScoreOptions(n_resamples=20, skip=skip, progress=False))
    assert metrics["overall"]["exact_match"]["n"] == len(frame)
