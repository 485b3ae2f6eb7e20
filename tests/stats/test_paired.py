"""Paired tests, effect sizes, corrections and the paired bootstrap against scipy / statsmodels."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as ss
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from cxrbench.metrics.base import GenericStatistic, mean_stats
from cxrbench.stats.bootstrap import bootstrap_ci, paired_bootstrap, paired_bootstrap_many
from cxrbench.stats.effect_size import cohens_d, cohens_dz, interpret_d
from cxrbench.stats.multitest import adjust_pvalues
from cxrbench.stats.paired_tests import mcnemar, paired_t, wilcoxon
from tests.stats.helpers import clustered_binary, mcc_generic, mcc_stats

binary_pairs = st.integers(2, 300).flatmap(
    lambda n: st.tuples(st.lists(st.booleans(), min_size=n, max_size=n),
                        st.lists(st.booleans(), min_size=n, max_size=n)))


# --- McNemar ----------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(pair=binary_pairs, method=st.sampled_from(["exact", "chi2", "chi2_cc"]))
def test_mcnemar_equals_statsmodels(pair, method):
    a, b = (np.array(x) for x in pair)
    n10, n01 = int(np.sum(a & ~b)), int(np.sum(~a & b))
    table = [[int(np.sum(a & b)), n10], [n01, int(np.sum(~a & ~b))]]
    got = mcnemar(a, b, method)
    assert got.test == f"mcnemar_{method}" and got.n == len(a)
    assert (got.info["n10"], got.info["n01"]) == (n10, n01)
    if method != "exact" and n10 + n01 == 0:
        assert np.isnan(got.statistic) and np.isnan(got.p_value)  # undefined, not "p = 0"
        return
    ref = sm_mcnemar(table, exact=(method == "exact"), correction=(method == "chi2_cc"))
    assert got.statistic == pytest.approx(ref.statistic)
    assert got.p_value == pytest.approx(ref.pvalue)


def test_mcnemar_hand_worked_seed_formula():
    # n10 = 25 (baseline right, run wrong), n01 = 10: χ² = 15² / 35 = 6.4286, p = 0.01123
    a = np.r_[np.ones(25), np.zeros(10), np.ones(40), np.zeros(5)]
    b = np.r_[np.zeros(25), np.ones(10), np.ones(40), np.zeros(5)]
    got = mcnemar(a, b, "chi2")
    assert got.statistic == pytest.approx(225 / 35)
    assert got.p_value == pytest.approx(0.011229, abs=1e-6)
    assert got.report() == "χ²(1) = 6.43, p = 0.011"
    cc = mcnemar(a, b, "chi2_cc")
    assert cc.statistic == pytest.approx(14 ** 2 / 35)
    exact = mcnemar(a, b, "exact")
    assert exact.p_value == pytest.approx(2 * ss.binom.cdf(10, 35, 0.5))
    assert exact.report() == f"b = 25, c = 10, p = {exact.p_value:.3f}"


def test_mcnemar_drops_undefined_items_and_rejects_non_binary():
    a = np.array([1, 0, 1, np.nan, 1.0])
    b = np.array([0, 1, 0, 1, np.nan])
    got = mcnemar(a, b, "exact")
    assert got.n == 3 and (got.info["n10"], got.info["n01"]) == (2, 1)
    with pytest.raises(ValueError, match="binary"):
        mcnemar([0.5, 1], [1, 0])


# --- paired t, Wilcoxon -----------------------------------------------------------------------

continuous_pairs = st.integers(3, 200).flatmap(
    lambda n: st.tuples(st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n),
                        st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n)))


@settings(max_examples=50, deadline=None)
@given(pair=continuous_pairs)
def test_paired_t_equals_scipy_ttest_rel(pair):
    a, b = (np.array(x) for x in pair)
    got = paired_t(a, b)
    with np.errstate(all="ignore"):
        ref = ss.ttest_rel(b, a)  # run − baseline: positive t when the run scores higher
    np.testing.assert_allclose([got.statistic, got.p_value, got.df], [ref.statistic, ref.pvalue, ref.df],
                               rtol=1e-10, equal_nan=True)
    if np.isfinite(got.statistic) and got.info["d_z"] == got.info["d_z"]:
        assert got.statistic == pytest.approx(got.info["d_z"] * np.sqrt(len(a)))  # t = d_z √n


@settings(max_examples=50, deadline=None)
@given(pair=continuous_pairs)
def test_wilcoxon_equals_scipy(pair):
    a, b = (np.round(np.array(x), 2) for x in pair)  # rounding makes ties and zero differences
    got = wilcoxon(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on all-zero differences
        ref = ss.wilcoxon(b - a)
    np.testing.assert_allclose([got.statistic, got.p_value], [ref.statistic, ref.pvalue], rtol=1e-10,
                               equal_nan=True)
    assert got.n == len(a)


def test_paired_tests_drop_nan_pairs_like_scipy_on_the_complete_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.random(50), rng.random(50) + 0.1
    a[[3, 7]] = np.nan
    b[[7, 20]] = np.nan
    ok = ~(np.isnan(a) | np.isnan(b))
    t = paired_t(a, b)
    assert t.n == 47 and t.statistic == pytest.approx(ss.ttest_rel(b[ok], a[ok]).statistic)
    w = wilcoxon(a, b)
    assert w.p_value == pytest.approx(ss.wilcoxon(b[ok] - a[ok]).pvalue)


def test_t_report_string_in_the_seed_format():
    a = np.array([0.2, 0.4, 0.5, 0.3, 0.6, 0.1])
    b = np.array([0.3, 0.5, 0.5, 0.6, 0.7, 0.2])
    got = paired_t(a, b)
    ref = ss.ttest_rel(b, a)
    d = cohens_d(b, a)
    assert got.report() == f"t(5) = {ref.statistic:.2f}, p = {ref.pvalue:.3f}, d = {d:.2f}"


# --- effect sizes -----------------------------------------------------------------------------

def test_cohens_d_and_dz_hand_worked():
    x1, x2 = np.array([2.0, 4.0, 6.0]), np.array([1.0, 2.0, 3.0])
    # means 4 and 2, sample variances 4 and 1: d = 2 / √2.5
    assert cohens_d(x1, x2) == pytest.approx(2 / np.sqrt(2.5))
    assert cohens_d(x2, x1) == pytest.approx(-2 / np.sqrt(2.5))
    # differences 1, 2, 3: mean 2, SD 1
    assert cohens_dz(x1, x2) == pytest.approx(2.0)
    assert np.isnan(cohens_d([1, 1, 1], [1, 1, 1])) and np.isnan(cohens_dz([1, 2], [1, 2]))
    assert [interpret_d(v) for v in (0.1, -0.3, 0.6, 0.8, 2.0, np.nan)] == \
        ["negligible", "small", "medium", "large", "large", "undefined"]


# --- corrections ------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(p=st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=40),
       method=st.sampled_from(["bonferroni", "holm"]), alpha=st.sampled_from([0.01, 0.05, 0.1]))
def test_corrections_equal_statsmodels_on_the_defined_p_values(p, method, alpha):
    p = np.array(p)
    adj, rej = adjust_pvalues(p, method, alpha)
    ok = ~np.isnan(p)
    assert np.isnan(adj[~ok]).all() and not rej[~ok].any()
    if ok.any():
        ref_rej, ref_adj, _, _ = multipletests(p[ok], alpha=alpha, method=method)
        np.testing.assert_allclose(adj[ok], ref_adj)
        np.testing.assert_array_equal(rej[ok], ref_rej)


def test_bonferroni_hand_worked_seed_example():
    # seed 15.2: 6 comparisons, α = 0.05 → threshold 0.0083
    p = np.array([0.008, 0.009, 0.2, 0.001, 0.04, 0.5])
    adj, rej = adjust_pvalues(p, "bonferroni")
    np.testing.assert_allclose(adj, np.minimum(p * 6, 1))
    assert rej.tolist() == [True, False, False, True, False, False]
    _, holm = adjust_pvalues(p, "holm")  # 0.001 ≤ .05/6, 0.008 ≤ .05/5, 0.009 ≤ .05/4, 0.04 > .05/3
    assert holm.tolist() == [True, True, False, True, False, False]


# --- paired bootstrap -------------------------------------------------------------------------

def test_paired_bootstrap_difference_equals_scipy_paired_resampling():
    rng = np.random.default_rng(1)
    a = rng.random(300)
    b = a + rng.normal(0.03, 0.15, 300)
    got = paired_bootstrap(mean_stats("m", a), mean_stats("m", b), n_resamples=2000, seed=4)
    ref = ss.bootstrap((a, b), lambda x, y, axis=-1: y.mean(axis) - x.mean(axis), paired=True,
                       n_resamples=2000, method="percentile", rng=np.random.default_rng(4))
    assert got.diff == pytest.approx(b.mean() - a.mean())
    assert (got.ci_low, got.ci_high) == pytest.approx(tuple(ref.confidence_interval), rel=1e-9)
    dist = ref.bootstrap_distribution
    p = (1 + np.sum(np.abs(dist - got.diff) >= abs(got.diff))) / (len(dist) + 1)
    assert got.p_value == pytest.approx(p)


def test_paired_bootstrap_p_value_approaches_the_paired_t_test():
    rng = np.random.default_rng(2)
    a = rng.normal(size=3000)
    d = rng.normal(size=3000)
    b = a + (d - d.mean()) / d.std(ddof=1) + 0.045  # t = 0.045 √3000 ≈ 2.46, p ≈ 0.014
    got = paired_bootstrap(mean_stats("m", a), mean_stats("m", b), n_resamples=10_000, seed=0)
    ref = ss.ttest_rel(b, a).pvalue
    assert 0.001 < ref < 0.05
    assert got.p_value == pytest.approx(ref, abs=0.006)  # Monte-Carlo SD ≈ 0.0015 here


def test_paired_bootstrap_is_calibrated_under_the_null():
    rng = np.random.default_rng(3)
    rejections = 0
    for _ in range(200):
        y, labels = clustered_binary(30, 4, rng, concentration=2.0)
        flip = rng.random(len(y)) < 0.3  # the run differs from the baseline on 30% of items, by chance
        run = np.where(flip, rng.random(len(y)) < y.mean(), y).astype(float)
        r = paired_bootstrap(mean_stats("em", y), mean_stats("em", run), labels, n_resamples=400, seed=1)
        rejections += r.p_value < 0.05
    assert 0.01 <= rejections / 200 <= 0.10


def test_paired_bootstrap_many_shares_resamples_across_runs_and_metrics():
    rng = np.random.default_rng(5)
    y, labels = clustered_binary(40, 5, rng, concentration=2.0)
    truth = rng.random(len(y)) < 0.5
    runs = {name: np.where(rng.random(len(y)) < q, truth, ~truth) for name, q in (("r1", 0.7), ("r2", 0.8))}
    base = np.where(rng.random(len(y)) < 0.75, truth, ~truth)
    out = paired_bootstrap_many({"mcc": mcc_stats(truth, base), "mcc_g": mcc_generic(truth, base)},
                                {r: {"mcc": mcc_stats(truth, p), "mcc_g": mcc_generic(truth, p)} for r, p in runs.items()},
                                labels, n_resamples=300, seed=2)
    for r in runs:
        fast, slow = out[r]["mcc"], out[r]["mcc_g"]
        assert (fast.ci_low, fast.ci_high, fast.p_value) == pytest.approx((slow.ci_low, slow.ci_high, slow.p_value))
        alone = paired_bootstrap(mcc_stats(truth, base), mcc_stats(truth, runs[r]), labels, n_resamples=300, seed=2)
        assert (alone.ci_low, alone.ci_high) == pytest.approx((fast.ci_low, fast.ci_high))


def test_identical_runs_have_zero_difference_and_p_one():
    x = np.random.default_rng(6).random(100)
    r = paired_bootstrap(mean_stats("m", x), GenericStatistic("m", 100, lambda i: x[i].mean()), n_resamples=200)
    assert r.diff == pytest.approx(0, abs=1e-12) and r.p_value == 1.0
    assert abs(r.ci_low) < 1e-12 and abs(r.ci_high) < 1e-12


def test_wilcoxon_and_t_are_undefined_below_two_pairs():
    """One paired item (a stratum of one question in a small run): NaN, not scipy's ValueError."""
    for a, b in (([0.2], [0.9]), ([], [])):
        w, t = wilcoxon(np.array(a), np.array(b)), paired_t(np.array(a), np.array(b))
        assert np.isnan(w.p_value) and np.isnan(w.statistic) and w.n == len(a)
        assert np.isnan(t.p_value) and t.n == len(a)


# --- guards: too little data is undefined, never significant ------------------------------------

def test_a_difference_on_one_qa_pair_is_undefined_not_significant():
    """The probe of issue 12: one QA pair, run right, baseline wrong. Its bootstrap has no spread
    (CI [1, 1], p at the floor 1/(B + 1)); the test is undefined with the reason instead."""
    from cxrbench.stats.comparison import ComparisonSettings, compare_statistics

    r = paired_bootstrap(mean_stats("exact_match", np.zeros(1)), mean_stats("exact_match", np.ones(1)),
                         n_resamples=500)
    assert r.diff == 1.0 and np.isnan(r.p_value) and "1 resampling unit < 30" in r.note
    comp = compare_statistics({"exact_match": mean_stats("exact_match", np.zeros(1))},
                              {"run": {"exact_match": mean_stats("exact_match", np.ones(1))}},
                              settings=ComparisonSettings(n_resamples=500))
    assert {row["test"] for row in comp.rows} == {"paired_bootstrap", "mcnemar_exact", "mcnemar_chi2",
                                                  "mcnemar_chi2_cc"}
    for row in comp.rows:
        assert np.isnan(row["p_value"]) and not row["significant"] and "< 30" in row["note"]
        assert row["report"].startswith("undefined: ")
    assert comp.families and sum(comp.families.values()) == 0   # no member of any correction family


def test_unit_guard_counts_the_units_that_carry_the_metric():
    from cxrbench.stats.guards import MIN_UNITS

    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(100), 3)
    a, b = rng.random(300), rng.random(300)
    for carried, defined in ((MIN_UNITS - 1, False), (MIN_UNITS, True)):
        keep = labels < carried          # the metric is defined on the items of `carried` studies
        va, vb = np.where(keep, a, np.nan), np.where(keep, b, np.nan)
        r = paired_bootstrap(mean_stats("f1", va), mean_stats("f1", vb), labels, n_resamples=300)
        assert r.n_clusters == carried and np.isfinite(r.p_value) == defined and bool(r.note) != defined
        ci = bootstrap_ci(mean_stats("f1", va), labels, n_resamples=300)
        assert ci.n_clusters == carried and np.isfinite(ci.ci_low)    # an interval is still given ...
        assert ("interval unreliable" in ci.note) != defined          # ... with the reason not to trust it


def test_mcnemar_chi2_needs_25_discordant_pairs_in_a_comparison():
    from cxrbench.stats.comparison import ComparisonSettings, compare_statistics
    from cxrbench.stats.guards import MIN_DISCORDANT

    n = 400
    labels = np.repeat(np.arange(100), 4)
    base = np.ones(n)
    for discordant, defined in ((MIN_DISCORDANT - 1, False), (MIN_DISCORDANT, True)):
        run = base.copy()
        run[:discordant] = 0.0
        comp = compare_statistics({"exact_match": mean_stats("exact_match", base)},
                                  {"run": {"exact_match": mean_stats("exact_match", run)}}, clusters=labels,
                                  settings=ComparisonSettings(n_resamples=300))
        rows = {row["test"]: row for row in comp.rows}
        for test in ("mcnemar_chi2", "mcnemar_chi2_cc"):
            assert np.isfinite(rows[test]["p_value"]) == defined
            assert ("discordant pairs < 25" in rows[test]["note"]) != defined
        ref = sm_mcnemar([[n - discordant, discordant], [0, 0]], exact=True)
        assert rows["mcnemar_exact"]["p_value"] == pytest.approx(ref.pvalue)   # the exact test is always valid
        assert rows["paired_bootstrap"]["note"] == "" and np.isfinite(rows["paired_bootstrap"]["p_value"])


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_paired_strata_from_the_shared_draw_equal_a_paired_bootstrap_on_the_same_draws(method):
    from cxrbench.stats.bootstrap import paired_bootstrap_strata

    rng = np.random.default_rng(8)
    y, labels = clustered_binary(60, 5, rng, concentration=2.0)
    run = np.where(rng.random(len(y)) < 0.2, 1 - y, y)
    strata = {"overall": np.ones(len(y), bool), "half": rng.random(len(y)) < 0.5}
    base = {"em": mean_stats("em", y), "mcc": mcc_stats(y > 0, run > 0)}
    other = {"em": mean_stats("em", run), "mcc": mcc_stats(y > 0, y > 0)}
    got = dict(paired_bootstrap_strata(base, {"r": other}, strata, labels, n_resamples=300, seed=6, method=method))
    for name, mask in strata.items():
        for metric in base:
            ref = paired_bootstrap(base[metric].restrict(mask), other[metric].restrict(mask), labels, n_resamples=300,
                                   seed=6, method=method)
            g = got[name]["r"][metric]
            np.testing.assert_allclose([g.diff, g.ci_low, g.ci_high, g.p_value], [ref.diff, ref.ci_low, ref.ci_high,
                                                                                  ref.p_value], rtol=1e-12)
