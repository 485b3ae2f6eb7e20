"""SSG-VQA-Net for chest X-rays and the model factory for every ablation condition.

One class builds all six conditions from the model config (timm's idea: conditions are
configs, not forks):

=====================  =============================================================
condition              what the config changes
=====================  =============================================================
full                   node tokens (646-d) -> SIM (2 layers) -> VisualBERT -> routed heads
no_scene_graph         global image token only, no scene-graph embeddings, no SIM
late_fusion            [question encoding ; pooled image feature] -> MLP -> heads
resnet18               backbone resnet18 instead of ConvNeXt
generic_tokenizer      bert-base-uncased vocabulary (tokenizer only; same network)
single_head            one softmax over 46 unified answer classes
=====================  =============================================================

Batch tensors (see :mod:`model.data`): ``input_ids``, ``attention_mask``, ``token_type_ids``
(B, T); ``geometry`` (B, N, 6); ``region_ids`` (B, N, R); ``entity_ids`` (B, N, E);
``visual_mask`` (B, N) bool; and either ``roi_features`` (B, N, C) from the feature cache or
``images`` (U, 3, S, S) + ``image_index`` (B,) + ``roi_boxes`` (B, N, 4) for the on-the-fly
backbone. Visual token 0 of every item is the whole-image (global) token.
"""

from __future__ import annotations

import torch
from torch import nn

from model.backbone import Backbone
from model.config import ModelConfig
from model.heads import AnswerHeads, ChexpertHead
from model.sim import SIM
from model.tokens import TokenEmbedder, name_pieces
from model.vocabularies import FINDING_CLASSES, Vocabularies


def visualbert_config(cfg: ModelConfig, vocab_size: int, pad_token_id: int):
    from transformers import VisualBertConfig

    enc = cfg.encoder
    return VisualBertConfig(
        vocab_size=vocab_size,
        hidden_size=enc.hidden_size,
        num_hidden_layers=enc.num_layers,
        num_attention_heads=enc.num_heads,
        intermediate_size=enc.intermediate_size,
        hidden_dropout_prob=enc.dropout,
        attention_probs_dropout_prob=enc.dropout,
        visual_embedding_dim=cfg.tokens.token_dim,
        max_position_embeddings=max(64, enc.max_question_tokens),
        pad_token_id=pad_token_id,
    )


class SSGVQANet(nn.Module):
    def __init__(self, cfg: ModelConfig, vocabularies: Vocabularies, vocab_size: int, pad_token_id: int = 0,
                 from_checkpoint: bool = False, tokenizer=None):
        super().__init__()
        from transformers import VisualBertModel

        self.cfg = cfg
        hidden = cfg.encoder.hidden_size
        self.backbone = Backbone(cfg.backbone, announce_random=not from_checkpoint)
        names = None
        if cfg.tokens.scene_graph and cfg.tokens.name_embeddings:
            if tokenizer is None:
                raise ValueError("tokens.name_embeddings needs the tokenizer (the names' word pieces)")
            names = {"region": name_pieces(vocabularies.regions, tokenizer),
                     "entity": name_pieces(vocabularies.entities, tokenizer)}
        self.tokens = TokenEmbedder(cfg.tokens, self.backbone.channels, vocabularies.n_region_embeddings,
                                    vocabularies.n_entity_embeddings, names=names, text_dim=hidden)
        self.encoder = VisualBertModel(visualbert_config(cfg, vocab_size, pad_token_id))
        self.sim = (SIM(cfg.tokens.scene_dim, hidden, cfg.sim.layers, cfg.sim.heads, cfg.sim.dropout)
                    if cfg.sim.enabled else None)
        if cfg.encoder.fusion == "late":
            # text-only encoder: its visual embedding layers never see an input; frozen so that
            # every trainable parameter gets a gradient (what ZeRO's reductions expect)
            emb = self.encoder.embeddings
            for module in (emb.visual_projection, emb.visual_token_type_embeddings, emb.visual_position_embeddings):
                module.requires_grad_(False)
            self.fuse = nn.Sequential(nn.Linear(hidden + cfg.tokens.feature_dim, hidden), nn.GELU(),
                                      nn.Dropout(cfg.encoder.dropout), nn.LayerNorm(hidden))
        if cfg.encoder.fusion == "visualbert" and cfg.encoder.pool == "cls_question":
            self.pool_project = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.Tanh())
        self.heads = AnswerHeads(cfg.heads, hidden)
        self.chexpert = ChexpertHead(cfg.tokens.feature_dim, cfg.heads.hidden, len(FINDING_CLASSES))
        if not cfg.backbone.train:
            self.backbone.requires_grad_(False)

    # the frozen backbone stays in eval mode (BatchNorm statistics of the ResNet ablation)
    def train(self, mode: bool = True):
        super().train(mode)
        if not self.cfg.backbone.train:
            self.backbone.eval()
        return self

    def set_output_priors(self, region=None, text=None, chexpert=None) -> None:
        """Output biases of the sigmoid heads at their classes' log prior odds (``heads.prior_init``).

        With biases at 0 a sigmoid head starts at p = 0.5 for every class; binary cross-entropy
        then falls fastest by pushing every logit down together, which the tiny model did
        through its shared tanh pooling until that saturated: the pooled vector became the
        same for every question and the region head answered one region for all (measured:
        docs/model.md, "Spatial questions"). Starting at the prior removes that shortcut."""
        def put(linear: nn.Linear, values) -> None:
            if values is not None:
                with torch.no_grad():
                    linear.bias.copy_(torch.as_tensor(values, dtype=linear.bias.dtype))

        if self.cfg.heads.kind == "multi":
            put(self.heads.heads["region"][-1], region)
            put(self.heads.heads["text"][-1], text)
        put(self.chexpert.mlp[-1], chexpert)

    def enable_gradient_checkpointing(self) -> None:
        enable = getattr(self.encoder, "activation_checkpointing_enable", None) or self.encoder.gradient_checkpointing_enable
        enable()

    def roi_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "roi_features" in batch:
            return batch["roi_features"]
        images, index, boxes = batch["images"], batch["image_index"], batch["roi_boxes"]
        b, n, _ = boxes.shape
        with torch.set_grad_enabled(self.cfg.backbone.train and torch.is_grad_enabled()):
            fmap = self.backbone.body((images - self.backbone.mean) / self.backbone.std)[0]
            rois = torch.cat([index.repeat_interleave(n).unsqueeze(1).to(boxes.dtype), boxes.reshape(b * n, 4)], 1)
            pooled = self.backbone.roi(fmap, rois.to(fmap.dtype)).mean(dim=(2, 3))
        return pooled.reshape(b, n, -1)

    def forward(self, batch: dict[str, torch.Tensor], use_scene_graph: bool = True,
                output_attentions: bool = False) -> dict[str, torch.Tensor]:
        vmask = batch["visual_mask"]
        visual = self.tokens.visual(self.roi_features(batch))                      # (B, N, 512)
        out: dict[str, torch.Tensor] = {"chexpert": self.chexpert(visual, vmask)}
        if self.cfg.encoder.fusion == "late":
            text = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                token_type_ids=batch["token_type_ids"])
            pooled = self.fuse(torch.cat([text.pooler_output, visual[:, 0]], dim=-1))
            out.update(self.heads(pooled))
            return out

        scene = self.tokens.scene(batch["geometry"], batch["region_ids"], batch["entity_ids"], use_scene_graph,
                                  word_embeddings=self.encoder.embeddings.word_embeddings)
        if self.sim is not None and use_scene_graph:
            scene, sim_attention = self.sim(scene, self._text_embeddings(batch), batch["attention_mask"].bool(), vmask)
            out["attn_sim"] = sim_attention
        encoded = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               token_type_ids=batch["token_type_ids"],
                               visual_embeds=torch.cat([scene, visual], dim=-1),
                               visual_attention_mask=vmask.long(),
                               output_attentions=output_attentions)
        pooled = encoded.pooler_output
        if self.cfg.encoder.pool == "cls_question":
            # [CLS] plus the mean of the question tokens' final states: with ~50 visual tokens
            # against ~12 question tokens, [CLS] alone carries the question too weakly early in
            # training (docs/model.md, "Pooling")
            mask = batch["attention_mask"].to(encoded.last_hidden_state.dtype).unsqueeze(-1)
            text = encoded.last_hidden_state[:, : mask.shape[1]]
            question = (text * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = self.pool_project(torch.cat([pooled, question], dim=-1))
        out.update(self.heads(pooled))
        if output_attentions:
            out["attn_text_visual"] = cls_to_visual_attention(encoded.attentions[-1], batch["input_ids"].shape[1], vmask)
        return out

    def _text_embeddings(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Word + position + token-type embeddings of the question: SIM's view of the text."""
        emb = self.encoder.embeddings
        ids = batch["input_ids"]
        positions = emb.position_ids[:, : ids.shape[1]]
        return emb.word_embeddings(ids) + emb.position_embeddings(positions) + emb.token_type_embeddings(batch["token_type_ids"])


def cls_to_visual_attention(attention: torch.Tensor, text_length: int, visual_mask: torch.Tensor) -> torch.Tensor:
    """[CLS] -> visual-token attention of one layer, head-averaged, renormalised over real tokens.

    ``attention`` (B, heads, L, L) with L = text_length + N. Returns (B, N), rows summing to 1.
    """
    cls_row = attention[:, :, 0, text_length:].mean(dim=1)
    cls_row = cls_row * visual_mask.to(cls_row.dtype)
    return cls_row / cls_row.sum(dim=-1, keepdim=True).clamp(min=1e-12)


def build_model(cfg: ModelConfig, vocabularies: Vocabularies, tokenizer, seed: int | None = None) -> SSGVQANet:
    """The model of ``cfg.condition`` (the one factory every caller uses)."""
    if seed is not None:
        torch.manual_seed(seed)
    return SSGVQANet(cfg, vocabularies, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                     tokenizer=tokenizer)
