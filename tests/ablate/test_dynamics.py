"""Training-dynamics tables: steps-to-target, its interval from the validation steps, the
convergence claim, loss bins and the final-window loss, on hand-built dynamics and logs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from cxrbench.ablate import dynamics


def _dyn(curves: dict[tuple[str, int], list[tuple[int, float]]], stratum="overall") -> pd.DataFrame:
    rows = [{"condition": c, "seed": s, "step": step, "epoch": 0, "source": "validation", "group": "overall",
             "stratum": stratum, "metric": "accuracy", "value": v, "n": 100}
            for (c, s), pts in curves.items() for step, v in pts]
    rows.append({"condition": "full", "seed": 0, "step": 100, "epoch": 0, "source": "train", "group": "loss",
                 "stratum": "loss", "metric": "mean", "value": 1.0, "n": 100})
    return dynamics.collect_dynamics([pd.DataFrame(rows)])


CURVES = {("full", 0): [(100, 0.40), (200, 0.55), (300, 0.70), (400, 0.80)],
          ("no_scene_graph", 0): [(100, 0.35), (200, 0.50), (300, 0.60), (400, 0.75)],
          ("late_fusion", 0): [(100, 0.30), (200, 0.40), (300, 0.45), (400, 0.50)]}


def test_steps_to_target_default_rule_and_fixed_targets():
    stt = dynamics.steps_to_target(_dyn(CURVES)).set_index("condition")
    # 0.9 x full's final 0.80 = 0.72: full at 400 (after 300), no_scene_graph at 400, late_fusion never
    assert stt.loc["full", "target"] == pytest.approx(0.72) and stt.loc["full", "target_rule"] == "0.9 x final full"
    assert (stt.loc["full", "step"], stt.loc["full", "step_before"]) == (400, 300)
    assert (stt.loc["no_scene_graph", "step"], stt.loc["no_scene_graph", "step_before"]) == (400, 300)
    assert pd.isna(stt.loc["late_fusion", "step"]) and stt.loc["late_fusion", "final_value"] == 0.50
    fixed = dynamics.steps_to_target(_dyn(CURVES), targets=(0.5,)).set_index("condition")
    assert fixed.loc["full", "step"] == 200 and fixed.loc["no_scene_graph", "step"] == 200
    assert fixed.loc["late_fusion", "step"] == 400 and fixed.loc["late_fusion", "step_before"] == 300
    first = dynamics.steps_to_target(_dyn(CURVES), targets=(0.3,)).set_index("condition")
    assert first.loc["full", "step"] == 100 and first.loc["full", "step_before"] == 0


def _stt(step, before, final=400):
    return {"step": step, "step_before": before, "final_step": final}


def test_speedup_interval_from_the_validation_steps():
    # sg crossed in (100, 200], nosg in (200, 300]: speed-up 1 - x/y in [1 - 200/200, 1 - 100/300]
    point, lo, hi = dynamics.speedup_interval(_stt(200, 100), _stt(300, 200))
    assert point == pytest.approx(1 / 3) and lo == pytest.approx(0.0) and hi == pytest.approx(2 / 3)
    point, lo, hi = dynamics.speedup_interval(_stt(200, 100), _stt(pd.NA, pd.NA, final=400))
    assert math.isnan(point) and lo == pytest.approx(0.5) and hi == pytest.approx(1.0)   # nosg never: after 400
    point, lo, hi = dynamics.speedup_interval(_stt(pd.NA, pd.NA), _stt(300, 200))
    assert lo == -math.inf and hi == pytest.approx(1 - 400 / 300)
    assert all(math.isnan(x) for x in dynamics.speedup_interval(_stt(pd.NA, pd.NA), _stt(pd.NA, pd.NA)))
    assert dynamics.speedup_interval(_stt(100, 0), _stt(100, 0))[1] == -math.inf          # crossed before the first


def test_convergence_pairs_the_baseline_with_conditions_without_the_graph():
    curves = {("full", s): [(100, 0.5), (200, 0.8), (300, 0.9)] for s in (0, 1, 2)}
    curves.update({("no_scene_graph", s): [(100, 0.4), (200, 0.6), (300, 0.9)] for s in (0, 1, 2)})
    curves.update({("resnet18", s): [(100, 0.4), (200, 0.85), (300, 0.9)] for s in (0, 1, 2)})
    stt = dynamics.steps_to_target(_dyn(curves), targets=(0.75,))
    conv = dynamics.convergence(stt, {"full": True, "no_scene_graph": False, "resnet18": True})
    (pair,) = conv["pairs"]                            # resnet18 has the graph: not a pair
    assert pair["no_scene_graph"] == "no_scene_graph" and len(pair["per_seed"]) == 3
    assert pair["per_seed"][0]["speedup"] == pytest.approx(1 - 200 / 300)
    assert pair["speedup"] == pytest.approx(1 / 3)
    # equal per-seed speed-ups: a zero-width t-interval wholly above 10-15%
    assert pair["verdict"] == "contradicted" and "larger than" in pair["reason"]
    one = dynamics.convergence(stt[stt["seed"] == 0], {"full": True, "no_scene_graph": False})
    assert one["pairs"][0]["verdict"] == "undecided"   # (100, 200] vs (200, 300]: 0 to 2/3 holds both
    assert dynamics.convergence(stt, {"full": False, "no_scene_graph": False})["pairs"] == []


def test_loss_curve_bins_and_final_window():
    logs = {("full", 0): pd.DataFrame({"step": np.arange(1, 201), "loss": np.linspace(2, 1, 200),
                                       "loss/binary": 0.5}),
            ("single_head", 0): pd.DataFrame({"step": np.arange(1, 151), "loss": 3.0, "loss/unified": 3.0})}
    curve, width = dynamics.loss_curve(logs, 50)
    full = curve[(curve["condition"] == "full") & (curve["term"] == "loss")]
    assert width == 50 and full["step"].tolist() == [50, 100, 150, 200] and full["n"].tolist() == [50] * 4
    assert full["value"].iloc[0] == pytest.approx(np.linspace(2, 1, 200)[:50].mean())
    assert dynamics.loss_curve(logs)[1] == 2                       # about 100 bins over 200 steps
    final = dynamics.final_losses(logs)[0]
    # common last step 150, window 15 steps (136..150)
    assert final["full"]["step"] == 150 and final["full"]["window"] == 15
    assert final["full"]["loss"] == pytest.approx(np.linspace(2, 1, 200)[135:150].mean())
    assert final["full"]["terms"] == ["loss/binary"] and final["single_head"]["terms"] == ["loss/unified"]


def test_a_damaged_dynamics_table_is_named(tmp_path):
    from cxrbench.errors import DataError

    (tmp_path / "dynamics.csv").write_text("step,value\n1,0.5\n")
    with pytest.raises(DataError, match="dynamics.csv.*missing column"):
        dynamics.read_dynamics(tmp_path / "dynamics.csv")
    (tmp_path / "train_log.jsonl").write_text('{"step": 1, "loss": 1.0}\nnot json\n')
    with pytest.raises(DataError, match="line 2"):
        dynamics.read_train_log(tmp_path / "train_log.jsonl")
