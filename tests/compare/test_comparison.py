"""The comparison core (cxrbench.stats.comparison) on statistics built directly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as ss
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.multitest import multipletests

from cxrbench.metrics.base import mean_stats
from cxrbench.stats.bootstrap import paired_bootstrap
from cxrbench.stats.comparison import (COLUMNS, ComparisonSettings, ablation_matrix, compare_statistics, metric_kind,
                                       per_item_values)
from cxrbench.stats.effect_size import cohens_d, cohens_dz
from cxrbench.stats.guards import MIN_DISCORDANT
from tests.stats.helpers import mcc_stats

N_STUDIES, PER_STUDY = 80, 10
TYPES = np.array(["B03_is_abnormal", "D03_where_is_finding", "C01_describe_region"])


def make_data(seed=0):
    """Three runs on the same 800 items; run 'worse_spatial' loses only on D03 items."""
    rng = np.random.default_rng(seed)
    n = N_STUDIES * PER_STUDY
    study = np.repeat(np.arange(N_STUDIES) + 50_000_000, PER_STUDY)
    qtype = TYPES[rng.integers(0, 3, n)]
    truth = rng.random(n) < 0.5
    ease = rng.random(n)  # shared item difficulty: runs agree on most items, as real runs do

    def run(p):
        hit = ease < p
        f1 = np.clip(np.where(hit, 1.0, 0.0) * 0.7 + rng.random(n) * 0.3, 0, 1)
        return {"exact_match": mean_stats("exact_match", hit.astype(float)),
                "token_f1": mean_stats("token_f1", f1),
                "mcc": mcc_stats(truth, np.where(hit, truth, ~truth))}

    p_base = np.full(n, 0.75)
    p_worse = np.where(qtype == "D03_where_is_finding", 0.35, 0.75)
    strata = {"overall": np.ones(n, bool), "spatial": qtype == "D03_where_is_finding",
              **{t: qtype == t for t in TYPES}}
    return run(p_base), {"same": run(p_base + rng.normal(0, 0.01)), "worse_spatial": run(p_worse)}, strata, study


SETTINGS = ComparisonSettings(n_resamples=1000, seed=3)


@pytest.fixture(scope="module")
def comparison():
    base, runs, strata, study = make_data()
    return compare_statistics(base, runs, strata=strata, clusters=study, baseline_name="full", settings=SETTINGS), \
        (base, runs, strata, study)


def test_kinds_are_read_from_the_statistics():
    base, runs, _, _ = make_data()
    assert metric_kind([base["exact_match"], runs["same"]["exact_match"]]) == "binary"
    assert metric_kind([base["token_f1"]]) == "continuous"
    assert metric_kind([base["mcc"]]) == "aggregate"
    assert per_item_values(base["mcc"]) is None
    v = per_item_values(mean_stats("x", np.array([0.5, np.nan, 1.0])))
    np.testing.assert_array_equal(v, [0.5, np.nan, 1.0])


def test_declared_outcome_beats_the_values():
    """A graded score that is 0 or 1 on every item (clinical-term F1 of one-term answers) keeps
    its paired t / Wilcoxon tests; undeclared hand-built statistics still fall back to values."""
    all_or_nothing = np.array([1.0, 0.0, 1.0, np.nan, 0.0])
    assert mean_stats("clinical_term_f1", all_or_nothing).info == {"outcome": "continuous"}
    assert metric_kind([mean_stats("clinical_term_f1", all_or_nothing)]) == "continuous"
    assert metric_kind([mean_stats("my_score", all_or_nothing)]) == "binary"
    assert metric_kind([mean_stats("my_score", all_or_nothing, outcome="continuous")]) == "continuous"
    with pytest.raises(ValueError, match="declared binary"):
        mean_stats("exact_match", np.array([1.0, 0.5]))
    with pytest.raises(ValueError, match="different outcomes"):
        metric_kind([mean_stats("s", all_or_nothing, outcome="binary"), mean_stats("s", all_or_nothing, outcome="continuous")])


def test_rows_cover_every_run_stratum_metric_and_applicable_test(comparison):
    comp, (base, runs, strata, _) = comparison
    frame = comp.frame()
    assert list(frame.columns) == list(COLUMNS)
    per_metric = {"exact_match": 4, "token_f1": 3, "mcc": 1}  # binary: bootstrap + 3 McNemar, ...
    assert len(frame) == len(runs) * len(strata) * sum(per_metric.values())
    got = frame.groupby(["run", "stratum", "metric"]).size()
    assert all(got[(r, s, m)] == k for r in runs for s in strata for m, k in per_metric.items())
    assert set(frame.loc[frame.metric == "mcc", "test"]) == {"paired_bootstrap"}
    assert set(frame.loc[frame.metric == "token_f1", "test"]) == {"paired_bootstrap", "paired_t", "wilcoxon"}
    assert (frame.baseline == "full").all()


def test_every_number_equals_the_reference_computation_on_its_stratum(comparison):
    comp, (base, runs, strata, study) = comparison
    frame = comp.frame().set_index(["run", "stratum", "metric", "test"])
    for run in runs:
        for stratum in ("overall", "D03_where_is_finding"):
            m = strata[stratum]
            a = per_item_values(base["exact_match"])[m]
            b = per_item_values(runs[run]["exact_match"])[m]
            row = frame.loc[(run, stratum, "exact_match", "mcnemar_chi2")]
            table = [[np.sum((a == 1) & (b == 1)), np.sum((a == 1) & (b == 0))],
                     [np.sum((a == 0) & (b == 1)), np.sum((a == 0) & (b == 0))]]
            ref = sm_mcnemar(table, exact=False, correction=False)
            if table[0][1] + table[1][0] >= MIN_DISCORDANT:
                assert (row.statistic, row.p_value) == pytest.approx((ref.statistic, ref.pvalue))
            else:  # too few discordant pairs for the χ² approximation: undefined, with the reason
                assert np.isnan(row.p_value) and "discordant" in row.note
            assert row["diff"] == pytest.approx(b.mean() - a.mean())
            assert row.value_baseline == pytest.approx(a.mean()) and row.value_run == pytest.approx(b.mean())
            assert row.effect_size == pytest.approx(cohens_d(b, a)) and row.d_z == pytest.approx(cohens_dz(b, a))

            fa = per_item_values(base["token_f1"])[m]
            fb = per_item_values(runs[run]["token_f1"])[m]
            t = frame.loc[(run, stratum, "token_f1", "paired_t")]
            ref_t = ss.ttest_rel(fb, fa)
            assert (t.statistic, t.p_value, t.df) == pytest.approx((ref_t.statistic, ref_t.pvalue, ref_t.df))
            w = frame.loc[(run, stratum, "token_f1", "wilcoxon")]
            assert w.p_value == pytest.approx(ss.wilcoxon(fb - fa).pvalue)

            # the shared draw: the stratum's metric over all studies, the same draws
            pb = paired_bootstrap(base["mcc"].restrict(m), runs[run]["mcc"].restrict(m), study,
                                  n_resamples=SETTINGS.n_resamples, seed=SETTINGS.seed)
            row = frame.loc[(run, stratum, "mcc", "paired_bootstrap")]
            assert (row.ci_low, row.ci_high, row.p_value) == pytest.approx((pb.ci_low, pb.ci_high, pb.p_value))
            assert row.n_clusters == len(np.unique(study[m]))


def test_corrections_are_applied_within_each_metric_and_test_family(comparison):
    comp, _ = comparison
    frame = comp.frame()
    for (metric, test), grp in frame.groupby(["metric", "test"]):
        ok = grp.p_value.notna()
        rej, adj, _, _ = multipletests(grp.p_value[ok], alpha=0.05, method="bonferroni")
        np.testing.assert_allclose(grp.p_adjusted[ok], adj)
        np.testing.assert_array_equal(grp.significant[ok], rej)
        assert (grp.family == f"{metric}/{test}").all()
    assert sum(comp.families.values()) == frame.p_value.notna().sum()
    assert "Bonferroni correction at α = 0.05, one family per metric and test" in comp.family_description()


def test_family_all_corrects_over_the_whole_table():
    base, runs, strata, study = make_data()
    comp = compare_statistics(base, runs, strata=strata, clusters=study,
                              settings=ComparisonSettings(n_resamples=300, correction="holm", family="all"))
    frame = comp.frame()
    ok = frame.p_value.notna()  # χ² of identical runs: no discordant pair, undefined
    assert 0 < (~ok).sum() < len(frame)
    rej, adj, _, _ = multipletests(frame.p_value[ok], alpha=0.05, method="holm")
    np.testing.assert_allclose(frame.p_adjusted[ok], adj)
    assert frame.p_adjusted[~ok].isna().all() and not frame.significant[~ok].any()
    assert comp.families == {"all": ok.sum()}


def test_a_planted_spatial_loss_is_found_there_and_nowhere_else(comparison):
    comp, _ = comparison
    frame = comp.frame().set_index(["run", "stratum", "metric", "test"])
    for stratum in ("spatial", "D03_where_is_finding"):
        row = frame.loc[("worse_spatial", stratum, "exact_match", "paired_bootstrap")]
        assert row.significant and row.ci_high < 0 and row["diff"] < -0.25
    for stratum in ("B03_is_abnormal", "C01_describe_region"):
        assert frame.loc[("worse_spatial", stratum, "exact_match", "paired_bootstrap")]["diff"] == 0
        assert frame.loc[("worse_spatial", stratum, "exact_match", "mcnemar_exact")].p_value == 1.0
    assert not frame.loc["same"].significant.any()


def test_ablation_matrix_is_its_own_family_and_marks_missing_subsets(comparison):
    comp, _ = comparison
    cells = ablation_matrix(comp, "exact_match")
    assert [(c["condition"], c["subset"]) for c in cells] == [
        (r, s) for r in ("same", "worse_spatial") for s in ("overall", "spatial", "relational")]
    rel = [c for c in cells if c["subset"] == "relational"]
    assert all(c["n"] == 0 and np.isnan(c["diff"]) and not c["significant"] for c in rel)
    defined = [c for c in cells if c["n"]]
    _, adj, _, _ = multipletests([c["p_value"] for c in defined], method="bonferroni")
    np.testing.assert_allclose([c["p_adjusted"] for c in defined], adj)
    spatial = next(c for c in cells if c["condition"] == "worse_spatial" and c["subset"] == "spatial")
    assert spatial["significant"] and spatial["diff"] < -0.25


def test_empty_strata_and_missing_metrics_are_noted_not_fatal():
    base, runs, strata, study = make_data()
    runs["same"] = {k: v for k, v in runs["same"].items() if k != "mcc"}
    strata["nothing"] = np.zeros(len(study), bool)
    comp = compare_statistics(base, runs, strata=strata, clusters=study, settings=ComparisonSettings(n_resamples=200))
    assert any("'nothing' has no items" in n for n in comp.notes)
    assert any("'same' has no statistic for mcc" in n for n in comp.notes)
    frame = comp.frame()
    assert "nothing" not in set(frame.stratum)
    assert frame[(frame.run == "same") & (frame.metric == "mcc")].empty


def test_settings_are_validated():
    with pytest.raises(ValueError, match="correction"):
        ComparisonSettings(correction="fdr")
    with pytest.raises(ValueError, match="unknown tests"):
        ComparisonSettings(tests=("t_test",))
