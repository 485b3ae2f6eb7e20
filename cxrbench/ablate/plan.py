"""A study's options, its steps and its manifest ``study.json`` (docs/contracts.md §7).

The steps of a study over conditions C and seeds S: for each seed, each condition's ``train``
and ``evaluate``; one ``compare`` per seed (every condition against ``full``); one ``summary``.
The manifest records the study's identity (resolved configs, index, conditions, seeds, split,
evaluation settings) and each step's status, and is rewritten atomically after every change:
a killed study is continued by running the same command again.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cxrbench.errors import CxrbenchError, reading

FORMAT = "cxrbench-study/1"
MANIFEST = "study.json"
BASELINE = "full"
KINDS = ("train", "evaluate", "compare", "summary")
STATUSES = ("pending", "running", "done", "failed")
SCALES = ("points", "relative")


@dataclass(frozen=True)
class StudyOptions:
    """Everything a study is made of besides the index and the output folder."""

    config: str = "tiny"                  # tiny | full | a YAML file (cxrbench train --config)
    conditions: tuple[str, ...] = ()      # empty: every condition the model package defines
    seeds: tuple[int, ...] = (0,)
    split: str = "test"                   # evaluated split
    max_steps: int | None = None          # optimizer steps per run (train.max_steps)
    overrides: tuple[str, ...] = ()       # cxrbench train --set KEY=VALUE, for every run
    n_resamples: int = 10_000             # evaluate and compare bootstrap
    bootstrap_seed: int = 0
    skip: tuple[str, ...] = ()            # metrics evaluate leaves out (e.g. bertscore_f1)
    jobs: int = 1                         # steps run at the same time (each a one-thread process)
    share_features: bool = True           # runs with the same backbone and boxes share a feature cache
    seed_test: bool = False               # paired t across seeds in seed_spread.csv
    expected_scale: str = "points"        # the design's "%" in 16.2: points or relative change
    targets: tuple[float, ...] = ()       # steps-to-target levels; empty: target_fraction of full's final value
    target_fraction: float = 0.9
    loss_bin: int = 0                     # steps per loss_curve.csv bin; 0: about 100 bins
    alpha: float = 0.05
    correction: str = "bonferroni"
    matrix_metric: str = "exact_match"   # the ablation matrix's metric (cxrbench compare --matrix-metric)
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        if self.conditions and BASELINE not in self.conditions:
            raise ValueError(f"the conditions must include the baseline {BASELINE!r}")
        if self.conditions and len(self.conditions) < 2:
            raise ValueError("a study compares at least two conditions")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")
        if self.expected_scale not in SCALES:
            raise ValueError(f"expected_scale must be one of {SCALES}, got {self.expected_scale!r}")
        if not 0 < self.target_fraction <= 1:
            raise ValueError(f"target_fraction must lie in (0, 1], got {self.target_fraction}")
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be at least 1 (evaluate and compare bootstrap), got {self.n_resamples}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")

    def compare_settings(self) -> dict[str, Any]:
        """What the comparisons depend on besides the evaluations (a change redoes only them)."""
        return {"alpha": self.alpha, "correction": self.correction, "matrix_metric": self.matrix_metric}

    def train_overrides(self) -> tuple[str, ...]:
        """The overrides every run is trained with (``--max-steps`` becomes ``train.max_steps``,
        as ``cxrbench train`` does)."""
        return (*self.overrides, *(() if self.max_steps is None else (f"train.max_steps={self.max_steps}",)))


@dataclass
class Step:
    id: str
    kind: str
    condition: str | None = None
    seed: int | None = None
    out: str | None = None                # relative to the study folder
    needs: list[str] = field(default_factory=list)
    status: str = "pending"
    attempts: int = 0
    message: str | None = None
    fresh: bool = False                   # --overwrite asked for, not yet done: the step's command gets --overwrite

    @property
    def log_name(self) -> str:
        return "-".join(str(x) for x in (self.kind, self.condition, None if self.seed is None else f"seed{self.seed}")
                        if x is not None) + ".log"


def run_dir(condition: str, seed: int) -> str:
    return f"runs/{condition}/seed{seed}"


def eval_dir(condition: str, seed: int) -> str:
    return f"eval/{condition}/seed{seed}"


def compare_dir(seed: int) -> str:
    return f"compare/seed{seed}"


def plan_steps(conditions: list[str], seeds: tuple[int, ...]) -> list[Step]:
    """Every step of the study in the order the scheduler prefers them (ready steps start in
    this order: a seed's trainings and evaluations, then its comparison)."""
    steps: list[Step] = []
    for seed in seeds:
        for cond in conditions:
            steps.append(Step(f"train/{cond}/seed{seed}", "train", cond, seed, run_dir(cond, seed)))
            steps.append(Step(f"evaluate/{cond}/seed{seed}", "evaluate", cond, seed, eval_dir(cond, seed),
                              [f"train/{cond}/seed{seed}"]))
        steps.append(Step(f"compare/seed{seed}", "compare", None, seed, compare_dir(seed),
                          [f"evaluate/{c}/seed{seed}" for c in conditions]))
    steps.append(Step("summary", "summary", needs=[f"compare/seed{s}" for s in seeds]))
    return steps


def identity(options: StudyOptions, conditions: list[str], config_sha256: str, index_sha256: str) -> dict[str, Any]:
    """What a study is: a rerun must have the same identity to continue it."""
    return {"config": {"argument": options.config, "overrides": list(options.overrides),
                       "max_steps": options.max_steps, "sha256": config_sha256},
            "index_sha256": index_sha256, "conditions": list(conditions), "seeds": list(options.seeds),
            "split": options.split,
            "evaluate": {"n_resamples": options.n_resamples, "bootstrap_seed": options.bootstrap_seed,
                         "skip": list(options.skip)}}


@dataclass
class Manifest:
    """``study.json`` in memory; :meth:`save` rewrites it atomically."""

    path: Path
    data: dict[str, Any]
    steps: list[Step]

    @classmethod
    def load(cls, study: Path) -> "Manifest | None":
        path = Path(study) / MANIFEST
        if not path.is_file():
            return None
        with reading(path, what="study manifest"):
            data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise CxrbenchError(f"{path}: not a cxrbench study manifest (format {data.get('format')!r})")
        return cls(path, data, [Step(**s) for s in data.get("steps", [])])

    def identity(self) -> dict[str, Any]:
        d = self.data
        return {"config": d.get("config"), "index_sha256": (d.get("index") or {}).get("sha256"),
                "conditions": d.get("conditions"), "seeds": d.get("seeds"), "split": d.get("split"),
                "evaluate": d.get("evaluate")}

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def save(self) -> None:
        from cxrbench.io import atomic_write_json

        atomic_write_json(self.path, {**self.data, "steps": [asdict(s) for s in self.steps]})


def new_manifest(study: Path, index: Path, ident: dict[str, Any], runs: dict[str, Any], steps: list[Step],
                 provenance: dict[str, Any]) -> Manifest:
    """The manifest of a study starting (or starting over): every step pending."""
    data = {"format": FORMAT, "provenance": provenance, "config": ident["config"],
            "index": {"path": os.path.relpath(Path(index).resolve(), Path(study).resolve()),
                      "sha256": ident["index_sha256"]},
            "baseline": BASELINE, "conditions": ident["conditions"], "seeds": ident["seeds"], "split": ident["split"],
            "evaluate": ident["evaluate"], "runs": runs}
    return Manifest(Path(study) / MANIFEST, data, steps)


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Top-level identity fields that differ (``config`` also by its sub-fields)."""
    out = []
    for key in new:
        if key == "config":
            out += [f"config.{k}" for k in new[key] if (old.get(key) or {}).get(k) != new[key][k]]
        elif old.get(key) != new[key]:
            out.append(key)
    return out
