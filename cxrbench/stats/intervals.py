"""Confidence intervals from a bootstrap distribution: percentile and BCa.

Both follow ``scipy.stats.bootstrap`` exactly (same quantile rule, same BCa formulas), so on the
same resamples they give the same interval.

Undefined values (NaN: a sensitivity on a resample without positives) are dropped; the interval
is the one of the statistic *conditional on being defined*, and the caller reports how many
resamples were dropped. An interval needs at least two defined resamples, else it is NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

METHODS = ("percentile", "bca")


def percentile_interval(theta_boot: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile interval [Q(α/2), Q(1 − α/2)] of the defined bootstrap values.

    Quantiles are numpy's/scipy's default ('linear') rule. Efron & Tibshirani (1993), ch. 13.
    """
    alpha = (1.0 - confidence) / 2.0
    return _quantiles(theta_boot, alpha, 1.0 - alpha)


def bca_interval(theta_boot: np.ndarray, theta_hat: float, theta_jack: np.ndarray,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Bias-corrected and accelerated interval (Efron & Tibshirani 1993, 14.3 and eq. 14.15).

    ``z0 = Φ⁻¹(#{θ* < θ̂} + #{θ* ≤ θ̂}) / 2B)`` (scipy's 'mean' percentile of score);
    acceleration from the jackknife values ``θ₍ᵢ₎`` over the resampling units,
    ``a = Σ U³ / (6 (Σ U²)^{3/2})`` with ``U = (n − 1)(θ̄₍·₎ − θ₍ᵢ₎)``;
    bounds at the quantiles ``Φ(z0 + (z0 + z_α) / (1 − a (z0 + z_α)))``.

    Undefined jackknife values are dropped. When the jackknife values have no spread (a
    constant statistic, a single unit) the acceleration is undefined and taken as 0. A
    bootstrap distribution without spread gives the zero-width interval; one that lies wholly
    on one side of θ̂ gives NaN (z0 infinite), as scipy.
    """
    boot = _defined(theta_boot)
    if boot.size < 2 or not np.isfinite(theta_hat):
        return (np.nan, np.nan)
    # Values within rounding of θ̂ count as ties: the fast path sums in another order than the
    # point estimate, and on discrete data many resamples reproduce θ̂ exactly.
    tol = 1e-10 * max(1.0, abs(theta_hat))
    if boot.max() - boot.min() <= tol:  # no spread at all: a zero-width interval, as percentile
        return (float(boot.min()), float(boot.max()))
    below = np.count_nonzero(boot < theta_hat - tol) + np.count_nonzero(boot <= theta_hat + tol)
    z0 = ndtri(below / (2.0 * boot.size))
    jack = _defined(theta_jack)
    a = 0.0
    if jack.size >= 2:
        n = float(jack.size)
        u = (n - 1.0) * (jack.mean() - jack)
        den = np.sum(u ** 2) / n ** 2
        if den > 0:
            a = float(np.sum(u ** 3) / n ** 3 / den ** 1.5 / 6.0)
    alpha = (1.0 - confidence) / 2.0
    z_lo, z_hi = ndtri(alpha), -ndtri(alpha)
    a1 = ndtr(z0 + (z0 + z_lo) / (1.0 - a * (z0 + z_lo)))
    a2 = ndtr(z0 + (z0 + z_hi) / (1.0 - a * (z0 + z_hi)))
    return _quantiles(boot, a1, a2)


def _defined(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).ravel()
    return x[~np.isnan(x)]


def _quantiles(theta_boot: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    boot = _defined(theta_boot)
    if boot.size < 2 or not (np.isfinite(lo) and np.isfinite(hi)):
        return (np.nan, np.nan)
    q = np.quantile(boot, [lo, hi])
    return (float(q[0]), float(q[1]))
