"""The SSG-VQA-Net training core for chest X-rays.

SSG-VQA-Net (Yuan et al. 2024, "Advancing surgical VQA with scene graph knowledge") is a
VisualBERT encoder whose visual tokens carry scene-graph features, fused with the question by
a Scene-embedded Interaction Module (SIM). Here the visual tokens are the scene-graph nodes of
the primary frontal image of a chest X-ray study (646 dims: 134 scene-graph + 512 backbone RoI
features), the answers come from question-type-routed heads, and training runs under DeepSpeed.

Modules (each with one job):
``config`` (YAML configs and ablation conditions), ``vocabularies`` (region/entity lists and
their maps to the head label spaces), ``targets`` (the one place labels are derived),
``tokenizer``, ``backbone``, ``tokens`` (the 646-d visual tokens), ``sim``, ``heads``,
``network`` (the model factory), ``losses``, ``data`` (index -> batches), ``sampling``,
``augment``, ``feature_cache``, ``trainer``, ``checkpoint``, ``inference``, ``train_cli``.

Importing ``model`` itself is cheap; torch is imported by the submodules that need it.
"""
