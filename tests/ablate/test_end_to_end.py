"""`cxrbench ablate` end to end on the synthetic index: two conditions, a few optimizer steps,
killed (SIGKILL to its process group) while the second training runs, then continued by the same
command: finished steps are not redone, the killed training resumes from its last state, and the
summary set is complete. A study with another config is refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures.model import REPO, train_env

pytestmark = pytest.mark.slow
SKIP = ("bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall")


def _cmd(index: Path, study: Path, steps: int = 8) -> list[str]:
    return [sys.executable, "-m", "cxrbench", "ablate", "--config", "tiny", "--index", str(index), "--out", str(study),
            "--conditions", "full", "no_scene_graph", "--max-steps", str(steps), "--set", "train.batch_size=8",
            "--set", "train.save_every=2", "--set", "train.validate_every=2", "--set", "train.validate_rows=64",
            "--set", "train.num_threads=1", "--n-resamples", "50", "--skip", *SKIP, "--jobs", "1", "--no-progress"]


def _status(study: Path) -> dict[str, dict]:
    try:
        return {s["id"]: s for s in json.loads((study / "study.json").read_text())["steps"]}
    except (OSError, ValueError, KeyError):
        return {}


def test_a_killed_study_continues_where_it_stopped(synth_index, tmp_path):
    study = tmp_path / "study"
    env = train_env()
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(_cmd(synth_index, study), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    state = study / "runs" / "no_scene_graph" / "seed0" / "deepspeed" / "latest"
    deadline = time.time() + 900
    try:
        while time.time() < deadline and proc.poll() is None:
            if _status(study).get("train/no_scene_graph/seed0", {}).get("status") == "running" and state.is_file():
                break
            time.sleep(0.1)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = _status(study)
    assert killed["train/full/seed0"]["status"] == killed["evaluate/full/seed0"]["status"] == "done"
    assert killed["train/no_scene_graph/seed0"]["status"] == "running"
    full_meta = (study / "runs/full/seed0/checkpoint/training_metadata.json").read_bytes()

    done = subprocess.run(_cmd(synth_index, study), cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    steps = _status(study)
    assert all(s["status"] == "done" for s in steps.values()), steps
    assert steps["train/full/seed0"]["attempts"] == 1 and steps["evaluate/full/seed0"]["attempts"] == 1
    assert (study / "runs/full/seed0/checkpoint/training_metadata.json").read_bytes() == full_meta
    assert steps["train/no_scene_graph/seed0"]["attempts"] == 2
    second = (study / "logs" / "train-no_scene_graph-seed0.log").read_text().split("--- attempt 2:")[1]
    assert "--resume" in second.splitlines()[0]
    log_steps = [json.loads(line)["step"] for line in
                 (study / "runs/no_scene_graph/seed0/train_log.jsonl").read_text().splitlines()]
    assert log_steps == list(range(1, 9))                       # resumed: every step logged once

    # shared feature caches in features/, recorded per run and in the run's config
    manifest = json.loads((study / "study.json").read_text())
    caches = {r["cache"] for r in manifest["runs"].values()}
    assert len(caches) == 2 and all((study / c).is_file() for c in caches)
    assert not (study / "runs/full/seed0/features.h5").exists()
    assert manifest["runs"]["full/seed0"]["cache"] in (study / "runs/full/seed0/config.yaml").read_text()
    assert manifest["index"]["path"] == os.path.relpath(synth_index, study)

    matrix = pd.read_csv(study / "expected_matrix.csv")
    assert set(matrix["subset"]) == {"overall", "spatial", "relational", "training_loss"}
    assert set(matrix["seed"].astype(str)) == {"0", "all"} and set(matrix["condition"]) == {"no_scene_graph"}
    assert set(matrix["verdict"]) <= {"confirmed", "contradicted", "undecided", "not_comparable"}
    spread = pd.read_csv(study / "seed_spread.csv")
    assert {"overall", "spatial"} <= set(spread["stratum"]) and (spread["n_seeds"] <= 1).all()
    assert spread.set_index(["stratum", "metric"]).loc[("overall", "exact_match"), "n_seeds"] == 1
    dyn = pd.read_csv(study / "dynamics.csv")
    assert set(dyn["condition"]) == {"full", "no_scene_graph"} and set(dyn["step"]) == {2, 4, 6, 8}
    stt = pd.read_csv(study / "steps_to_target.csv")
    assert {"full", "no_scene_graph"} == set(stt["condition"])
    conv = json.loads((study / "convergence.json").read_text())
    assert conv["pairs"][0]["no_scene_graph"] == "no_scene_graph"
    assert (study / "study.md").read_text().startswith("# Ablation study")
    assert pd.read_csv(study / "loss_curve.csv")["condition"].nunique() == 2

    # a finished study: nothing is redone
    again = subprocess.run(_cmd(synth_index, study), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and {k: v["attempts"] for k, v in _status(study).items() if k != "summary"} == \
        {k: v["attempts"] for k, v in steps.items() if k != "summary"}      # the summary is always rewritten
    # another config in the same folder is refused, not mixed in
    other = subprocess.run(_cmd(synth_index, study, steps=9), cwd=REPO, env=env, capture_output=True, text=True,
                           timeout=300)
    assert other.returncode == 1 and "another config.max_steps" in other.stderr
