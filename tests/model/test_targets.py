import math

import numpy as np
import pandas as pd
import pytest

from cxrbench import questions
from model.vocabularies import HEAD_INDEX
from model.targets import chexpert_targets, class_weights, derive_targets, infer_head, item_head
from model.vocabularies import FINDING_CLASSES, REGION_CLASSES, Vocabularies

VOCABS = Vocabularies(
    regions=("left lung", "left lower lung zone", "right costophrenic angle", "ribs"),
    entities=("pleural effusion", "consolidation", "rib fracture"),
    region_to_head={"left lung": "left lung", "left lower lung zone": "left lung",
                    "right costophrenic angle": "right costophrenic angle", "ribs": None},
    region_to_category={"left lung": "pulmonary", "left lower lung zone": "pulmonary",
                        "right costophrenic angle": "pleural", "ribs": "osseous"},
    entity_to_chexpert={"pleural effusion": ("Pleural Effusion",), "consolidation": ("Consolidation", "Lung Opacity"),
                        "rib fracture": ("Fracture",)})


def test_routing_follows_the_question_type_registry():
    for qt in questions.QUESTION_TYPES:
        assert item_head(qt.code) == qt.head
        assert item_head(qt.short, None) == qt.head or qt.short == "describe_device"
    assert {qt.head for qt in questions.QUESTION_TYPES} == {"binary", "region", "severity", "text"}
    # foreign question types (VQA-RAD, SLAKE) route on the question's words
    assert item_head("PRES", "Is there a pneumothorax?") == "binary"
    assert infer_head("Where is the lesion located?") == "region"
    assert infer_head("How severe is the edema?") == "severity"
    assert infer_head("What modality is this?") == "text"


def _row(**kw):
    base = dict(question_id="q", study_id=1, question_type="D02_has_finding", question="?", answer="",
                answer_binary=-1, answer_regions=[], answer_entities=[], answer_severity=None,
                answer_positiveness="none")
    base.update(kw)
    return base


def test_labels_of_each_head_and_missing_labels_are_counted():
    qa = pd.DataFrame([
        _row(answer_binary=1, answer_positiveness="pos", answer_entities=["pleural effusion"],
             answer_regions=["right costophrenic angle"]),
        _row(answer_binary=-1),                                        # a yes/no question without yes/no
        _row(question_type="D03_where_is_finding", answer_regions=["left lower lung zone", "ribs", "left lung"]),
        _row(question_type="D03_where_is_finding", answer_regions=["ribs"]),   # nothing foldable
        _row(question_type="D04_how_severe_is_finding", answer_severity="moderate"),
        _row(question_type="D04_how_severe_is_finding", answer_severity=None),
        _row(question_type="B01_describe_all", answer_positiveness="pos",
             answer_entities=["consolidation", "unknown thing"]),
        _row(question_type="B01_describe_all", answer_positiveness="neg", answer_entities=["pleural effusion"]),
    ])
    studies = pd.DataFrame({"study_id": [1], "chexpert": [[np.nan] * 14]})
    t = derive_targets(qa, VOCABS, studies)
    assert [int(h) for h in t.head] == [HEAD_INDEX[h] for h in
                                        ["binary", "binary", "region", "region", "severity", "severity", "text", "text"]]
    assert t.binary[:2].tolist() == [1, -1]
    left = REGION_CLASSES.index("left lung")
    assert np.flatnonzero(t.region[2]).tolist() == [left] and t.region_first[2] == left
    assert not t.region_valid[3]
    assert t.severity[4] == 2 and t.severity[5] == -1
    assert [FINDING_CLASSES[k] for k in np.flatnonzero(t.findings[6])] == ["Consolidation", "Lung Opacity"]
    assert [FINDING_CLASSES[k] for k in np.flatnonzero(t.findings[7])] == ["No Finding"]  # a negative answer
    assert t.valid().tolist() == [True, False, True, False, True, False, True, True]
    assert dict(t.missing) == {"binary": 1, "region": 1, "severity": 1}
    assert t.region_category[0] == "pleural" and t.region_category[4] == "other"


def test_mixed_answers_use_explicit_positive_entities_or_the_study_labels():
    qa = pd.DataFrame([_row(question_type="B01_describe_all", answer_positiveness="mixed",
                            answer_entities=["pleural effusion", "consolidation"])])
    chex = [np.nan] * 14
    chex[FINDING_CLASSES.index("Consolidation")] = 1.0
    chex[FINDING_CLASSES.index("Pleural Effusion")] = 0.0
    t = derive_targets(qa, VOCABS, pd.DataFrame({"study_id": [1], "chexpert": [chex]}))
    assert [FINDING_CLASSES[k] for k in np.flatnonzero(t.findings[0])] == ["Consolidation", "Lung Opacity"]
    qa["answer_entities_positive"] = [["pleural effusion"]]
    t = derive_targets(qa, VOCABS, pd.DataFrame({"study_id": [1], "chexpert": [chex]}))
    assert [FINDING_CLASSES[k] for k in np.flatnonzero(t.findings[0])] == ["Pleural Effusion"]


def test_u_ignore_targets_and_weights():
    values = [1.0, 0.0, -1.0, np.nan] + [0.0] * 10
    target, weight = chexpert_targets(values, nan_weight=0.5)
    assert target[:4].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert weight[:4].tolist() == [1.0, 1.0, 0.0, 0.5]
    target, weight = chexpert_targets(None, 0.5)                  # no labels at all
    assert not target.any() and np.all(weight == 0.5)


def test_class_weights_are_sqrt_inverse_frequency_rescaled_to_mean_one():
    w = class_weights(np.array([100, 25, 4, 0]), total=400)
    raw = np.array([math.sqrt(400 / 100), math.sqrt(400 / 25), math.sqrt(400 / 4)])
    raw = np.append(raw, raw.max())
    np.testing.assert_allclose(w, raw / raw.mean(), rtol=1e-6)
    assert w[2] / w[0] == pytest.approx(5.0)          # (100 / 4) ** 0.5


def test_prior_log_odds_by_hand():
    from model.targets import prior_log_odds

    out = prior_log_odds(np.array([0, 5, 10, 2]), 10)
    np.testing.assert_allclose(out, [np.log(1e-3 / 0.999), 0.0, np.log(0.999 / 1e-3), np.log(0.2 / 0.8)], rtol=1e-6)
    np.testing.assert_allclose(prior_log_odds(np.array([0, 3]), 0), [0.0, 0.0])    # no items: p = 0.5
