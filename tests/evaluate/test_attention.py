"""Attention painting, per-item plausibility/entropy, summaries and overlays."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from cxrbench.reports import attention as att
from cxrbench.metrics.attention import boxes_mask


def test_grid_shape_keeps_aspect_ratio():
    assert att.grid_shape((1000, 500), 64) == (32, 64)
    assert att.grid_shape((300, 600), 64) == (64, 32)
    assert att.grid_shape((64, 64), 64) == (64, 64)
    with pytest.raises(ValueError):
        att.grid_shape((0, 10))


def test_paint_hand_worked():
    # 4x4 image, 4x4 grid: one pixel per cell
    heat = att.paint([1.0, 0.5], [[0, 0, 2, 2], [0, 0, 4, 4]], (4, 4), grid=4)
    expected = np.full((4, 4), 0.5 / 16)
    expected[:2, :2] += 0.25
    np.testing.assert_allclose(heat, expected)
    assert heat.sum() == pytest.approx(1.5)


def test_paint_small_box_and_missing_box():
    # a box holding no cell centre gives its weight to the cell of its centre
    heat = att.paint([1.0], [[10.2, 20.1, 10.4, 20.3]], (40, 40), grid=4)   # cells of 10 px
    assert heat[2, 1] == 1.0 and heat.sum() == 1.0
    # too narrow only along x: the column of its centre, the rows it covers
    heat = att.paint([1.0], [[10.2, 0, 10.4, 20]], (40, 40), grid=4)
    assert heat[0, 1] == heat[1, 1] == 0.5 and heat.sum() == 1.0
    heat = att.paint([2.0], [None], (40, 40), grid=4)
    np.testing.assert_allclose(heat, np.full((4, 4), 2.0 / 16))
    with pytest.raises(ValueError, match="2 weights but 1 token boxes"):
        att.paint([1.0, 2.0], [[0, 0, 1, 1]], (4, 4))


boxes_st = st.lists(
    st.tuples(st.floats(0, 300), st.floats(0, 200), st.floats(1, 300), st.floats(1, 200), st.floats(0, 1)),
    min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(boxes_st, st.integers(4, 40))
def test_paint_equals_sum_of_uniform_masks(raw, grid):
    """The painting rule, written naively: each token adds weight/|mask| on the cells of its
    box mask (cell-centre rule of cxrbench.metrics.attention.boxes_mask); along an axis where
    the box holds no cell centre, the box is widened to the cell holding its centre."""
    size = (300.0, 200.0)
    boxes = [[x, y, min(x + w, 300.0), min(y + h, 200.0)] for x, y, w, h, _ in raw]
    weights = [w for *_, w in raw]
    heat = att.paint(weights, boxes, size, grid)
    shape = att.grid_shape(size, grid)
    rows, cols = shape
    naive = np.zeros(shape)

    def widen(lo, hi, cell, n):
        centres = (np.arange(n) + 0.5) * cell
        if ((centres >= lo) & (centres < hi)).any():
            return lo, hi
        k = min(int(0.5 * (lo + hi) // cell), n - 1)
        return k * cell, (k + 1) * cell

    for w, (x1, y1, x2, y2) in zip(weights, boxes):
        x1, x2 = widen(x1, x2, size[0] / cols, cols)
        y1, y2 = widen(y1, y2, size[1] / rows, rows)
        mask = boxes_mask([[x1, y1, x2, y2]], shape, size)
        naive += w * mask / mask.sum()
    np.testing.assert_allclose(heat, naive, atol=1e-12)
    assert heat.sum() == pytest.approx(sum(weights))


def test_item_scores_plausibility_and_entropy():
    size = (100.0, 100.0)
    boxes = [[0, 0, 100, 100], [0, 0, 50, 50], [50, 50, 100, 100]]
    # all weight on the token whose box is the ROI: the thresholded map is exactly the ROI
    s = att.item_scores([0.1, 0.9, 0.0], boxes, size, [[0, 0, 50, 50]], grid=10)
    assert s["plausibility"] == pytest.approx(1.0)
    assert s["entropy"] == pytest.approx(scipy.stats.entropy([0.1, 0.9, 0.0]))
    assert s["entropy_norm"] == pytest.approx(scipy.stats.entropy([0.1, 0.9]) / math.log(3))
    # attention on the opposite quadrant: no overlap
    assert att.item_scores([0.1, 0.0, 0.9], boxes, size, [[0, 0, 50, 50]], grid=10)["plausibility"] == 0.0
    # ROI = left half, attention on the top-left quadrant: IoU = 25 / 50
    assert att.item_scores([0.1, 0.9, 0.0], boxes, size, [[0, 0, 50, 100]], grid=10)["plausibility"] == pytest.approx(0.5)
    # no reference box: no plausibility, entropy still defined
    s = att.item_scores([0.1, 0.9, 0.0], boxes, size, [], grid=10)
    assert math.isnan(s["plausibility"]) and s["entropy"] > 0


def _frame():
    rows = []
    for i in range(12):
        qt = ["D03_where_is_finding", "D02_has_finding", "B01_describe_all"][i % 3]
        boxes = [[0, 0, 100, 100], [0, 0, 50, 50], [50, 50, 100, 100]]
        focus = [0.02, 0.96, 0.02] if qt == "D03_where_is_finding" else [0.4, 0.3, 0.3]
        rows.append({"question_id": f"q{i:02d}", "study_id": i // 2, "question_type": qt, "question": "?",
                     "answer": "a", "prediction": "b", "image_width": 100.0, "image_height": 100.0,
                     "token_boxes": boxes, "attn_text_visual": focus, "attn_sim": [1 / 3] * 3,
                     "boxes_true": [[0, 0, 50, 50]] if qt != "B01_describe_all" else [],
                     "image_path": "files/x.jpg"})
    rows[0]["attn_text_visual"] = None                       # no attention for one question
    rows[3]["token_boxes"] = [None, [0, 0, 50, 50], [50, 50, 100, 100]]
    return pd.DataFrame(rows)


def test_attention_columns_and_counts():
    frame = _frame()
    cols = att.attention_columns(frame, grid=10)
    assert list(cols.columns) == ["plausibility", "attention_entropy", "attention_entropy_norm",
                                  "plausibility_sim", "attention_entropy_sim", "attention_entropy_norm_sim",
                                  "attention_tokens"]
    # the number of visual tokens each question attended over (row 0: no attention)
    assert math.isnan(cols.loc[0, "attention_tokens"]) and (cols.loc[1:, "attention_tokens"] == 3).all()
    # where_is_finding rows (0, 3, 6, 9): focused on the ROI token; row 0 has no attention
    assert math.isnan(cols.loc[0, "plausibility"]) and math.isnan(cols.loc[0, "attention_entropy"])
    assert cols.loc[[3, 6, 9], "plausibility"].tolist() == pytest.approx([1.0] * 3)
    # uniform SIM attention over the three tokens: entropy ln 3
    assert cols["attention_entropy_sim"].to_numpy() == pytest.approx([math.log(3)] * 12)
    counts = att.attention_counts(pd.concat([frame, cols], axis=1))
    assert counts == {"items": 12, "without_attention": 1, "without_roi": 4, "with_plausibility": 7,
                      "tokens_without_box": 1}


def test_summary_by_question_type_against_bands():
    frame = _frame()
    frame = pd.concat([frame, att.attention_columns(frame, grid=10)], axis=1)
    summary = att.summarize(frame, n_resamples=200, seed=0)
    tv = summary["sources"]["text_visual"]
    where = tv["D03_where_is_finding"]
    assert where["n"] == 4 and where["n_with_roi"] == 3 and where["n_without_roi"] == 1
    assert where["plausibility"]["value"] == pytest.approx(1.0)
    assert where["fraction_clinically_acceptable"]["value"] == 1.0
    assert where["plausibility_bands"]["clinically acceptable"] == 3
    # H([.02, .96, .02]) = 0.20 nats: low, as the seed expects for where_is_finding
    assert where["expected_entropy_bands"] == ["low"]
    assert where["fraction_entropy_as_expected"]["value"] == 1.0
    has = tv["D02_has_finding"]
    # weights (.4, .3, .3): whole-image token + two quadrants -> map max on the two quadrants,
    # thresholded mask = both quadrants (50 cells), ROI = one quadrant (25): IoU 0.5
    assert has["plausibility"]["value"] == pytest.approx(0.5)
    assert has["fraction_clinically_acceptable"]["value"] == 0.0
    assert has["plausibility_bands"]["partially aligned"] == 4
    # H = 1.09 nats < 2: not the medium band the seed expects for has_finding
    assert has["fraction_entropy_as_expected"]["value"] == 0.0
    assert tv["B01_describe_all"]["n_with_roi"] == 0 and tv["B01_describe_all"]["plausibility"]["value"] is None
    assert tv["overall"]["n"] == 12
    lo, hi = has["plausibility"]["ci"]
    assert lo <= 0.5 <= hi
    no_ci = att.summarize(frame, n_resamples=0)["sources"]["text_visual"]["D02_has_finding"]
    assert no_ci["plausibility"] == {"value": pytest.approx(0.5), "ci": [None, None], "n": 4}


def test_overlays_are_deterministic_pngs(tmp_path):
    from PIL import Image

    frame = _frame()
    frame = pd.concat([frame, att.attention_columns(frame, grid=10)], axis=1)
    picks = att.pick_overlay_items(frame, k=3)   # round robin over the types with a ROI, sorted
    assert frame.loc[picks, "question_type"].tolist() == ["D02_has_finding", "D03_where_is_finding", "D02_has_finding"]
    assert att.pick_overlay_items(frame, k=3) == picks
    img_dir = tmp_path / "img" / "files"
    img_dir.mkdir(parents=True)
    Image.fromarray((np.arange(100 * 100) % 255).reshape(100, 100).astype(np.uint8)).save(img_dir / "x.jpg")
    s1 = att.write_attention_outputs(frame, tmp_path / "a", image_root=tmp_path / "img", n_resamples=50, n_overlays=2)
    att.write_attention_outputs(frame, tmp_path / "b", image_root=tmp_path / "img", n_resamples=50, n_overlays=2)
    assert [o["image_found"] for o in s1["overlays"]] == [True, True]
    for o in s1["overlays"]:
        data = (tmp_path / "a" / o["file"]).read_bytes()
        assert data == (tmp_path / "b" / o["file"]).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "PNG" and im.size == (500, 560)
    assert (tmp_path / "a" / "summary.json").read_bytes() == (tmp_path / "b" / "summary.json").read_bytes()
    missing = att.write_attention_outputs(frame, tmp_path / "c", image_root=tmp_path / "none", n_resamples=50, n_overlays=2)
    assert missing["counts"]["overlay_images_not_found"] == 2


def test_overlay_bytes_do_not_depend_on_the_process_matplotlib_style(tmp_path):
    """The book's style (dpi 300, tight bbox) applied earlier in the process once made overlays
    1222 x 1342 instead of 500 x 560: rendering uses matplotlib's default style."""
    import matplotlib.pyplot as plt

    from cxrbench.book import style

    frame = _frame()
    frame = pd.concat([frame, att.attention_columns(frame, grid=10)], axis=1)
    row = frame.loc[att.pick_overlay_items(frame, k=1)[0]].to_dict()
    with plt.style.context("default"):
        plain, _ = att.render_overlay(row, None)
        style.apply()
        styled, _ = att.render_overlay(row, None)
    assert styled == plain
