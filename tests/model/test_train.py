"""The real training path: `cxrbench train` under DeepSpeed (gloo, fp32, ZeRO-2) on CPU."""

import json
import os
import signal
import subprocess

import pandas as pd
import pytest

from tests.fixtures.model import REPO, TINY_STEPS, train_command, train_env
from tests.model.helpers import SMALL

SMALL_SET = [x for o in SMALL for x in ("--set", o)]


def _losses(run):
    return [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]


def test_cli_refuses_a_finished_run_without_resume_and_a_changed_config(handmade_index, tmp_path):
    from cxrbench.outputs import OutputDir

    run = tmp_path / "run"
    OutputDir.claim(run, "cxrbench train").adopt("deepspeed", "config.yaml")   # as train leaves it
    (run / "deepspeed").mkdir(parents=True)
    (run / "deepspeed" / "latest").write_text("step00000004")
    proc = subprocess.run(train_command(handmade_index, run), env=train_env(), cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "pass --resume" in proc.stderr
    (run / "config.yaml").write_text("name: tiny\nseed: 5\n")
    proc = subprocess.run(train_command(handmade_index, run, "--resume"), env=train_env(), cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "different config" in proc.stderr and "seed" in proc.stderr
    proc = subprocess.run(train_command(handmade_index, run, "--condition", "nope"), env=train_env(), cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 2


@pytest.mark.slow
def test_world_size_2_zero2_resume_after_kill_reproduces_the_loss_curve(handmade_index, tmp_path):
    """8 steps at world size 2 (ZeRO stage 2, gloo); a second run is SIGKILLed after its step-4
    checkpoint and resumed: its loss curve and its dynamics table must equal the uninterrupted
    run's exactly (the validation at step 3 is before the kill, 6 and 8 after the resume)."""
    common = ["--nproc", "2", "--max-steps", "8", "--set", "train.batch_size=4", "--set", "train.save_every=4",
              "--set", "train.eval_every_epoch=false", "--set", "train.validate_every=3", "--set", "train.zero_stage=2",
              *SMALL_SET]
    env = train_env()
    full = tmp_path / "full"
    proc = subprocess.run(train_command(handmade_index, full, *common), env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = _losses(full)
    assert [r["step"] for r in reference] == list(range(1, 9))
    assert {r["epoch"] for r in reference} == {0, 1}             # 6 micro steps per epoch: crosses one
    meta = json.loads((full / "checkpoint" / "training_metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 8 and meta["train"]["zero_stage"] == 2
    assert len(list((full / "deepspeed" / "step00000008").glob("zero_pp_rank_*_optim_states.pt"))) == 2

    killed = tmp_path / "killed"
    p = subprocess.Popen(train_command(handmade_index, killed, *common), env=env, cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        for line in p.stdout:
            if "checkpoint saved at step 4" in line:
                os.killpg(p.pid, signal.SIGKILL)
                break
    finally:
        p.wait(timeout=120)
    assert p.returncode == -signal.SIGKILL
    assert json.loads((killed / "checkpoint" / "training_metadata.json").read_text())["step"] == 4
    proc = subprocess.run(train_command(handmade_index, killed, *common, "--resume"), env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = _losses(killed)
    assert [r["step"] for r in resumed] == list(range(1, 9))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in reference]
    assert [r["lr"] for r in resumed] == [r["lr"] for r in reference]
    # the dynamics table (validations at steps 3, 6 and 8) too, byte for byte
    assert (killed / "dynamics.csv").read_bytes() == (full / "dynamics.csv").read_bytes()
    assert sorted(set(pd.read_csv(full / "dynamics.csv")["step"])) == [3, 6, 8]


@pytest.mark.slow
def test_tiny_checkpoint_from_the_real_training_path(tiny_checkpoint, synth_index):
    from model.checkpoint import load_checkpoint
    from model.inference import Predictor

    meta = json.loads((tiny_checkpoint / "training_metadata.json").read_text())
    assert meta["step"] == TINY_STEPS and meta["condition"] == "full" and meta["precision"] == "fp32"
    manifest = json.loads((synth_index / "manifest.json").read_text())
    assert meta["data_index_hash"] == manifest["content_hash"]
    assert meta["packages"]["deepspeed"] and meta["last_losses"][-1] < meta["first_loss"]
    bundle = load_checkpoint(tiny_checkpoint)
    qa = pd.read_parquet(synth_index / "qa.parquet")
    test = qa[qa["split"] == "test"].groupby("question_type").head(2)
    frame = Predictor(bundle, synth_index).predict(test)
    assert len(frame) == len(test) and frame["prediction"].str.len().min() > 0
    assert set(frame["head"]) == {"binary", "region", "severity", "text"}


@pytest.mark.slow
def test_online_features_with_every_augmentation_sampling_option_and_curriculum(handmade_index, tmp_path):
    """The other training path: backbone each step (fine-tuned), flips, jitter, dropout, synonyms,
    polarity-balanced region-stratified batches, a B -> A curriculum, accumulation, TensorBoard."""
    run = tmp_path / "run"
    sets = ["train.features=online", "model.backbone.train=true", "train.augment.hflip=0.5",
            "train.augment.node_dropout=0.2", "train.augment.edge_perturbation=0.2", "train.augment.box_jitter=0.05",
            "train.augment.question_synonyms=0.5", "train.augment.template_variation=0.5",
            "train.augment.brightness=0.1", "train.augment.rotation_deg=5", "train.augment.noise_std=0.01",
            "train.sampling.polarity_balance=true", "train.sampling.region_stratified=true",
            "train.curriculum=[{min_quality: B, epochs: 1}, {min_quality: A, epochs: 1}]",
            "train.batch_size=4", "train.grad_accum=2", "train.save_every=100", "train.log_every=1", *SMALL]
    cmd = train_command(handmade_index, run, *[x for s in sets for x in ("--set", s)])
    proc = subprocess.run(cmd, env=train_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _losses(run)
    assert [r["step"] for r in rows] == list(range(1, 10))      # stage B (all items), then stage A (half)
    assert {r["epoch"] for r in rows} == {0, 1}                 # both curriculum stages ran
    assert not (run / "features.h5").exists()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    meta = json.loads((run / "checkpoint" / "training_metadata.json").read_text())
    assert meta["train"]["features"] == "online" and meta["validation"]["epoch"] == 1
    from model.checkpoint import load_checkpoint

    assert load_checkpoint(run / "checkpoint").config.backbone.train


def test_no_progress_silences_every_bar(handmade_index, tmp_path):
    sets = [*SMALL_SET, "--set", "train.batch_size=4", "--set", "train.tune_thresholds=false", "--max-steps", "1"]
    base = [c for c in train_command(handmade_index, tmp_path / "a", *sets) if c != "--quiet"]
    bars = ("%|", "step/s", "image/s", "it/s")
    loud = subprocess.run(base, env=train_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert any(b in loud.stderr for b in bars)                  # bars are there to silence
    quiet_cmd = [c if c != str(tmp_path / "a") else str(tmp_path / "b") for c in base] + ["--no-progress"]
    quiet = subprocess.run(quiet_cmd, env=train_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    assert not [b for b in bars if b in quiet.stderr + quiet.stdout], quiet.stderr[-3000:]
    assert (tmp_path / "a" / "train_log.jsonl").read_text() == (tmp_path / "b" / "train_log.jsonl").read_text()


@pytest.mark.slow
def test_the_deepspeed_launcher_runs_the_command_as_documented(handmade_index, tmp_path):
    """docs/model.md: `deepspeed --num_gpus N --module model.train_cli ...` (it appends --local_rank)."""
    import shutil
    import sys
    from pathlib import Path

    launcher = shutil.which("deepspeed", path=str(Path(sys.executable).parent))
    run = tmp_path / "run"
    cmd = [launcher, "--num_gpus", "2", "--master_port", "29613", "--module", "model.train_cli", "--config", "tiny",
           "--index", str(handmade_index), "--out", str(run), "--max-steps", "2", "--no-progress", *SMALL_SET,
           "--set", "train.batch_size=4", "--set", "train.tune_thresholds=false"]
    proc = subprocess.run(cmd, env=train_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((run / "checkpoint" / "training_metadata.json").read_text())
    assert meta["world_size"] == 2 and meta["step"] == 2
