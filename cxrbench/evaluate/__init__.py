"""``cxrbench evaluate``: a checkpoint on a split (or a cross-dataset question file) into a run dir.

:mod:`~cxrbench.evaluate.inputs` (what is read), :mod:`~cxrbench.evaluate.shards` (resumable
inference on one process or many), :mod:`~cxrbench.evaluate.pipeline` (the two forms, scoring
and the reports; :class:`~cxrbench.evaluate.pipeline.EvaluateOptions`). The command line is
``cxrbench.commands.evaluate``.
"""
