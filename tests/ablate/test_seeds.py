"""Seed-to-seed spread and the paired t-test across seeds (scipy's ttest_rel), corrected per metric."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cxrbench.ablate.seeds import seed_spread
from cxrbench.stats.multitest import adjust_pvalues


def _row(run, stratum, base, val, half, sig=False, metric="exact_match", test="paired_bootstrap"):
    return {"run": run, "stratum": stratum, "metric": metric, "test": test, "value_baseline": base, "value_run": val,
            "diff": val - base, "ci_low": val - base - half, "ci_high": val - base + half, "p_adjusted": 0.01,
            "significant": sig}


def test_spread_and_seed_test_equal_scipy():
    base = {0: 0.60, 1: 0.62, 2: 0.61}
    run = {0: 0.55, 1: 0.58, 2: 0.54}
    rows = {s: [_row("no_scene_graph", "overall", base[s], run[s], 0.02, sig=s != 1),
                _row("no_scene_graph", "overall", base[s], run[s], 0.02, test="mcnemar_exact"),
                _row("resnet18", "overall", base[s], base[s] + 0.001 * s, 0.02)] for s in base}
    out = {r["condition"]: r for r in seed_spread(rows, seed_test=True)}
    assert len(out) == 2                                          # only the paired-bootstrap rows
    r = out["no_scene_graph"]
    diffs = np.array([run[s] - base[s] for s in base])
    assert r["n_seeds"] == 3 and r["diff_mean"] == pytest.approx(diffs.mean())
    assert r["diff_sd"] == pytest.approx(diffs.std(ddof=1))
    assert (r["diff_min"], r["diff_max"]) == (pytest.approx(diffs.min()), pytest.approx(diffs.max()))
    assert r["boot_halfwidth_mean"] == pytest.approx(0.02) and r["boot_significant"] == 2
    ref = stats.ttest_rel([run[s] for s in base], [base[s] for s in base])
    assert r["seed_test"] == "paired_t" and r["seed_df"] == 2
    assert r["seed_statistic"] == pytest.approx(ref.statistic) and r["seed_p"] == pytest.approx(ref.pvalue)
    ps = [out["no_scene_graph"]["seed_p"], out["resnet18"]["seed_p"]]
    adj, _ = adjust_pvalues(ps, "bonferroni", 0.05)
    assert r["seed_p_adjusted"] == pytest.approx(adj[0])
    assert [p["seed"] for p in r["per_seed"]] == [0, 1, 2]


def test_one_seed_has_no_spread_and_no_test_unless_asked():
    rows = {0: [_row("no_scene_graph", "spatial", 0.5, 0.4, 0.05)]}
    (r,) = seed_spread(rows)
    assert r["n_seeds"] == 1 and np.isnan(r["diff_sd"]) and r["seed_test"] == "" and np.isnan(r["seed_p"])
    (r,) = seed_spread(rows, seed_test=True)
    assert np.isnan(r["seed_p"]) and r["seed_significant"] is False
