import numpy as np
import pandas as pd
import pytest

from model.answers import AnswerBank
from model.checkpoint import load_checkpoint, save_checkpoint
from model.inference import Predictor
from tests.model import handmade
from tests.model.helpers import Setup

CONTRACT = ["question_id", "study_id", "question_type", "question", "head", "answer", "prediction", "label_true",
            "label_pred", "score", "probs", "confidence", "regions_true", "regions_pred", "boxes_true", "boxes_pred",
            "box_scores", "image_width", "image_height", "region_category", "chexpert_true", "chexpert_prob",
            "attn_text_visual", "attn_sim", "token_boxes", "image_path"]


@pytest.fixture(scope="module")
def bundle(handmade_index, tmp_path_factory):
    s = Setup(handmade_index)
    qa = s.index.qa[s.index.qa["split"] == "train"]
    bank = AnswerBank.build(qa, s.dataset.targets, min_studies=2)
    out = save_checkpoint(tmp_path_factory.mktemp("ck") / "checkpoint", s.model, s.cfg.model, s.vocabs, s.tokenizer,
                          bank, {"step": 0})
    return load_checkpoint(out)


def test_one_row_per_input_with_the_contract_columns_deterministically(bundle, handmade_index):
    qa = pd.read_parquet(handmade_index / "qa.parquet")
    test = qa[qa["split"] == "test"].iloc[::-1]         # any order: the output follows the input
    p = Predictor(bundle, handmade_index, batch_size=5)
    frame = p.predict(test)
    assert set(CONTRACT) <= set(frame.columns)
    assert frame["question_id"].tolist() == test["question_id"].tolist()
    again = Predictor(bundle, handmade_index, batch_size=5).predict(test)
    pd.testing.assert_frame_equal(frame, again)
    n_nodes = pd.read_parquet(handmade_index / "nodes.parquet").groupby("study_id").size()
    for row in frame.itertuples(index=False):
        assert np.isclose(sum(row.attn_text_visual), 1.0) and np.isclose(sum(row.attn_sim), 1.0)
        assert len(row.attn_text_visual) == len(row.attn_sim) == len(row.token_boxes) == 1 + n_nodes[row.study_id]   # global token first
        assert row.token_boxes[0] == [0.0, 0.0, 96.0, 96.0]
        assert len(row.chexpert_prob) == 14 and row.chexpert_true is not None
        if row.head == "binary":
            assert row.score == row.probs[1] and row.label_pred == int(row.probs[1] > row.probs[0])
            assert row.label_true in (0, 1)
        if row.head == "region":
            assert len(row.probs) == 26 and row.regions_pred and len(row.boxes_pred) == len(row.regions_pred)
            assert row.label_true is not None and row.boxes_true
        if row.head == "text":
            assert row.findings_pred and pd.isna(row.label_pred)
        assert isinstance(row.prediction, str) and row.prediction
    # test studies carry the radiologists' labels in chexpert_true
    studies = pd.read_parquet(handmade_index / "studies.parquet").set_index("study_id")
    first = frame.iloc[0]
    np.testing.assert_array_equal(np.array(first["chexpert_true"], dtype=float),
                                  np.array(studies.loc[first["study_id"], "chexpert_gold"], dtype=float))


def test_predicted_regions_point_at_the_scene_graph_box(bundle, handmade_index):
    p = Predictor(bundle, handmade_index)
    sid = int(pd.read_parquet(handmade_index / "studies.parquet")["study_id"].iloc[0])
    assert p.region_boxes[sid]["left lung"] == handmade.LEFT_LUNG
    qa = pd.read_parquet(handmade_index / "qa.parquet")
    where = qa[qa["question_type"] == "D03_where_is_finding"].iloc[:4]
    frame = p.predict(where)
    for row in frame.itertuples(index=False):
        for region, box in zip(row.regions_pred, row.boxes_pred):
            assert box == p.region_boxes[row.study_id].get(region, [0.0, 0.0, 96.0, 96.0])


def test_zero_shot_mode_and_images_without_an_index(bundle, handmade_index):
    qa = pd.read_parquet(handmade_index / "qa.parquet").iloc[:4]
    frame = Predictor(bundle, handmade_index, use_scene_graph=False).predict(qa)
    assert all(len(b) == 1 for b in frame["token_boxes"]) and frame["attn_sim"].isna().all()
    assert all(a == [1.0] for a in frame["attn_text_visual"])
    studies = pd.read_parquet(handmade_index / "studies.parquet")
    root = Predictor(bundle, handmade_index).index.image_root
    external = pd.DataFrame({
        "question_id": ["r1", "r2", "r3"],
        "question": ["Is there a pleural effusion?", "Where is the effusion?", "What modality is this?"],
        "image_path": [str(root / studies["image_path"].iat[0])] * 2 + [str(root / studies["image_path"].iat[1])],
        "head": ["binary", "region", "text"],
        "answer": ["yes", "left lung", "x-ray"],
    })
    out = Predictor(bundle, None, use_scene_graph=False).predict(external)
    assert out["head"].tolist() == ["binary", "region", "text"]
    assert out["study_id"].isna().all() and out["chexpert_true"].isna().all()
    assert out["image_width"].tolist() == [96.0] * 3
    assert all(b == [[0.0, 0.0, 96.0, 96.0]] * len(r) for b, r in zip(out["boxes_pred"], out["regions_pred"]))
    with pytest.raises(Exception, match="no image_path"):
        Predictor(bundle, None).predict(pd.DataFrame({"question_id": ["z"], "question": ["Is it?"]}))


def test_single_head_text_comes_from_the_unified_argmax(handmade_index, tmp_path):
    import torch

    from model.vocabularies import HEAD_CLASSES, UNIFIED_CLASSES, UNIFIED_OFFSETS

    s = Setup(handmade_index, "single_head")
    with torch.no_grad():   # bias the unified head towards "left lung" whatever the question
        s.model.heads.unified[-1].bias[UNIFIED_OFFSETS["region"] + HEAD_CLASSES["region"].index("left lung")] += 50
    out = save_checkpoint(tmp_path / "ck", s.model, s.cfg.model, s.vocabs, s.tokenizer, AnswerBank(), {})
    qa = pd.read_parquet(handmade_index / "qa.parquet")
    frame = Predictor(load_checkpoint(out), handmade_index).predict(qa.groupby("question_type").head(1))
    assert (frame["prediction"] == "Left lung.").all()               # a region answer, even to yes/no questions
    binary = frame[frame["head"] == "binary"].iloc[0]
    assert len(binary["probs"]) == 2 and np.isclose(sum(binary["probs"]), 1.0)   # renormalised within the head
    assert UNIFIED_CLASSES[UNIFIED_OFFSETS["binary"] + 1] == "yes"
