"""Training dynamics (model/dynamics.py): the validation subset, the table's rows, and the real run's table."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from model import dynamics
from tests.fixtures.model import REPO, train_command, train_env
from tests.model.helpers import SMALL

IDENT = {"condition": "full", "seed": 3, "step": 20, "epoch": 1}


def test_the_validation_subset_is_fixed_by_the_seed_alone():
    qa = pd.DataFrame({"question_id": [f"q{i}" for i in range(50)], "x": range(50)})
    a, b = dynamics.validation_subset(qa, 10, seed=0), dynamics.validation_subset(qa.copy(), 10, seed=0)
    assert list(a["question_id"]) == list(b["question_id"]) and len(a) == 10
    assert list(a.index) == sorted(a.index)                       # original order kept
    assert list(dynamics.validation_subset(qa, 10, seed=1)["question_id"]) != list(a["question_id"])
    assert dynamics.validation_subset(qa, 80, seed=0) is qa        # fewer rows than asked: all of them


def _frame():
    """Six predictions worked by hand: binary 2/3 right, region 1/2 right, text 0/1 (F1 2/3)."""
    rows = [("binary", "D02_has_finding", 1, 1, [], [], [], []),
            ("binary", "D02_has_finding", 0, 1, [], [], [], []),
            ("binary", "B03_is_abnormal", 1, 1, [], [], [], []),
            ("region", "D03_where_is_finding", 3, 3, ["heart"], ["heart", "aorta"], [], []),
            ("region", "D07_where_is_device", 2, 5, ["left lung"], ["right lung"], [], []),
            ("text", "B01_describe_all", None, None, [], [], ["Edema"], ["Edema", "Atelectasis"])]
    cols = ["head", "question_type", "label_true", "label_pred", "regions_true", "regions_pred", "findings_true",
            "findings_pred"]
    return pd.DataFrame(rows, columns=cols)


def test_validation_rows_by_hand():
    rows = {(r["group"], r["stratum"], r["metric"]): (r["value"], r["n"]) for r in dynamics.validation_rows(_frame(), IDENT)}
    assert rows[("overall", "overall", "accuracy")] == (3 / 6, 6)
    assert rows[("head", "binary", "accuracy")] == (2 / 3, 3)
    assert rows[("head", "region", "accuracy")] == (1 / 2, 2)
    assert rows[("head", "text", "accuracy")] == (0.0, 1)
    assert rows[("head", "text", "f1")] == (pytest.approx(2 / 3), 1)
    assert rows[("question_type", "D02_has_finding", "accuracy")] == (0.5, 2)
    assert rows[("question_type", "D03_where_is_finding", "accuracy")] == (1.0, 1)
    assert rows[("question_type", "D07_where_is_device", "accuracy")] == (0.0, 1)
    assert ("head", "severity", "accuracy") not in rows           # no severity rows: no entry, never a 0
    every = dynamics.validation_rows(_frame(), IDENT)
    assert all(r["source"] == "validation" and r["step"] == 20 and r["condition"] == "full" for r in every)


def test_loss_rows_are_window_means_and_the_table_round_trips(tmp_path):
    window = [{"step": 1, "loss": 1.0, "loss/binary": 0.5}, {"step": 2, "loss": 2.0}, {"step": 3, "loss": 0.1 + 0.2}]
    rows = {r["stratum"]: (r["value"], r["n"]) for r in dynamics.loss_rows(window, IDENT)}
    assert rows == {"loss": (pytest.approx((3.0 + 0.1 + 0.2) / 3), 3), "loss/binary": (0.5, 1)}
    table = dynamics.validation_rows(_frame(), IDENT) + dynamics.loss_rows(window, IDENT)
    dynamics.write(tmp_path / "d.csv", table)
    again = dynamics.read(tmp_path / "d.csv")
    assert again == table                                         # floats exactly, so a resume rewrites the same bytes
    dynamics.write(tmp_path / "e.csv", again)
    assert (tmp_path / "e.csv").read_bytes() == (tmp_path / "d.csv").read_bytes()


def test_steps_to_target():
    frame = pd.DataFrame([{**IDENT, "step": s, "source": "validation", "group": "overall", "stratum": "overall",
                           "metric": "accuracy", "value": v, "n": 10} for s, v in ((10, 0.4), (20, 0.61), (30, 0.58))])
    assert dynamics.steps_to_target(frame, 0.6) == 20
    assert dynamics.steps_to_target(frame, 0.7) is None


def test_training_writes_the_dynamics_table(handmade_index, tmp_path):
    run = tmp_path / "run"
    sets = [*SMALL, "train.batch_size=4", "train.validate_every=2", "train.eval_every_epoch=false",
            "train.tune_thresholds=false", "train.save_every=100"]
    cmd = train_command(handmade_index, run, "--max-steps", "5", *[x for s in sets for x in ("--set", s)])
    proc = subprocess.run(cmd, env=train_env(), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = pd.read_csv(run / "dynamics.csv")
    assert sorted(set(table["step"])) == [2, 4, 5]                 # every 2 steps and the last one
    assert set(table["condition"]) == {"full"} and set(table["seed"]) == {0}
    val = table[table["source"] == "validation"]
    assert {"binary", "region", "severity", "text"} <= set(val.loc[val["group"] == "head", "stratum"])
    assert "D03_where_is_finding" in set(val.loc[val["group"] == "question_type", "stratum"])
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    loss = table[(table["source"] == "train") & (table["stratum"] == "loss")].set_index("step")
    assert loss.loc[2, "value"] == pytest.approx(np.mean([r["loss"] for r in log[:2]]))
    assert loss.loc[5, "value"] == pytest.approx(log[4]["loss"]) and loss.loc[5, "n"] == 1
    meta = json.loads((run / "checkpoint" / "training_metadata.json").read_text())
    last = val[(val["step"] == 5) & (val["stratum"] == "overall")]["value"].item()
    assert meta["validation"]["accuracy/overall"] == pytest.approx(last)
