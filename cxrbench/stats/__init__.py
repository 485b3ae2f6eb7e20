"""The statistics engine: bootstrap CIs, paired tests, effect sizes, multiple-testing corrections.

Modules: ``bootstrap`` (CIs and the paired bootstrap of statistic objects), ``resampling``
(the shared-resample engine behind it: unit draws and the sufficient, weighted and generic
paths), ``stratified`` (every stratum from one shared draw, or each on its own), ``intervals``
(percentile and BCa), ``paired_tests`` (McNemar, paired t, Wilcoxon), ``guards`` (when there is
too little data for a test or an interval), ``effect_size`` (Cohen's d, d_z), ``multitest``
(Bonferroni, Holm), ``comparison`` (the table behind ``cxrbench compare``), ``report`` (the
seed's report strings). See docs/statistics.md.
"""
