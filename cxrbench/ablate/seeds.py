"""Seed-to-seed spread beside the bootstrap CIs, and the test across seeds (``seed_spread.csv``).

Each seed's ``cxrbench compare`` gives, per condition × stratum × metric, the difference to
``full`` with its study-level paired-bootstrap CI: the uncertainty from sampling the test
studies, for those two trained models. Training again with another seed gives another pair of
models; the spread of the differences over seeds is the uncertainty from training. Both are
reported side by side (``diff_sd`` against ``boot_halfwidth_mean``).

The test across seeds (``seed_test``): the paired t-test of the run's value against the
baseline's, paired by seed (the same seed draws the same initialisation streams, batches and
validation rows for every condition), ``n_seeds − 1`` df (:func:`cxrbench.stats.paired_tests.paired_t`).
It asks whether the difference is reproducible over training randomness on this test set; it
does not include test-set sampling (every seed is evaluated on the same studies), which is what
the bootstrap CI beside it covers. A t-test because with 3-5 seeds a rank test cannot reject at
all (two-sided Wilcoxon with 3 pairs: p ≥ 0.25) and the per-seed differences are means over
thousands of QA pairs, close to normal. p-values are corrected per metric over condition × stratum.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from cxrbench.stats.multitest import adjust_pvalues
from cxrbench.stats.paired_tests import paired_t

COLUMNS = ("condition", "stratum", "metric", "n_seeds", "diff_mean", "diff_sd", "diff_min", "diff_max",
           "boot_halfwidth_mean", "boot_significant", "seed_test", "seed_statistic", "seed_df", "seed_p",
           "seed_p_adjusted", "seed_significant")
BOOTSTRAP_TEST = "paired_bootstrap"


def seed_spread(rows_by_seed: Mapping[int, Sequence[dict]], *, seed_test: bool = False,
                correction: str = "bonferroni", alpha: float = 0.05) -> list[dict]:
    """One row per condition × stratum × metric of the seeds' paired-bootstrap comparison rows
    (``comparison.json`` rows of each seed); ``per_seed`` holds each seed's values."""
    groups: dict[tuple[str, str, str], dict[int, dict]] = {}
    for seed, rows in sorted(rows_by_seed.items()):
        for r in rows:
            if r["test"] == BOOTSTRAP_TEST:
                groups.setdefault((r["run"], r["stratum"], r["metric"]), {})[seed] = r
    out = []
    for (cond, stratum, metric), by_seed in groups.items():
        seeds = sorted(by_seed)
        diff = np.array([_num(by_seed[s]["diff"]) for s in seeds])
        half = np.array([(_num(by_seed[s]["ci_high"]) - _num(by_seed[s]["ci_low"])) / 2 for s in seeds])
        ok = ~np.isnan(diff)
        row = {"condition": cond, "stratum": stratum, "metric": metric, "n_seeds": int(ok.sum()),
               "diff_mean": _mean(diff), "diff_sd": float(np.std(diff[ok], ddof=1)) if ok.sum() > 1 else np.nan,
               "diff_min": float(diff[ok].min()) if ok.any() else np.nan,
               "diff_max": float(diff[ok].max()) if ok.any() else np.nan,
               "boot_halfwidth_mean": _mean(half),
               "boot_significant": int(sum(bool(by_seed[s]["significant"]) for s in seeds)),
               "seed_test": "", "seed_statistic": np.nan, "seed_df": np.nan, "seed_p": np.nan,
               "seed_p_adjusted": np.nan, "seed_significant": False,
               "per_seed": [{"seed": s, **{k: by_seed[s][k] for k in ("value_baseline", "value_run", "diff", "ci_low",
                                                                     "ci_high", "p_adjusted", "significant")}}
                            for s in seeds]}
        if seed_test:
            res = paired_t([_num(by_seed[s]["value_baseline"]) for s in seeds],
                           [_num(by_seed[s]["value_run"]) for s in seeds])
            row.update(seed_test="paired_t", seed_statistic=res.statistic, seed_df=res.df, seed_p=res.p_value)
        out.append(row)
    if seed_test:
        for metric in dict.fromkeys(r["metric"] for r in out):
            idx = [i for i, r in enumerate(out) if r["metric"] == metric]
            adj, rej = adjust_pvalues([out[i]["seed_p"] for i in idx], correction, alpha)
            for i, pa, r in zip(idx, adj, rej):
                out[i]["seed_p_adjusted"], out[i]["seed_significant"] = float(pa), bool(r)
    return out


def _num(x) -> float:
    return np.nan if x is None else float(x)


def _mean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else np.nan
