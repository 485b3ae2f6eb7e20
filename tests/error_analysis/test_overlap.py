"""The answer box's largest IoU with its neighbours, its bins, and the correlation of errors with it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cxrbench.error_analysis import overlap


def test_max_neighbour_iou_hand_worked():
    # neighbours: the answer box itself (not its own neighbour), a box overlapping half of it, a far one
    answer = [0.0, 0.0, 10.0, 10.0]
    neighbours = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 60, 60]], dtype=float)
    # IoU with [5, 0, 15, 10]: intersection 50, union 150
    assert overlap.max_neighbour_iou([answer], neighbours) == pytest.approx(1 / 3)
    # two answer boxes: the most confusable one decides; [20, 0, 30, 10] touches nothing
    assert overlap.max_neighbour_iou([[20, 0, 30, 10], answer], neighbours) == pytest.approx(1 / 3)
    assert overlap.max_neighbour_iou([[20, 0, 30, 10]], neighbours) == 0.0
    assert np.isnan(overlap.max_neighbour_iou([], neighbours))
    assert np.isnan(overlap.max_neighbour_iou(None, neighbours))
    assert overlap.max_neighbour_iou([answer], np.array([[0, 0, 10, 10]], dtype=float)) == 0.0   # only itself
    assert overlap.max_neighbour_iou([answer], None) == 0.0


def test_max_neighbour_iou_agrees_with_torchvision():
    torch = pytest.importorskip("torch")
    from torchvision.ops import box_iou

    rng = np.random.default_rng(3)
    for _ in range(20):
        xy = rng.uniform(0, 100, size=(9, 2))
        wh = rng.uniform(1, 60, size=(9, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1)
        ref = box_iou(torch.tensor(boxes[:1]), torch.tensor(boxes[1:])).numpy().max()
        assert overlap.max_neighbour_iou([boxes[0]], boxes) == pytest.approx(float(ref), abs=1e-12)


def test_image_boxes_keep_the_primary_image_and_distinct_boxes():
    studies = pd.DataFrame({"study_id": [1, 2], "image_id": ["a", "c"]})
    nodes = pd.DataFrame({"study_id": [1, 1, 1, 1, 2], "image_id": ["a", "a", "b", "a", "c"],
                          "bbox": [[0, 0, 1, 1], [0, 0, 1, 1], [5, 5, 6, 6], None, [1, 1, 2, 2]]})
    got = overlap.image_boxes(nodes, studies)
    assert got[1].tolist() == [[0, 0, 1, 1]]          # duplicate once, lateral image and missing box dropped
    assert got[2].tolist() == [[1, 1, 2, 2]]


def test_bins_cover_zero_to_one():
    labels = overlap.iou_bin(np.array([0.0, 0.05, 0.1, 0.35, 0.5, 0.69, 0.7, 1.0, np.nan]))
    assert labels.tolist() == ["[0, 0.1)", "[0, 0.1)", "[0.1, 0.2)", "[0.3, 0.4)", "[0.5, 0.7)", "[0.5, 0.7)",
                               "[0.7, 1]", "[0.7, 1]", "none"]


def test_correlation_equals_scipy_and_its_ci_covers_it():
    rng = np.random.default_rng(0)
    iou = rng.uniform(0, 1, 600)
    error = rng.uniform(0, 1, 600) < 0.2 + 0.6 * iou        # planted: more errors on high-overlap boxes
    clusters = np.repeat(np.arange(120), 5)
    out = overlap.overlap_correlation(error, iou, clusters, n_resamples=500, seed=0)
    ref = stats.pointbiserialr(error, iou)
    assert out["r"] == pytest.approx(ref.statistic)
    assert out["r_p_value"] == pytest.approx(ref.pvalue)
    assert out["rho"] == pytest.approx(stats.spearmanr(error, iou).statistic)
    assert out["r"] > 0.3 and out["r_ci"][0] < out["r"] < out["r_ci"][1] and out["r_ci"][0] > 0
    assert out["mean_iou_errors"] > out["mean_iou_correct"]
    assert overlap.pearson_stats(error.astype(float), iou).value() == pytest.approx(stats.pearsonr(error, iou).statistic)


def test_correlation_is_undefined_without_variation():
    out = overlap.overlap_correlation(np.zeros(10, bool), np.linspace(0, 1, 10), n_resamples=10)
    assert out["r"] is None and "undefined" in out["note"]
