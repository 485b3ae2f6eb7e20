"""Multiple-comparison corrections over a family of tests (seed 15.2).

``adjust_pvalues`` applies ``statsmodels.stats.multitest.multipletests`` (Bonferroni:
``p·m`` capped at 1, reject when ``p ≤ α/m``; Holm's step-down: reject the i-th smallest while
``p₍ᵢ₎ ≤ α/(m − i + 1)``) to the *defined* p-values only. Undefined (NaN) p-values, tests that
could not be computed, are not members of the family: they do not count in ``m``, keep a NaN
adjusted p-value and are never significant. statsmodels itself counts them in ``m`` and would
shift Holm's ordering.

Which tests form one family is the caller's decision; ``cxrbench compare`` documents and
prints its choice (docs/statistics.md).

References: Dunn (1961), JASA 56:52-64 (Bonferroni); Holm (1979), Scand. J. Statist. 6:65-70.
"""

from __future__ import annotations

import numpy as np

CORRECTIONS = ("bonferroni", "holm")


def adjust_pvalues(p_values, method: str = "holm", alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted p-values and rejections for one family of tests.

    Parameters
    ----------
    p_values : array of raw p-values; NaN = test undefined, left out of the family.
    method : any ``multipletests`` method; cxrbench uses ``"bonferroni"`` and ``"holm"``.
    alpha : family-wise error rate.

    Returns
    -------
    (p_adjusted, reject): float array (NaN where undefined) and bool array.
    """
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64).ravel()
    adjusted = np.full(p.shape, np.nan)
    reject = np.zeros(p.shape, dtype=bool)
    ok = ~np.isnan(p)
    if ok.any():
        rej, padj, _, _ = multipletests(p[ok], alpha=alpha, method=method)
        adjusted[ok] = padj
        reject[ok] = rej
    return adjusted, reject
