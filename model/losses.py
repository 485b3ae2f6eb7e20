"""Multi-head loss (seed 5.6) with the auxiliary CheXpert loss (seed 3.3).

    L = sum_h  w_h * mean_{items routed to h with a label} loss_h  +  lambda * L_chexpert

* binary, severity: cross-entropy;
* region, text: binary cross-entropy over the 26 regions / 14 findings (several can be true),
  per-class weights w_i = (N / N_i)^0.5 (seed 3.2 use case 4, :func:`model.targets.class_weights`);
  ``heads.multilabel_reduction`` says how an item's classes combine: ``class_mean`` (the mean
  over classes, so an item weighs 1/26 resp. 1/14 of a binary item's cross-entropy) or
  ``item_sum`` (the sum over classes: the item's negative log-likelihood, on the scale of the
  cross-entropy heads; docs/model.md, "Spatial questions");
* single head (ablation): cross-entropy of the unified softmax against the item's target
  spread over its true classes (one class for binary/severity; the true regions or findings
  share the mass equally);
* auxiliary CheXpert, U-Ignore: ``sum(w_i * m * bce) / sum(m)`` with the mask ``m`` = 1 for
  definite labels, ``aux_nan_weight`` for not mentioned, 0 for uncertain.

Heads without items in a batch contribute nothing (no NaN from empty means).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import HeadConfig
from model.vocabularies import HEAD_INDEX
from model.vocabularies import HEAD_CLASSES, UNIFIED_OFFSETS, UNIFIED_SIZE


def unified_targets(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 46) target distributions of the single-head ablation, and (B,) validity."""
    head = batch["head"]
    b = head.shape[0]
    target = torch.zeros(b, UNIFIED_SIZE, dtype=torch.float32, device=head.device)
    valid = torch.zeros(b, dtype=torch.bool, device=head.device)
    for name, idx in HEAD_INDEX.items():
        rows = head == idx
        off, k = UNIFIED_OFFSETS[name], len(HEAD_CLASSES[name])
        if name in ("binary", "severity"):
            labels = batch[name]
            ok = rows & (labels >= 0)
            target[ok, off + labels[ok]] = 1.0
        else:
            multi = batch["region" if name == "region" else "findings"]
            ok = rows & (multi.sum(dim=1) > 0)
            target[ok, off:off + k] = multi[ok] / multi[ok].sum(dim=1, keepdim=True)
        valid |= ok
    return target, valid


class VQALoss(nn.Module):
    def __init__(self, cfg: HeadConfig, region_weights: torch.Tensor | None = None,
                 finding_weights: torch.Tensor | None = None, chexpert_weights: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        ones = lambda k: torch.ones(k)  # noqa: E731
        self.register_buffer("region_w", region_weights if region_weights is not None else ones(26))
        self.register_buffer("finding_w", finding_weights if finding_weights is not None else ones(14))
        self.register_buffer("chexpert_w", chexpert_weights if chexpert_weights is not None else ones(14))

    def _reduce(self, bce: torch.Tensor) -> torch.Tensor:
        """(items, classes) weighted BCE -> the head's loss (heads.multilabel_reduction)."""
        return bce.sum(dim=1).mean() if self.cfg.multilabel_reduction == "item_sum" else bce.mean()

    def forward(self, out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its detached terms (tensors: converting them would sync a GPU)."""
        head = batch["head"]
        terms: dict[str, torch.Tensor] = {}
        if self.cfg.kind == "single":
            target, valid = unified_targets(batch)
            if valid.any():
                logp = F.log_softmax(out["unified"][valid].float(), dim=-1)
                terms["unified"] = -(target[valid] * logp).sum(dim=-1).mean()
            vqa = terms.get("unified", out["unified"].sum() * 0.0)
        else:
            # every head in the graph with a zero gradient: under ZeRO / data parallelism all ranks
            # must produce gradients for the same parameters, whichever heads their batches use
            vqa = sum(out[name].sum() for name in HEAD_INDEX) * 0.0
            rows = (head == HEAD_INDEX["binary"]) & (batch["binary"] >= 0)
            if rows.any():
                terms["binary"] = F.cross_entropy(out["binary"][rows].float(), batch["binary"][rows])
            rows = (head == HEAD_INDEX["severity"]) & (batch["severity"] >= 0)
            if rows.any():
                terms["severity"] = F.cross_entropy(out["severity"][rows].float(), batch["severity"][rows])
            rows = (head == HEAD_INDEX["region"]) & (batch["region"].sum(dim=1) > 0)
            if rows.any():
                bce = F.binary_cross_entropy_with_logits(out["region"][rows].float(), batch["region"][rows], reduction="none")
                terms["region"] = self._reduce(bce * self.region_w)
            rows = head == HEAD_INDEX["text"]
            if rows.any():
                bce = F.binary_cross_entropy_with_logits(out["text"][rows].float(), batch["findings"][rows], reduction="none")
                terms["text"] = self._reduce(bce * self.finding_w)
            for name, value in terms.items():
                vqa = vqa + self.cfg.loss_weights.get(name, 1.0) * value
        mask = batch["chexpert_weight"]
        bce = F.binary_cross_entropy_with_logits(out["chexpert"].float(), batch["chexpert"], reduction="none")
        aux = (bce * mask * self.chexpert_w).sum() / mask.sum().clamp(min=1e-8)
        total = vqa + self.cfg.aux_weight * aux
        logs = {f"loss/{k}": v.detach() for k, v in terms.items()}
        logs["loss/chexpert"] = aux.detach()
        logs["loss/vqa"] = vqa.detach()
        return total, logs
