import numpy as np

from model.config import CurriculumStage, SamplingConfig, TrainConfig
from model.vocabularies import HEAD_INDEX
from model.sampling import EpochSampler
from model.targets import Targets


def _targets(n=400, seed=0):
    rng = np.random.default_rng(seed)
    head = rng.choice([HEAD_INDEX["binary"], HEAD_INDEX["text"]], size=n, p=[0.7, 0.3])
    binary = np.where(head == HEAD_INDEX["binary"], (rng.random(n) < 0.15).astype(int), -1)
    cats = rng.choice(["pulmonary", "cardiac", "osseous"], size=n, p=[0.8, 0.15, 0.05]).astype(object)
    z = np.zeros((n, 26), np.float32)
    return Targets(head=head, binary=binary, region=z, region_valid=np.zeros(n, bool), region_first=-np.ones(n, int),
                   severity=-np.ones(n, int), findings=np.zeros((n, 14), np.float32),
                   chexpert=np.zeros((n, 14), np.float32), chexpert_weight=np.zeros((n, 14), np.float32),
                   region_category=cats)


def test_schedule_is_a_pure_function_of_seed_and_epoch_and_ranks_split_each_global_batch():
    t = _targets()
    cfg = TrainConfig(epochs=2)
    a = EpochSampler(t, None, cfg, seed=3, micro_batch=8, world_size=2)
    b = EpochSampler(t, None, cfg, seed=3, micro_batch=8, world_size=2)
    assert np.array_equal(a.order(1), b.order(1)) and not np.array_equal(a.order(0), a.order(1))
    assert a.micro_steps(0) == len(a.pool(0)) // 16
    for step in range(a.micro_steps(0)):
        r0, r1 = a.batch(0, step, 0), a.batch(0, step, 1)
        assert len(r0) == len(r1) == 8 and not set(r0) & set(r1)
        assert np.array_equal(np.concatenate([r0, r1]), a.order(0)[step * 16:(step + 1) * 16])
    # a plain epoch is a permutation of the valid items (minus the last partial global batch)
    assert len(set(a.order(0))) == len(a.order(0))
    assert set(a.order(0)) <= set(np.flatnonzero(t.valid()))


def test_epochs_end_on_optimizer_step_boundaries():
    t = _targets(203)
    s = EpochSampler(t, None, TrainConfig(epochs=3), seed=0, micro_batch=8, world_size=1, grad_accum=4)
    assert all(s.micro_steps(e) % 4 == 0 for e in range(3))
    assert s.total_optimizer_steps() == sum(s.micro_steps(e) for e in range(3)) // 4


def test_polarity_balance_makes_yes_and_no_equally_likely():
    t = _targets(2000)
    cfg = TrainConfig(sampling=SamplingConfig(polarity_balance=True))
    order = EpochSampler(t, None, cfg, seed=0, micro_batch=50).order(0)
    is_bin = t.head[order] == HEAD_INDEX["binary"]
    yes = (t.binary[order][is_bin] == 1).mean()
    assert 0.45 < yes < 0.55                      # 15 % yes in the data
    assert abs(is_bin.mean() - (t.head == HEAD_INDEX["binary"]).mean()) < 0.05   # binary share kept


def test_region_stratified_batches_take_equal_shares():
    t = _targets(600)
    cfg = TrainConfig(sampling=SamplingConfig(region_stratified=True))
    s = EpochSampler(t, None, cfg, seed=0, micro_batch=12)
    for step in range(s.micro_steps(0)):
        cats = t.region_category[s.batch(0, step)]
        assert sorted(np.unique(cats, return_counts=True)[1].tolist()) == [4, 4, 4]


def test_quality_curriculum_narrows_the_pool_stage_by_stage():
    t = _targets(300)
    quality = np.array(["B", "A", "A++"] * 100, dtype=object)
    cfg = TrainConfig(curriculum=[CurriculumStage("B", 1), CurriculumStage("A", 2), CurriculumStage("A++", 1)])
    s = EpochSampler(t, quality, cfg, seed=0, micro_batch=4)
    assert s.n_epochs == 4
    assert [s.stage_quality(e) for e in range(5)] == ["B", "A", "A", "A++", "A++"]
    assert set(quality[s.pool(0)]) == {"B", "A", "A++"}
    assert set(quality[s.pool(1)]) == {"A", "A++"}
    assert set(quality[s.order(3)]) == {"A++"}
