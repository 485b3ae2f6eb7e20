"""The statistics engine: bootstrap CIs, paired tests, effect sizes, multiple-testing corrections.

Modules: ``bootstrap`` (CIs and the paired bootstrap of statistic objects), ``resampling``
(the shared-resample engine behind it), ``intervals`` (percentile and BCa), ``paired_tests``
(McNemar, paired t, Wilcoxon), ``effect_size`` (Cohen's d, d_z), ``multitest`` (Bonferroni,
Holm), ``report`` (the seed's report strings). See docs/statistics.md.
"""
