"""Sharded, resumable, deterministic inference, on one process or many.

The QA rows, in their final order, are cut into shards of ``shard_size`` rows. Shard ``i`` is
predicted, post-processed (per-item attention scores) and written atomically to
``shards/shard-0000i.parquet`` with the inputs' fingerprint in ``shards/manifest.json``. A
killed run started again with the same inputs skips the finished shards; other inputs are
refused (``overwrite`` discards them). Rows are identified by their QA-pair key
(:func:`cxrbench.score.contract.qa_keys`), so a shard is checked to hold exactly its pairs.

**Many processes** (``torchrun``, ``srun`` or any launcher that sets ``RANK`` / ``WORLD_SIZE``;
:class:`World`): rank ``r`` of ``W`` predicts the shards ``i`` with ``i % W == r``, all into the
same shard folder (a filesystem every rank sees). Rank 0 prepares the folder, waits until every
shard exists (or a rank reports its failure in ``failed-rank<R>.txt``) and merges; the other
ranks return None once their shards are written. Each shard is computed exactly as a
one-process run computes it, so the merged predictions are byte-identical to one process's.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from cxrbench.errors import CxrbenchError, DataError, reading
from cxrbench.io import atomic_write_json, atomic_write_parquet, atomic_write_text, dumps_json
from cxrbench.score.contract import qa_keys

SHARD_SIZE = 2048
SHARD_DIR = "shards"
SHARD_MANIFEST = "manifest.json"
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class World:
    """This process's place among the evaluation processes (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: dict | None = None) -> "World":
        env = os.environ if env is None else env
        try:
            world = cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))
        except ValueError as err:
            raise CxrbenchError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers: {err}") from None
        if world.size < 1 or not 0 <= world.rank < world.size:
            raise CxrbenchError(f"RANK {world.rank} outside WORLD_SIZE {world.size}")
        return world

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def owns(self, shard: int) -> bool:
        return shard % self.size == self.rank


def fingerprint(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``fields``: what a shard directory was made from."""
    return hashlib.sha256(dumps_json(fields).encode()).hexdigest()


def shard_path(shard_dir: Path, i: int) -> Path:
    return shard_dir / f"shard-{i:05d}.parquet"


def _failure_path(shard_dir: Path, rank: int) -> Path:
    return shard_dir / f"failed-rank{rank}.txt"


def _prepare(shard_dir: Path, manifest: dict, overwrite: bool, started: float) -> None:
    """Rank 0: make the folder hold this evaluation's manifest (refusing another's shards)."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    for tmp in shard_dir.glob(".shard-*.tmp"):   # a write killed before its rename
        tmp.unlink()
    for failed in shard_dir.glob("failed-rank*.txt"):
        if failed.stat().st_mtime < started:     # a previous launch's, not this one's
            failed.unlink()
    path = shard_dir / SHARD_MANIFEST
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = {}
        if old.get("fingerprint") == manifest["fingerprint"]:
            return
        if not overwrite:
            changed = sorted(k for k in set(old.get("inputs", {})) | set(manifest["inputs"])
                             if old.get("inputs", {}).get(k) != manifest["inputs"].get(k))
            raise CxrbenchError(f"{shard_dir} holds shards of a different evaluation (changed: "
                                f"{', '.join(changed) or 'fingerprint'}); use another --out or --overwrite")
        for old_shard in shard_dir.glob("shard-*.parquet"):
            old_shard.unlink()
    atomic_write_json(path, manifest)


def _wait_for(check: Callable[[], bool], shard_dir: Path, world: World, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for r in range(world.size):
            failed = _failure_path(shard_dir, r)
            if r != world.rank and failed.exists():
                raise CxrbenchError(f"rank {r} failed: {failed.read_text().strip()}")
        if time.monotonic() > deadline:
            raise CxrbenchError(f"rank {world.rank}: gave up waiting for {what} in {shard_dir} after {timeout:g} s")
        time.sleep(POLL_SECONDS)


def run_sharded(predict: Callable[[pd.DataFrame], pd.DataFrame], frame: pd.DataFrame, shard_dir: str | Path, *,
                inputs: dict[str, Any], shard_size: int = SHARD_SIZE,
                postprocess: Callable[[pd.DataFrame], pd.DataFrame] | None = None, overwrite: bool = False,
                progress: bool | None = None, world: World | None = None,
                timeout: float = 7 * 24 * 3600.0) -> pd.DataFrame | None:
    """Answer ``frame`` (already in its final, deterministic order) shard by shard.

    Returns the concatenation of all shards *as read back from disk* (so a resumed and an
    uninterrupted run return the same frame) on rank 0, and None on the other ranks."""
    from tqdm.auto import tqdm

    world = world or World()
    started = time.time()
    shard_dir = Path(shard_dir)
    if shard_size < 1:
        raise ValueError("shard_size must be positive")
    keys = [str(k) for k in qa_keys(frame)]
    n_shards = max(1, math.ceil(len(frame) / shard_size))
    all_inputs = {**inputs, "shard_size": int(shard_size),
                  "qa_keys_sha256": hashlib.sha256("\n".join(keys).encode()).hexdigest()}
    manifest = {"fingerprint": fingerprint(all_inputs), "inputs": all_inputs, "n_items": len(frame),
                "n_shards": n_shards}
    manifest_path = shard_dir / SHARD_MANIFEST

    def manifest_ready() -> bool:
        try:
            return json.loads(manifest_path.read_text()).get("fingerprint") == manifest["fingerprint"]
        except (OSError, ValueError):
            return False

    if world.is_main:
        _prepare(shard_dir, manifest, overwrite, started)
    else:
        _wait_for(manifest_ready, shard_dir, world, "rank 0 to prepare the shard folder", timeout)
    try:
        todo = [i for i in range(n_shards) if world.owns(i) and not shard_path(shard_dir, i).exists()]
        mine = sum(len(frame.iloc[i * shard_size:(i + 1) * shard_size]) for i in range(n_shards) if world.owns(i))
        done = mine - sum(len(frame.iloc[i * shard_size:(i + 1) * shard_size]) for i in todo)
        bar = tqdm(total=mine, initial=done, desc="inference" if world.size == 1 else f"inference rank {world.rank}",
                   unit="QA", disable=None if progress is None else not progress)
        for i in todo:
            part = frame.iloc[i * shard_size:(i + 1) * shard_size]
            out = predict(part)
            if len(out) != len(part) or list(qa_keys(out)) != keys[i * shard_size:(i + 1) * shard_size]:
                raise CxrbenchError(f"predictor returned {len(out)} rows for shard {i} of {len(part)} "
                                    "(or in another order): every QA pair must get exactly one row")
            if postprocess is not None:
                out = postprocess(out)
            atomic_write_parquet(shard_path(shard_dir, i), out.reset_index(drop=True))
            bar.update(len(part))
        bar.close()
    except BaseException as err:
        if world.size > 1:   # tell rank 0 (and say what) instead of leaving it waiting
            atomic_write_text(_failure_path(shard_dir, world.rank), f"{type(err).__name__}: {err}\n")
        raise
    if not world.is_main:
        return None
    _wait_for(lambda: all(shard_path(shard_dir, i).exists() for i in range(n_shards)), shard_dir, world,
              "every rank's shards", timeout)
    parts = []
    for i in range(n_shards):
        part = _read_shard(shard_path(shard_dir, i))
        if list(qa_keys(part)) != keys[i * shard_size:(i + 1) * shard_size]:
            raise DataError(shard_path(shard_dir, i), None, "shard does not hold the expected QA pairs; "
                            "rerun with --overwrite")
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def _read_shard(path: Path) -> pd.DataFrame:
    try:
        with reading(path, what="shard (Parquet file)"):
            return pd.read_parquet(path)
    except DataError as err:   # written atomically, so only the disk can have damaged it
        raise DataError(path, None, f"{err.problem}; rerun with --overwrite to recompute the shards") from None


def read_shards(run_dir: str | Path) -> pd.DataFrame:
    """All rows of a run's shards, raw per-token attention included (for re-painting maps)."""
    shard_dir = Path(run_dir) / SHARD_DIR
    paths = sorted(shard_dir.glob("shard-*.parquet"))
    if not paths:
        raise CxrbenchError(f"no shards in {shard_dir}")
    return pd.concat([_read_shard(p) for p in paths], ignore_index=True)
