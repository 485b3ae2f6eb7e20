"""Paired significance tests of two runs scored on the same items (seed 15.1).

Every function takes the baseline's per-item values first and the run's second, and is signed
so that a positive statistic means the run scores higher. Items where either value is NaN
(undefined for that item) are dropped pairwise, and ``n`` reports how many were used.

- :func:`mcnemar`: binary per-item outcomes (exact match, pointing). The discordant counts
  ``n10`` (baseline right, run wrong) and ``n01`` (run right, baseline wrong) decide it:
  ``exact``: two-sided binomial test of ``min(n10, n01)`` in ``n10 + n01`` trials, p = 0.5;
  ``chi2``: the seed's ``χ² = (n10 − n01)² / (n10 + n01)``, 1 df;
  ``chi2_cc``: Edwards' continuity correction ``(|n10 − n01| − 1)² / (n10 + n01)``.
  Computed by ``statsmodels.stats.contingency_tables.mcnemar``, except that with no
  discordant pair the χ² forms are undefined and reported as NaN (statsmodels returns
  χ² = inf, p = 0 for the corrected form there, a false "significant").
- :func:`paired_t`: ``t = d̄ / (s_d / √n)``, ``n − 1`` df (``scipy.stats.ttest_rel``).
- :func:`wilcoxon`: signed-rank test of the differences (``scipy.stats.wilcoxon`` defaults:
  zero differences dropped, exact distribution for small n without ties, else normal
  approximation).

These tests treat items as independent. QA pairs of one study are not, so for MIMIC-shaped
data their p-values are optimistic; the cluster-level paired bootstrap
(:func:`cxrbench.stats.bootstrap.paired_bootstrap`) is the test that respects the study
structure (docs/statistics.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from cxrbench.stats import report
from cxrbench.stats.effect_size import cohens_d, cohens_dz

MCNEMAR_METHODS = ("exact", "chi2", "chi2_cc")


@dataclass(frozen=True)
class TestResult:
    """One test's outcome. ``test`` is the identifier used in comparison tables."""

    __test__ = False  # not a pytest test class

    test: str
    statistic: float
    p_value: float
    n: int
    df: float | None = None
    info: dict = field(default_factory=dict)

    def report(self) -> str:
        """The seed's report string for this test (cxrbench.stats.report)."""
        if self.test in ("mcnemar_chi2", "mcnemar_chi2_cc"):
            return report.format_chi2(self.statistic, self.p_value, 1)
        if self.test == "mcnemar_exact":
            return report.format_mcnemar_exact(self.info["n10"], self.info["n01"], self.p_value)
        if self.test == "paired_t":
            return report.format_t(self.statistic, self.df, self.p_value, self.info.get("d"))
        if self.test == "wilcoxon":
            return report.format_wilcoxon(self.statistic, self.p_value)
        raise ValueError(f"no report format for test {self.test!r}")


def _paired(a, b) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired tests need two 1-D arrays of equal length, got shapes {a.shape} and {b.shape}")
    ok = ~(np.isnan(a) | np.isnan(b))
    return a[ok], b[ok]


def mcnemar(baseline, run, method: str = "exact") -> TestResult:
    """McNemar's test on paired binary outcomes (1 = correct).

    Parameters
    ----------
    baseline, run : arrays of 0/1 (bool or float; NaN = undefined item, dropped).
    method : ``"exact"``, ``"chi2"`` (seed 15.1) or ``"chi2_cc"`` (continuity-corrected).

    Returns
    -------
    TestResult with ``test = "mcnemar_" + method``; ``info`` holds ``n10``, ``n01``.
    For ``exact`` the statistic is ``min(n10, n01)`` as in statsmodels.

    References: McNemar (1947), Psychometrika 12:153-157; Edwards (1948), Psychometrika 13:185-187.
    """
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    if method not in MCNEMAR_METHODS:
        raise ValueError(f"method must be one of {MCNEMAR_METHODS}, got {method!r}")
    a, b = _paired(baseline, run)
    if not np.isin(a, (0.0, 1.0)).all() or not np.isin(b, (0.0, 1.0)).all():
        raise ValueError("McNemar's test needs binary (0/1) per-item outcomes")
    n10 = int(np.count_nonzero((a == 1) & (b == 0)))
    n01 = int(np.count_nonzero((a == 0) & (b == 1)))
    n11 = int(np.count_nonzero((a == 1) & (b == 1)))
    n00 = len(a) - n10 - n01 - n11
    info = {"n10": n10, "n01": n01, "n11": n11, "n00": n00}
    name = f"mcnemar_{method}"
    if method != "exact" and n10 + n01 == 0:
        return TestResult(name, np.nan, np.nan, len(a), 1.0, info)
    res = sm_mcnemar([[n11, n10], [n01, n00]], exact=(method == "exact"), correction=(method == "chi2_cc"))
    return TestResult(name, float(res.statistic), float(res.pvalue), len(a), None if method == "exact" else 1.0, info)


def paired_t(baseline, run) -> TestResult:
    """Paired t-test of ``run − baseline``: ``t = d̄ / (s_d / √n)`` with ``n − 1`` df.

    Agrees with ``scipy.stats.ttest_rel(run, baseline)``. ``info`` carries the effect sizes
    ``d`` (the seed's pooled Cohen's d, run vs baseline) and ``d_z`` (mean difference over the
    SD of the differences). Undefined (NaN) when the differences have no variance.
    """
    from scipy import stats

    a, b = _paired(baseline, run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(b, a) if len(a) >= 2 else None
    info = {"d": cohens_d(b, a), "d_z": cohens_dz(b, a), "mean_diff": float(np.mean(b - a)) if len(a) else np.nan}
    if res is None:
        return TestResult("paired_t", np.nan, np.nan, len(a), np.nan, info)
    return TestResult("paired_t", float(res.statistic), float(res.pvalue), len(a), float(res.df), info)


def wilcoxon(baseline, run) -> TestResult:
    """Wilcoxon signed-rank test of ``run − baseline`` (``scipy.stats.wilcoxon`` defaults).

    The statistic is scipy's (the smaller of the signed-rank sums, two-sided); the sign of the
    effect is in ``info["median_diff"]``. With fewer than two items the test is undefined (NaN;
    scipy refuses a single observation), as the paired t-test is.

    Reference: Wilcoxon (1945), Biometrics Bulletin 1:80-83.
    """
    from scipy import stats

    a, b = _paired(baseline, run)
    d = b - a
    info = {"median_diff": float(np.median(d)) if len(d) else np.nan, "n_nonzero": int(np.count_nonzero(d))}
    if len(d) < 2:
        return TestResult("wilcoxon", np.nan, np.nan, len(d), None, info)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on all-zero differences and returns p = 1
        res = stats.wilcoxon(d)
    return TestResult("wilcoxon", float(res.statistic), float(res.pvalue), len(d), None, info)
