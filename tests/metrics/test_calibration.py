import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from cxrbench.metrics import calibration


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 400), st.integers(0, 10_000), st.sampled_from([5, 10, 15, 20]))
def test_ece_equals_torchmetrics_binary(n, seed, bins):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n).astype(np.float32)
    p[: n // 10] = np.round(p[: n // 10], 1)  # many equal values, and 1.0 and 0.0
    # torchmetrics' float32 linspace puts some boundaries one ulp off j/B: keep clear of them
    edges = np.arange(1, bins) / bins
    p[np.abs(p[:, None] - edges[None, :]).min(1) < 1e-6] = 0.5 / bins
    y = (rng.uniform(0, 1, n) < p).astype(np.int64)
    expected = binary_calibration_error(torch.from_numpy(p), torch.from_numpy(y), n_bins=bins, norm="l1")
    assert calibration.ece(y, p, n_bins=bins) == pytest.approx(float(expected), abs=1e-6)


def test_ece_on_exact_boundaries_equals_torchmetrics():
    # boundaries that float32 represents exactly: quarters
    p = np.array([0.0, 0.25, 0.25, 0.5, 0.75, 1.0, 1.0, 0.5, 0.1, 0.9], dtype=np.float32)
    y = np.array([0, 1, 0, 1, 1, 1, 0, 0, 0, 1])
    expected = binary_calibration_error(torch.from_numpy(p), torch.from_numpy(y), n_bins=4, norm="l1")
    assert calibration.ece(y, p, n_bins=4) == pytest.approx(float(expected), abs=1e-7)


def test_ece_equals_torchmetrics_multiclass():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (500, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs = probs.astype(np.float32)
    y = rng.integers(0, 4, 500)
    expected = multiclass_calibration_error(torch.from_numpy(probs), torch.from_numpy(y), num_classes=4, n_bins=15,
                                            norm="l1")
    conf, correct = probs.max(1), (probs.argmax(1) == y)
    assert calibration.ece(correct, conf) == pytest.approx(float(expected), abs=1e-6)


def test_ece_hand_worked_and_reliability_table():
    # 2 bins: [0, .5): conf .2, .4 correct 0, 1 -> |0.5 - 0.3| · 2/4 ; [.5, 1): conf .6, .8, correct 1, 1 -> |1 - .7| · 2/4
    correct, conf = [0, 1, 1, 1], [0.2, 0.4, 0.6, 0.8]
    assert calibration.ece(correct, conf, n_bins=2) == pytest.approx(0.5 * 0.2 + 0.5 * 0.3)
    table = calibration.reliability_table(correct, conf, n_bins=2)
    assert [r["count"] for r in table] == [2, 2]
    assert table[0]["mean_confidence"] == pytest.approx(0.3) and table[0]["accuracy"] == pytest.approx(0.5)
    assert table[1]["gap"] == pytest.approx(0.3)
    # a confidence of exactly 1.0 sits in its own bin, as torchmetrics
    table = calibration.reliability_table([1], [1.0], n_bins=2)
    assert table[-1]["bin_lower"] == 1.0 and table[-1]["count"] == 1


def test_ece_rejects_bad_confidence():
    with pytest.raises(ValueError):
        calibration.ece([1], [float("nan")])
    with pytest.raises(ValueError):
        calibration.ece([1], [1.5])
