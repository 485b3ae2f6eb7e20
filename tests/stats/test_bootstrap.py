"""Bootstrap CIs against scipy.stats.bootstrap, item- and cluster-level, both statistic paths.

Two kinds of agreement are checked:
- same resamples: our unit draws are the calls scipy makes (``rng.integers(0, C, (batch, C))``),
  so with the same seed and batch the intervals must agree to rounding error;
- independent resamples (different seeds): agreement within Monte-Carlo error.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as ss
from sklearn.metrics import matthews_corrcoef

from cxrbench.metrics.base import GenericStatistic, mean_stats
from cxrbench.stats.bootstrap import bootstrap_ci, bootstrap_many, bootstrap_table
from tests.stats.helpers import clustered_binary, mcc_generic, mcc_stats, sensitivity_stats

B = 2000


def scipy_cluster_ci(labels, item_statistic, method, seed, n_resamples=B, batch=None):
    """scipy's bootstrap over cluster indices: each resample expands its clusters to their items
    and evaluates ``item_statistic(items)`` from the raw data (no sufficient statistics)."""
    uniq = np.unique(labels)
    members = [np.flatnonzero(labels == u) for u in uniq]

    def stat(cluster_idx):
        return item_statistic(np.concatenate([members[c] for c in cluster_idx]))

    return ss.bootstrap((np.arange(len(uniq)),), stat, vectorized=False, n_resamples=n_resamples,
                        method=method, rng=np.random.default_rng(seed), batch=batch)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_item_level_mean_equals_scipy_on_the_same_resamples(method):
    x = np.random.default_rng(1).gamma(2.0, size=400)
    ref = ss.bootstrap((x,), np.mean, n_resamples=B, method=method, rng=np.random.default_rng(7), batch=300)
    for stat in (mean_stats("m", x), GenericStatistic("m", len(x), lambda i: x[i].mean())):
        got = bootstrap_ci(stat, n_resamples=B, method=method, seed=7, batch=300)
        assert got.value == pytest.approx(x.mean())
        assert (got.ci_low, got.ci_high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-9)
        assert (got.n, got.n_clusters, got.n_resamples, got.n_undefined) == (400, 400, B, 0)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_cluster_level_mcc_equals_scipy_over_clusters(method):
    rng = np.random.default_rng(2)
    n = 600
    labels = rng.integers(0, 60, n) * 3  # ~60 studies of varying size
    y = rng.random(n) < 0.4
    pred = np.where(rng.random(n) < 0.75, y, ~y)
    b = 800  # scikit-learn's MCC is called once per resample, twice over
    ref = scipy_cluster_ci(labels, lambda i: matthews_corrcoef(y[i], pred[i]), method, seed=11, n_resamples=b)
    fast = bootstrap_ci(mcc_stats(y, pred), labels, n_resamples=b, method=method, seed=11)
    slow = bootstrap_ci(mcc_generic(y, pred), labels, n_resamples=b, method=method, seed=11)
    for got in (fast, slow):
        assert got.value == pytest.approx(matthews_corrcoef(y, pred))
        assert (got.ci_low, got.ci_high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-9)
        assert got.n_clusters == len(np.unique(labels))


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_independent_resamples_agree_with_scipy_within_monte_carlo_error(method):
    y, labels = clustered_binary(80, 6, np.random.default_rng(3), concentration=2.0)
    ref = scipy_cluster_ci(labels, lambda i: y[i].mean(), method, seed=100, n_resamples=4000)
    got = bootstrap_ci(mean_stats("em", y), labels, n_resamples=4000, method=method, seed=200)
    width = ref.confidence_interval.high - ref.confidence_interval.low
    # an endpoint's Monte-Carlo SD at B = 4000 is a few percent of the width
    assert abs(got.ci_low - ref.confidence_interval.low) < 0.1 * width
    assert abs(got.ci_high - ref.confidence_interval.high) < 0.1 * width
    assert (got.ci_low, got.ci_high) != pytest.approx(tuple(ref.confidence_interval), rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 60), n_labels=st.integers(1, 12), seed=st.integers(0, 2**16),
       method=st.sampled_from(["percentile", "bca"]))
def test_fast_and_generic_paths_agree_on_random_data(n, n_labels, seed, method):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n).round(1)  # ties and repeated values on purpose
    labels = rng.integers(0, n_labels, n).astype(str)
    a = bootstrap_ci(mean_stats("m", x), labels, n_resamples=300, method=method, seed=seed)
    b = bootstrap_ci(GenericStatistic("m", n, lambda i: x[i].mean()), labels, n_resamples=300,
                     method=method, seed=seed)
    np.testing.assert_allclose([a.value, a.ci_low, a.ci_high], [b.value, b.ci_low, b.ci_high], rtol=1e-9, atol=1e-12)


def test_study_level_interval_is_wider_under_within_study_correlation():
    rng = np.random.default_rng(4)
    y, studies = clustered_binary(150, 20, rng, concentration=1.0)  # ICC ≈ 0.5: design effect ≈ 3.3
    pair = bootstrap_ci(mean_stats("em", y), None, n_resamples=B, seed=0)
    study = bootstrap_ci(mean_stats("em", y), studies, n_resamples=B, seed=0)
    assert (study.ci_high - study.ci_low) > 2.0 * (pair.ci_high - pair.ci_low)
    # and without correlation the unit barely matters
    y0, studies0 = clustered_binary(150, 20, rng, concentration=None)
    pair0 = bootstrap_ci(mean_stats("em", y0), None, n_resamples=B, seed=0)
    study0 = bootstrap_ci(mean_stats("em", y0), studies0, n_resamples=B, seed=0)
    assert 0.8 < (study0.ci_high - study0.ci_low) / (pair0.ci_high - pair0.ci_low) < 1.25


@pytest.mark.filterwarnings("ignore::scipy.stats.DegenerateDataWarning")  # scipy keeps the NaNs
def test_undefined_resamples_are_dropped_and_counted():
    rng = np.random.default_rng(5)
    y = np.zeros(60, bool)
    y[:3] = True  # 3 positives in 60: P(no positive in a resample) = (57/60)^60 ≈ 4.6%
    pred = rng.random(60) < 0.5
    got = bootstrap_ci(sensitivity_stats(y, pred), n_resamples=B, seed=9, batch=B)

    def sens(y_, p_, axis=-1):
        with np.errstate(invalid="ignore", divide="ignore"):
            return (y_ & p_).sum(axis) / y_.sum(axis)

    ref = ss.bootstrap((y, pred), sens, paired=True, n_resamples=B, method="percentile",
                       rng=np.random.default_rng(9)).bootstrap_distribution
    assert got.n_undefined == np.isnan(ref).sum() > 0
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(np.nanquantile(ref, [0.025, 0.975])))


def test_a_degenerate_statistic_has_a_zero_width_interval():
    y = np.ones(50)
    for method in ("percentile", "bca"):
        got = bootstrap_ci(mean_stats("em", y), n_resamples=200, method=method)
        assert (got.value, got.ci_low, got.ci_high) == (1.0, 1.0, 1.0)


def test_shared_resamples_do_not_depend_on_the_other_statistics():
    rng = np.random.default_rng(6)
    y, labels = clustered_binary(40, 5, rng, concentration=2.0)
    pred = rng.random(len(y)) < 0.5
    alone = bootstrap_ci(mean_stats("em", y), labels, n_resamples=500, seed=3)
    many = bootstrap_many({"mcc": mcc_stats(y > 0, pred), "em": mean_stats("em", y),
                           "g": mcc_generic(y > 0, pred)}, labels, n_resamples=500, seed=3)
    assert list(many) == ["mcc", "em", "g"]
    assert many["em"] == alone
    assert (many["mcc"].ci_low, many["mcc"].ci_high) == pytest.approx((many["g"].ci_low, many["g"].ci_high))


def test_results_are_deterministic_for_a_seed_and_independent_of_row_order():
    rng = np.random.default_rng(8)
    y = rng.gamma(2.0, size=120)  # continuous: two seeds cannot land on the same grid quantiles
    labels = rng.integers(0, 30, 120)
    a = bootstrap_ci(mean_stats("em", y), labels, n_resamples=500, seed=1)
    assert a == bootstrap_ci(mean_stats("em", y), labels, n_resamples=500, seed=1)
    assert a != bootstrap_ci(mean_stats("em", y), labels, n_resamples=500, seed=2)
    perm = rng.permutation(len(y))  # units are numbered by sorted label, not by first appearance
    b = bootstrap_ci(mean_stats("em", y[perm]), labels[perm], n_resamples=500, seed=1)
    assert (b.ci_low, b.ci_high) == pytest.approx((a.ci_low, a.ci_high))


def _table_data(seed=10):
    rng = np.random.default_rng(seed)
    y, labels = clustered_binary(50, 6, rng, concentration=2.0)
    score = rng.gamma(2.0, size=len(y))
    pred = rng.random(len(y)) < 0.5
    qtype = rng.choice(["B03_is_abnormal", "D03_where_is_finding", "C01_describe_region"], len(y))
    strata = {"overall": np.ones(len(y), bool), "spatial": qtype != "B03_is_abnormal",  # overlapping strata
              **{t: qtype == t for t in np.unique(qtype)}, "empty": np.zeros(len(y), bool)}
    stats = {"em": mean_stats("em", y), "score": mean_stats("score", score), "mcc": mcc_stats(y > 0, pred),
             "g": GenericStatistic("g", len(y), lambda i: score[i].mean() if len(i) else np.nan)}
    return y, labels, score, strata, stats


def _assert_same(got, ref):
    assert (got.n_clusters, got.n_undefined) == (ref.n_clusters, ref.n_undefined)
    np.testing.assert_allclose([got.value, got.ci_low, got.ci_high], [ref.value, ref.ci_low, ref.ci_high],
                               rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("method,unit", [("percentile", "study"), ("bca", "study"), ("percentile", None)])
def test_per_stratum_rows_equal_the_direct_computation_on_each_stratum_alone(method, unit):
    y, labels, _, strata, stats = _table_data()
    labels = labels if unit else None
    table = bootstrap_table(stats, strata, labels, n_resamples=400, seed=5, method=method, progress=False,
                            draw="per_stratum")
    assert list(table) == list(strata)
    for name, mask in strata.items():
        direct = bootstrap_many({k: s.subset(mask) for k, s in stats.items()}, None if unit is None else labels[mask],
                                n_resamples=400, seed=5, method=method)
        for k in stats:
            _assert_same(table[name][k], direct[k])
            assert table[name][k].n == direct[k].n == mask.sum()
    assert table["overall"]["em"].n == len(y) and table["empty"]["em"].n == 0
    # the generic path and the sufficient path see the same resamples in every stratum
    assert (table["spatial"]["g"].ci_low, table["spatial"]["g"].ci_high) == \
        pytest.approx((table["spatial"]["score"].ci_low, table["spatial"]["score"].ci_high))


@pytest.mark.parametrize("method,unit", [("percentile", "study"), ("bca", "study"), ("percentile", None)])
def test_shared_draw_rows_equal_a_per_metric_bootstrap_on_the_same_draws(method, unit):
    """One draw of all units for every stratum: a stratum's CI is the bootstrap of the metric
    restricted to the stratum (its items only weigh) over all units, with the same seed."""
    y, labels, _, strata, stats = _table_data()
    labels = labels if unit else None
    table = bootstrap_table(stats, strata, labels, n_resamples=400, seed=5, method=method, progress=False)
    assert list(table) == list(strata)
    for name, mask in strata.items():
        if not mask.any():
            continue
        for k, s in stats.items():
            direct = bootstrap_ci(s.restrict(mask), labels, n_resamples=400, seed=5, method=method)
            _assert_same(table[name][k], direct)
            assert table[name][k].n == mask.sum()
    assert np.isnan([table["empty"]["em"].value, table["empty"]["em"].ci_low]).all()
    assert (table["spatial"]["g"].ci_low, table["spatial"]["g"].ci_high) == \
        pytest.approx((table["spatial"]["score"].ci_low, table["spatial"]["score"].ci_high))


def test_shared_and_per_stratum_draws_agree_within_monte_carlo_error_on_a_large_stratum():
    rng = np.random.default_rng(21)
    y, labels = clustered_binary(400, 5, rng, concentration=2.0)
    stratum = rng.random(len(y)) < 0.5     # half of every study's items: the stratum spans all studies
    stats = {"em": mean_stats("em", y)}
    shared = bootstrap_table(stats, {"s": stratum}, labels, n_resamples=4000, seed=1, progress=False)["s"]["em"]
    own = bootstrap_table(stats, {"s": stratum}, labels, n_resamples=4000, seed=1, progress=False,
                          draw="per_stratum")["s"]["em"]
    width = own.ci_high - own.ci_low
    assert shared.value == own.value
    assert abs(shared.ci_low - own.ci_low) < 0.1 * width and abs(shared.ci_high - own.ci_high) < 0.1 * width
    assert (shared.ci_low, shared.ci_high) != (own.ci_low, own.ci_high)   # different draws


def test_shared_draw_counts_resamples_without_the_stratum_as_undefined():
    """A stratum in 2 of 100 studies is absent from about e^-2 of shared-draw resamples: those
    are undefined and counted, not folded into the interval; its own draw never misses it."""
    rng = np.random.default_rng(22)
    labels = np.repeat(np.arange(100), 4)
    y = (rng.random(400) < 0.5).astype(float)
    rare = np.isin(labels, [3, 70])
    stats = {"em": mean_stats("em", y)}
    shared = bootstrap_table(stats, {"rare": rare}, labels, n_resamples=2000, seed=2, progress=False)["rare"]["em"]
    own = bootstrap_table(stats, {"rare": rare}, labels, n_resamples=2000, seed=2, progress=False,
                          draw="per_stratum")["rare"]["em"]
    assert 0.08 < shared.n_undefined / 2000 < 0.2 and own.n_undefined == 0
    assert shared.n_clusters == own.n_clusters == 2 and "< 30" in shared.note


def test_shared_draw_of_weighted_statistics_equals_their_bootstrap_on_the_same_draws():
    from cxrbench.metrics.spatial import map_family_stats
    from tests.metrics.test_spatial import _random_items

    rng = np.random.default_rng(23)
    true, pred, scores = _random_items(rng, 60, tied=True)
    labels = rng.integers(0, 20, 60)
    fam = map_family_stats(true, pred, scores)
    strata = {"overall": np.ones(60, bool), "half": rng.random(60) < 0.5, "none": np.zeros(60, bool)}
    for method in ("percentile", "bca"):
        table = bootstrap_table(fam, strata, labels, n_resamples=300, seed=4, method=method, progress=False)
        for name in ("overall", "half"):
            for k, s in fam.items():
                _assert_same(table[name][k], bootstrap_ci(s.restrict(strata[name]), labels, n_resamples=300,
                                                          seed=4, method=method))
        own = bootstrap_table(fam, strata, labels, n_resamples=300, seed=4, method=method, progress=False,
                              draw="per_stratum")
        m = strata["half"]
        for k, s in fam.items():
            _assert_same(own["half"][k], bootstrap_ci(s.subset(m), labels[m], n_resamples=300, seed=4, method=method))
        assert np.isnan(table["none"]["map_coco"].value)


def test_draw_must_be_known():
    s = mean_stats("em", np.ones(5))
    with pytest.raises(ValueError, match="draw"):
        bootstrap_table({"em": s}, {"all": np.ones(5, bool)}, draw="pooled")


def test_empty_stratum_gives_undefined_values_not_an_error():
    got = bootstrap_ci(mean_stats("em", np.array([])), np.array([], dtype=int), n_resamples=100)
    assert got.n == got.n_clusters == 0 and np.isnan([got.value, got.ci_low, got.ci_high]).all()


def test_bad_input_is_rejected_with_a_clear_message():
    s = mean_stats("em", np.ones(5))
    with pytest.raises(ValueError, match="one label per item"):
        bootstrap_ci(s, [1, 2, 3])
    with pytest.raises(ValueError, match="missing labels"):
        bootstrap_ci(s, np.array([1, 2, np.nan, 3, 4]))
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci(s, method="basic")
    with pytest.raises(ValueError, match="different items"):
        bootstrap_many({"a": s, "b": mean_stats("b", np.ones(6))})


def test_result_serialises_to_the_metrics_json_entry():
    got = bootstrap_ci(mean_stats("em", np.r_[np.ones(30), np.zeros(10)]), n_resamples=300)
    d = got.to_dict()
    assert d["value"] == 0.75 and d["ci"] == [got.ci_low, got.ci_high] and d["n"] == 40
    assert got.format() == f"0.750 [95% CI: {got.ci_low:.3f}, {got.ci_high:.3f}]"


def test_one_item_per_unit_in_unsorted_label_order_matches_the_generic_path():
    # labels '0','4','10','2','1' sort to codes [0, 4, 2, 3, 1]: a permutation that is its own
    # inverse, which once passed for "items already in unit order" (found by hypothesis)
    x = np.array([1.2, -0.5, -1.5, 0.6, -0.3])
    labels = np.array(["0", "4", "10", "2", "1"])
    a = bootstrap_ci(mean_stats("m", x), labels, n_resamples=300, seed=1)
    b = bootstrap_ci(GenericStatistic("m", 5, lambda i: x[i].mean()), labels, n_resamples=300, seed=1)
    assert (a.ci_low, a.ci_high) == pytest.approx((b.ci_low, b.ci_high))


def test_float32_products_are_used_only_where_they_are_exact_and_equal_columns_once():
    from cxrbench.stats.resampling import Block, SumsPath, count_blocks

    rng = np.random.default_rng(12)
    C = 20
    small = rng.integers(0, 50, (C, 1)).astype(float)          # integer totals ≤ 20·49: float32-exact
    big = rng.integers(2**20, 2**21, (C, 1)).astype(float)     # 20·2^21 > 2^24: must stay float64
    real = rng.random((C, 1))                                   # not integers: float64
    zero = np.zeros((C, 1))                                     # not multiplied at all
    S = np.hstack([small, big, real, zero, small])              # a repeated column: multiplied once
    path = SumsPath([S, 3], [lambda t: t[..., 0] + t[..., 1] + t[..., 2] + t[..., 3] + t[..., 4],
                             lambda t: t.sum(axis=-1) + 1])
    assert path.n_distinct == 3 and path.S32.shape == (C, 1) and path.S64.shape == (C, 2)
    np.testing.assert_array_equal(path.S32[:, 0], small[:, 0])
    assert path.constant == [False, True]                       # the int: 3 all-zero columns
    counts = next(count_blocks(C, 50, np.random.default_rng(0)))
    exact = counts.astype(np.float64) @ S
    got = path.boot(Block(counts))
    np.testing.assert_allclose(got[0], exact.sum(axis=1), rtol=1e-14)
    np.testing.assert_array_equal(got[1], np.ones(50))
