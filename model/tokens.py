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

Name embeddings (``tokens.name_embeddings``): a region or entity vector is its own learned
embedding plus its *name* read through the question encoder's word embeddings (mean of the
name's word pieces, projected and normalised): "pleural effusion" in a node and in the
question then share word vectors, and "left lower lung zone" shares "left" and "lung" with
"left lung". Without them, every one of the ~310 regions and ~237 entities is an opaque id whose
link to the question's words and to the answer's region class must be learnt from the few
questions that use it (docs/model.md, "Spatial questions").
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from model.config import TokenConfig

MAX_NAME_PIECES = 8


def mean_pool_embedding(table: nn.Embedding | torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Mean of the rows of ``table`` (an embedding or its weight) at ``ids`` (..., K) over K,
    ignoring padding id 0."""
    vectors = table(ids) if isinstance(table, nn.Embedding) else F.embedding(ids, table)
    keep = (ids != 0).unsqueeze(-1).to(vectors.dtype)
    count = keep.sum(dim=-2).clamp(min=1.0)
    return (vectors * keep).sum(dim=-2) / count


def name_pieces(names: Sequence[str], tokenizer, max_pieces: int = MAX_NAME_PIECES) -> tuple[np.ndarray, np.ndarray]:
    """Word-piece ids (len(names) + 2, max_pieces) of a vocabulary's names and their mask, in
    embedding-index order (rows 0, padding, and 1, unknown, are empty)."""
    ids = np.zeros((len(names) + 2, max_pieces), dtype=np.int64)
    mask = np.zeros((len(names) + 2, max_pieces), dtype=np.float32)
    for i, name in enumerate(names):
        pieces = tokenizer(str(name), add_special_tokens=False)["input_ids"][:max_pieces]
        ids[i + 2, : len(pieces)] = pieces
        mask[i + 2, : len(pieces)] = 1.0
    return ids, mask


class NameEncoder(nn.Module):
    """A vocabulary's names as vectors: mean word-piece embedding, projected, layer-normalised."""

    def __init__(self, pieces: tuple[np.ndarray, np.ndarray], text_dim: int, dim: int):
        super().__init__()
        # derived from the vocabularies and the tokenizer, both in the checkpoint: not saved
        self.register_buffer("ids", torch.from_numpy(pieces[0]), persistent=False)
        self.register_buffer("mask", torch.from_numpy(pieces[1]), persistent=False)
        self.project = nn.Sequential(nn.Linear(text_dim, dim), nn.LayerNorm(dim))

    def forward(self, word_embeddings: nn.Embedding) -> torch.Tensor:
        mask = self.mask.unsqueeze(-1).to(word_embeddings.weight.dtype)
        mean = (word_embeddings(self.ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        names = self.project(mean)
        return names * (self.mask.sum(1, keepdim=True) > 0).to(names.dtype)   # empty rows stay zero


class TokenEmbedder(nn.Module):
    def __init__(self, cfg: TokenConfig, backbone_channels: int, n_regions: int, n_entities: int,
                 names: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, text_dim: int | None = None):
        super().__init__()
        self.cfg = cfg
        self.project = nn.Sequential(nn.Linear(backbone_channels, cfg.feature_dim),
                                     nn.LayerNorm(cfg.feature_dim), nn.GELU())
        if cfg.scene_graph:
            self.region_embedding = nn.Embedding(n_regions, cfg.region_dim, padding_idx=0)
            self.entity_embedding = nn.Embedding(n_entities, cfg.entity_dim, padding_idx=0)
        if cfg.scene_graph and cfg.name_embeddings:
            if names is None or text_dim is None:
                raise ValueError("tokens.name_embeddings needs the vocabularies' word pieces and the text width")
            self.region_names = NameEncoder(names["region"], text_dim, cfg.region_dim)
            self.entity_names = NameEncoder(names["entity"], text_dim, cfg.entity_dim)

    def visual(self, roi_features: torch.Tensor) -> torch.Tensor:
        """(B, N, C) backbone RoI vectors -> (B, N, 512)."""
        return self.project(roi_features)

    def scene(self, geometry: torch.Tensor, region_ids: torch.Tensor, entity_ids: torch.Tensor,
              use_scene_graph: bool = True, word_embeddings: nn.Embedding | None = None) -> torch.Tensor:
        """(B, N, 6) geometry, (B, N, R) / (B, N, E) ids -> (B, N, 134). ``word_embeddings``: the
        question encoder's (name embeddings only)."""
        b, n, _ = geometry.shape
        if self.cfg.scene_graph and use_scene_graph:
            region_table, entity_table = self.region_embedding, self.entity_embedding
            if self.cfg.name_embeddings:
                region_table = self.region_embedding.weight + self.region_names(word_embeddings)
                entity_table = self.entity_embedding.weight + self.entity_names(word_embeddings)
            regions = mean_pool_embedding(region_table, region_ids)
            entities = mean_pool_embedding(entity_table, entity_ids)
        else:  # no scene-graph encoder (ablation) or its branch switched off (zero-shot mode)
            regions = geometry.new_zeros(b, n, self.cfg.region_dim)
            entities = geometry.new_zeros(b, n, self.cfg.entity_dim)
        return torch.cat([geometry, regions, entities], dim=-1)
