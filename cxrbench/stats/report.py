"""Report strings in the seed's format (section 15.3).

=================  ==========================================
comparison         string
=================  ==========================================
continuous, paired ``t(99) = 2.31, p = 0.023, d = 0.23``
binary, McNemar    ``χ²(1) = 6.23, p = 0.013``
any metric         ``0.710 [95% CI: 0.690, 0.730]``
=================  ==========================================

Test statistics and effect sizes get 2 decimals, p-values 3; a p-value below 0.001 is written
``p < 0.001`` (APA style: ``p = 0.000`` would claim a zero the test cannot give).
"""

from __future__ import annotations

import math


def _num(x: float, digits: int) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def format_p(p: float) -> str:
    """``p = 0.013``; ``p < 0.001`` below one in a thousand; ``p = n/a`` when undefined."""
    if p is None or math.isnan(p):
        return "p = n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def format_ci(value: float, low: float, high: float, confidence: float = 0.95, digits: int = 3) -> str:
    """``mean [95% CI: lo, hi]``."""
    return f"{_num(value, digits)} [{confidence * 100:g}% CI: {_num(low, digits)}, {_num(high, digits)}]"


def format_chi2(statistic: float, p: float, df: int = 1) -> str:
    """``χ²(1) = 6.23, p = 0.013``."""
    return f"χ²({df}) = {_num(statistic, 2)}, {format_p(p)}"


def format_t(statistic: float, df: float, p: float, d: float | None = None) -> str:
    """``t(df) = 2.31, p = 0.023, d = 0.23`` (``d`` left out when not given)."""
    dfs = "n/a" if df is None or math.isnan(df) else f"{df:g}"
    out = f"t({dfs}) = {_num(statistic, 2)}, {format_p(p)}"
    return out if d is None else f"{out}, d = {_num(d, 2)}"


def format_wilcoxon(statistic: float, p: float) -> str:
    """``W = 1234.5, p = 0.012`` (W: scipy's statistic, the smaller signed-rank sum)."""
    return f"W = {_num(statistic, 1)}, {format_p(p)}"


def format_mcnemar_exact(n10: int, n01: int, p: float) -> str:
    """``b = 12, c = 3, p = 0.035``: the discordant counts and the exact binomial p-value."""
    return f"b = {n10}, c = {n01}, {format_p(p)}"


def format_paired_bootstrap(diff: float, low: float, high: float, p: float, confidence: float = 0.95,
                            digits: int = 3) -> str:
    """``Δ = 0.012 [95% CI: 0.004, 0.020], p = 0.003``."""
    return f"Δ = {format_ci(diff, low, high, confidence, digits)}, {format_p(p)}"


def metric_entry(value: float | None, result=None, n: int = 0) -> dict:
    """The run-dir entry of one metric, ``{"value": v, "ci": [lo, hi], "n": n}`` (docs/contracts.md §3):
    the one place it is built. ``result`` is a BootstrapResult (or anything with ``ci_low`` /
    ``ci_high``), or None when no CI was computed (``ci`` is then ``[None, None]``)."""
    def clean(x):
        return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

    ci = [None, None] if result is None else [clean(result.ci_low), clean(result.ci_high)]
    return {"value": clean(value), "ci": ci, "n": int(n)}
