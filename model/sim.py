"""Scene-embedded Interaction Module (SIM) of SSG-VQA-Net (Yuan et al. 2024).

In the original (CAMMA-public/SSG-VQA, ``models/VisualBert_ssgqa.py``) the scene-graph part of
every visual token is updated, before VisualBERT's visual projection, by two
text-to-scene layers: the scene tokens cross-attend to the question's (word + position +
type) embeddings projected into the scene dimension, then self-attend among themselves, each
step with a residual connection and LayerNorm. The updated scene part is concatenated with
the visual part again and VisualBERT projects the result into its hidden size.

This implementation keeps that structure for the 134-dim chest X-ray scene part and adds what
batching variable-length graphs needs: key-padding masks for question padding and for padded
visual tokens, and standard 1/sqrt(head_dim) scaling (the original scales by
sqrt(emb_dim)). The self-attention weights of the last layer are returned for the
explanation metrics (seed 14).
"""

from __future__ import annotations

import torch
from torch import nn


class SIMLayer(nn.Module):
    def __init__(self, scene_dim: int, text_dim: int, heads: int, dropout: float):
        super().__init__()
        self.text_projection = nn.Linear(text_dim, scene_dim)
        self.cross_attention = nn.MultiheadAttention(scene_dim, heads, dropout=dropout, batch_first=True)
        self.self_attention = nn.MultiheadAttention(scene_dim, heads, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(scene_dim)
        self.norm2 = nn.LayerNorm(scene_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, scene: torch.Tensor, text: torch.Tensor, text_padding: torch.Tensor,
                scene_padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``scene`` (B, N, S), ``text`` (B, T, H); paddings are True where padded.

        Returns the updated scene tokens and the head-averaged self-attention (B, N, N).
        """
        text = self.text_projection(text)
        attended, _ = self.cross_attention(scene, text, text, key_padding_mask=text_padding, need_weights=False)
        scene = self.norm1(scene + self.dropout(attended))
        attended, weights = self.self_attention(scene, scene, scene, key_padding_mask=scene_padding,
                                                need_weights=True, average_attn_weights=True)
        scene = self.norm2(scene + self.dropout(attended))
        return scene, weights


class SIM(nn.Module):
    def __init__(self, scene_dim: int, text_dim: int, layers: int, heads: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(SIMLayer(scene_dim, text_dim, heads, dropout) for _ in range(layers))

    def forward(self, scene: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                scene_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks are True for real tokens. Returns (scene, attention over visual tokens (B, N)).

        The attention summary is the last layer's self-attention averaged over heads and over
        the real query tokens: how much the scene tokens, as a whole, draw on each token.
        """
        text_padding, scene_padding = ~text_mask, ~scene_mask
        weights = None
        for layer in self.layers:
            scene, weights = layer(scene, text, text_padding, scene_padding)
        q = scene_mask.to(weights.dtype).unsqueeze(-1)
        summary = (weights * q).sum(dim=1) / q.sum(dim=1).clamp(min=1.0)
        return scene, summary
