"""Find and open the book's inputs: run dirs, training runs, comparisons, a study, statistics,
the index and error analyses, under one folder (the ``inputs`` setting).

The folders are recognised by the files their command writes (docs/contracts.md), so the same
code reads ``make demo``'s output (``eval/<condition>/``, ``runs/<condition>/``, ``compare/``),
a study of ``cxrbench ablate`` (§7: ``eval/<condition>/seed<S>/``, ``compare/seed<S>/``,
``study.json``), a single run dir, or any folder holding such folders. Everything is read with
cxrbench's readers (:func:`cxrbench.runs.read_run`, the JSON and CSV files as written); numbers
shown in the book are the numbers in those files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from cxrbench.errors import reading

MAX_DEPTH = 4
# folders that hold no book input (large trees, caches, per-run internals)
SKIP = {"shards", "checkpoint", "deepspeed", "tensorboard", "features", "attention", "overlays", "files", "logs",
        "mimic-cxr-jpg", "mimic-ext-cxr-qba", "synthetic_truth", "physionet.org", "_build", ".git", "__pycache__"}
SEED_DIR = re.compile(r"^seed(\d+)$")
CROSS_DATASETS = ("vqa-rad", "slake")
GENERATOR = "cxrbench synth"


def read_json(path: Path) -> Any:
    with reading(path, what="JSON file"):
        return json.loads(Path(path).read_text())


def read_csv(path: Path) -> pd.DataFrame:
    with reading(path, what="CSV file"):
        return pd.read_csv(path)


def _seed_of(path: Path) -> int | None:
    m = SEED_DIR.match(path.name)
    return int(m.group(1)) if m else None


@dataclass
class RunDir:
    """An evaluation run dir (§3)."""

    path: Path
    metrics: dict

    @property
    def provenance(self) -> dict:
        return self.metrics.get("provenance") or {}

    @property
    def condition(self) -> str:
        c = self.provenance.get("ablation_condition")
        if c:
            return str(c)
        return self.path.parent.name if _seed_of(self.path) is not None else self.path.name

    @property
    def seed(self) -> int | None:
        return _seed_of(self.path)

    @property
    def dataset(self) -> str | None:
        """The cross-dataset benchmark of a zero-shot run (seed 16.3), else None (MIMIC)."""
        d = self.provenance.get("dataset")
        return str(d) if d in CROSS_DATASETS else None

    @property
    def name(self) -> str:
        base = self.condition if self.dataset is None else f"{self.condition} on {self.dataset}"
        return base if self.seed is None else f"{base} (seed {self.seed})"

    def file(self, relative: str) -> Path | None:
        p = self.path / relative
        return p if p.is_file() else None

    def json(self, relative: str) -> dict | None:
        p = self.file(relative)
        return read_json(p) if p else None

    def predictions(self, columns: list[str] | None = None) -> pd.DataFrame:
        """predictions.parquet through :func:`cxrbench.runs.read_run` (key-checked)."""
        from cxrbench.runs import read_run
        from cxrbench.score.contract import REQUIRED

        if columns is not None:
            have = set(_parquet_columns(self.path / "predictions.parquet"))
            columns = [c for c in dict.fromkeys([*REQUIRED, "study_id", *columns]) if c in have]
        return read_run(self.path, columns=columns).frame


def _parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    with reading(path, what="Parquet file"):
        return list(pq.read_schema(path).names)


@dataclass
class TrainingRun:
    """A ``cxrbench train`` run dir (§5): train_log.jsonl, dynamics.csv, checkpoint/."""

    path: Path

    @cached_property
    def metadata(self) -> dict:
        p = self.path / "checkpoint" / "training_metadata.json"
        return read_json(p) if p.is_file() else {}

    @property
    def condition(self) -> str:
        c = self.metadata.get("ablation_condition") or self.metadata.get("condition")
        if c:
            return str(c)
        return self.path.parent.name if _seed_of(self.path) is not None else self.path.name

    @property
    def seed(self) -> int | None:
        s = _seed_of(self.path)
        return s if s is not None else self.metadata.get("seed")

    def loss(self) -> pd.DataFrame | None:
        p = self.path / "train_log.jsonl"
        if not p.is_file() or p.stat().st_size == 0:
            return None
        with reading(p, what="JSON lines file"):
            return pd.read_json(p, lines=True)

    def dynamics(self) -> pd.DataFrame | None:
        p = self.path / "dynamics.csv"
        return read_csv(p) if p.is_file() else None


@dataclass
class Inputs:
    root: Path
    runs: list[RunDir] = field(default_factory=list)
    training: list[TrainingRun] = field(default_factory=list)
    comparisons: list[Path] = field(default_factory=list)
    studies: list[Path] = field(default_factory=list)
    stats: list[Path] = field(default_factory=list)
    indexes: list[Path] = field(default_factory=list)
    errors: list[Path] = field(default_factory=list)

    @property
    def mimic_runs(self) -> list[RunDir]:
        return [r for r in self.runs if r.dataset is None]

    @property
    def zero_shot_runs(self) -> list[RunDir]:
        return [r for r in self.runs if r.dataset is not None]

    def primary_runs(self) -> list[RunDir]:
        """One MIMIC run per condition: the lowest seed's; ``full`` first."""
        best: dict[str, RunDir] = {}
        for r in sorted(self.mimic_runs, key=lambda r: (r.seed is None, r.seed or 0, str(r.path))):
            best.setdefault(r.condition, r)
        return sorted(best.values(), key=lambda r: (r.condition != "full", str(r.path)))

    def study(self) -> dict | None:
        return read_json(self.studies[0] / "study.json") if self.studies else None

    def study_file(self, name: str) -> Path | None:
        for s in self.studies:
            if (s / name).is_file():
                return s / name
        return None


def _classify(folder: Path, found: Inputs) -> bool:
    """Record ``folder`` if it is one of the known outputs; True when its inside holds nothing
    else to look for."""
    has = lambda name: (folder / name).is_file()
    if has("predictions.parquet") and has("metrics.json"):
        found.runs.append(RunDir(folder, read_json(folder / "metrics.json")))
        return True
    if has("study.json"):                   # its own tables (dynamics.csv, ...) sit beside the runs: walk on
        found.studies.append(folder)
        return False
    if has("comparison.json"):
        found.comparisons.append(folder)
        return True
    if has("train_log.jsonl") or has("dynamics.csv") or (folder / "checkpoint" / "training_metadata.json").is_file():
        found.training.append(TrainingRun(folder))
        return True
    if has("stats.json"):
        found.stats.append(folder)
        return True
    if has("manifest.json") and has("qa.parquet"):
        found.indexes.append(folder)
        return True
    if has("summary.json") and (has("items.parquet") or has("strata.csv")):
        found.errors.append(folder)
        return True
    return False


def discover(root: str | Path) -> Inputs:
    """Every known output folder under ``root`` (``root`` included), at most ``MAX_DEPTH`` deep,
    in path order."""
    root = Path(root)
    found = Inputs(root)
    if not root.is_dir():
        return found

    def walk(folder: Path, depth: int) -> None:
        if _classify(folder, found) or depth >= MAX_DEPTH:
            return
        for child in sorted(p for p in folder.iterdir() if p.is_dir()):
            if child.name not in SKIP and not child.name.startswith("."):
                walk(child, depth + 1)

    walk(root, 0)
    for study in found.studies:             # a study's index may lie outside it (study.json index.path)
        rel = (read_json(study / "study.json").get("index") or {}).get("path")
        idx = (study / rel).resolve() if rel else None
        if idx and (idx / "manifest.json").is_file() and idx not in [i.resolve() for i in found.indexes]:
            found.indexes.append(idx)
    return found


def data_roots(inputs: Inputs) -> list[Path]:
    """Dataset roots the inputs were made from: the MIMIC-Ext-CXR-QBA root of every index
    (its manifest's roots are relative to the index folder), else ``inputs/data``."""
    roots = []
    for idx in inputs.indexes:
        rel = (read_json(idx / "manifest.json").get("roots") or {}).get("mimic_ext_cxr_qba")
        if rel:
            roots.append((Path(idx).resolve() / rel).resolve())
    return roots


def _generator(qba_root: Path) -> Path | None:
    from cxrbench.data.layout import TRUTH_DIR

    for folder in (qba_root, *qba_root.parents[:4]):
        cand = folder / TRUTH_DIR / "generator.json"
        if cand.is_file():
            return cand
    return None


def synthetic_status(root: str | Path) -> tuple[bool, str]:
    """(True, why) when every dataset the inputs were made from is the synthetic generator's
    (``synthetic_truth/generator.json`` beside the release trees); (False, why) otherwise, also
    when no dataset can be found (the safe side for MIMIC's data use agreement)."""
    inputs = discover(root)
    roots = data_roots(inputs)
    if not roots:
        return False, "no index with a dataset root found under the inputs: treated as real data"
    real = [r for r in roots if not _is_generated(r)]
    if real:
        return False, f"{len(real)} of {len(roots)} dataset root(s) are not the synthetic generator's"
    return True, f"all {len(roots)} dataset root(s) were written by {GENERATOR}"


def _is_generated(qba_root: Path) -> bool:
    gen = _generator(qba_root)
    return gen is not None and read_json(gen).get("generator") == GENERATOR


def metric_table(runs: list[RunDir], group: str, metrics: list[str]) -> pd.DataFrame:
    """Long table of metrics.json entries: run, condition, seed, stratum, metric, value, ci_low,
    ci_high, n. ``group``: ``overall`` or a strata key (``by_question_type``, ``by_head``, ...)."""
    rows = []
    for run in runs:
        block = run.metrics.get(group) or {}
        strata = {"overall": block} if group == "overall" else block
        for stratum, entries in strata.items():
            for metric in metrics:
                e = (entries or {}).get(metric)
                if not isinstance(e, dict):
                    continue
                lo, hi = (e.get("ci") or [None, None])[:2]
                rows.append({"run": run.name, "condition": run.condition, "seed": run.seed, "stratum": stratum,
                             "metric": metric, "value": e.get("value"), "ci_low": lo, "ci_high": hi,
                             "n": e.get("n")})
    cols = ["run", "condition", "seed", "stratum", "metric", "value", "ci_low", "ci_high", "n"]
    return pd.DataFrame(rows, columns=cols)
