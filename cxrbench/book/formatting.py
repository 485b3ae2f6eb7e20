"""Statistics written as design 15.3 asks, from the numbers of metrics.json and comparison.json,
with :mod:`cxrbench.stats.report` (the formatters ``cxrbench compare`` also uses):

- every metric: ``0.713 [95% CI: 0.692, 0.735]`` (``n/a`` when undefined);
- continuous comparison (paired t): ``t(99) = 2.31, p = 0.023, d = 0.23``;
- binary comparison (McNemar): ``χ²(1) = 6.23, p = 0.013``;
- paired bootstrap: ``Δ = 0.012 [95% CI: 0.004, 0.020], p = 0.003``;

each comparison followed by its corrected p-value with the correction named
(``Bonferroni-corrected p = 0.138``).
"""

from __future__ import annotations

import math

from cxrbench.stats import report

CORRECTION_NAMES = {"bonferroni": "Bonferroni", "holm": "Holm"}


def _nan(x) -> float:
    return float("nan") if x is None else float(x)


def ci(entry: dict | None, digits: int = 3, confidence: float = 0.95) -> str:
    """A metrics.json entry ``{value, ci, n}`` as ``value [95% CI: lo, hi]`` (``n/a`` parts when undefined)."""
    if not entry:
        return "n/a"
    lo, hi = (entry.get("ci") or [None, None])[:2]
    return ci_values(entry.get("value"), lo, hi, digits, confidence)


def ci_values(value, low, high, digits: int = 3, confidence: float = 0.95) -> str:
    """``value [95% CI: lo, hi]``; an undefined value is ``n/a`` (its interval is too)."""
    if math.isnan(_nan(value)):
        return "n/a"
    return report.format_ci(_nan(value), _nan(low), _nan(high), confidence, digits)


def correction_name(settings: dict | None) -> str:
    key = str((settings or {}).get("correction", "bonferroni"))
    return CORRECTION_NAMES.get(key, key)


def corrected(p_adjusted, correction: str) -> str:
    """``Bonferroni-corrected p = 0.138`` (``p < 0.001``; ``n/a``)."""
    return f"{correction}-corrected {report.format_p(_nan(p_adjusted))}"


def test_statistic(row: dict) -> str:
    """One comparison row (comparison.json) in the 15.3 format of its test."""
    test, p = row.get("test"), _nan(row.get("p_value"))
    if math.isnan(p):
        return "n/a" + (f" ({row['note']})" if row.get("note") else "")
    stat = _nan(row.get("statistic"))
    if test == "paired_t":
        return report.format_t(stat, _nan(row.get("df")), p, _nan(row.get("effect_size")))
    if test in ("mcnemar_chi2", "mcnemar_chi2_cc"):
        return report.format_chi2(stat, p, int(row.get("df") or 1))
    if test == "wilcoxon":
        return report.format_wilcoxon(stat, p)
    if test == "paired_bootstrap":
        return report.format_paired_bootstrap(_nan(row.get("diff")), _nan(row.get("ci_low")), _nan(row.get("ci_high")), p)
    # mcnemar_exact needs both discordant counts, which only compare's own string holds
    return str(row.get("report") or "n/a")


def comparison_text(row: dict, correction: str) -> str:
    """``t(743) = -2.39, p = 0.017, d = -0.00; Bonferroni-corrected p = 0.102``."""
    text = test_statistic(row)
    if math.isnan(_nan(row.get("p_value"))):
        return text
    return f"{text}; {corrected(row.get('p_adjusted'), correction)}"


def points(x, digits: int = 1) -> str:
    """A difference of fractions in percentage points, signed: ``-2.2``."""
    x = _nan(x)
    return "n/a" if math.isnan(x) else f"{x * 100:+.{digits}f}"


def number(x, digits: int = 3) -> str:
    x = _nan(x)
    return "n/a" if math.isnan(x) else f"{x:.{digits}f}"
