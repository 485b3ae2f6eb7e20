"""``cxrbench ablate``: the ablation study of design 16.1-16.2 and the training dynamics of 18.1.

Every condition × seed is trained by ``cxrbench train`` and evaluated by ``cxrbench evaluate``
(subprocesses: cxrbench never imports the model package), compared with ``full`` by
``cxrbench compare``, and summarised. docs/contracts.md §7 is the study directory's schema,
docs/ablation.md the user's guide. One job per module:

- :mod:`~cxrbench.ablate.configs`: each run's resolved training config (asked of the model
  package in a subprocess), its hash, and which runs can share a feature cache;
- :mod:`~cxrbench.ablate.plan`: the options, the steps and the manifest ``study.json``;
- :mod:`~cxrbench.ablate.runner`: runs the steps, N at a time, resumably;
- :mod:`~cxrbench.ablate.seeds`: seed-to-seed spread beside the bootstrap CIs, the test across seeds;
- :mod:`~cxrbench.ablate.expected`: the 16.2 expected-results matrix and the verdict rule;
- :mod:`~cxrbench.ablate.dynamics`: training-dynamics tables, steps-to-target, the convergence claim;
- :mod:`~cxrbench.ablate.summary`: reads the finished steps and writes the summary set.
"""
