"""DeepSpeed training of SSG-VQA-Net: one process per rank, resumable bit for bit.

Run directory::

    RUN/
      config.yaml          the resolved config (a resume must match it)
      features.h5          backbone RoI feature cache (train.features: cache)
      checkpoint/          the HF-style checkpoint (model.checkpoint), rewritten at every save
      deepspeed/stepNNNNNNNN/  DeepSpeed engine, ZeRO optimizer and scheduler state + our client
                           state (position, RNG states); ``latest`` names the newest
      train_log.jsonl      one line per optimizer step: step, epoch, loss terms, lr
      tensorboard/         TensorBoard scalars (rank 0)

What makes a resume reproduce the uninterrupted loss curve: the item schedule is a pure
function of (seed, epoch) (:mod:`model.sampling`), augmentation draws from generators seeded
per (seed, epoch, item), the torch RNG state (dropout) is saved with each checkpoint, and
DeepSpeed restores weights, the ZeRO-partitioned optimizer state and the LR scheduler.
Checkpoints are taken at optimizer-step boundaries only.

DeepSpeed on CPU: the gloo backend, fp32, ZeRO stages 0-2 at any world size. We pass a client
``torch.optim.AdamW`` (DeepSpeed's own AdamW would compile its fused op first).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from cxrbench.errors import CxrbenchError
from cxrbench.io import atomic_write_text, package_versions
from model.config import Config, ConfigError

log = logging.getLogger(__name__)
PACKAGES = ("cxrbench", "torch", "transformers", "deepspeed", "timm", "numpy", "pandas", "safetensors")


@dataclass
class RunPaths:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint"

    @property
    def deepspeed(self) -> Path:
        return self.root / "deepspeed"

    @property
    def log(self) -> Path:
        return self.root / "train_log.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def has_state(self) -> bool:
        return (self.deepspeed / "latest").is_file()


def dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def resolve_precision(requested: str) -> str:
    import torch

    if requested != "auto":
        if requested != "fp32" and not torch.cuda.is_available():
            log.warning("precision %s requested on CPU; DeepSpeed supports it there but it is slow", requested)
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def deepspeed_config(cfg: Config, world: int, precision: str) -> dict[str, Any]:
    t = cfg.train
    return {
        "train_micro_batch_size_per_gpu": t.batch_size,
        "gradient_accumulation_steps": t.grad_accum,
        "train_batch_size": t.batch_size * t.grad_accum * world,
        "gradient_clipping": t.grad_clip,
        "zero_optimization": {"stage": t.zero_stage},
        "zero_allow_untested_optimizer": True,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "loss_scale": 0, "initial_scale_power": 16},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def cosine_with_warmup(total_steps: int, warmup_ratio: float):
    warmup = int(round(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def param_groups(model, cfg: Config) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and norms; the backbone at its own LR when trained."""
    decay, no_decay, backbone = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("backbone."):
            backbone.append(p)
        elif p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [{"params": decay, "weight_decay": cfg.train.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if backbone:
        groups.append({"params": backbone, "weight_decay": cfg.train.weight_decay, "lr": cfg.train.backbone_lr})
    return [g for g in groups if g["params"]]


def class_weight_tensors(ds, train_qa, studies, kind: str):
    """Region, finding and CheXpert class weights (seed 3.2 use case 4) from the training items."""
    import torch

    from model.heads import HEAD_INDEX
    from model.targets import chexpert_targets, class_weights

    if kind == "none":
        return None, None, None
    t = ds.targets
    reg = t.head == HEAD_INDEX["region"]
    txt = t.head == HEAD_INDEX["text"]
    region_w = class_weights(t.region[reg].sum(0), reg.sum())
    finding_w = class_weights(t.findings[txt].sum(0), txt.sum())
    sids = set(train_qa["study_id"].astype("int64"))
    rows = studies[studies["study_id"].isin(sids)]
    labels = np.stack([chexpert_targets(v, 0.0)[0] for v in rows["chexpert"]]) if len(rows) else np.zeros((0, 14))
    chexpert_w = class_weights(labels.sum(0), len(rows))
    return torch.from_numpy(region_w), torch.from_numpy(finding_w), torch.from_numpy(chexpert_w)


def _rng_state() -> dict[str, Any]:
    import torch

    state = {"torch": torch.get_rng_state(), "python": repr(random.getstate()),
             "numpy": repr(np.random.get_state()[1].tolist())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import ast

    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(ast.literal_eval(state["python"]))
    np.random.set_state(("MT19937", np.array(ast.literal_eval(state["numpy"]), dtype=np.uint32), 624, 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _to_device(batch: dict[str, Any], device, dtype) -> dict[str, Any]:
    import torch

    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if v.is_floating_point() and k not in ("region", "findings", "chexpert", "chexpert_weight"):
                v = v.to(dtype)
        out[k] = v
    return out


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (a killed run logged steps the resume will redo)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _check_run_dir(paths: RunPaths, cfg: Config, resume: bool) -> None:
    resolved = yaml.safe_dump(cfg.to_dict(), sort_keys=True)
    if resume and paths.config.exists():
        saved = paths.config.read_text()
        if saved != resolved:
            old, new = yaml.safe_load(saved), cfg.to_dict()
            diff = sorted(_diff_keys(old, new))
            raise ConfigError(f"{paths.config}: --resume with a different config (changed: {', '.join(diff[:8])})")
    elif not resume and paths.has_state():
        raise CxrbenchError(f"{paths.root}: holds a training state; pass --resume to continue it or choose another --out")


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [prefix.rstrip(".")] if a != b else []


def train(cfg: Config, index_dir: str | Path, run_dir: str | Path, resume: bool = False, progress: bool = True,
          push_to_hub: str | None = None) -> dict[str, Any]:
    """Train (or resume) one run; every rank calls this. Returns rank 0's summary."""
    import deepspeed
    import torch
    import torch.distributed as dist
    from tqdm import tqdm

    from cxrbench.data.vocabulary import load_vocabulary
    from model.answers import AnswerBank
    from model.checkpoint import CheckpointBundle, save_checkpoint
    from model.data import DatasetSettings, ImageStore, IndexData, QADataset, build_graphs, collate
    from model.evaluation import head_accuracy
    from model.feature_cache import FeatureCache
    from model.backbone import backbone_fingerprint
    from model.inference import Predictor
    from model.losses import VQALoss
    from model.network import build_model
    from model.sampling import EpochSampler
    from model.tokenizer import build_tokenizer
    from model.vocabularies import Vocabularies

    rank, local_rank, world = dist_env()
    t = cfg.train
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    paths = RunPaths(Path(run_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    _check_run_dir(paths, cfg, resume)
    resuming = resume and paths.has_state()
    cuda = torch.cuda.is_available()
    deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", verbose=False)
    device = torch.device(f"cuda:{local_rank}") if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if rank == 0:
        atomic_write_text(paths.config, yaml.safe_dump(cfg.to_dict(), sort_keys=True))

    # ---- data -------------------------------------------------------------------------------
    index = IndexData.load(index_dir)
    if index.dataset_info is None:
        raise CxrbenchError(f"{index_dir}/manifest.json: names no dataset_info.json (vocabularies)")
    vocabs = Vocabularies.from_dataset(load_vocabulary(index.dataset_info))
    tokenizer = build_tokenizer(cfg.model.tokenizer.vocab, cfg.model.tokenizer.lowercase)
    m = cfg.model
    graphs, graph_counts = build_graphs(index.studies, index.nodes, m.tokens.max_nodes, m.tokens.scene_graph)
    qa = index.qa
    in_graph = qa["study_id"].astype("int64").isin(set(graphs))
    train_qa = qa[(qa["split"] == t.train_split) & in_graph]
    if t.max_items is not None:
        train_qa = train_qa.iloc[: t.max_items]
    eval_qa = qa[(qa["split"] == t.eval_split) & in_graph]
    if len(train_qa) == 0:
        raise CxrbenchError(f"{index_dir}: no {t.train_split!r} QA rows with a primary frontal image")
    settings = DatasetSettings(max_question_tokens=m.encoder.max_question_tokens, image_size=m.backbone.image_size,
                               scene_graph=m.tokens.scene_graph, features=t.features, augment=t.augment,
                               nan_weight=m.heads.aux_nan_weight, seed=cfg.seed)
    train_ds = QADataset(train_qa, graphs, vocabs, settings, studies=index.studies, train=True)
    bank = AnswerBank.build(train_ds.qa, train_ds.targets)
    region_w, finding_w, chexpert_w = class_weight_tensors(train_ds, train_qa, index.studies, m.heads.class_weighting)

    # ---- model and features -------------------------------------------------------------------
    model = build_model(m, vocabs, tokenizer, seed=cfg.seed)
    if t.gradient_checkpointing:
        model.enable_gradient_checkpointing()
    images = ImageStore(index.image_root, m.backbone.image_size)
    features = None
    if t.features == "cache":
        cache_path = Path(t.cache_path) if t.cache_path else paths.root / "features.h5"
        if rank == 0:
            variants = ("orig", "flip") if t.augment.hflip > 0 else ("orig",)
            counts = FeatureCache.build(cache_path, model.backbone, backbone_fingerprint(model.backbone),
                                        [graphs[s] for s in sorted(set(train_qa["study_id"].astype("int64")))],
                                        images, variants=variants, progress=progress)
            log.info("feature cache %s: %s", cache_path, counts)
        if world > 1:
            dist.barrier()
        features = FeatureCache(cache_path)
    sampler = EpochSampler(train_ds.targets, train_ds.qa["quality"].to_numpy() if "quality" in train_ds.qa else None,
                           t, cfg.seed, t.batch_size, world, t.grad_accum)
    total_steps = sampler.total_optimizer_steps()
    if t.max_steps is not None:
        total_steps = min(total_steps, t.max_steps)
    if total_steps == 0:
        raise CxrbenchError(f"no optimizer step fits: {len(train_ds)} items, batch {t.batch_size} x accumulation "
                            f"{t.grad_accum} x world size {world}")

    # ---- DeepSpeed ----------------------------------------------------------------------------
    precision = resolve_precision(t.precision)
    optimizer = torch.optim.AdamW(param_groups(model, cfg), lr=t.lr, betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total_steps, t.warmup_ratio))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine, _, _, scheduler = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler,
                                                       config=deepspeed_config(cfg, world, precision))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    criterion = VQALoss(m.heads, region_w, finding_w, chexpert_w).to(device)

    position = {"epoch": 0, "micro_step": 0, "global_step": 0}
    first_loss = None
    if resuming:
        _, client = engine.load_checkpoint(str(paths.deepspeed))
        if client is None:
            raise CxrbenchError(f"{paths.deepspeed}: could not load the DeepSpeed state")
        position = dict(client["position"])
        first_loss = client.get("first_loss")
        _set_rng_state(client["rng"][rank] if rank < len(client["rng"]) else client["rng"][0])
        if rank == 0:
            _truncate_log(paths.log, position["global_step"])
            log.info("resumed at step %d (epoch %d, micro step %d)", position["global_step"], position["epoch"],
                     position["micro_step"])

    writer = None
    wandb_run = None
    if rank == 0 and t.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(paths.tensorboard), purge_step=position["global_step"] + 1 if resuming else None)
    if rank == 0 and t.wandb:
        try:
            import wandb
        except ImportError as err:
            raise CxrbenchError("train.wandb needs the wandb package (pip install 'cxrbench[wandb]')") from err
        wandb_run = wandb.init(mode="offline", dir=str(paths.root), config=cfg.to_dict(),
                               name=f"{cfg.name}-{m.condition}-seed{cfg.seed}", resume="allow")

    validation: dict[str, Any] = {}
    thresholds: dict[str, Any] = {}

    def metadata(step: int, epoch: int) -> dict[str, Any]:
        return {"step": step, "epoch": epoch, "seed": cfg.seed, "condition": m.condition, "config_name": cfg.name,
                "data_index_hash": index.index_hash(), "data_index": str(Path(index_dir)),
                "packages": package_versions(PACKAGES), "world_size": world, "precision": precision,
                "train": cfg.to_dict()["train"], "n_train_items": len(train_ds), "n_eval_items": len(eval_qa),
                "total_steps": total_steps, "first_loss": first_loss, "last_losses": recent[-10:],
                "graph_counts": dict(graph_counts), "missing_labels": dict(train_ds.targets.missing),
                "validation": validation, "thresholds": thresholds}

    last_saved = [position["global_step"] if resuming else -1]

    def save(step: int, epoch: int) -> None:
        last_saved[0] = step
        client = {"position": dict(position), "rng": gathered_rng(), "first_loss": first_loss}
        engine.save_checkpoint(str(paths.deepspeed), tag=f"step{step:08d}", client_state=client)
        if world > 1:
            dist.barrier()
        if rank == 0:
            save_checkpoint(paths.checkpoint, engine.module, m, vocabs, tokenizer, bank, metadata(step, epoch))
            tags = sorted(p for p in paths.deepspeed.glob("step*") if p.is_dir())
            for old in tags[: max(0, len(tags) - t.keep_last)]:
                shutil.rmtree(old, ignore_errors=True)
            log.info("checkpoint saved at step %d", step)
            print(f"checkpoint saved at step {step}", flush=True)
        if world > 1:
            dist.barrier()

    def gathered_rng() -> list[dict[str, Any]]:
        state = _rng_state()
        if world == 1:
            return [state]
        out: list[Any] = [None] * world
        dist.all_gather_object(out, state)
        return out

    def validate(epoch: int) -> None:
        if rank == 0 and len(eval_qa):
            engine.module.eval()
            bundle = CheckpointBundle(engine.module, m, tokenizer, vocabs, bank, {}, paths.checkpoint)
            predictor = Predictor(bundle, index_dir, use_scene_graph=True, batch_size=max(64, t.batch_size))
            frame = predictor.predict(eval_qa.iloc[:2000])
            validation.clear()
            validation.update({k: v for k, v in head_accuracy(frame).items() if v is not None})
            validation["epoch"] = epoch
            if writer is not None:
                for k, v in validation.items():
                    if k.startswith("accuracy/"):
                        writer.add_scalar(f"val/{k}", v, position["global_step"])
            engine.module.train()
        if world > 1:
            dist.barrier()

    recent: list[float] = []
    if rank == 0 and paths.log.exists():
        recent = [json.loads(line)["loss"] for line in paths.log.read_text().splitlines() if line.strip()][-10:]
    engine.train()
    bar = tqdm(total=total_steps, initial=position["global_step"], desc=f"train {m.condition}", unit="step",
               disable=not progress or rank != 0)
    step_terms: dict[str, float] = {}
    micro_in_step = 0
    done = position["global_step"] >= total_steps
    while not done and position["epoch"] < sampler.n_epochs:
        epoch = position["epoch"]
        n_micro = sampler.micro_steps(epoch)
        while position["micro_step"] < n_micro:
            idx = sampler.batch(epoch, position["micro_step"], rank)
            items = [train_ds.item(int(i), epoch) for i in idx]
            batch = collate(items, tokenizer, settings, features=features, images=images)
            batch = _to_device(batch, device, dtype)
            out = engine(batch)
            loss, terms = criterion(out, batch)
            engine.backward(loss)
            engine.step()
            position["micro_step"] += 1
            micro_in_step += 1
            for k, v in terms.items():
                step_terms[k] = step_terms.get(k, 0.0) + float(v)
            step_terms["loss"] = step_terms.get("loss", 0.0) + float(loss.detach())
            if micro_in_step < t.grad_accum:
                continue
            # an optimizer step happened
            position["global_step"] += 1
            micro_in_step = 0
            vec = torch.tensor([step_terms.get("loss", 0.0)], dtype=torch.float64)
            if world > 1:
                dist.all_reduce(vec)
            mean_loss = float(vec[0]) / (t.grad_accum * world)
            row = {"step": position["global_step"], "epoch": epoch, "loss": mean_loss,
                   "lr": float(scheduler.get_last_lr()[0])}
            row.update({k: v / t.grad_accum for k, v in sorted(step_terms.items()) if k != "loss"})
            step_terms = {}
            if first_loss is None:
                first_loss = mean_loss
            recent = (recent + [mean_loss])[-10:]
            if rank == 0:
                with open(paths.log, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
                if writer is not None and position["global_step"] % t.log_every == 0:
                    for k, v in row.items():
                        if k not in ("step", "epoch"):
                            writer.add_scalar(f"train/{k}", v, position["global_step"])
                if wandb_run is not None and position["global_step"] % t.log_every == 0:
                    wandb_run.log(row, step=position["global_step"])
                bar.update(1)
                bar.set_postfix(loss=f"{mean_loss:.4f}")
            done = position["global_step"] >= total_steps
            end_of_epoch = position["micro_step"] >= n_micro
            if end_of_epoch:
                position["epoch"] += 1
                position["micro_step"] = 0
                if t.eval_every_epoch and not done:
                    validate(epoch)
            if done or position["global_step"] % t.save_every == 0:
                if done and t.eval_every_epoch:
                    validate(epoch)
                save(position["global_step"], position["epoch"])
            if done or end_of_epoch:
                break
    bar.close()
    if last_saved[0] != position["global_step"]:
        save(position["global_step"], position["epoch"])
    if t.tune_thresholds and m.heads.kind == "multi" and len(eval_qa):
        # the text head's per-finding thresholds, from the validation split (model/thresholds.py)
        if rank == 0:
            from model.thresholds import tune_on_split

            bundle = CheckpointBundle(engine.module, m, tokenizer, vocabs, bank, {}, paths.checkpoint)
            thresholds.clear()
            thresholds.update(tune_on_split(bundle, index_dir, eval_qa, batch_size=max(64, t.batch_size), seed=cfg.seed))
            thresholds["split"] = t.eval_split
            save_checkpoint(paths.checkpoint, engine.module, m, vocabs, tokenizer, bank,
                            metadata(position["global_step"], position["epoch"]))
            log.info("text-head thresholds tuned on %s: exact match %.3f -> %.3f", t.eval_split,
                     thresholds.get("exact_match_at_default", float("nan")), thresholds.get("exact_match_tuned", float("nan")))
        if world > 1:
            dist.barrier()
    if writer is not None:
        writer.close()
    if wandb_run is not None:
        wandb_run.finish()
    if features is not None:
        features.close()
    summary = {"step": position["global_step"], "epoch": position["epoch"], "first_loss": first_loss,
               "last_loss": recent[-1] if recent else None, "validation": dict(validation),
               "checkpoint": str(paths.checkpoint)}
    if rank == 0 and push_to_hub:
        from model.hub import push_checkpoint

        push_checkpoint(paths.checkpoint, push_to_hub)
    if world > 1:
        dist.barrier()
    return summary
