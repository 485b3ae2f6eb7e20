"""The study's steps, the cache key of the resolved configs, and which cache a training may use."""

from __future__ import annotations

import copy

import pytest

from cxrbench.ablate.configs import RunConfig, resolve_configs
from cxrbench.ablate.plan import Manifest, StudyOptions, new_manifest, plan_steps
from cxrbench.ablate.runner import Scheduler
from cxrbench.errors import CxrbenchError

BASE = {"seed": 0, "model": {"backbone": {"name": "tiny_cnn", "weights": None, "image_size": 128},
                             "tokens": {"scene_graph": True, "max_nodes": 48}},
        "train": {"features": "cache", "augment": {"hflip": 0.0}}}


def _cfg(scene_graph=True, seed=0, weights=None, features="cache", vocab="clinical"):
    c = copy.deepcopy(BASE)
    c["model"]["tokens"]["scene_graph"] = scene_graph
    c["model"]["backbone"]["weights"] = weights
    c["model"]["tokenizer"] = {"vocab": vocab}
    c["train"]["features"] = features
    return c


def test_steps_and_their_dependencies():
    steps = plan_steps(["full", "no_scene_graph"], (0, 1))
    ids = [s.id for s in steps]
    assert ids[:4] == ["train/full/seed0", "evaluate/full/seed0", "train/no_scene_graph/seed0",
                       "evaluate/no_scene_graph/seed0"]
    by_id = {s.id: s for s in steps}
    assert by_id["compare/seed1"].needs == ["evaluate/full/seed1", "evaluate/no_scene_graph/seed1"]
    assert by_id["summary"].needs == ["compare/seed0", "compare/seed1"]
    assert by_id["evaluate/full/seed1"].out == "eval/full/seed1" and by_id["train/full/seed1"].out == "runs/full/seed1"
    assert by_id["train/full/seed0"].log_name == "train-full-seed0.log"


def test_cache_key_follows_backbone_boxes_and_seed():
    full, tok = RunConfig("full", 0, _cfg()), RunConfig("generic_tokenizer", 0, _cfg(vocab="generic"))
    assert full.cache_key() == tok.cache_key()                               # same backbone and boxes
    assert full.cache_key() != RunConfig("no_scene_graph", 0, _cfg(scene_graph=False)).cache_key()
    assert full.cache_key() != RunConfig("full", 1, _cfg(seed=1)).cache_key()   # random backbone: per seed
    assert RunConfig("full", 0, _cfg(weights="w.safetensors")).cache_key() == \
        RunConfig("full", 1, _cfg(weights="w.safetensors")).cache_key()    # pretrained: shared across seeds
    assert RunConfig("full", 0, _cfg(features="online")).cache_key() is None


def test_concurrent_trainings_of_one_key_get_separate_caches(tmp_path):
    runs = {r.name: r for r in (RunConfig("full", 0, _cfg()), RunConfig("generic_tokenizer", 0, _cfg(vocab="generic")),
                                RunConfig("no_scene_graph", 0, _cfg(scene_graph=False)))}
    meta = {n: {"condition": r.condition, "seed": r.seed, "cache": None} for n, r in runs.items()}
    conditions = ["full", "generic_tokenizer", "no_scene_graph"]
    manifest = new_manifest(tmp_path, tmp_path, {"config": {}, "index_sha256": "x", "conditions": conditions,
                                                 "seeds": [0], "split": "test", "evaluate": {}},
                            meta, plan_steps(conditions, (0,)), {})
    sched = Scheduler(tmp_path, tmp_path, manifest, runs, StudyOptions(jobs=3))
    picked = {s.condition: cache for s, cache in sched._startable()}
    key = runs["full/seed0"].cache_key()
    saved = Manifest.load(tmp_path).data["runs"]                 # recorded before the trainings start
    assert saved["generic_tokenizer/seed0"]["cache"] == picked["generic_tokenizer"]
    assert picked["full"] == f"features/{key}-0.h5" and picked["generic_tokenizer"] == f"features/{key}-1.h5"
    assert picked["no_scene_graph"].endswith("-0.h5") and "global" in picked["no_scene_graph"]
    # a run keeps its cache: while another training holds it, the run waits
    sched.running = {"train/generic_tokenizer/seed0": (None, None)}
    manifest.step("train/full/seed0").status = "pending"
    manifest.data["runs"]["full/seed0"]["cache"] = f"features/{key}-1.h5"
    ok, cache = sched._cache_for(manifest.step("train/full/seed0"), sched._caches_in_use())
    assert not ok and cache.endswith("-1.h5")
    unshared = Scheduler(tmp_path, tmp_path, manifest, runs, StudyOptions(share_features=False))
    assert unshared._cache_for(manifest.step("train/no_scene_graph/seed0"), set()) == (True, None)


def test_options_are_checked():
    with pytest.raises(ValueError, match="baseline"):
        StudyOptions(conditions=("no_scene_graph", "late_fusion"))
    with pytest.raises(ValueError, match="distinct"):
        StudyOptions(seeds=(0, 0))
    assert StudyOptions(max_steps=5, overrides=("train.lr=1",)).train_overrides() == ("train.lr=1",
                                                                                      "train.max_steps=5")


def test_configs_are_resolved_by_the_model_package_in_a_subprocess():
    conditions, runs = resolve_configs("tiny", ("full", "no_scene_graph"), (0, 3), ("train.max_steps=7",))
    assert conditions == ["full", "no_scene_graph"] and [r.name for r in runs] == [
        "full/seed0", "full/seed3", "no_scene_graph/seed0", "no_scene_graph/seed3"]
    assert runs[0].config["train"]["max_steps"] == 7 and runs[1].config["seed"] == 3
    assert runs[0].scene_graph and not runs[2].scene_graph
    all_conditions, _ = resolve_configs("tiny", (), (0,), ())
    assert "full" in all_conditions and len(all_conditions) == 6
    with pytest.raises(CxrbenchError, match="unknown"):
        resolve_configs("tiny", ("full", "no_such_condition"), (0,), ())


def test_a_foreign_folder_and_a_running_study_are_refused_before_any_work(synth_index, tmp_path):
    import fcntl

    from cxrbench.ablate.runner import LOCK, run_study

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(CxrbenchError, match="not empty"):
        run_study(synth_index, foreign, StudyOptions(conditions=("full", "no_scene_graph")))
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(CxrbenchError, match="not an index"):
        run_study(tmp_path / "nothing", tmp_path / "study", StudyOptions())
    assert not (tmp_path / "study").exists()
    from cxrbench.outputs import OutputDir

    study = tmp_path / "busy"
    OutputDir.claim(study, "cxrbench ablate")                    # a study another process is running
    with open(study / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(CxrbenchError, match="another cxrbench ablate is running"):
            run_study(synth_index, study, StudyOptions(conditions=("full", "no_scene_graph")))


def test_a_study_grows_by_conditions_and_seeds_and_refuses_other_changes(synth_index, tmp_path):
    from cxrbench.ablate.runner import _index_sha256, open_manifest

    sha = _index_sha256(synth_index)
    first = StudyOptions(conditions=("full", "no_scene_graph"), max_steps=5)
    manifest, _ = open_manifest(tmp_path, synth_index, sha, first)
    for step in manifest.steps:
        step.status, step.attempts = "done", 1
    manifest.data["runs"]["full/seed0"]["cache"] = "features/x-0.h5"
    manifest.save()
    grown = StudyOptions(conditions=("full", "no_scene_graph", "late_fusion"), seeds=(0, 1), max_steps=5)
    manifest, _ = open_manifest(tmp_path, synth_index, sha, grown)
    status = {s.id: (s.status, s.fresh) for s in manifest.steps}
    assert status["train/full/seed0"] == ("done", False) and status["evaluate/no_scene_graph/seed0"] == ("done", False)
    assert status["compare/seed0"] == ("pending", True)          # it gains late_fusion: redone with --overwrite
    assert status["train/late_fusion/seed0"] == ("pending", False) and status["train/full/seed1"][0] == "pending"
    assert manifest.data["runs"]["full/seed0"]["cache"] == "features/x-0.h5"
    assert manifest.data["seeds"] == [0, 1] and len(manifest.data["runs"]) == 6
    again, _ = open_manifest(tmp_path, synth_index, sha, grown)    # the same study: continued as it is
    assert [s.status for s in again.steps] == [s.status for s in manifest.steps]
    with pytest.raises(CxrbenchError, match="another config.max_steps"):
        open_manifest(tmp_path, synth_index, sha, StudyOptions(conditions=("full", "no_scene_graph"), max_steps=6))
    with pytest.raises(CxrbenchError, match=r"another conditions, seeds; choose"):
        open_manifest(tmp_path, synth_index, sha, StudyOptions(conditions=("full", "late_fusion"), max_steps=5))
    recompared = StudyOptions(conditions=grown.conditions, seeds=(0, 1), max_steps=5, correction="holm")
    manifest, _ = open_manifest(tmp_path, synth_index, sha, recompared)
    assert {s.id: s.status for s in manifest.steps if s.kind == "train"} == \
        {s.id: s.status for s in again.steps if s.kind == "train"}
    assert manifest.data["compare"]["correction"] == "holm"
