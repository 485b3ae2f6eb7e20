"""CheXpert loader (seed 3.4): U-Ignore, blanks, gold labels for test studies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.data.chexpert import ChexpertLabels, labels_from_entities, read_gold, u_ignore

IDX = {label: i for i, label in enumerate(vocab.CHEXPERT_LABELS)}


def test_u_ignore_targets_and_mask():
    t, m = u_ignore(np.array([1.0, 0.0, -1.0, np.nan]), blank_weight=0.5)
    assert t.tolist() == [1.0, 0.0, 0.0, 0.0] and m.tolist() == [1.0, 1.0, 0.0, 0.5]
    t, m = u_ignore(np.array([[np.nan, -1.0]]), blank_weight=0.0)
    assert t.shape == (1, 2) and m.tolist() == [[0.0, 0.0]]


def test_gold_labels_rename_airspace_opacity_and_are_used_for_test_studies(synth_root):
    jpg = synth_root / L.JPG_DIR
    raw = pd.read_csv(jpg / L.GOLD_CSV)
    assert "Airspace Opacity" in raw.columns and "subject_id" not in raw.columns
    gold = read_gold(jpg / L.GOLD_CSV)
    assert list(gold.columns) == list(vocab.CHEXPERT_LABELS)
    np.testing.assert_array_equal(gold["Lung Opacity"].to_numpy(), raw["Airspace Opacity"].to_numpy())
    labels = ChexpertLabels(jpg / L.CHEXPERT_CSV, jpg / L.GOLD_CSV)
    split = pd.read_csv(jpg / L.SPLIT_CSV).drop_duplicates("study_id")
    test = split[split.split == "test"].iloc[0]
    np.testing.assert_array_equal(labels.raw(test.subject_id, test.study_id, gold_for_test=True),
                                  gold.loc[test.study_id].to_numpy())
    auto = pd.read_csv(jpg / L.CHEXPERT_CSV).set_index("study_id")
    if test.study_id in auto.index:
        np.testing.assert_array_equal(labels.raw(test.subject_id, test.study_id),
                                      auto.loc[test.study_id, list(vocab.CHEXPERT_LABELS)].to_numpy(float))


def test_study_without_labels_is_fully_masked(synth_root):
    jpg = synth_root / L.JPG_DIR
    labels = ChexpertLabels(jpg / L.CHEXPERT_CSV)
    t, m = labels.get(10000000, 59999999)
    assert not t.any() and not m.any()


def test_labels_from_entities_aggregates_like_the_labeler():
    v = labels_from_entities([("pleural effusion", ())], [("pleural effusion", ()), ("pneumothorax", ())],
                             [("pneumonia", ())])
    assert v[IDX["Pleural Effusion"]] == 1.0            # positive beats negative
    assert v[IDX["Pneumothorax"]] == 0.0
    assert v[IDX["Pneumonia"]] == -1.0 and np.isnan(v[IDX["No Finding"]])
    v = labels_from_entities([("endotracheal tube", ("DEVICE",))], [("cardiomegaly", ())])
    assert v[IDX["Support Devices"]] == 1.0 and v[IDX["No Finding"]] == 1.0  # devices do not make a study abnormal
    assert np.isnan(v[IDX["Edema"]])
