"""Checkpoint directory (docs/contracts.md section 5): write atomically, load without pickle.

::

    checkpoint/
      config.json             model config (architecture, dims, ablation condition), vocabularies,
                              answer spaces: enough to rebuild the model with no other input
      model.safetensors       all weights, the (possibly frozen) backbone included
      vocab.txt, tokenizer_config.json, tokenizer.json
      answer_bank.json        answer texts for template filling (model.answers)
      training_metadata.json  step, epoch, seed, data index hash, versions, condition, losses
      README.md               model card

The directory is written under a temporary name next to the target and renamed into place,
so a reader never sees a half-written checkpoint. :func:`load_checkpoint` is the one loader
(``cxrbench evaluate`` uses it); weights are read with ``safetensors`` only.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrbench.errors import CxrbenchError
from cxrbench.io import dumps_json
from model.answers import AnswerBank
from model.config import ModelConfig, model_config_from_dict
from model.vocabularies import HEAD_CLASSES, UNIFIED_CLASSES, Vocabularies

FORMAT = "cxrbench-ssgvqa-checkpoint/1"
WEIGHTS = "model.safetensors"


@dataclass
class CheckpointBundle:
    model: Any                   # model.network.SSGVQANet, eval mode
    config: ModelConfig
    tokenizer: Any
    vocabularies: Vocabularies
    answer_bank: AnswerBank
    metadata: dict
    path: Path

    @property
    def condition(self) -> str:
        return self.config.condition


def model_card(config: ModelConfig, metadata: dict) -> str:
    m = metadata
    t = m.get("train", {})
    enc, tok = config.encoder, config.tokens
    metrics = m.get("validation", {})
    metric_lines = "\n".join(f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items()) if isinstance(v, (int, float)))
    metrics_text = (("| metric | value |\n|---|---|\n" + metric_lines) if metric_lines
                    else "Not evaluated yet: run `cxrbench evaluate` on this directory.")
    return f"""# SSG-VQA-Net for chest X-ray VQA (condition: {config.condition})

Scene-graph-enhanced VisualBERT (SSG-VQA-Net, Yuan et al. 2024) adapted to MIMIC-CXR-JPG +
MIMIC-Ext-CXR-QBA, trained with cxrbench (`cxrbench train`).

## Architecture
- Visual tokens: one per scene-graph node of the primary frontal image plus a whole-image
  token; {tok.token_dim} dims = {tok.scene_dim} scene-graph (box 4, area 1, aspect 1, region
  embedding {tok.region_dim}, entity embedding {tok.entity_dim}) + {tok.feature_dim} projected
  RoIAlign features of a `{config.backbone.name}` backbone (stride {config.backbone.stride},
  {config.backbone.image_size} px images; weights: {config.backbone.weights or "random init"}).
- Scene graph tokens: {"on" if tok.scene_graph else "off (global image token only)"};
  SIM: {f"{config.sim.layers} layers" if config.sim.enabled else "off"}.
- Encoder: VisualBERT, hidden {enc.hidden_size}, {enc.num_layers} layers, {enc.num_heads} heads
  ({enc.fusion} fusion); tokenizer vocabulary: {config.tokenizer.vocab}.
- Heads: {config.heads.kind} (binary 2, region 26, severity 4, findings 14) + auxiliary CheXpert
  head (U-Ignore BCE, lambda {config.heads.aux_weight}).

## Data
Index hash `{m.get("data_index_hash")}`; training items {m.get("n_train_items")}, split
`{t.get("train_split", "train")}`.

## Training
{m.get("step")} optimizer steps, {m.get("epoch")} epochs, seed {m.get("seed")}; batch {t.get("batch_size")}
x accumulation {t.get("grad_accum")} x world size {m.get("world_size")}; lr {t.get("lr")} (cosine, warm-up
{t.get("warmup_ratio")}); precision {m.get("precision")}; DeepSpeed ZeRO stage {t.get("zero_stage")}.

## Metrics
{metrics_text}

## Use and limits
Research code. Trained on MIMIC-derived data: the weights and answer bank are derived from data
under the PhysioNet Credentialed Health Data Use Agreement; do not share them publicly.
"""


def write_weights(state_dict, path: str | Path) -> None:
    """``model.safetensors``, byte-reproducible: safetensors writes its header's metadata map in
    hash order, which changes from process to process once it holds two keys, so it holds one
    (the checkpoint's format is in config.json)."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    save_file(state, str(path), metadata={"format": "pt"})


def save_checkpoint(out_dir: str | Path, model, config: ModelConfig, vocabularies: Vocabularies, tokenizer,
                    answer_bank: AnswerBank, metadata: dict) -> Path:
    """Write the checkpoint directory atomically (temp dir + rename)."""
    from model.tokenizer import save_tokenizer

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        write_weights(model.state_dict(), tmp / WEIGHTS)
        cfg_json = {
            "format": FORMAT,
            "architecture": "SSGVQANet",
            "condition": config.condition,
            "model": dataclasses.asdict(config),
            "token_dim": config.tokens.token_dim,
            "scene_dim": config.tokens.scene_dim,
            "vocabularies": vocabularies.to_json(),
            "answer_spaces": {k: list(v) for k, v in HEAD_CLASSES.items()},
            "unified_classes": list(UNIFIED_CLASSES),
            "tokenizer": {"vocab": config.tokenizer.vocab, "vocab_size": len(tokenizer),
                          "pad_token_id": tokenizer.pad_token_id},
        }
        (tmp / "config.json").write_text(dumps_json(cfg_json))
        save_tokenizer(tokenizer, tmp)
        (tmp / "answer_bank.json").write_text(dumps_json(answer_bank.to_json()))
        (tmp / "training_metadata.json").write_text(dumps_json(metadata))
        (tmp / "README.md").write_text(model_card(config, metadata))
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def read_config(path: str | Path) -> dict:
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise CxrbenchError(f"{path}: not a checkpoint directory (no config.json)")
    data = json.loads(cfg_path.read_text())
    if data.get("format") != FORMAT:
        raise CxrbenchError(f"{cfg_path}: unknown checkpoint format {data.get('format')!r} (expected {FORMAT})")
    return data


def load_checkpoint(path: str | Path, device: str = "cpu") -> CheckpointBundle:
    """Rebuild the model from ``config.json`` and load ``model.safetensors`` (strict, no pickle)."""
    import torch
    from safetensors.torch import load_file

    from model.network import SSGVQANet
    from model.tokenizer import load_tokenizer

    path = Path(path)
    data = read_config(path)
    config = model_config_from_dict(data["model"], str(path / "config.json"))
    build_cfg = copy.deepcopy(config)
    build_cfg.backbone.weights = None          # the weights come from model.safetensors
    vocabularies = Vocabularies.from_json(data["vocabularies"])
    tokenizer = load_tokenizer(path)
    if len(tokenizer) != data["tokenizer"]["vocab_size"]:
        raise CxrbenchError(f"{path}: tokenizer has {len(tokenizer)} entries, config.json says {data['tokenizer']['vocab_size']}")
    model = SSGVQANet(build_cfg, vocabularies, len(tokenizer), tokenizer.pad_token_id, from_checkpoint=True,
                      tokenizer=tokenizer)
    state = load_file(str(path / WEIGHTS), device="cpu")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CxrbenchError(f"{path / WEIGHTS}: weights do not match config.json "
                            f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    model.to(torch.device(device)).eval()
    bank_path = path / "answer_bank.json"
    bank = AnswerBank.from_json(json.loads(bank_path.read_text())) if bank_path.exists() else AnswerBank()
    meta_path = path / "training_metadata.json"
    metadata = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    model.cfg = config
    return CheckpointBundle(model, config, tokenizer, vocabularies, bank, metadata, path)
