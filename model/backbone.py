"""Image backbone: a timm feature pyramid level, RoIAlign over boxes, one vector per box.

``convnext_base`` in the full config (seed 4.3), ``resnet18`` for its ablation (the original
SSG-VQA backbone), :class:`TinyCNN` (``tiny_cnn``) for the CPU-sized ``tiny`` config; any timm
model name works. ``stride`` picks the pyramid level RoIAlign reads (32: ConvNeXt's last
stage, as in the seed, on 512 px images; 8 at 128 px, where a stride-32 map would be 4 x 4). Each box's RoIAlign output (``roi_size`` squared) is
average-pooled to one ``channels``-dim vector; the learned 512-d projection lives in
:mod:`model.tokens`, so these vectors are what the feature cache stores.

Pretrained weights cannot be downloaded here: ``weights`` is a local ``.safetensors`` file
(e.g. timm's ``convnext_base.fb_in22k_ft_in1k`` ``model.safetensors``), loaded through timm's
``pretrained_cfg_overlay`` so the features-only model receives the matching tensors. Without it
the backbone is randomly initialised and says so loudly. Pickled weight files are refused.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from torch import nn

from cxrbench.errors import CxrbenchError
from model.config import BackboneConfig

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _weights_path(weights: str) -> Path:
    path = Path(weights).expanduser()
    if path.suffix != ".safetensors":
        raise CxrbenchError(f"backbone weights {path}: only .safetensors files are loaded (no pickles)")
    if not path.is_file():
        raise CxrbenchError(f"backbone weights {path}: no such file")
    return path


class TinyCNN(nn.Module):
    """A shallow conv net for CPU-sized runs: stride-2 3x3 convolutions + ReLU up to ``stride``,
    doubling the width each time (32, 64, 128, ...), then one stride-1 3x3 convolution.

    Random and frozen, it keeps what deep random nets lose. Measured on synthetic has_finding
    questions (1,126 observation boxes, 5-fold logistic-regression probe of the RoI vector):
    tiny_cnn stride 8: 0.77 accuracy; pixel statistics of the box: 0.79; random ConvNeXt-atto
    (stride 16 or 8): 0.65 (its per-position LayerNorms remove absolute intensity); random
    ResNet18: 0.61 at stride 16, 0.76 at stride 8; majority 0.55. Call signature as timm's
    features_only models: a list of one feature map.
    """

    def __init__(self, stride: int):
        super().__init__()
        if stride < 2 or stride & (stride - 1):
            raise CxrbenchError(f"backbone tiny_cnn: stride must be a power of two >= 2, got {stride}")
        layers: list[nn.Module] = []
        c_in, c_out, s = 3, 32, 1
        while s < stride:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            c_in, c_out, s = c_out, c_out * 2, s * 2
        layers += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.ReLU(inplace=True)]
        self.net = nn.Sequential(*layers)
        self.channels = c_in

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.net(x)]


def _feature_level(name: str, stride: int) -> tuple[int, int]:
    """(out index, channels) of ``name``'s pyramid level with reduction ``stride``."""
    import timm

    probe = timm.create_model(name, pretrained=False, features_only=True)
    reductions = probe.feature_info.reduction()
    if stride not in reductions:
        raise CxrbenchError(f"backbone {name}: no feature level with stride {stride} (has {reductions})")
    idx = reductions.index(stride)
    return probe.feature_info.out_indices[idx], probe.feature_info.channels()[idx]


class Backbone(nn.Module):
    """``forward(images, boxes) -> (sum_i n_i, channels)`` RoI vectors, boxes in input pixels."""

    def __init__(self, cfg: BackboneConfig, announce_random: bool = True):
        super().__init__()
        from torchvision.ops import RoIAlign

        self.cfg = cfg
        if cfg.name == "tiny_cnn":
            self.body = TinyCNN(cfg.stride)
            self.channels = self.body.channels
            if cfg.weights:
                from safetensors.torch import load_file

                self.body.load_state_dict(load_file(str(_weights_path(cfg.weights))))
            elif announce_random:
                warn_random_backbone(cfg.name)
        else:
            self._timm_body(cfg, announce_random)
        self.roi = RoIAlign(output_size=cfg.roi_size, spatial_scale=1.0 / cfg.stride,
                            sampling_ratio=2, aligned=True)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _timm_body(self, cfg: BackboneConfig, announce_random: bool) -> None:
        import timm

        out_index, self.channels = _feature_level(cfg.name, cfg.stride)
        kwargs = dict(features_only=True, out_indices=(out_index,))
        if cfg.weights:
            path = _weights_path(cfg.weights)
            self.body = timm.create_model(cfg.name, pretrained=True,
                                          pretrained_cfg_overlay={"file": str(path)}, **kwargs)
            log.info("backbone %s: weights from %s", cfg.name, path)
        else:
            self.body = timm.create_model(cfg.name, pretrained=False, **kwargs)
            if announce_random:   # not when the weights are about to come from a checkpoint
                warn_random_backbone(cfg.name)

    def forward(self, images: torch.Tensor, boxes: list[torch.Tensor]) -> torch.Tensor:
        """``images``: (B, 3, S, S) in [0, 1]; ``boxes``: B tensors (n_i, 4) x1 y1 x2 y2 in pixels."""
        fmap = self.body((images - self.mean) / self.std)[0]
        pooled = self.roi(fmap, [b.to(fmap.dtype) for b in boxes])
        return pooled.mean(dim=(2, 3))


_warned: set[str] = set()


def warn_random_backbone(name: str) -> None:
    """Random init is legitimate (CI, synthetic data) but must never pass unnoticed."""
    if name in _warned:
        return
    _warned.add(name)
    msg = (f"WARNING: backbone {name} is RANDOMLY INITIALISED (no model.backbone.weights given). "
           "Fine for synthetic data and tests; for real images give a local .safetensors file.")
    log.warning(msg)


def backbone_fingerprint(backbone: Backbone) -> str:
    """sha256 over the backbone's config and weights: the feature cache's validity key."""
    h = hashlib.sha256()
    cfg = backbone.cfg
    h.update(repr((cfg.name, cfg.image_size, cfg.stride, cfg.roi_size)).encode())
    for name, tensor in sorted(backbone.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
