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


def _random_items(rng, n, tied=False):
    """Random items with ties in score on purpose; ``tied``: some items also hold several
    detections of one score (the tie blocks the weighted AP expands)."""
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
        s = np.round(rng.uniform(0, 1, m), 1)
        if tied and m >= 2 and rng.random() < 0.5:
            s[:] = s[0]
        scores.append(s.tolist())
    return true, pred, scores


def _cocoeval(true, pred, scores, thresholds=None):
    """COCOeval's stats[0] with one image per item (``thresholds`` None: COCO's default IoUs)."""
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
    if not dts:
        return -1.0 if not gt["annotations"] else 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dts), "bbox")
        if thresholds is not None:
            ev.params.iouThrs = np.array(thresholds)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats[0]


FAMILY_THRESHOLDS = {"map_50": [0.5], "map_75": [0.75], "map_50_75": [0.5, 0.75], "map_coco": None}


def _agree(ours, theirs):
    return np.isnan(ours) if theirs == -1 else ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_map_equals_pycocotools(seed):
    rng = np.random.default_rng(seed)
    true, pred, scores = _random_items(rng, int(rng.integers(2, 40)), tied=seed % 2 == 1)
    if not any(pred):
        pred[0] = [[0.0, 0.0, 5.0, 5.0]]
        scores[0] = [0.5]
    family = spatial.map_family_stats(true, pred, scores)
    for fn, name in ((spatial.map_50, "map_50"), (spatial.map_75, "map_75"), (spatial.map_50_75, "map_50_75"),
                     (spatial.map_coco, "map_coco")):
        theirs = _cocoeval(true, pred, scores, FAMILY_THRESHOLDS[name])
        assert _agree(fn(true, pred, scores), theirs), name
        assert _agree(family[name].value(), theirs), name


@pytest.mark.parametrize("seed", range(8))
def test_weighted_map_equals_cocoeval_on_explicit_resamples(seed):
    """A resample's AP from item weights equals COCOeval on the resample with each drawn item
    duplicated (copies next to each other, items in order), for every member of the family,
    ties in score and several tied detections in one image included."""
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 25))
    true, pred, scores = _random_items(rng, n, tied=True)
    family = spatial.map_family_stats(true, pred, scores)
    stat = family["map_coco"]
    weights = rng.integers(0, 4, (6, n))                     # six resamples at once, zeros included
    weights[0] = 1                                           # the data itself
    got = {name: s.evaluate(weights[:, s.items]) for name, s in family.items()}
    for r in range(len(weights)):
        pick = np.repeat(np.arange(n), weights[r])
        sub = ([true[i] for i in pick], [pred[i] for i in pick], [scores[i] for i in pick])
        for name, thr in FAMILY_THRESHOLDS.items():
            assert _agree(got[name][r], _cocoeval(*sub, thr)), (name, r)
        assert _agree(stat.compute(pick[::-1]), _cocoeval(*sub))  # a multiset: order of idx is irrelevant


def test_weighted_map_of_a_stratum_equals_cocoeval_on_its_items():
    rng = np.random.default_rng(7)
    true, pred, scores = _random_items(rng, 30, tied=True)
    mask = rng.random(30) < 0.5
    fam = spatial.map_family_stats(true, pred, scores)
    keep = np.flatnonzero(mask)
    sub = ([true[i] for i in keep], [pred[i] for i in keep], [scores[i] for i in keep])
    for name, thr in FAMILY_THRESHOLDS.items():
        expected = _cocoeval(*sub, thr)
        assert _agree(fam[name].subset(mask).value(), expected), name
        restricted = fam[name].restrict(mask)
        assert restricted.n == 30 and _agree(restricted.value(), expected), name
    w = rng.integers(0, 3, (4, 30))
    r = fam["map_coco"].restrict(mask)
    for row in range(4):
        pick = np.repeat(keep, w[row, keep])
        expected = _cocoeval([true[i] for i in pick], [pred[i] for i in pick], [scores[i] for i in pick])
        assert _agree(r.evaluate(w[row:row + 1, r.items])[0], expected)


def test_map_bootstrap_resamples_equal_cocoeval_on_the_clusters_drawn():
    """Through the engine: study-clustered resamples' mAPs equal COCOeval on the drawn studies'
    items, each study's items duplicated as often as the study was drawn."""
    from cxrbench.stats.resampling import Units, count_blocks, resample

    rng = np.random.default_rng(11)
    n = 24
    true, pred, scores = _random_items(rng, n, tied=True)
    study = rng.integers(0, 8, n) * 10
    fam = spatial.map_family_stats(true, pred, scores)
    dist = resample(list(fam.values()), study, n_resamples=5, seed=3)
    units = Units.from_labels(n, study)
    counts = next(count_blocks(units.n_units, 5, np.random.default_rng(3)))
    for r in range(5):
        w = counts[r][units.codes]
        pick = np.repeat(np.arange(n), w)
        sub = ([true[i] for i in pick], [pred[i] for i in pick], [scores[i] for i in pick])
        for k, (name, thr) in enumerate(FAMILY_THRESHOLDS.items()):
            assert _agree(dist.theta_boot[k, r], _cocoeval(*sub, thr)), (name, r)


def test_map_family_shares_one_table_without_mixing_weightings():
    rng = np.random.default_rng(9)
    true, pred, scores = _random_items(rng, 30)
    fam = spatial.map_family_stats(true, pred, scores)
    single = {"map_50": (0.5,), "map_75": (0.75,), "map_50_75": (0.5, 0.75)}
    for _ in range(5):
        idx = rng.integers(0, 30, 30)
        for name in ("map_50", "map_75", "map_50_75"):  # interleaved: the memo must follow the weights
            expected = spatial.map_stats(true, pred, scores, single[name]).compute(idx)
            got = fam[name].compute(idx)
            assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_map_hand_worked():
    # one image, two ground truths; detections 0.9 (hit), 0.8 (miss), 0.7 (hit): precision 1, 1/2, 2/3
    # at recall 1/2, 1/2, 1; interpolated precision 1 up to recall 0.5, 2/3 above: AP = (51 + 50 · 2/3) / 101
    t = [[[0, 0, 10, 10], [20, 20, 30, 30]]]
    p = [[[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 30]]]
    s = [[0.9, 0.8, 0.7]]
    assert spatial.map_50(t, p, s) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # drawn twice, as two images: the same curve scaled, the same AP
    fam = spatial.map_family_stats(t, p, s)
    assert fam["map_50"].evaluate(np.array([[2]]))[0] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert np.isnan(fam["map_50"].evaluate(np.array([[0]]))[0])   # no ground truth drawn: undefined


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


def test_map_matching_ties_go_to_the_later_ground_truth_as_in_cocoeval():
    # the first detection overlaps both ground truths with IoU 0.6 exactly and takes the later
    # one (COCOeval); the second fits only the first ground truth (IoU 0.9), which is still free
    t = [[[0, 0, 10, 10], [5, 0, 15, 10]]]
    p = [[[2.5, 0, 12.5, 10], [0, 0, 9, 10]]]
    s = [[0.9, 0.8]]
    fam = spatial.map_family_stats(t, p, s)
    assert fam["map_50"].value() == pytest.approx(1.0)      # both hits; with the first-of-equals rule: 0.5
    for name, thr in FAMILY_THRESHOLDS.items():
        assert _agree(fam[name].value(), _cocoeval(t, p, s, thr)), name


def test_iou_items_fast_path_equals_the_union_formula_item_by_item():
    """One reference and one predicted box (vectorised) or more (one by one): the same numbers as
    box_set_iou on every item, degenerate and disjoint boxes included."""
    rng = np.random.default_rng(3)

    def box():
        x1, y1 = rng.uniform(0, 100, 2)
        w, h = rng.uniform(0, 50, 2) * (rng.random() > 0.05)    # some zero-area boxes
        return [x1, y1, x1 + w, y1 + h]

    bt = [[box()] for _ in range(2000)] + [[box(), box()] for _ in range(100)] + [[] for _ in range(20)]
    bp = [[box()] for _ in range(2000)] + [[box()] for _ in range(100)] + [[box()] for _ in range(20)]
    bp[3] = []
    bt[4] = [[5.0, 5.0, 5.0, 9.0]]
    bp[4] = [[5.0, 5.0, 5.0, 9.0]]                                # both degenerate: undefined
    fast = spatial.iou_items(bt, bp)
    slow = np.array([spatial.box_set_iou(t, p) for t, p in zip(bt, bp)])
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(slow))
    np.testing.assert_allclose(fast[~np.isnan(fast)], slow[~np.isnan(slow)], rtol=0, atol=1e-12)
    assert fast[3] == 0.0 and np.isnan(fast[4]) and np.isnan(fast[-1])   # no prediction; undefined; no reference


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_compiled_ap_kernel_equals_the_array_formulation(seed):
    """The kernel (cxrbench.metrics._ap_kernel) and the whole-array numpy formulation of the same
    arithmetic give the same AP for every weighting, tied detections (expanded copies) included."""
    rng = np.random.default_rng(seed)
    true, pred, scores = _random_items(rng, 60, tied=True)
    table = spatial.DetectionTable(true, pred, scores, spatial.COCO_IOU_THRESHOLDS)
    w = rng.integers(0, 4, size=(40, len(table.items)))
    w[0] = 0                                                                  # no ground truth drawn
    got = table.ap(w)
    ref = table._ap_reference(w)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got[~np.isnan(got)], ref[~np.isnan(ref)], rtol=0, atol=1e-12)
    # a row's value does not depend on the block it is computed in
    np.testing.assert_array_equal(table.ap(w[5:6].copy()), got[5:6])
