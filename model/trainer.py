"""DeepSpeed training of SSG-VQA-Net: one process per rank, resumable bit for bit.

:class:`Trainer` holds a run's state explicitly and does its jobs one method each:
:meth:`~Trainer.setup` (data, model, feature cache, DeepSpeed engine), :meth:`~Trainer.resume`
(the last saved state, loaded safely: :mod:`model.resume`), :meth:`~Trainer.step` (one
optimizer step), :meth:`~Trainer.validate`, :meth:`~Trainer.save` and
:meth:`~Trainer.tune_thresholds`; :meth:`~Trainer.run` is the loop that calls them. The run
directory's layout and claim are :mod:`model.run_dir`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from cxrbench.data.selection import answerable
from cxrbench.errors import CxrbenchError
from cxrbench.io import atomic_write_text, package_versions
from model import dynamics, run_dir
from model import resume as resume_state
from model.config import Config

log = logging.getLogger(__name__)
PACKAGES = ("cxrbench", "torch", "transformers", "deepspeed", "timm", "numpy", "pandas", "safetensors")


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

    from model.targets import chexpert_targets, class_weights
    from model.vocabularies import HEAD_INDEX

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


def output_priors(ds, train_qa, studies) -> dict[str, np.ndarray]:
    """Log prior odds of the sigmoid heads' classes in the training items (region and text
    items with a label; CheXpert over the training studies), for ``heads.prior_init``."""
    from model.targets import chexpert_targets, prior_log_odds
    from model.vocabularies import HEAD_INDEX

    t = ds.targets
    reg = (t.head == HEAD_INDEX["region"]) & t.region_valid
    txt = t.head == HEAD_INDEX["text"]
    rows = studies[studies["study_id"].isin(set(train_qa["study_id"].astype("int64")))]
    labels = np.stack([chexpert_targets(v, 0.0)[0] for v in rows["chexpert"]]) if len(rows) else np.zeros((0, 14))
    return {"region": prior_log_odds(t.region[reg].sum(0), reg.sum()),
            "text": prior_log_odds(t.findings[txt].sum(0), txt.sum()),
            "chexpert": prior_log_odds(labels.sum(0), len(rows))}


def to_device(batch: dict[str, Any], device, dtype) -> dict[str, Any]:
    """Batch tensors on ``device``; float inputs in the training dtype (targets stay fp32)."""
    import torch

    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            v = v.to(device, non_blocking=True)
            if v.is_floating_point() and k not in ("region", "findings", "chexpert", "chexpert_weight"):
                v = v.to(dtype)
        out[k] = v
    return out


@dataclass
class TrainState:
    """Where the run stands: the position is what a resume restores (saved with every checkpoint)."""

    epoch: int = 0
    micro_step: int = 0               # micro steps done in the current epoch
    global_step: int = 0              # optimizer steps done
    first_loss: float | None = None
    recent: list[float] = field(default_factory=list)     # the last 10 step losses
    last_saved: int = -1              # global step of the last checkpoint
    validation: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    validated_step: int = -1          # global step of the last validation
    dynamics: list[dict[str, Any]] = field(default_factory=list)     # RUN/dynamics.csv rows (rank 0)
    window: list[dict[str, Any]] = field(default_factory=list)       # log rows since the last validation

    def position(self) -> dict[str, int]:
        return {"epoch": self.epoch, "micro_step": self.micro_step, "global_step": self.global_step}


class Trainer:
    """One training run on one rank (every rank builds its own; rank 0 writes the run directory)."""

    def __init__(self, cfg: Config, index_dir: str | Path, run_dir_path: str | Path, *, resume: bool = False,
                 overwrite: bool = False, progress: bool = True):
        self.cfg, self.index_dir = cfg, Path(index_dir)
        self.paths = run_dir.RunPaths(Path(run_dir_path))
        self.resume_requested, self.overwrite, self.progress = resume, overwrite, progress
        self.rank, self.local_rank, self.world = dist_env()
        self.state = TrainState()
        self.writer = self.wandb_run = self.features = self.predictor = None

    # ---- set-up ---------------------------------------------------------------------------------
    def setup(self) -> None:
        import deepspeed
        import torch

        cfg, t = self.cfg, self.cfg.train
        if t.num_threads:
            torch.set_num_threads(t.num_threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        cuda = torch.cuda.is_available()
        deepspeed.init_distributed(dist_backend="nccl" if cuda else "gloo", verbose=False)
        self.device = torch.device(f"cuda:{self.local_rank}") if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        self._on_rank0_checked(self._claim_run_dir)
        self.resuming = self.resume_requested and self.paths.has_state()
        if self.resuming:     # before any long work: a state that will be refused is refused now
            self.resume_tag = self._checked_tag()
        self._setup_data()
        self._setup_model()
        self._setup_engine()

    def _claim_run_dir(self) -> None:
        run_dir.claim(self.paths.root, resume=self.resume_requested, overwrite=self.overwrite)
        run_dir.check_config(self.paths, self.cfg.to_dict(), self.resume_requested)
        atomic_write_text(self.paths.config, yaml.safe_dump(self.cfg.to_dict(), sort_keys=True))

    def _on_rank0_checked(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on rank 0; every rank raises when it fails (no rank left waiting)."""
        error: CxrbenchError | None = None
        if self.rank == 0:
            try:
                fn()
            except CxrbenchError as err:
                error = err
        if self.world > 1:
            import torch.distributed as dist

            box = [str(error) if error is not None else None]
            dist.broadcast_object_list(box, src=0)
            if box[0] is not None and error is None:
                error = CxrbenchError(box[0])
        if error is not None:
            raise error

    def _setup_data(self) -> None:
        from cxrbench.data.vocabulary import load_vocabulary
        from model.answers import AnswerBank
        from model.data import DatasetSettings, ImageStore, IndexData, QADataset, build_graphs
        from model.tokenizer import build_tokenizer
        from model.vocabularies import Vocabularies

        t, m = self.cfg.train, self.cfg.model
        index = self.index = IndexData.load(self.index_dir)
        if index.dataset_info is None:
            raise CxrbenchError(f"{self.index_dir}/manifest.json: names no dataset_info.json (vocabularies)")
        self.vocabs = Vocabularies.from_dataset(load_vocabulary(index.dataset_info))
        self.tokenizer = build_tokenizer(m.tokenizer.vocab, m.tokenizer.lowercase)
        self.graphs, self.graph_counts = build_graphs(index.studies, index.nodes, m.tokens.max_nodes,
                                                      m.tokens.scene_graph)
        qa = index.qa
        ok = answerable(qa, index.studies)
        train_qa = qa[(qa["split"] == t.train_split).to_numpy() & ok]
        if t.max_items is not None:
            train_qa = train_qa.iloc[: t.max_items]
        self.train_qa = train_qa
        self.eval_qa = qa[(qa["split"] == t.eval_split).to_numpy() & ok]
        self.validation_qa = dynamics.validation_subset(self.eval_qa, t.validate_rows, self.cfg.seed)
        if len(train_qa) == 0:
            raise CxrbenchError(f"{self.index_dir}: no {t.train_split!r} QA rows with a primary frontal image")
        self.settings = DatasetSettings(max_question_tokens=m.encoder.max_question_tokens,
                                        image_size=m.backbone.image_size, scene_graph=m.tokens.scene_graph,
                                        features=t.features, augment=t.augment, nan_weight=m.heads.aux_nan_weight,
                                        seed=self.cfg.seed)
        self.train_ds = QADataset(train_qa, self.graphs, self.vocabs, self.settings, studies=index.studies, train=True)
        self.bank = AnswerBank.build(self.train_ds.qa, self.train_ds.targets)
        self.images = ImageStore(index.image_root, m.backbone.image_size)

    def _setup_model(self) -> None:
        import torch.distributed as dist

        from model.backbone import backbone_fingerprint
        from model.feature_cache import FeatureCache
        from model.network import build_model

        t, m = self.cfg.train, self.cfg.model
        self.model = build_model(m, self.vocabs, self.tokenizer, seed=self.cfg.seed)
        if m.heads.prior_init:
            self.model.set_output_priors(**output_priors(self.train_ds, self.train_qa, self.index.studies))
        if t.gradient_checkpointing:
            self.model.enable_gradient_checkpointing()
        if t.features != "cache":
            return
        cache_path = Path(t.cache_path) if t.cache_path else self.paths.root / "features.h5"
        if self.rank == 0:
            variants = ("orig", "flip") if t.augment.hflip > 0 else ("orig",)
            studies = sorted(set(self.train_qa["study_id"].astype("int64")))
            counts = FeatureCache.build(cache_path, self.model.backbone, backbone_fingerprint(self.model.backbone),
                                        [self.graphs[s] for s in studies], self.images, variants=variants,
                                        progress=self.progress)
            log.info("feature cache %s: %s", cache_path, counts)
        if self.world > 1:
            dist.barrier()
        self.features = FeatureCache(cache_path)

    def _setup_engine(self) -> None:
        import deepspeed
        import torch

        from model.losses import VQALoss
        from model.sampling import EpochSampler

        cfg, t, m = self.cfg, self.cfg.train, self.cfg.model
        ds = self.train_ds
        self.sampler = EpochSampler(ds.targets, ds.qa["quality"].to_numpy() if "quality" in ds.qa else None,
                                    t, cfg.seed, t.batch_size, self.world, t.grad_accum)
        total = self.sampler.total_optimizer_steps()
        self.total_steps = min(total, t.max_steps) if t.max_steps is not None else total
        if self.total_steps == 0:
            raise CxrbenchError(f"no optimizer step fits: {len(ds)} items, batch {t.batch_size} x accumulation "
                                f"{t.grad_accum} x world size {self.world}")
        self.precision = resolve_precision(t.precision)
        optimizer = torch.optim.AdamW(param_groups(self.model, cfg), lr=t.lr, betas=(0.9, 0.999), eps=1e-8)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(self.total_steps, t.warmup_ratio))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.engine, _, _, self.scheduler = deepspeed.initialize(
                model=self.model, optimizer=optimizer, lr_scheduler=scheduler,
                config=deepspeed_config(cfg, self.world, self.precision))
        resume_state.install_safe_loader(self.engine)
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision, torch.float32)
        region_w, finding_w, chexpert_w = class_weight_tensors(ds, self.train_qa, self.index.studies,
                                                               m.heads.class_weighting)
        self.criterion = VQALoss(m.heads, region_w, finding_w, chexpert_w).to(self.device)

    # ---- resume ---------------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from the last saved state, or start afresh (a stale log of a run killed before
        its first checkpoint is dropped)."""
        if self.resuming:
            self._load_state()
        elif self.rank == 0:
            run_dir.truncate_log(self.paths.log, 0)
            self.paths.dynamics.unlink(missing_ok=True)
        if self.rank == 0:
            self._open_loggers()

    def _checked_tag(self) -> str:
        """The tag to resume from, its files checked on every rank (all ranks raise or none)."""
        where, tag, problem = self.paths.deepspeed, None, None
        try:
            tag = resume_state.latest_tag(where)
            problem = resume_state.check_state(where, tag, self.world, self.cfg.train.zero_stage)
        except CxrbenchError as err:
            problem = str(err)
        problems = [problem]
        if self.world > 1:
            import torch.distributed as dist

            problems = [None] * self.world
            dist.all_gather_object(problems, problem)
        first = next((p for p in problems if p), None)
        if first:
            raise CxrbenchError(first)
        return tag

    def _load_state(self) -> None:
        s = self.state
        where, tag = self.paths.deepspeed, self.resume_tag
        _, client = self.engine.load_checkpoint(str(where), tag=tag)
        if client is None:
            raise CxrbenchError(f"{where / tag}: could not load the DeepSpeed state")
        position = resume_state.client_position(client, where / tag)
        s.epoch, s.micro_step, s.global_step = position["epoch"], position["micro_step"], position["global_step"]
        s.last_saved = s.global_step
        s.first_loss = client.get("first_loss")
        rngs = client["rng"]
        resume_state.set_rng_state(rngs[self.rank] if self.rank < len(rngs) else rngs[0])
        if self.rank == 0:
            run_dir.truncate_log(self.paths.log, s.global_step)
            saved = self.paths.checkpoint / "training_metadata.json"
            meta = json.loads(saved.read_text()) if saved.is_file() else {}
            if meta.get("step") == s.global_step:   # the validation the checkpoint of this step recorded
                s.validation.update(meta.get("validation") or {})
            s.dynamics = [row for row in dynamics.read(self.paths.dynamics) if row["step"] <= s.global_step]
            if self.paths.dynamics.exists():
                dynamics.write(self.paths.dynamics, s.dynamics)
            s.validated_step = max((row["step"] for row in s.dynamics), default=-1)
            log_rows = [json.loads(line) for line in self.paths.log.read_text().splitlines() if line.strip()] \
                if self.paths.log.exists() else []
            s.window = [row for row in log_rows if row["step"] > s.validated_step]
            s.recent = [json.loads(line)["loss"] for line in self.paths.log.read_text().splitlines()
                        if line.strip()][-10:] if self.paths.log.exists() else []
            log.info("resumed at step %d (epoch %d, micro step %d)", s.global_step, s.epoch, s.micro_step)

    def _open_loggers(self) -> None:
        cfg, t = self.cfg, self.cfg.train
        if t.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # a resume drops the events of the steps it redoes
            purge = self.state.global_step + 1 if self.resuming else None
            self.writer = SummaryWriter(str(self.paths.tensorboard), purge_step=purge)
        if t.wandb:
            try:
                import wandb
            except ImportError as err:
                raise CxrbenchError("train.wandb needs the wandb package (pip install 'cxrbench[wandb]')") from err
            self.wandb_run = wandb.init(mode="offline", dir=str(self.paths.root), config=cfg.to_dict(),
                                        name=f"{cfg.name}-{cfg.model.condition}-seed{cfg.seed}", resume="allow")

    # ---- one optimizer step ---------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """``grad_accum`` micro steps and the optimizer step they end with; returns its log row."""
        import torch
        import torch.distributed as dist

        from model.data import collate

        s, t = self.state, self.cfg.train
        epoch = s.epoch
        terms_sum: dict[str, float] = {}
        for _ in range(t.grad_accum):
            idx = self.sampler.batch(epoch, s.micro_step, self.rank)
            items = [self.train_ds.item(int(i), epoch) for i in idx]
            batch = collate(items, self.tokenizer, self.settings, features=self.features, images=self.images)
            batch = to_device(batch, self.device, self.dtype)
            out = self.engine(batch)
            loss, terms = self.criterion(out, batch)
            self.engine.backward(loss)
            self.engine.step()
            s.micro_step += 1
            for k, v in terms.items():
                terms_sum[k] = terms_sum.get(k, 0.0) + float(v)
            terms_sum["loss"] = terms_sum.get("loss", 0.0) + float(loss.detach())
        s.global_step += 1
        vec = torch.tensor([terms_sum.get("loss", 0.0)], dtype=torch.float64)
        if self.world > 1:
            dist.all_reduce(vec)
        mean_loss = float(vec[0]) / (t.grad_accum * self.world)
        row = {"step": s.global_step, "epoch": epoch, "loss": mean_loss, "lr": float(self.scheduler.get_last_lr()[0])}
        row.update({k: v / t.grad_accum for k, v in sorted(terms_sum.items()) if k != "loss"})
        if s.first_loss is None:
            s.first_loss = mean_loss
        s.recent = (s.recent + [mean_loss])[-10:]
        if self.rank == 0:
            self._log_row(row)
            s.window.append(row)
        return row

    def _log_row(self, row: dict[str, Any]) -> None:
        step, every = row["step"], self.cfg.train.log_every
        with open(self.paths.log, "a") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.writer is not None and step % every == 0:
            for k, v in row.items():
                if k not in ("step", "epoch"):
                    self.writer.add_scalar(f"train/{k}", v, step)
        if self.wandb_run is not None and step % every == 0:
            self.wandb_run.log(row, step=step)

    # ---- validation, checkpoints, thresholds ------------------------------------------------------
    def _bundle(self):
        from model.checkpoint import CheckpointBundle

        return CheckpointBundle(self.engine.module, self.cfg.model, self.tokenizer, self.vocabs, self.bank, {},
                                self.paths.checkpoint)

    def validate(self, epoch: int) -> None:
        """Metrics on the validation subset (rank 0): the checkpoint's ``validation`` record and
        the rows of RUN/dynamics.csv (model/dynamics.py), with the training loss since the last
        validation. At most once per step."""
        from model.evaluation import head_accuracy

        s = self.state
        if s.validated_step == s.global_step:
            return
        s.validated_step = s.global_step
        if self.rank == 0 and len(self.validation_qa):
            self.engine.module.eval()
            frame = self._validation_predictor().predict(self.validation_qa)
            self.engine.module.train()
            s.validation.clear()
            s.validation.update({k: v for k, v in head_accuracy(frame).items() if v is not None})
            s.validation["epoch"] = epoch
            ident = {"condition": self.cfg.model.condition, "seed": self.cfg.seed, "step": s.global_step,
                     "epoch": epoch}
            s.dynamics += dynamics.validation_rows(frame, ident) + dynamics.loss_rows(s.window, ident)
            s.window = []
            dynamics.write(self.paths.dynamics, s.dynamics)
            if self.writer is not None:
                for k, v in s.validation.items():
                    if k.startswith("accuracy/"):
                        self.writer.add_scalar(f"val/{k}", v, s.global_step)
        self._barrier()

    def _validation_predictor(self):
        """The predictor of the model being trained; kept between validations while the backbone
        is frozen (its per-image features cannot change), rebuilt when it is trained."""
        from model.inference import Predictor

        if self.predictor is None or self.cfg.model.backbone.train:
            self.predictor = Predictor(self._bundle(), self.index_dir, use_scene_graph=True,
                                       batch_size=max(64, self.cfg.train.batch_size))
        return self.predictor

    def metadata(self) -> dict[str, Any]:
        s, m = self.state, self.cfg.model
        return {"step": s.global_step, "epoch": s.epoch, "seed": self.cfg.seed, "condition": m.condition,
                "config_name": self.cfg.name, "data_index_hash": self.index.index_hash(),
                "data_index": str(self.index_dir), "packages": package_versions(PACKAGES),
                "world_size": self.world, "precision": self.precision, "train": self.cfg.to_dict()["train"],
                "n_train_items": len(self.train_ds), "n_eval_items": len(self.eval_qa),
                "total_steps": self.total_steps, "first_loss": s.first_loss, "last_losses": s.recent[-10:],
                "graph_counts": dict(self.graph_counts), "missing_labels": dict(self.train_ds.targets.missing),
                "validation": s.validation, "thresholds": s.thresholds}

    def _write_checkpoint(self) -> None:
        from model.checkpoint import save_checkpoint

        save_checkpoint(self.paths.checkpoint, self.engine.module, self.cfg.model, self.vocabs, self.tokenizer,
                        self.bank, self.metadata())

    def save(self) -> None:
        """DeepSpeed state (every rank) + the checkpoint directory (rank 0), at the current step."""
        s = self.state
        s.last_saved = s.global_step
        client = {"position": s.position(), "rng": self._gathered_rng(), "first_loss": s.first_loss}
        self.engine.save_checkpoint(str(self.paths.deepspeed), tag=f"step{s.global_step:08d}", client_state=client)
        self._barrier()
        if self.rank == 0:
            self._write_checkpoint()
            tags = sorted(p for p in self.paths.deepspeed.glob("step*") if p.is_dir())
            for old in tags[: max(0, len(tags) - self.cfg.train.keep_last)]:
                shutil.rmtree(old, ignore_errors=True)
            log.info("checkpoint saved at step %d", s.global_step)
            print(f"checkpoint saved at step {s.global_step}", flush=True)
        self._barrier()

    def _gathered_rng(self) -> list[dict[str, Any]]:
        state = resume_state.rng_state()
        if self.world == 1:
            return [state]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, state)
        return out

    def tune_thresholds(self) -> None:
        """The text head's per-finding thresholds, from the validation split (model/thresholds.py)."""
        cfg = self.cfg
        if not (cfg.train.tune_thresholds and cfg.model.heads.kind == "multi" and len(self.eval_qa)):
            return
        if self.rank == 0:
            from model.thresholds import tune_on_split

            s = self.state
            s.thresholds.clear()
            s.thresholds.update(tune_on_split(self._bundle(), self.index_dir, self.eval_qa,
                                              batch_size=max(64, cfg.train.batch_size), seed=cfg.seed))
            s.thresholds["split"] = cfg.train.eval_split
            self._write_checkpoint()
            log.info("text-head thresholds tuned on %s: exact match %.3f -> %.3f", cfg.train.eval_split,
                     s.thresholds.get("exact_match_at_default", float("nan")),
                     s.thresholds.get("exact_match_tuned", float("nan")))
        self._barrier()

    def _barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train to the end of the schedule (or ``train.max_steps``); returns the summary."""
        from tqdm import tqdm

        s, t = self.state, self.cfg.train
        self.engine.train()
        bar = tqdm(total=self.total_steps, initial=s.global_step, desc=f"train {self.cfg.model.condition}",
                   unit="step", disable=not self.progress or self.rank != 0)
        while s.global_step < self.total_steps and s.epoch < self.sampler.n_epochs:
            n_micro = self.sampler.micro_steps(s.epoch)
            if s.micro_step >= n_micro:          # an epoch too small for one optimizer step
                s.epoch, s.micro_step = s.epoch + 1, 0
                continue
            epoch = s.epoch
            row = self.step()
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            done = s.global_step >= self.total_steps
            end_of_epoch = s.micro_step >= n_micro
            if end_of_epoch:
                s.epoch, s.micro_step = s.epoch + 1, 0
            if (t.validate_every and s.global_step % t.validate_every == 0) or \
                    (t.eval_every_epoch and end_of_epoch) or (done and (t.eval_every_epoch or t.validate_every)):
                self.validate(epoch)
            if done or s.global_step % t.save_every == 0:
                self.save()
        bar.close()
        if s.last_saved != s.global_step:
            self.save()
        self.tune_thresholds()
        return {"step": s.global_step, "epoch": s.epoch, "first_loss": s.first_loss,
                "last_loss": s.recent[-1] if s.recent else None, "validation": dict(s.validation),
                "checkpoint": str(self.paths.checkpoint)}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()
        if self.features is not None:
            self.features.close()


def train(cfg: Config, index_dir: str | Path, run_dir_path: str | Path, *, resume: bool = False,
          overwrite: bool = False, progress: bool = True, push_to_hub: str | None = None) -> dict[str, Any]:
    """Train (or resume) one run; every rank calls this. Returns rank 0's summary."""
    trainer = Trainer(cfg, index_dir, run_dir_path, resume=resume, overwrite=overwrite, progress=progress)
    trainer.setup()
    try:
        trainer.resume()
        summary = trainer.run()
    finally:
        trainer.close()
    if trainer.rank == 0 and push_to_hub:
        from model.hub import push_checkpoint

        push_checkpoint(trainer.paths.checkpoint, push_to_hub)
    trainer._barrier()
    return summary
