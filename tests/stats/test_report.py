"""Report strings in the seed's format (15.3)."""

import math

from scipy import stats as ss

from cxrbench.stats.report import (format_chi2, format_ci, format_p, format_paired_bootstrap, format_t,
                                   format_wilcoxon)


def test_seed_examples():
    # the seed's χ² example: 6.23 on 1 df is p = 0.0126
    assert format_chi2(6.23, ss.chi2.sf(6.23, 1)) == "χ²(1) = 6.23, p = 0.013"
    assert format_t(2.3149, 99, 0.02272, 0.2349) == "t(99) = 2.31, p = 0.023, d = 0.23"
    assert format_t(-1.5, 9, 0.1679) == "t(9) = -1.50, p = 0.168"
    assert format_ci(0.7134, 0.6921, 0.7349) == "0.713 [95% CI: 0.692, 0.735]"
    assert format_ci(0.7134, 0.6921, 0.7349, confidence=0.9, digits=2) == "0.71 [90% CI: 0.69, 0.73]"


def test_p_values_and_undefined_numbers():
    assert format_p(0.0004) == "p < 0.001"
    assert format_p(0.001) == "p = 0.001"
    assert format_p(1.0) == "p = 1.000"
    assert format_p(math.nan) == "p = n/a"
    assert format_chi2(math.nan, math.nan) == "χ²(1) = n/a, p = n/a"
    assert format_wilcoxon(1234.5, 0.0121) == "W = 1234.5, p = 0.012"
    assert format_paired_bootstrap(-0.0123, -0.02, -0.004, 0.003) == \
        "Δ = -0.012 [95% CI: -0.020, -0.004], p = 0.003"
