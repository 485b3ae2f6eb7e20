"""Answer heads (seed 5.2-5.4) and the auxiliary CheXpert head (seed 3.3).

Routing (seed 5.3) is by question type: ``cxrbench.questions.QuestionType.head`` names the
head that answers it (binary, region, severity, text). Every head runs on every item (they are
small MLPs); the loss and the prediction read the item's own head, so routing is a gather,
not a branch, and a batch can mix question types freely.

* binary: 2 classes (index 1 = yes), softmax.
* region: 26 head regions, sigmoid (answers can name several regions).
* severity: 4 ordinal levels, softmax.
* text: the 14 CheXpert findings, sigmoid; the predicted findings fill the answer text
  (:mod:`model.answers`). This is the category head of seed 5.2.
* single (ablation): one softmax over all heads' classes concatenated (46 unified classes).
"""

from __future__ import annotations

import torch
from torch import nn

from model.config import HeadConfig
from model.vocabularies import HEAD_CLASSES, UNIFIED_SIZE


def mlp(inputs: int, hidden: int, outputs: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, outputs))


class AnswerHeads(nn.Module):
    def __init__(self, cfg: HeadConfig, hidden_size: int):
        super().__init__()
        self.kind = cfg.kind
        if cfg.kind == "multi":
            self.heads = nn.ModuleDict({name: mlp(hidden_size, cfg.hidden, len(classes), cfg.dropout)
                                        for name, classes in HEAD_CLASSES.items()})
        else:
            self.unified = mlp(hidden_size, cfg.hidden, UNIFIED_SIZE, cfg.dropout)

    def forward(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.kind == "multi":
            return {name: head(pooled) for name, head in self.heads.items()}
        return {"unified": self.unified(pooled)}


class ChexpertHead(nn.Module):
    """14 CheXpert logits from the mean of the projected visual features, before fusion."""

    def __init__(self, feature_dim: int, hidden: int, n_labels: int = 14):
        super().__init__()
        self.mlp = mlp(feature_dim, hidden, n_labels, 0.2)

    def forward(self, visual: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.to(visual.dtype).unsqueeze(-1)
        pooled = (visual * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        return self.mlp(pooled)
