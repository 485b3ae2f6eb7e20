"""The run directory of ``cxrbench train``: its layout, its claim, and the checks before a (re)start.

::

    RUN/
      .cxrbench-output.json  owner marker (cxrbench.outputs): this folder belongs to cxrbench train
      config.yaml            the resolved config (a resume must match it)
      features.h5            backbone RoI feature cache (train.features: cache)
      checkpoint/            the checkpoint (model.checkpoint), rewritten at every save
      deepspeed/stepNNNNNNNN/, latest   resume state (model.resume)
      train_log.jsonl        one line per optimizer step: step, epoch, loss terms, lr
      dynamics.csv           validation metrics per head and question type at regular steps
      tensorboard/, wandb/   optional loggers (rank 0)

:func:`claim` makes the folder train's own before any work (``cxrbench.outputs.OutputDir``): a
non-empty folder that train did not create is refused; ``--overwrite`` lets train use it but
never deletes what train did not write (an entry of the layout above that train did not write
there is refused even then), and on a folder of train's own starts over, keeping only the
feature cache (it is revalidated against the backbone and the boxes).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cxrbench.errors import CxrbenchError
from cxrbench.io import atomic_write_text
from cxrbench.outputs import OutputDir
from model.config import ConfigError

COMMAND = "cxrbench train"
ENTRIES = ("config.yaml", "features.h5", "checkpoint", "deepspeed", "train_log.jsonl", "dynamics.csv",
           "tensorboard", "wandb")
KEPT_ON_OVERWRITE = ("features.h5",)


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
    def dynamics(self) -> Path:
        return self.root / "dynamics.csv"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def has_state(self) -> bool:
        return (self.deepspeed / "latest").is_file()


def claim(root: str | Path, *, resume: bool, overwrite: bool) -> RunPaths:
    """Claim ``root`` for ``cxrbench train`` (see the module docstring); raises CxrbenchError
    before anything is written or deleted when the folder is not train's to use."""
    paths = RunPaths(Path(root))
    out = OutputDir.claim(paths.root, COMMAND, overwrite=overwrite)
    foreign = [name for name in ENTRIES if (paths.root / name).exists() and name not in out.owned]
    if foreign:
        raise CxrbenchError(f"{paths.root}: holds {', '.join(foreign)}, not written by {COMMAND}; "
                            "move it away or choose another --out (--overwrite never replaces what train did not write)")
    if overwrite and not resume:
        for name in ENTRIES:
            target = paths.root / name
            if name in KEPT_ON_OVERWRITE or not (target.exists() or target.is_symlink()):
                continue
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    out.adopt(*ENTRIES)
    return paths


def check_config(paths: RunPaths, config: dict[str, Any], resume: bool) -> None:
    """A resume must continue the same config; a fresh start must not silently bury a state."""
    resolved = yaml.safe_dump(config, sort_keys=True)
    if resume and paths.config.exists():
        saved = paths.config.read_text()
        if saved != resolved:
            try:
                old = yaml.safe_load(saved)
            except yaml.YAMLError:
                old = None
            diff = sorted(_diff_keys(old, config)) if isinstance(old, dict) else ["(unreadable YAML)"]
            raise ConfigError(f"{paths.config}: --resume with a different config (changed: {', '.join(diff[:8])})")
    elif not resume and paths.has_state():
        raise CxrbenchError(f"{paths.root}: holds a training state; pass --resume to continue it, --overwrite to "
                            "start over, or choose another --out")


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [prefix.rstrip(".")] if a != b else []


def truncate_log(path: Path, step: int) -> None:
    """Drop log lines past ``step``: a killed run logged steps the resume will redo (and a fresh
    start after a kill before the first checkpoint redoes them all)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for number, line in enumerate(lines, 1):
        try:
            row_step = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            if number == len(lines):
                break              # a line cut short by the kill
            raise CxrbenchError(f"{path}: line {number} is not a training log row; the run directory is damaged") from None
        if row_step <= step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))
