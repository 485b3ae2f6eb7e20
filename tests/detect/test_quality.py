"""Per-class detector AP from the project's mAP functions, against pycocotools on the same
detections and against hand-worked examples."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from cxrbench.detect.quality import class_average_precision, read_detections
from cxrbench.errors import CxrbenchError


def _coco(images, labels, detections, n_classes):
    """mAP@0.5, mAP@0.75, per-class AP@0.5 and mAP@[.5:.95] from pycocotools.COCOeval (categories 1..n)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = {"images": [{"id": i, "width": 1000, "height": 1000} for i in range(len(images))],
          "categories": [{"id": c + 1} for c in range(n_classes)], "annotations": []}
    dets = []
    for i, im in enumerate(images):
        for c, (x1, y1, x2, y2) in labels.get(im, []):
            gt["annotations"].append({"id": len(gt["annotations"]) + 1, "image_id": i, "category_id": c + 1,
                                      "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for c, (x1, y1, x2, y2), s in detections.get(im, []):
            dets.append({"image_id": i, "category_id": c + 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, 2]          # [iou, recall, class], area all, maxDets 100

    def ap(t, k):
        p = prec[t, :, k]
        return float(p.mean()) if (p > -1).all() else None

    per50 = {k: ap(0, k) for k in range(n_classes)}
    mean = lambda t: float(np.mean([v for k in range(n_classes) if (v := ap(t, k)) is not None]))  # noqa: E731
    return mean(0), mean(5), per50, float(np.mean([np.mean(prec[t, :, k]) for k in range(n_classes)
                                                  for t in range(10) if (prec[t, :, k] > -1).all()]))


def _random_case(rng, n_images, n_classes):
    images = [f"im{i}" for i in range(n_images)]
    labels, dets = {}, {}
    for im in images:
        lab = []
        for _ in range(rng.integers(0, 6)):
            x, y = rng.uniform(0, 800, 2)
            w, h = rng.uniform(20, 200, 2)
            lab.append((int(rng.integers(n_classes)), [x, y, x + w, y + h]))
        labels[im] = lab
        d = []
        for c, (x1, y1, x2, y2) in lab:                       # jittered true positives, some wrong class
            if rng.random() < 0.8:
                j = rng.normal(0, 15, 4)
                a, b = x1 + j[0], y1 + j[1]
                d.append((c if rng.random() < 0.85 else int(rng.integers(n_classes)),
                          [a, b, max(x2 + j[2], a + 1), max(y2 + j[3], b + 1)], float(rng.random())))
        for _ in range(rng.integers(0, 4)):                   # false positives
            x, y = rng.uniform(0, 800, 2)
            d.append((int(rng.integers(n_classes)), [x, y, x + 50, y + 60], float(rng.random())))
        dets[im] = d
    return images, labels, dets


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_equals_pycocotools(seed):
    rng = np.random.default_rng(seed)
    n_classes = 7
    images, labels, dets = _random_case(rng, 30, n_classes)
    ours = class_average_precision(images, labels, dets, n_classes=n_classes)
    m50, m75, per50, mcoco = _coco(images, labels, dets, n_classes)
    assert ours["map_50"] == pytest.approx(m50, abs=1e-12)
    assert ours["map_75"] == pytest.approx(m75, abs=1e-12)
    assert ours["map_coco"] == pytest.approx(mcoco, abs=1e-12)
    for k, v in per50.items():
        got = ours["per_class"].get(k, {"ap_50": None})["ap_50"]
        assert (got is None and v is None) or got == pytest.approx(v, abs=1e-12), k


def test_hand_worked():
    """Class 0: two labels, detections ranked TP (0.9), FP (0.8), TP (0.7): precision 1, 1/2,
    2/3 at recall 1/2, 1/2, 1: the 101-point envelope is 1 up to recall 0.5 (51 points) and 2/3
    above (50 points): AP = (51 + 50 * 2/3) / 101. Class 1: its one label missed, a detection
    elsewhere: AP 0. Class 2: detections but no labels: not in the mean."""
    labels = {"a": [(0, [0, 0, 10, 10])], "b": [(0, [0, 0, 10, 10]), (1, [50, 50, 60, 60])]}
    dets = {"a": [(0, [0, 0, 10, 10], 0.9), (0, [30, 30, 40, 40], 0.8), (2, [1, 1, 2, 2], 0.5)],
            "b": [(0, [0, 0, 10, 11], 0.7), (1, [0, 0, 5, 5], 0.6)]}
    out = class_average_precision(["a", "b"], labels, dets, n_classes=3)
    ap0 = (51 + 50 * 2 / 3) / 101
    assert out["per_class"][0]["ap_50"] == pytest.approx(ap0)
    assert out["per_class"][1] == {"ap_50": 0.0, "ap_75": 0.0, "ap_coco": 0.0, "n": 1}
    assert out["per_class"][2] == {"ap_50": None, "ap_75": None, "ap_coco": None, "n": 0}
    assert out["map_50"] == pytest.approx(ap0 / 2)
    # [0, 0, 10, 11] has IoU 10/11 = 0.909 with its label: a true positive at 0.75 too
    assert out["per_class"][0]["ap_75"] == pytest.approx(ap0)


def test_read_ultralytics_prediction_file(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("3 0.5 0.25 0.2 0.1 0.875\n\n10 0.1 0.1 0.2 0.2 0.00123\n")
    got = read_detections(f, 200, 400)
    assert [(c, s) for c, _, s in got] == [(3, 0.875), (10, 0.00123)]
    assert got[0][1] == pytest.approx([80, 80, 120, 120])
    assert read_detections(tmp_path / "missing.txt", 10, 10) == []     # ultralytics writes no file for no detection


def test_detector_imgsz_is_the_training_size_of_a_run_folder(tmp_path):
    """Detecting at 640 px with a detector trained at 160 px found 137 regions and no finding in
    90 test images (31 findings and 1,555 regions at 160 px): without --imgsz, scene-graph and
    detector-eval use the size the detector.json beside the weights records."""
    from cxrbench.detect.quality import DEFAULT_IMGSZ, detector_imgsz

    (tmp_path / "detector.pt").write_bytes(b"")
    assert detector_imgsz(tmp_path / "detector.pt") == DEFAULT_IMGSZ == 640      # bare weights: no record
    (tmp_path / "detector.json").write_text(json.dumps({"options": {"imgsz": 160}}))
    assert detector_imgsz(tmp_path / "detector.pt") == 160
    (tmp_path / "detector.json").write_text(json.dumps({"options": {"imgsz": "big"}}))
    with pytest.raises(CxrbenchError, match="options.imgsz"):
        detector_imgsz(tmp_path / "detector.pt")
    (tmp_path / "detector.json").write_text("[]")
    with pytest.raises(CxrbenchError, match="options.imgsz"):
        detector_imgsz(tmp_path / "detector.pt")
    (tmp_path / "detector.json").write_text("{not json")
    with pytest.raises(CxrbenchError, match="detector.json"):
        detector_imgsz(tmp_path / "detector.pt")
