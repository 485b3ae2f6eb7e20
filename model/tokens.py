"""The 646-dim visual token of a scene-graph node (seed 4.2, 4.4, 4.5).

    token = [ scene part (134)                              | visual part (512)            ]
            [ box x1 y1 x2 y2 (4) | area (1) | aspect (1)   | RoI feature projected to 512 ]
            [ region emb (64, mean over the node's regions) |                              ]
            [ entity emb (64, mean over its entities)       |                              ]

Boxes are normalised by the image size; area and aspect ratio (width / height) are in those
normalised units. The node's several regions/entities are mean-pooled (padding index 0 pools
to nothing; an empty list gives the zero vector). The geometry is computed by the data
pipeline (:func:`model.data.box_geometry`), the embeddings and the projection here.

Nodes carry no polarity or probability: the model has to read the answer from the pixels.
"""

from __future__ import annotations

import torch
from torch import nn

from model.config import TokenConfig


def mean_pool_embedding(embedding: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
    """Mean of the embeddings of ``ids`` (..., K) over K, ignoring padding id 0."""
    vectors = embedding(ids)
    keep = (ids != 0).unsqueeze(-1).to(vectors.dtype)
    count = keep.sum(dim=-2).clamp(min=1.0)
    return (vectors * keep).sum(dim=-2) / count


class TokenEmbedder(nn.Module):
    def __init__(self, cfg: TokenConfig, backbone_channels: int, n_regions: int, n_entities: int):
        super().__init__()
        self.cfg = cfg
        self.project = nn.Sequential(nn.Linear(backbone_channels, cfg.feature_dim),
                                     nn.LayerNorm(cfg.feature_dim), nn.GELU())
        if cfg.scene_graph:
            self.region_embedding = nn.Embedding(n_regions, cfg.region_dim, padding_idx=0)
            self.entity_embedding = nn.Embedding(n_entities, cfg.entity_dim, padding_idx=0)

    def visual(self, roi_features: torch.Tensor) -> torch.Tensor:
        """(B, N, C) backbone RoI vectors -> (B, N, 512)."""
        return self.project(roi_features)

    def scene(self, geometry: torch.Tensor, region_ids: torch.Tensor, entity_ids: torch.Tensor,
              use_scene_graph: bool = True) -> torch.Tensor:
        """(B, N, 6) geometry, (B, N, R) / (B, N, E) ids -> (B, N, 134)."""
        b, n, _ = geometry.shape
        if self.cfg.scene_graph and use_scene_graph:
            regions = mean_pool_embedding(self.region_embedding, region_ids)
            entities = mean_pool_embedding(self.entity_embedding, entity_ids)
        else:  # no scene-graph encoder (ablation) or its branch switched off (zero-shot mode)
            regions = geometry.new_zeros(b, n, self.cfg.region_dim)
            entities = geometry.new_zeros(b, n, self.cfg.entity_dim)
        return torch.cat([geometry, regions, entities], dim=-1)
