"""The expected-results matrix of design 16.2 beside the measured one, and the verdict rule.

The design expects, for each condition against the full model, a drop in overall, spatial and
relational accuracy and a rise of the training loss "at epoch 10", as ranges ("-8 to -12%").
It does not say whether "%" is percentage points or a relative change: ``scale="points"`` (the
default) reads the accuracy ranges as points (``diff = run − full``), ``"relative"`` as a relative
change (``diff = (run − full) / full``, the CI bounds divided by full's value: full treated as
fixed). The loss column is always relative.

**The verdict rule** (:func:`verdict`), for an interval ``[lo, hi]`` of the measured difference
and the expected range ``[a, b]`` (one sign):

- ``contradicted``: the interval lies wholly outside the range (the data exclude every value the
  design expects: the effect is smaller, larger, or of the other sign);
- ``confirmed``: the interval overlaps the range and the difference is significant in the
  expected direction (corrected p below α; for an interval without a test: the interval
  excludes 0 on the expected side);
- ``undecided``: otherwise (the interval overlaps the range but also holds no difference, or
  there is no interval).

Accuracy cells use each seed's ``ablation_matrix`` cell of ``cxrbench compare`` (exact match,
study-level paired bootstrap CI, Bonferroni/Holm over the matrix's cells); with several seeds the
study's verdict is the one every seed gives, else ``undecided`` ("seeds disagree"). The loss cell
compares the mean training loss over the last ``window`` steps that every run logged (the design's
epoch 10 is rarely reached on a budget: the step is reported); it has an interval only over
seeds (a t-interval, two seeds at least), and is ``not_comparable`` when the runs optimise
different losses (the single head's unified loss against the routed heads' weighted sum).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

SUBSETS = ("overall", "spatial", "relational")
LOSS = "training_loss"
# design 16.2 as fractions: condition -> subset -> (low, high)
EXPECTED: dict[str, dict[str, tuple[float, float]]] = {
    "no_scene_graph": {"overall": (-0.12, -0.08), "spatial": (-0.25, -0.15), "relational": (-0.30, -0.20),
                       LOSS: (0.10, 0.15)},
    "late_fusion": {"overall": (-0.18, -0.12), "spatial": (-0.35, -0.25), "relational": (-0.40, -0.30),
                    LOSS: (0.15, 0.20)},
    "resnet18": {"overall": (-0.07, -0.04), "spatial": (-0.10, -0.06), "relational": (-0.08, -0.05),
                 LOSS: (0.05, 0.08)},
    "generic_tokenizer": {"overall": (-0.045, -0.028), "spatial": (-0.04, -0.02), "relational": (-0.05, -0.03),
                          LOSS: (0.03, 0.05)},
    "single_head": {"overall": (-0.06, -0.03), "spatial": (-0.04, -0.02), "relational": (-0.04, -0.02),
                    LOSS: (0.02, 0.04)},
}
VERDICTS = ("confirmed", "contradicted", "undecided", "not_comparable")
COLUMNS = ("condition", "subset", "metric", "scale", "expected_low", "expected_high", "seed", "value_baseline",
           "value_run", "diff", "diff_sd", "ci_low", "ci_high", "p_adjusted", "significant", "verdict", "reason")


def verdict(expected: tuple[float, float] | None, diff: float, lo: float, hi: float,
            significant: bool | None) -> tuple[str, str]:
    """(verdict, reason) of a measured difference ``diff`` with interval ``[lo, hi]`` against an
    expected range (module docstring). ``significant``: the corrected test rejects "no
    difference"; None: there is no test, the interval decides (it must exclude 0; ``diff`` may
    then be NaN, and a bound infinite, for a one-sided interval)."""
    if expected is None:
        return "undecided", "no expected range for this condition"
    if any(x is None or np.isnan(x) for x in (lo, hi)) or (significant is not None and np.isnan(diff)):
        return "undecided", "no interval"
    a, b = sorted(expected)
    sign = 1.0 if a + b > 0 else -1.0
    if hi < a or lo > b:
        toward_zero = hi < a if sign > 0 else lo > b
        beyond_zero = hi < 0 if sign > 0 else lo > 0
        what = ("of the other sign than" if beyond_zero else "smaller than") if toward_zero else "larger than"
        return "contradicted", (f"the interval [{lo:+.4f}, {hi:+.4f}] lies wholly outside the expected range "
                                f"[{a:+.4f}, {b:+.4f}]: {what} expected")
    if significant is None:      # no test: the interval must exclude 0 on the expected side
        rejects, right_way = (lo > 0 if sign > 0 else hi < 0), True
    else:
        rejects, right_way = significant, diff * sign > 0
    if rejects and right_way:
        return "confirmed", "the interval overlaps the expected range and the difference is significant"
    return "undecided", "the interval overlaps the expected range but does not exclude no difference"


def _scaled(cell: dict, scale: str) -> tuple[float, float, float]:
    diff, lo, hi = (float(cell[k]) if cell[k] is not None else np.nan for k in ("diff", "ci_low", "ci_high"))
    if scale == "relative":
        base = float(cell["value_baseline"])
        return (diff / base, lo / base, hi / base) if base else (np.nan, np.nan, np.nan)
    return diff, lo, hi


def accuracy_rows(cells_by_seed: Mapping[int, Sequence[dict]], scale: str = "points") -> list[dict]:
    """Rows of the accuracy subsets: one per condition × subset × seed and one ``seed='all'``."""
    out = []
    by_key: dict[tuple[str, str], dict[int, dict]] = {}
    for seed, cells in sorted(cells_by_seed.items()):
        for c in cells:
            if c["subset"] in SUBSETS:
                by_key.setdefault((c["condition"], c["subset"]), {})[seed] = c
    for (cond, subset), by_seed in by_key.items():
        expected = EXPECTED.get(cond, {}).get(subset)
        base = dict(condition=cond, subset=subset, metric=next(iter(by_seed.values()))["metric"], scale=scale,
                    expected_low=expected[0] if expected else np.nan, expected_high=expected[1] if expected else np.nan)
        verdicts, diffs, reasons = [], [], []
        for seed, c in sorted(by_seed.items()):
            diff, lo, hi = _scaled(c, scale)
            if not c["n"]:
                v, reason = "undecided", "no QA pair in this subset"
            elif c["p_value"] is None or np.isnan(c["p_value"]):
                v, reason = "undecided", ("the comparison has no defined test here (too few studies for the "
                                          "bootstrap guard: see compare's notes)")
            else:
                v, reason = verdict(expected, diff, lo, hi, bool(c["significant"]))
            verdicts.append(v)
            diffs.append(diff)
            reasons.append(reason)
            out.append({**base, "seed": str(seed), "value_baseline": c["value_baseline"], "value_run": c["value_run"],
                        "diff": diff, "diff_sd": np.nan, "ci_low": lo, "ci_high": hi, "p_adjusted": c["p_adjusted"],
                        "significant": bool(c["significant"]), "verdict": v, "reason": reason})
        out.append({**base, **_all_row(by_seed, diffs, verdicts, reasons)})
    return out


def _all_row(by_seed: dict[int, dict], diffs: list[float], verdicts: list[str], reasons: list[str]) -> dict:
    d = np.array(diffs, dtype=float)
    ok = ~np.isnan(d)
    agreed = len(set(verdicts)) == 1
    reason = (f"every seed: {verdicts[0]}" if agreed and len(verdicts) > 1 else
              reasons[0] if agreed else "seeds disagree (" + ", ".join(verdicts) + ")")
    return {"seed": "all", "value_baseline": _mean([c["value_baseline"] for c in by_seed.values()]),
            "value_run": _mean([c["value_run"] for c in by_seed.values()]),
            "diff": float(d[ok].mean()) if ok.any() else np.nan,
            "diff_sd": float(d[ok].std(ddof=1)) if ok.sum() > 1 else np.nan, "ci_low": np.nan, "ci_high": np.nan,
            "p_adjusted": np.nan, "significant": False,
            "verdict": verdicts[0] if agreed else "undecided", "reason": reason}


def loss_rows(losses_by_seed: Mapping[int, Mapping[str, dict]], baseline: str = "full",
              confidence: float = 0.95) -> list[dict]:
    """Rows of the training-loss column. ``losses_by_seed[seed][condition]`` holds ``loss`` (mean
    over the final window), ``step`` (its last step) and ``terms`` (the logged loss terms)."""
    from scipy import stats

    out = []
    conditions = list(dict.fromkeys(c for losses in losses_by_seed.values() for c in losses if c != baseline))
    for cond in conditions:
        expected = EXPECTED.get(cond, {}).get(LOSS)
        base = dict(condition=cond, subset=LOSS, metric="loss", scale="relative",
                    expected_low=expected[0] if expected else np.nan, expected_high=expected[1] if expected else np.nan)
        rel = []
        comparable = True
        for seed, losses in sorted(losses_by_seed.items()):
            b, r = losses.get(baseline), losses.get(cond)
            if b is None or r is None:
                continue
            same = set(b["terms"]) == set(r["terms"])
            comparable &= same
            diff = (r["loss"] - b["loss"]) / b["loss"] if same and b["loss"] else np.nan
            rel.append(diff)
            v, reason = (("undecided", f"one seed has no interval (mean loss over the last steps to step {b['step']})")
                         if same else ("not_comparable", "the runs optimise different losses "
                                       f"({', '.join(sorted(r['terms']))} against {', '.join(sorted(b['terms']))})"))
            out.append({**base, "seed": str(seed), "value_baseline": b["loss"], "value_run": r["loss"], "diff": diff,
                        "diff_sd": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_adjusted": np.nan,
                        "significant": False, "verdict": v, "reason": reason})
        d = np.array(rel, dtype=float)
        d = d[~np.isnan(d)]
        lo = hi = np.nan
        if not comparable:
            v, reason = "not_comparable", "the runs optimise different losses"
        elif len(d) >= 2:
            half = stats.t.ppf(0.5 + confidence / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            lo, hi = float(d.mean() - half), float(d.mean() + half)
            v, reason = verdict(expected, float(d.mean()), lo, hi, None)
            reason += f" ({confidence * 100:g}% t-interval over {len(d)} seeds)"
        else:
            v, reason = "undecided", "one seed: no interval over seeds"
        out.append({**base, "seed": "all", "value_baseline": np.nan, "value_run": np.nan,
                    "diff": float(d.mean()) if len(d) else np.nan,
                    "diff_sd": float(d.std(ddof=1)) if len(d) > 1 else np.nan, "ci_low": lo, "ci_high": hi,
                    "p_adjusted": np.nan, "significant": False, "verdict": v, "reason": reason})
    return out


def _mean(values) -> float:
    x = np.array([np.nan if v is None else float(v) for v in values])
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else np.nan
