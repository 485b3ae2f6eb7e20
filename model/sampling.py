"""Which items each training step sees: curriculum, stratified sampling, sharding, resume.

The whole schedule is a pure function of (seed, epoch): epoch ``e``'s order of item indices
is drawn from a generator seeded with ``(seed, e)``, cut into global batches of
``micro_batch * world_size`` items, and rank ``r`` takes slice ``r`` of every global batch.
Resuming at (epoch, micro step) therefore needs no replay and sees exactly the items an
uninterrupted run would have seen.

Options (seed 2.6.3, 8.2):

* quality-grade curriculum: a list of stages ``{min_quality, epochs}`` (B -> A -> A++); an
  epoch draws only from items of its stage's grade or better;
* polarity balance: binary items are drawn with weights that make yes and no equally likely
  (other items keep their share), sampling with replacement;
* region-stratified batches: every global batch takes an equal share from each region category
  present (cardiac, pulmonary, pleural, mediastinal, osseous, other).
"""

from __future__ import annotations

import numpy as np

from cxrbench.vocab import QUALITY_RANK
from model.config import TrainConfig
from model.vocabularies import HEAD_INDEX
from model.targets import Targets


class EpochSampler:
    def __init__(self, targets: Targets, quality: np.ndarray | None, cfg: TrainConfig, seed: int,
                 micro_batch: int, world_size: int = 1, grad_accum: int = 1):
        self.targets, self.cfg, self.seed = targets, cfg, seed
        self.micro_batch, self.world_size, self.grad_accum = micro_batch, world_size, grad_accum
        n = len(targets.head)
        q = np.asarray(quality if quality is not None else ["unrated"] * n, dtype=object)
        self.rank = np.array([QUALITY_RANK.get(str(g), QUALITY_RANK["unrated"]) for g in q])
        self.stages = [(s.min_quality, s.epochs) for s in cfg.curriculum] or [(cfg.min_quality, cfg.epochs)]
        self.n_epochs = sum(e for _, e in self.stages)
        self._orders: dict[int, np.ndarray] = {}

    @property
    def global_batch(self) -> int:
        return self.micro_batch * self.world_size

    def stage_quality(self, epoch: int) -> str | None:
        left = epoch
        for grade, epochs in self.stages:
            if left < epochs:
                return grade
            left -= epochs
        return self.stages[-1][0]

    def pool(self, epoch: int) -> np.ndarray:
        grade = self.stage_quality(epoch)
        valid = self.targets.valid()
        keep = valid if grade is None else valid & (self.rank >= QUALITY_RANK[grade])
        return np.flatnonzero(keep)

    def _weights(self, pool: np.ndarray) -> np.ndarray | None:
        if not self.cfg.sampling.polarity_balance:
            return None
        t = self.targets
        is_bin = (t.head[pool] == HEAD_INDEX["binary"]) & (t.binary[pool] >= 0)
        w = np.ones(len(pool))
        n_bin = is_bin.sum()
        for label in (0, 1):
            rows = is_bin & (t.binary[pool] == label)
            if rows.any():
                w[rows] = 0.5 * n_bin / rows.sum()
        return w / w.sum()

    def order(self, epoch: int) -> np.ndarray:
        """Item indices of the epoch's global batches (length = micro steps x global batch)."""
        if epoch in self._orders:
            return self._orders[epoch]
        rng = np.random.default_rng([self.seed, 7919, epoch])
        pool = self.pool(epoch)
        gb = self.global_batch
        n_batches = len(pool) // gb
        n_batches -= n_batches % self.grad_accum      # epochs end on optimizer-step boundaries
        total = n_batches * gb
        weights = self._weights(pool)
        if self.cfg.sampling.region_stratified and total:
            cats = self.targets.region_category[pool]
            names = sorted(set(cats))
            streams = {}
            for c in names:
                members = pool[cats == c]
                w = None if weights is None else weights[cats == c] / weights[cats == c].sum()
                streams[c] = rng.choice(members, size=total, replace=True, p=w)
            used = {c: 0 for c in names}
            out = []
            for _ in range(n_batches):
                share = np.full(len(names), gb // len(names))
                share[rng.permutation(len(names))[: gb % len(names)]] += 1
                batch = []
                for c, k in zip(names, share):
                    batch.extend(streams[c][used[c]:used[c] + k])
                    used[c] += k
                out.append(rng.permutation(np.asarray(batch, dtype=np.int64)))
            order = np.concatenate(out) if out else np.zeros(0, dtype=np.int64)
        elif weights is not None:
            order = rng.choice(pool, size=total, replace=True, p=weights)
        else:
            order = rng.permutation(pool)[:total]
        self._orders = {epoch: order.astype(np.int64)}   # keep one epoch in memory
        return self._orders[epoch]

    def micro_steps(self, epoch: int) -> int:
        return len(self.order(epoch)) // self.global_batch

    def batch(self, epoch: int, step: int, rank: int = 0) -> np.ndarray:
        gb = self.global_batch
        start = step * gb + rank * self.micro_batch
        return self.order(epoch)[start:start + self.micro_batch]

    def total_optimizer_steps(self) -> int:
        return sum(self.micro_steps(e) for e in range(self.n_epochs)) // self.grad_accum
