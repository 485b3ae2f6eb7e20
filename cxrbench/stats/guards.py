"""When a test or an interval has too little data to mean anything: the thresholds and the reasons.

A bootstrap over ``C`` resampling units cannot know more than ``C`` units tell: with one unit
every resample is the data itself, the interval is ``[v, v]`` and the paired-bootstrap p-value
sits at its floor ``1/(B + 1)``, a "significant" difference on one QA pair. Below the thresholds
here a paired test is reported as undefined (p-value NaN, never significant) with the reason in
its row, and an interval carries the reason as a note.

- :data:`MIN_UNITS` = 30 resampling units (studies, patients or QA pairs) that carry the metric
  in the stratum, for every paired test and for trusting an interval. Measured
  (docs/statistics.md, "Guards"): the two-sided paired cluster bootstrap at α = 0.05 under the
  null rejects 25-36% of the time with 3 units, 9-15% with 10, 7-11% with 20 and 6-9% with 30
  (normal, skewed and clustered-binary differences); 30 is where it comes within a few points of
  its level. The paired t, Wilcoxon and McNemar tests treat QA pairs as independent; with
  fewer than 30 studies behind them that assumption, not the test, decides the p-value.
- :data:`MIN_DISCORDANT` = 25 discordant pairs (``n10 + n01``) for McNemar's χ² forms: the
  conventional rule (below it the χ² approximation of the binomial is coarse); the exact
  binomial test (``mcnemar_exact``, valid at any count) is the one to read there.
"""

from __future__ import annotations

MIN_UNITS = 30
MIN_DISCORDANT = 25


def _count(k: int, noun: str) -> str:
    return f"{k} {noun}{'' if k == 1 else 's'}"


def units_note(n_units: int, what: str = "test") -> str:
    """The reason a ``what`` (``"test"`` or ``"interval"``) on ``n_units`` resampling units is
    not trusted, or "" when there are enough."""
    if n_units >= MIN_UNITS:
        return ""
    consequence = "test undefined" if what == "test" else "interval unreliable (coverage below nominal)"
    return f"{_count(n_units, 'resampling unit')} < {MIN_UNITS}: {consequence}"


def discordant_note(test: str, n10: int, n01: int) -> str:
    """The reason a McNemar χ² test is undefined on ``n10 + n01`` discordant pairs, or ""."""
    if test not in ("mcnemar_chi2", "mcnemar_chi2_cc") or n10 + n01 >= MIN_DISCORDANT:
        return ""
    return f"{_count(n10 + n01, 'discordant pair')} < {MIN_DISCORDANT}: χ² undefined (read mcnemar_exact)"
