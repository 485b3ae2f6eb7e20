"""Effect sizes for two runs on the same items (seed 15.2).

- :func:`cohens_d`: the seed's pooled form ``d = (x̄₁ − x̄₂) / √((s₁² + s₂²) / 2)`` (sample
  variances, ddof = 1). It treats the two runs' scores as two groups, which is what the seed
  reports beside ``t(df)``.
- :func:`cohens_dz`: the paired form ``d_z = mean(x₁ − x₂) / sd(x₁ − x₂)``, the effect size the
  paired t statistic actually tests (``t = d_z √n``).

Seed bands for ``|d|``: < 0.2 negligible, 0.2-0.5 small, 0.5-0.8 medium, > 0.8 large
(:data:`COHEN_BANDS`). A zero denominator (no variance) gives NaN: the effect size is undefined.

Reference: Cohen (1988), *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed.,
sections 2.2 and 2.3.5 (d_z).
"""

from __future__ import annotations

import numpy as np

# (upper bound of |d|, label); the last band is open-ended
COHEN_BANDS: tuple[tuple[float, str], ...] = ((0.2, "negligible"), (0.5, "small"), (0.8, "medium"),
                                              (float("inf"), "large"))


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 and np.isfinite(den) else float("nan")


def cohens_d(x1, x2) -> float:
    """Cohen's d with the seed's pooled SD ``√((s₁² + s₂²)/2)``; NaN values are ignored."""
    a = np.asarray(x1, dtype=np.float64)
    b = np.asarray(x2, dtype=np.float64)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return _ratio(a.mean() - b.mean(), np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2.0))


def cohens_dz(x1, x2) -> float:
    """Paired ``d_z = mean(x₁ − x₂) / sd(x₁ − x₂)`` (ddof = 1); pairs with a NaN are dropped."""
    d = np.asarray(x1, dtype=np.float64) - np.asarray(x2, dtype=np.float64)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        return float("nan")
    return _ratio(d.mean(), d.std(ddof=1))


def interpret_d(d: float) -> str:
    """The seed's band for ``|d|`` ('negligible', 'small', 'medium', 'large'; 'undefined' for NaN)."""
    if d is None or np.isnan(d):
        return "undefined"
    return next(label for bound, label in COHEN_BANDS if abs(d) < bound)
