"""Configs: one YAML file per size (``tiny``, ``full``), ablation conditions as overlays.

A config has three sections: ``model`` (what is built and saved into the checkpoint's
``config.json``), ``train`` (how it is trained) and the run's ``seed``. The six ablation
conditions of seed 16.1 are not forks of the code but overlays on the model section
(:data:`CONDITIONS`), applied in this order::

    YAML file  <-  CONDITIONS[condition]  <-  YAML ``conditions: {name: {...}}``  <-  CLI overrides

so a size config can, for instance, give the ResNet18 condition its own local weights file.
Unknown keys are errors naming the file and the key (a typo must never silently train the
default).
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cxrbench.errors import CxrbenchError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# Ablation conditions (seed 16.1) as overlays on the model section. "full" is the baseline.
CONDITIONS: dict[str, dict[str, Any]] = {
    "full": {},
    # Global image features only: no node tokens, no scene-graph embeddings, no SIM, no RoIs.
    "no_scene_graph": {"model": {"tokens": {"scene_graph": False}, "sim": {"enabled": False}}},
    # Vision + question late fusion: pooled image feature and question encoding, concat + MLP.
    "late_fusion": {"model": {"tokens": {"scene_graph": False}, "sim": {"enabled": False},
                              "encoder": {"fusion": "late"}}},
    # The original SSG-VQA backbone.
    "resnet18": {"model": {"backbone": {"name": "resnet18", "weights": None}}},
    # bert-base-uncased WordPiece vocabulary instead of the clinical one.
    "generic_tokenizer": {"model": {"tokenizer": {"vocab": "generic"}}},
    # One softmax over the unified answer classes instead of routed heads.
    "single_head": {"model": {"heads": {"kind": "single"}}},
}


class ConfigError(CxrbenchError):
    """An invalid training config (unknown key, wrong type, bad value)."""


@dataclass
class BackboneConfig:
    name: str = "tiny_cnn"           # tiny_cnn (model.backbone.TinyCNN) or any timm model (convnext_base, resnet18, ...)
    weights: str | None = None       # local .safetensors file; None = random init (logged loudly)
    image_size: int = 128            # images are resized to image_size x image_size
    stride: int = 8                  # which feature level RoIAlign reads (its reduction factor)
    roi_size: int = 7                # RoIAlign output size, average-pooled to one vector per box
    train: bool = False              # fine-tune the backbone (online features only)


@dataclass
class TokenConfig:
    scene_graph: bool = True         # node tokens with scene-graph embeddings; False = global token only
    region_dim: int = 64
    entity_dim: int = 64
    feature_dim: int = 512           # projected backbone RoI feature
    max_nodes: int = 48              # node tokens per image (the global token comes on top)
    name_embeddings: bool = False    # region/entity vectors also read their names through the word embeddings

    @property
    def geometry_dim(self) -> int:   # normalised box (4), area (1), aspect ratio (1)
        return 6

    @property
    def scene_dim(self) -> int:      # 134 with the seed's sizes
        return self.geometry_dim + self.region_dim + self.entity_dim

    @property
    def token_dim(self) -> int:      # 646 with the seed's sizes
        return self.scene_dim + self.feature_dim


@dataclass
class SIMConfig:
    enabled: bool = True
    layers: int = 2
    heads: int = 2                   # must divide the scene dim (134 = 2 x 67)
    dropout: float = 0.1


@dataclass
class EncoderConfig:
    fusion: str = "visualbert"       # visualbert | late
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 256
    max_question_tokens: int = 40
    dropout: float = 0.1
    pool: str = "cls"                # cls (VisualBERT's pooler, as SSG-VQA) | cls_question (+ mean of question tokens)


@dataclass
class HeadConfig:
    kind: str = "multi"              # multi (routed heads) | single (unified answer classes)
    hidden: int = 128
    dropout: float = 0.1
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {"binary": 1.0, "region": 0.5, "severity": 0.3, "text": 0.5})
    aux_weight: float = 0.3          # lambda of the auxiliary CheXpert loss (seed 3.3)
    aux_nan_weight: float = 0.5      # weight of "not mentioned" (NaN) CheXpert labels, as negatives
    class_weighting: str = "sqrt_inverse"   # w_i = (N / N_i) ** 0.5 (seed 3.2 use case 4) | none
    multilabel_reduction: str = "class_mean"  # region/text BCE per item: class_mean | item_sum (model/losses.py)
    prior_init: bool = False         # sigmoid heads' output biases start at the training classes' log prior odds
    finding_threshold: float = 0.5   # text head: findings with P >= threshold fill the answer
    finding_thresholds: list[float] | None = None  # per finding (14), tuned on validation at the end of training
    region_threshold: float = 0.5    # region head: extra regions with P >= threshold


@dataclass
class TokenizerConfig:
    vocab: str = "clinical"          # clinical (shipped stand-in) | generic (bert-base-uncased) | a path
    lowercase: bool = True


@dataclass
class ModelConfig:
    condition: str = "full"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    sim: SIMConfig = field(default_factory=SIMConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    heads: HeadConfig = field(default_factory=HeadConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


@dataclass
class SamplingConfig:
    polarity_balance: bool = False   # weight binary items so yes/no are 50/50 (seed 2.6.3)
    region_stratified: bool = False  # batches drawn evenly over region categories (seed 2.6.3)


@dataclass
class CurriculumStage:
    min_quality: str = "B"           # items of this grade or better (cxrbench.vocab.QUALITY_GRADES)
    epochs: int = 1


@dataclass
class AugmentConfig:
    hflip: float = 0.0               # P(horizontal flip); left/right swapped in labels, boxes, words
    node_dropout: float = 0.0        # P(drop an observation node)
    edge_perturbation: float = 0.0   # P(re-link a node's region to a sibling region)
    box_jitter: float = 0.0          # max box shift as a fraction of box size
    question_synonyms: float = 0.0   # P(apply the synonym table to a question)
    template_variation: float = 0.0  # P(rephrase the question's template)
    brightness: float = 0.0          # +- fraction (online features only)
    rotation_deg: float = 0.0        # +- degrees (online features only)
    noise_std: float = 0.0           # Gaussian pixel noise (online features only)


@dataclass
class TrainConfig:
    features: str = "cache"          # cache (HDF5, backbone frozen) | online (backbone each step)
    cache_path: str | None = None    # default: RUN/features.h5
    batch_size: int = 32             # per process micro batch
    grad_accum: int = 1
    epochs: int = 10
    max_steps: int | None = None     # optimizer steps; stops early when reached
    lr: float = 3e-4
    backbone_lr: float = 1e-5        # when backbone.train
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    precision: str = "auto"          # auto (bf16 on GPUs that have it, else fp16 on GPU, fp32 on CPU) | fp32 | bf16 | fp16
    zero_stage: int = 2
    gradient_checkpointing: bool = False
    save_every: int = 200            # optimizer steps between checkpoints (and at the end)
    keep_last: int = 2               # DeepSpeed states kept for resuming
    log_every: int = 10
    eval_every_epoch: bool = True    # validation accuracy per head after each epoch
    validate_every: int = 0          # also every N optimizer steps (0: off): RUN/dynamics.csv (model/dynamics.py)
    validate_rows: int = 2000        # validation QA rows per validation, a fixed sample by the seed
    tune_thresholds: bool = True     # tune the text head's per-finding thresholds on eval_split at the end (model/thresholds.py)
    min_quality: str | None = None   # drop items below this grade (applies before the curriculum)
    max_items: int | None = None     # cap on training items (smoke runs)
    train_split: str = "train"
    eval_split: str = "validate"
    num_threads: int | None = None   # torch threads on CPU
    tensorboard: bool = True
    wandb: bool = False              # offline mode only
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    curriculum: list[CurriculumStage] = field(default_factory=list)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class Config:
    name: str = "tiny"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# building dataclasses from nested dicts, strictly

def _build(cls: type, data: Any, where: str) -> Any:
    if dataclasses.is_dataclass(cls):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{where or 'top level'}: unknown key(s) {unknown}; known: {sorted(names)}")
        return cls(**{k: _build(hints[k], v, f"{where}.{k}" if where else k) for k, v in data.items()})
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin is list:
        if not isinstance(data, list):
            raise ConfigError(f"{where}: expected a list, got {type(data).__name__}")
        return [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
        return {str(k): _build(args[1], v, f"{where}.{k}") for k, v in data.items()}
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _build(inner[0], data, where)
    if cls is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if cls is float and isinstance(data, str):   # YAML 1.1 reads "1e-4" (no dot) as a string
        try:
            return float(data)
        except ValueError:
            pass
    if cls in (int, str, bool):
        if not isinstance(data, cls) or (cls is int and isinstance(data, bool)):
            raise ConfigError(f"{where}: expected {cls.__name__}, got {data!r}")
        return data
    if cls is float:
        raise ConfigError(f"{where}: expected a number, got {data!r}")
    return data


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` merged into a copy of ``base`` (nested mappings merge, everything else replaces)."""
    out = copy.deepcopy(base)
    for key, value in (overlay or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> dict[str, Any]:
    """``"train.lr=1e-4"`` -> ``{"train": {"lr": 1e-4}}`` (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY.PATH=VALUE")
    path, raw = text.split("=", 1)
    value = yaml.safe_load(raw)
    out: dict[str, Any] = value
    for part in reversed(path.strip().split(".")):
        out = {part: out}
    return out


def resolve_config_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    raise ConfigError(f"config {name_or_path}: no such file (nor {candidate})")


def load_config(path: str | Path, condition: str | None = None, overrides: list[str] = (),
                seed: int | None = None) -> Config:
    """Read a YAML config, apply the ablation condition overlay and ``KEY=VALUE`` overrides."""
    path = resolve_config_path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    per_condition = raw.pop("conditions", {}) or {}
    unknown = sorted(set(per_condition) - set(CONDITIONS))
    if unknown:
        raise ConfigError(f"{path}: conditions: unknown condition(s) {unknown}; known: {sorted(CONDITIONS)}")
    cond = condition or raw.get("model", {}).get("condition", "full")
    if cond not in CONDITIONS:
        raise ConfigError(f"condition {cond!r}: unknown; known: {sorted(CONDITIONS)}")
    merged = deep_merge(raw, CONDITIONS[cond])
    merged = deep_merge(merged, per_condition.get(cond, {}))
    merged.setdefault("model", {})["condition"] = cond
    for text in overrides:
        merged = deep_merge(merged, parse_override(text))
    if seed is not None:
        merged["seed"] = seed
    try:
        config = _build(Config, merged, "")
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    validate(config, str(path))
    return config


def config_from_dict(data: dict[str, Any], where: str = "config") -> Config:
    try:
        config = _build(Config, data, "")
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None
    validate(config, where)
    return config


def model_config_from_dict(data: dict[str, Any], where: str = "config.json") -> ModelConfig:
    try:
        return _build(ModelConfig, data, "")
    except ConfigError as err:
        raise ConfigError(f"{where}: model: {err}") from None


def validate(config: Config, where: str) -> None:
    m, t = config.model, config.train
    from cxrbench.vocab import QUALITY_GRADES

    checks = [
        (m.condition in CONDITIONS, f"model.condition {m.condition!r} unknown"),
        (m.encoder.fusion in ("visualbert", "late"), "model.encoder.fusion must be visualbert or late"),
        (m.heads.kind in ("multi", "single"), "model.heads.kind must be multi or single"),
        (m.encoder.pool in ("cls", "cls_question"), "model.encoder.pool must be cls or cls_question"),
        (m.heads.finding_thresholds is None or len(m.heads.finding_thresholds) == 14,
         "model.heads.finding_thresholds must list 14 values (one per CheXpert finding)"),
        (m.heads.class_weighting in ("sqrt_inverse", "none"), "model.heads.class_weighting must be sqrt_inverse or none"),
        (m.heads.multilabel_reduction in ("class_mean", "item_sum"),
         "model.heads.multilabel_reduction must be class_mean or item_sum"),
        (m.encoder.hidden_size % m.encoder.num_heads == 0, "model.encoder.hidden_size must be a multiple of num_heads"),
        (not m.sim.enabled or m.tokens.scene_dim % m.sim.heads == 0,
         f"model.sim.heads ({m.sim.heads}) must divide the scene dim ({m.tokens.scene_dim})"),
        (not m.sim.enabled or m.tokens.scene_graph, "model.sim needs model.tokens.scene_graph"),
        (t.features in ("cache", "online"), "train.features must be cache or online"),
        (not (t.features == "cache" and m.backbone.train), "model.backbone.train needs train.features: online"),
        (t.precision in ("auto", "fp32", "bf16", "fp16"), "train.precision must be auto, fp32, bf16 or fp16"),
        (t.zero_stage in (0, 1, 2), "train.zero_stage must be 0, 1 or 2 (stage 3 shards the weights the checkpoint writer reads)"),
        (t.batch_size >= 1 and t.grad_accum >= 1, "train.batch_size and train.grad_accum must be >= 1"),
        (t.validate_every >= 0 and t.validate_rows >= 1, "train.validate_every must be >= 0, train.validate_rows >= 1"),
        (t.min_quality is None or t.min_quality in QUALITY_GRADES, f"train.min_quality must be one of {QUALITY_GRADES}"),
        (all(s.min_quality in QUALITY_GRADES for s in t.curriculum), f"train.curriculum min_quality must be one of {QUALITY_GRADES}"),
        (all(0.0 <= getattr(t.augment, f.name) for f in dataclasses.fields(AugmentConfig)), "train.augment values must be >= 0"),
    ]
    for ok, problem in checks:
        if not ok:
            raise ConfigError(f"{where}: {problem}")
