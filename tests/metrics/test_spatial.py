import contextlib
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from cxrbench.metrics import spatial


def _random_items(rng, n):
    true, pred, scores = [], [], []
    for _ in range(n):
        k, m = rng.integers(0, 4), rng.integers(0, 5)

        def box():
            x, y = rng.uniform(0, 80, 2)
            w, h = rng.uniform(1, 30, 2)
            return [x, y, x + w, y + h]

        t = [box() for _ in range(k)]
        p = []
        for _ in range(m):
            b = np.array(t[rng.integers(k)]) + rng.normal(0, 3, 4) if k and rng.random() < 0.6 else np.array(box())
            p.append([min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])])
        true.append(t)
        pred.append(p)
        scores.append(np.round(rng.uniform(0, 1, m), 1).tolist())  # ties on purpose
    return true, pred, scores


def _cocoeval(true, pred, scores, thresholds):
    gt = {"images": [{"id": i + 1} for i in range(len(true))], "categories": [{"id": 1}], "annotations": []}
    dts = []
    for i, (t, p, s) in enumerate(zip(true, pred, scores)):
        for b in t:
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i + 1, "category_id": 1,
                                      "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                                      "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0})
        for b, sc in zip(p, s):
            dts.append({"image_id": i + 1, "category_id": 1, "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                        "score": sc})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dts), "bbox")
        ev.params.iouThrs = np.array(thresholds)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0]


@pytest.mark.parametrize("seed", range(12))
def test_map_equals_pycocotools(seed):
    rng = np.random.default_rng(seed)
    true, pred, scores = _random_items(rng, int(rng.integers(2, 40)))
    if not any(pred):
        pred[0] = [[0.0, 0.0, 5.0, 5.0]]
        scores[0] = [0.5]
    for fn, thr in ((spatial.map_50, [0.5]), (spatial.map_75, [0.75]), (spatial.map_50_75, [0.5, 0.75])):
        ours = fn(true, pred, scores)
        theirs = _cocoeval(true, pred, scores, thr)
        if theirs == -1:
            assert np.isnan(ours)
        else:
            assert ours == pytest.approx(theirs, abs=1e-12)


def test_map_resample_is_a_multiset_of_images():
    rng = np.random.default_rng(5)
    true, pred, scores = _random_items(rng, 15)
    stat = spatial.map_stats(true, pred, scores, (0.5,))
    idx = np.array([3, 3, 7, 1, 14, 3])
    # COCOeval on the resample with repeated items as distinct images
    pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
    expected = _cocoeval(pick(true), pick(pred), pick(scores), [0.5])
    got = stat.compute(idx)
    assert (np.isnan(got) and expected == -1) or got == pytest.approx(expected, abs=1e-12)


def test_iou_single_boxes_equal_pycocotools():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = np.sort(rng.uniform(0, 100, (2, 2)), axis=0).T.reshape(-1)[[0, 2, 1, 3]]
        b = np.sort(rng.uniform(0, 100, (2, 2)), axis=0).T.reshape(-1)[[0, 2, 1, 3]]
        xywh = lambda z: [z[0], z[1], z[2] - z[0], z[3] - z[1]]  # noqa: E731
        expected = mask_utils.iou([xywh(b)], [xywh(a)], [0])[0, 0]
        assert spatial.box_set_iou([a], [b]) == pytest.approx(expected, abs=1e-12)


def test_union_iou_equals_pixel_masks():
    rng = np.random.default_rng(1)
    for _ in range(100):
        def boxes(k):
            out = []
            for _ in range(k):
                x1, y1 = rng.integers(0, 40, 2)
                out.append([x1, y1, x1 + rng.integers(1, 20), y1 + rng.integers(1, 20)])
            return out

        t, p = boxes(rng.integers(1, 4)), boxes(rng.integers(1, 4))
        mt, mp = np.zeros((64, 64), bool), np.zeros((64, 64), bool)
        for x1, y1, x2, y2 in t:
            mt[y1:y2, x1:x2] = True
        for x1, y1, x2, y2 in p:
            mp[y1:y2, x1:x2] = True
        assert spatial.box_set_iou(t, p) == pytest.approx((mt & mp).sum() / (mt | mp).sum(), abs=1e-12)


def test_iou_pointing_hand_worked():
    t = [[[0, 0, 10, 10]], [[0, 0, 10, 10]], [[0, 0, 10, 10]], []]
    p = [[[0, 0, 10, 5]], [[5, 0, 15, 10]], [], [[0, 0, 1, 1]]]
    # IoUs: 0.5, 50/150, 0 (no prediction), undefined (no reference: not a localisation item)
    assert spatial.iou(t, p) == pytest.approx((0.5 + 1 / 3 + 0) / 3)
    assert spatial.pointing_accuracy(t, p) == 0.0  # IoU must exceed 0.5
    assert spatial.pointing_accuracy(t[:1], [[[0, 0, 10, 6]]]) == 1.0


def test_multi_region_f1_equals_sklearn_samples_f1():
    rng = np.random.default_rng(2)
    names = ["left lung", "right lung", "heart", "mediastinum", "pleura"]
    t = [list(rng.choice(names, rng.integers(0, 4), replace=False)) for _ in range(200)]
    p = [list(rng.choice(names, rng.integers(0, 4), replace=False)) for _ in range(200)]
    mlb = MultiLabelBinarizer(classes=names)
    expected = f1_score(mlb.fit_transform(t), mlb.transform(p), average="samples", zero_division=1.0)
    assert spatial.multi_region_f1(t, p) == pytest.approx(expected, abs=1e-12)
    assert spatial.multi_region_f1([["heart", "left lung"]], [["heart"]]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("box,size,problem", [
    ([0, 0, 10, 10], (100, 100), None), ([5, 5, 4, 10], None, "malformed"), ([0, 0, 10], None, "malformed"),
    ([0, 0, float("nan"), 1], None, "malformed"), ([0, 0, 120, 10], (100, 100), "out_of_image"),
    ("abc", None, "malformed"),
])
def test_box_problem(box, size, problem):
    w, h = size if size else (None, None)
    assert spatial.box_problem(box, w, h) == problem


def test_map_family_shares_one_table_without_mixing_resamples():
    rng = np.random.default_rng(9)
    true, pred, scores = _random_items(rng, 30)
    fam = spatial.map_family_stats(true, pred, scores)
    single = {"map_50": (0.5,), "map_75": (0.75,), "map_50_75": (0.5, 0.75)}
    for _ in range(5):
        idx = rng.integers(0, 30, 30)
        for name in ("map_50", "map_75", "map_50_75"):  # interleaved: the memo must follow idx
            expected = spatial.map_stats(true, pred, scores, single[name]).compute(idx)
            got = fam[name].compute(idx)
            assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)
        other = rng.integers(0, 30, 30)
        assert fam["map_50"].compute(other) == pytest.approx(spatial.map_stats(true, pred, scores).compute(other),
                                                             nan_ok=True)
