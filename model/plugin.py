"""The SSG-VQA-Net checkpoint loader that ``cxrbench evaluate`` finds through its entry point.

``pyproject.toml`` registers :data:`LOADER` under ``cxrbench.checkpoint_loaders`` (see
:mod:`cxrbench.predictor`). ``can_load`` only reads ``config.json`` (no torch, no
transformers: it is asked before any model code runs); ``load`` rebuilds the model with
:func:`model.checkpoint.load_checkpoint` and wraps it in :class:`model.inference.Predictor`.

Scene-graph sources (``PredictorSettings.scene_graphs``): ``dataset`` answers from the index's
scene graphs, ``none`` from the whole-image token only (the zero-shot mode), ``detected`` from a
detector's scene graphs (``cxrbench scene-graph``, read with
:func:`cxrbench.detect.graphs.detected_nodes`) in place of the index's. ``device="auto"``
is this process's GPU when there is one, else the CPU (:func:`resolve_device`).
"""

from __future__ import annotations

import json
from pathlib import Path

from model.checkpoint import FORMAT


class SSGVQALoader:
    name = "ssgvqa"

    def can_load(self, path: Path) -> bool:
        try:
            data = json.loads((Path(path) / "config.json").read_text())
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and data.get("format") == FORMAT

    def load(self, path: Path, settings):
        from cxrbench.errors import CxrbenchError

        nodes = None
        if settings.scene_graphs == "detected":
            if settings.scene_graph_dir is None:
                raise CxrbenchError("scene_graphs='detected' needs the folder of detected scene graphs "
                                    "(cxrbench scene-graph ... --out DIR)")
            from cxrbench.detect.graphs import detected_nodes

            nodes = detected_nodes(settings.scene_graph_dir)
        if not settings.progress:
            from model.logs import quiet_libraries

            quiet_libraries()
        from model.checkpoint import load_checkpoint
        from model.inference import Predictor

        bundle = load_checkpoint(path, device=resolve_device(settings.device))
        return Predictor(bundle, settings.index_dir, use_scene_graph=settings.use_scene_graph,
                         batch_size=settings.batch_size, image_root=settings.image_root, scene_graph_nodes=nodes)


def resolve_device(device: str) -> str:
    """``auto``: the GPU of this process (``cuda:$LOCAL_RANK``, one per rank under torchrun) when
    there is one, else the CPU; anything else is passed to torch as it is."""
    if device != "auto":
        return device
    import os

    import torch

    return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu"


LOADER = SSGVQALoader()
