"""The metrics library: one module per family, each metric a plain function of arrays with a
``*_stats`` constructor for the bootstrap (``base``). See docs/metrics.md.

``text`` (exact match, token F1, BLEU-4, ROUGE-L, yes/no labels), ``bertscore``,
``clinical_terms`` (QuickUMLS + negation), ``semantic_type``, ``spatial`` (IoU, pointing, COCO
mAP, multi-region F1), ``classification`` (confusion-matrix metrics, AUROC), ``calibration``
(ECE, reliability table), ``relational`` (question parse, relational accuracies, graph entity
recall), ``attention`` (plausibility, entropy, bands), ``registry`` (question type -> metrics).

Nothing is imported here, so ``import cxrbench.metrics.text`` stays light; no module imports
torch except ``bertscore`` when a scorer is built.
"""
