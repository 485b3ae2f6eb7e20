"""The verdict rule and the expected-results matrix (design 16.2) on hand-built comparison cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cxrbench.ablate import expected

NO_SG = expected.EXPECTED["no_scene_graph"]["overall"]        # (-0.12, -0.08)


@pytest.mark.parametrize("diff, lo, hi, sig, want, why", [
    (-0.10, -0.13, -0.07, True, "confirmed", "significant"),
    (-0.05, -0.09, -0.01, True, "confirmed", "significant"),           # overlaps the range at its edge
    (-0.06, -0.09, -0.03, False, "undecided", "does not exclude"),     # overlaps, not significant after correction
    (-0.02, -0.05, 0.01, False, "contradicted", "smaller than"),       # wholly between the range and zero
    (-0.20, -0.25, -0.15, True, "contradicted", "larger than"),
    (0.05, 0.02, 0.08, True, "contradicted", "other sign"),
    (0.0, np.nan, np.nan, False, "undecided", "no interval"),
    (0.01, -0.09, 0.02, True, "undecided", "does not exclude"),      # a test rejecting the other way
])
def test_verdict_rule(diff, lo, hi, sig, want, why):
    v, reason = expected.verdict(NO_SG, diff, lo, hi, sig)
    assert v == want and why in reason


def test_verdict_without_a_test_needs_the_interval_to_exclude_zero():
    claim = (0.10, 0.15)
    assert expected.verdict(claim, 0.12, 0.02, 0.3, None)[0] == "confirmed"
    assert expected.verdict(claim, 0.12, -0.1, 0.3, None)[0] == "undecided"
    assert expected.verdict(claim, float("nan"), 0.2, 1.0, None)[0] == "contradicted"   # one-sided, all above
    assert expected.verdict(claim, float("nan"), -np.inf, 0.05, None)[0] == "contradicted"
    assert expected.verdict(None, 0.1, 0.0, 0.2, None)[0] == "undecided"


def _cell(cond, subset, diff, lo, hi, sig, p=0.001, base=0.6, n=500):
    return {"condition": cond, "subset": subset, "metric": "exact_match", "value_baseline": base,
            "value_run": base + diff, "diff": diff, "ci_low": lo, "ci_high": hi, "test": "paired_bootstrap",
            "p_value": p, "p_adjusted": p, "significant": sig, "n": n, "n_clusters": 100}


def test_accuracy_rows_per_seed_and_the_seeds_agreement():
    cells = {0: [_cell("no_scene_graph", "overall", -0.10, -0.12, -0.08, True),
                 _cell("no_scene_graph", "spatial", -0.20, -0.24, -0.16, True)],
             1: [_cell("no_scene_graph", "overall", -0.11, -0.13, -0.09, True),
                 _cell("no_scene_graph", "spatial", -0.01, -0.03, 0.01, False, p=0.4)]}
    rows = {(r["subset"], r["seed"]): r for r in expected.accuracy_rows(cells)}
    assert rows[("overall", "all")]["verdict"] == "confirmed"
    assert rows[("overall", "all")]["diff"] == pytest.approx(-0.105)
    assert rows[("overall", "all")]["diff_sd"] == pytest.approx(np.std([-0.10, -0.11], ddof=1))
    assert rows[("spatial", "0")]["verdict"] == "confirmed" and rows[("spatial", "1")]["verdict"] == "contradicted"
    assert rows[("spatial", "all")]["verdict"] == "undecided" and "disagree" in rows[("spatial", "all")]["reason"]
    assert rows[("overall", "0")]["expected_low"] == -0.12


def test_relative_scale_divides_by_the_baseline_and_guards_undefined_tests():
    cells = {0: [_cell("resnet18", "overall", -0.03, -0.05, -0.01, True, base=0.5),
                 _cell("resnet18", "relational", -0.03, -0.05, -0.01, False, p=None)]}
    rows = {r["subset"]: r for r in expected.accuracy_rows(cells, "relative") if r["seed"] == "0"}
    assert rows["overall"]["diff"] == pytest.approx(-0.06) and rows["overall"]["ci_low"] == pytest.approx(-0.10)
    assert rows["overall"]["verdict"] == "confirmed"          # -6% relative against -4 to -7%
    assert rows["relational"]["verdict"] == "undecided" and "no defined test" in rows["relational"]["reason"]


def test_loss_rows_interval_over_seeds_and_not_comparable_losses():
    def point(loss, terms=("loss/binary", "loss/region")):
        return {"loss": loss, "step": 100, "window": 10, "terms": list(terms)}

    losses = {s: {"full": point(1.0), "no_scene_graph": point(1.0 + r), "single_head": point(0.9, ("loss/unified",))}
              for s, r in zip((0, 1, 2), (0.11, 0.12, 0.13))}
    rows = {(r["condition"], r["seed"]): r for r in expected.loss_rows(losses)}
    d = np.array([0.11, 0.12, 0.13])
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
    nosg = rows[("no_scene_graph", "all")]
    assert nosg["ci_low"] == pytest.approx(d.mean() - half) and nosg["ci_high"] == pytest.approx(d.mean() + half)
    assert nosg["verdict"] == "confirmed"
    assert rows[("no_scene_graph", "0")]["verdict"] == "undecided"
    assert rows[("single_head", "all")]["verdict"] == "not_comparable"
    one = expected.loss_rows({0: losses[0]})
    assert {r["verdict"] for r in one if r["condition"] == "no_scene_graph"} == {"undecided"}
