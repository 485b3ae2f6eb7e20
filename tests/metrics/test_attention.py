import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from cxrbench.metrics import attention as A


def test_entropy_equals_scipy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        w = rng.dirichlet(np.full(rng.integers(2, 200), rng.uniform(0.05, 3)))
        w[rng.uniform(size=w.size) < 0.1] = 0.0
        if w.sum() == 0:
            continue
        assert A.attention_entropy(w) == pytest.approx(scipy_entropy(w), rel=1e-12)
        assert A.attention_entropy(w, normalized=True) == pytest.approx(scipy_entropy(w) / np.log(w.size), rel=1e-12)


def test_entropy_hand_worked():
    assert A.attention_entropy(np.full(8, 1 / 8)) == pytest.approx(np.log(8))
    assert A.attention_entropy(np.full(8, 1 / 8), normalized=True) == pytest.approx(1.0)
    assert A.attention_entropy([1.0, 0.0, 0.0]) == 0.0
    with pytest.raises(ValueError):
        A.attention_entropy([0.5, -0.1])


def test_plausibility_hand_worked():
    # 4x4 map, top-left 2x2 hot; ROI covers the left half (4 cells x 2 columns = 8 cells)
    m = np.zeros((4, 4))
    m[:2, :2] = 1.0
    assert A.plausibility(m, [[0, 0, 2, 4]]) == pytest.approx(4 / 8)
    # the same ROI given in image pixels of a 400x400 image
    assert A.plausibility(m, [[0, 0, 200, 400]], image_size=(400, 400)) == pytest.approx(4 / 8)
    # min-max normalisation: an offset and a scale change nothing
    assert A.plausibility(3 * m + 7, [[0, 0, 2, 4]]) == pytest.approx(4 / 8)
    assert np.isnan(A.plausibility(m, []))


def test_plausibility_equals_pixel_reference():
    rng = np.random.default_rng(3)
    for _ in range(20):
        h, w = rng.integers(8, 40, 2)
        m = rng.uniform(size=(h, w))
        boxes = []
        for _ in range(rng.integers(1, 3)):
            x1, y1 = rng.integers(0, w - 1), rng.integers(0, h - 1)
            boxes.append([x1, y1, rng.integers(x1 + 1, w + 1), rng.integers(y1 + 1, h + 1)])
        a = (m - m.min()) / (m.max() - m.min()) >= 0.5
        r = np.zeros((h, w), bool)
        for x1, y1, x2, y2 in boxes:
            r[y1:y2, x1:x2] = True
        assert A.plausibility(m, boxes) == pytest.approx((a & r).sum() / (a | r).sum())


def test_bands_are_data():
    assert A.band_of(0.7) == "clinically acceptable"
    assert A.band_of(0.65) == "clinically acceptable"
    assert A.band_of(0.5) == "partially aligned"
    assert A.band_of(0.349) == "misaligned attention"
    assert A.band_of(1.9, A.ENTROPY_BANDS) == "low"
    assert A.band_of(4.0, A.ENTROPY_BANDS) == "high"
    assert A.entropy_as_expected("where_is_finding", 1.0) is True
    assert A.entropy_as_expected("describe_all", 1.0) is False
    assert A.entropy_as_expected("describe_region", 1.0) is None
