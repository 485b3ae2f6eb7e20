"""Error rates with bootstrap CIs, per stratum (``strata.csv``).

An error is a QA pair that ``cxrbench score`` marks not ``correct`` (exact match). Every stratum's
interval comes from one shared draw of the resampling units (:func:`cxrbench.stats.bootstrap.bootstrap_table`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrbench.metrics.base import mean_stats

COLUMNS = ("group", "stratum", "n", "n_errors", "error_rate", "ci_low", "ci_high")


def error_rates(error: np.ndarray, strata: dict[tuple[str, str], np.ndarray], clusters=None, *,
                n_resamples: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """One row per (group, stratum) mask: QA pairs, errors, error rate and its CI."""
    from cxrbench.stats.bootstrap import bootstrap_table

    e = np.asarray(error, dtype=float)
    stat = mean_stats("error_rate", e, outcome="binary")
    masks = {f"{g}\t{s}": np.asarray(m, dtype=bool) for (g, s), m in strata.items()}
    table = bootstrap_table({"error_rate": stat}, masks, clusters, n_resamples=n_resamples, seed=seed, progress=False)
    rows = []
    for key, mask in masks.items():
        group, stratum = key.split("\t")
        res = table[key]["error_rate"]
        rows.append({"group": group, "stratum": stratum, "n": int(mask.sum()), "n_errors": int(e[mask].sum()),
                     "error_rate": res.value, "ci_low": res.ci_low, "ci_high": res.ci_high})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def strata_of(items: pd.DataFrame, columns: tuple[str, ...]) -> dict[tuple[str, str], np.ndarray]:
    """``overall`` and one mask per value of each column the items have (sorted, blanks left out)."""
    out = {("overall", "overall"): np.ones(len(items), dtype=bool)}
    for col in columns:
        if col not in items.columns:
            continue
        values = items[col].astype(object).where(items[col].notna(), None).to_numpy()
        for v in sorted({str(x) for x in values if x is not None}):
            out[(col, v)] = np.array([x is not None and str(x) == v for x in values])
    return out
