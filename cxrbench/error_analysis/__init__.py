"""``cxrbench errors``: the error analysis of design 17.1-17.2 on one run dir (docs/contracts.md §8).

One job per module:

- :mod:`~cxrbench.error_analysis.inputs`: the run's QA pairs joined with the index (observation
  ids, the scene-graph boxes of each image) and, on synthetic roots, the generator's clean truth;
- :mod:`~cxrbench.error_analysis.overlap`: each answer box's largest IoU with the other boxes of
  its image, its bins, and the correlation of errors with it (overlapping-box confusion);
- :mod:`~cxrbench.error_analysis.rates`: error rates with bootstrap CIs per stratum;
- :mod:`~cxrbench.error_analysis.propagation`: which scene-graph errors touch which questions, and
  how often those questions are answered wrong (synthetic truth, or a CheXpert proxy on real data);
- :mod:`~cxrbench.error_analysis.benefit`: question types where the scene graph does not help
  (the run against a no-graph baseline, paired and corrected, through :mod:`cxrbench.compare`);
- :mod:`~cxrbench.error_analysis.misaligned`: questions whose attention is misaligned
  (plausibility below 0.35), with overlays;
- :mod:`~cxrbench.error_analysis.report`: runs them all and writes the output folder.
"""
