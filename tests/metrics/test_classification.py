import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from cxrbench.metrics import classification as C


@st.composite
def labelled(draw, k_max=5):
    k = draw(st.integers(2, k_max))
    n = draw(st.integers(1, 60))
    y_true = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    y_pred = draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    return np.array(y_true), np.array(y_pred), list(range(k))


def _eq(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    assert np.allclose(a, b, equal_nan=True, atol=1e-12), (a, b)


@settings(max_examples=80, deadline=None)
@given(labelled())
def test_confusion_metrics_equal_sklearn(data):
    y_true, y_pred, labels = data
    _eq(C.accuracy(y_true, y_pred, labels), skm.accuracy_score(y_true, y_pred))
    kw = dict(labels=labels, zero_division=np.nan)
    for ours, theirs in ((C.sensitivity, skm.recall_score), (C.ppv, skm.precision_score), (C.f1, skm.f1_score)):
        _eq(ours(y_true, y_pred, labels, average=None), theirs(y_true, y_pred, average=None, **kw))
        _eq(ours(y_true, y_pred, labels, average="macro"), theirs(y_true, y_pred, average="macro", **kw))
    mcm = skm.multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    tn, fp, fn = mcm[:, 0, 0], mcm[:, 0, 1], mcm[:, 1, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        _eq(C.specificity(y_true, y_pred, labels, average=None), np.where(tn + fp > 0, tn / (tn + fp), np.nan))
        _eq(C.npv(y_true, y_pred, labels, average=None), np.where(tn + fn > 0, tn / (tn + fn), np.nan))
    _eq(C.mcc(y_true, y_pred, labels), skm.matthews_corrcoef(y_true, y_pred))
    for w in (None, "linear", "quadratic"):
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = skm.cohen_kappa_score(y_true, y_pred, labels=labels, weights=w)
        _eq(C.kappa(y_true, y_pred, labels, weights=w), expected)


def test_binary_hand_worked():
    # TP=3 FN=1 FP=2 TN=4
    y_true = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    y_pred = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    assert C.sensitivity(y_true, y_pred) == pytest.approx(0.75)
    assert C.specificity(y_true, y_pred) == pytest.approx(4 / 6)
    assert C.ppv(y_true, y_pred) == pytest.approx(0.6)
    assert C.npv(y_true, y_pred) == pytest.approx(0.8)
    assert C.f1(y_true, y_pred) == pytest.approx(6 / 9)
    assert C.accuracy(y_true, y_pred) == pytest.approx(0.7)
    assert C.mcc(y_true, y_pred) == pytest.approx((3 * 4 - 2 * 1) / math.sqrt(5 * 4 * 6 * 5))
    po, pe = 0.7, (5 * 4 + 5 * 6) / 100  # (pred+ · true+ + pred- · true-) / n²
    assert C.kappa(y_true, y_pred) == pytest.approx((po - pe) / (1 - pe))


def test_unparsed_predictions_count_as_wrong_like_sklearn():
    # -1 = an answer that is neither yes nor no
    y_true = np.array([1, 1, 0, 0, 1])
    y_pred = np.array([1, -1, 0, -1, 0])
    assert C.accuracy(y_true, y_pred, [0, 1]) == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert C.sensitivity(y_true, y_pred, [0, 1]) == pytest.approx(skm.recall_score(y_true, y_pred, labels=[1], average="macro"))
    assert C.mcc(y_true, y_pred, [0, 1]) == pytest.approx(skm.matthews_corrcoef(y_true, y_pred))
    # an unparsed prediction is one more category, in disagreement with both classes
    assert C.kappa(y_true, y_pred, [0, 1]) == pytest.approx(skm.cohen_kappa_score(y_true, y_pred))


def test_undefined_is_nan_and_reduce_is_vectorised():
    assert np.isnan(C.sensitivity([0, 0], [0, 1]))
    s = C.confusion_stats("mcc", [0, 1, 1, 0, 1], [0, 1, 0, 0, 1], [0, 1], metric="mcc")
    rows = s.stats
    batch = s.reduce(np.stack([rows.sum(0), rows[[0, 1, 2]].sum(0), 2 * rows.sum(0)]))
    assert batch.shape == (3,)
    assert batch[0] == pytest.approx(s.value()) and batch[2] == pytest.approx(s.value())
    assert batch[1] == pytest.approx(skm.matthews_corrcoef([0, 1, 1], [0, 1, 0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 20)), min_size=2, max_size=200))
def test_auroc_exact_when_few_distinct_scores(pairs):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs]) / 20.0
    if len(set(y)) < 2:
        assert np.isnan(C.auroc(y, s))
        return
    st_ = C.auroc_stats(y, s)
    assert st_.info["exact"] and st_.info["max_error"] == 0.0
    assert st_.value() == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_auroc_binned_within_its_bound():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 5000)
    s = np.clip(y * 0.3 + rng.normal(0.35, 0.25, 5000), 0, 1)
    st_ = C.auroc_stats(y, s, max_bins=50)
    exact = skm.roc_auc_score(y, s)
    assert not st_.info["exact"]
    assert 0 < st_.info["max_error"] < 0.02
    assert abs(st_.value() - exact) <= st_.info["max_error"]
    assert abs(C.auroc(y, s) - exact) < 1e-3  # 100 quantile bins


def test_auroc_hand_worked():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4), (0.8>0.1), (0.4=0.4 -> ½), (0.4>0.1) -> 3.5/4
    assert C.auroc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(0.875)


def test_macro_auroc_equals_sklearn_multilabel():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, (300, 4))
    s = np.round(rng.uniform(0, 1, (300, 4)) * 0.5 + y * 0.3, 1)
    assert C.macro_auroc_stats(y, s).value() == pytest.approx(skm.roc_auc_score(y, s, average="macro"), abs=1e-12)
