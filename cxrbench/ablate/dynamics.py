"""Training dynamics of a study (design 18.1, contribution 4): tables the book reads.

Inputs are each run's ``RUN/dynamics.csv`` (validation metrics per head and question type at
regular steps; docs/contracts.md §5) and ``RUN/train_log.jsonl`` (one row per optimizer step):

- :func:`collect_dynamics`: every run's dynamics rows in one table;
- :func:`loss_curve`: the training loss terms averaged over bins of steps;
- :func:`steps_to_target`: per condition × seed × stratum × metric, the first validated step at
  which the value reaches a target (the same rule as ``model.dynamics.steps_to_target``: the
  first step with ``value >= target``). The target is fixed (``targets``) or, by default,
  ``fraction`` × the baseline's final value of that seed and stratum, a level the baseline
  reaches and the others may not. The crossing lies between the validation before it
  (``step_before``) and ``step``: validations are ``train.validate_every`` steps apart;
- :func:`convergence`: the claim that scene-graph conditions converge 10-15% faster, as the
  speed-up ``1 − steps_sg / steps_nosg`` of the baseline against every condition without a scene
  graph, with its interval and verdict (:func:`cxrbench.ablate.expected.verdict`);
- :func:`final_losses`: the training loss over the last steps every run logged (the 16.2 loss
  column).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from cxrbench.errors import DataError, reading

DYNAMICS_COLUMNS = ("condition", "seed", "step", "epoch", "source", "group", "stratum", "metric", "value", "n")
SORT = ["condition", "seed", "step", "source", "group", "stratum", "metric"]
STT_COLUMNS = ("condition", "seed", "stratum", "metric", "target", "target_rule", "step", "step_before",
               "final_step", "final_value")
CLAIM = (0.10, 0.15)       # design 18.1: "10-15% faster with scene graphs"
FINAL_WINDOW = 0.1         # the loss column: the mean over the last 10% of the common steps


def read_dynamics(path: Path) -> pd.DataFrame:
    with reading(path, what="training dynamics table"):
        frame = pd.read_csv(path, float_precision="round_trip")
    missing = [c for c in DYNAMICS_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(path, None, f"not a training dynamics table: missing column(s) {', '.join(missing)}")
    return frame[list(DYNAMICS_COLUMNS)]


def read_train_log(path: Path) -> pd.DataFrame:
    rows = []
    with reading(path, what="training log"):
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise DataError(path, f"line {number}", "not a JSON object") from None
    frame = pd.DataFrame(rows)
    if len(frame) and ("step" not in frame.columns or "loss" not in frame.columns):
        raise DataError(path, None, "training log rows need 'step' and 'loss'")
    return frame


def collect_dynamics(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(DYNAMICS_COLUMNS))
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(SORT, kind="stable").reset_index(drop=True)


def loss_curve(logs: Mapping[tuple[str, int], pd.DataFrame], bin_steps: int = 0) -> tuple[pd.DataFrame, int]:
    """Long table (condition, seed, step, term, value, n): each loss term's mean over bins of
    ``bin_steps`` steps (0: about 100 bins over the longest run); returns the bin width used."""
    last = max((int(f["step"].max()) for f in logs.values() if len(f)), default=0)
    width = bin_steps or max(1, math.ceil(last / 100))
    parts = []
    for (cond, seed), frame in logs.items():
        if not len(frame):
            continue
        terms = [c for c in frame.columns if c == "loss" or c.startswith("loss/")]
        long = frame.melt(id_vars=["step"], value_vars=terms, var_name="term").dropna(subset=["value"])
        long["step"] = (np.ceil(long["step"] / width) * width).astype(int)
        agg = long.groupby(["step", "term"], sort=True)["value"].agg(["mean", "size"]).reset_index()
        parts.append(pd.DataFrame({"condition": cond, "seed": seed, "step": agg["step"], "term": agg["term"],
                                   "value": agg["mean"], "n": agg["size"]}))
    if not parts:
        return pd.DataFrame(columns=["condition", "seed", "step", "term", "value", "n"]), width
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["condition", "seed", "term", "step"], kind="stable").reset_index(drop=True), width


def final_losses(logs: Mapping[tuple[str, int], pd.DataFrame]) -> dict[int, dict[str, dict]]:
    """Per seed and condition: the mean ``loss`` over the last :data:`FINAL_WINDOW` of the steps
    every run of that seed logged, the last step, and the loss terms logged there."""
    out: dict[int, dict[str, dict]] = {}
    for seed in sorted({s for _, s in logs}):
        runs = {c: f for (c, s), f in logs.items() if s == seed and len(f)}
        if not runs:
            continue
        common = min(int(f["step"].max()) for f in runs.values())
        window = max(1, round(FINAL_WINDOW * common))
        out[seed] = {}
        for cond, frame in runs.items():
            part = frame[(frame["step"] > common - window) & (frame["step"] <= common)]
            terms = sorted(c for c in part.columns if c.startswith("loss/") and part[c].notna().any())
            out[seed][cond] = {"loss": float(part["loss"].mean()), "step": common, "window": window, "terms": terms}
    return out


def steps_to_target(dyn: pd.DataFrame, *, baseline: str = "full", targets: tuple[float, ...] = (),
                    fraction: float = 0.9) -> pd.DataFrame:
    """The steps-to-target table (module docstring) from validation rows of :func:`collect_dynamics`."""
    val = dyn[dyn["source"] == "validation"]
    rows = []
    for (seed, stratum, metric), part in val.groupby(["seed", "stratum", "metric"], sort=True):
        curves = {c: g.sort_values("step") for c, g in part.groupby("condition", sort=True)}
        if targets:
            levels = [(float(t), "fixed") for t in targets]
        elif baseline in curves:
            levels = [(fraction * float(curves[baseline]["value"].iloc[-1]), f"{fraction:g} x final {baseline}")]
        else:
            continue
        for target, rule in levels:
            for cond, g in curves.items():
                steps, values = g["step"].to_numpy(), g["value"].to_numpy(dtype=float)
                hit = np.flatnonzero(values >= target)
                first = int(hit[0]) if hit.size else None
                rows.append({"condition": cond, "seed": int(seed), "stratum": stratum, "metric": metric,
                             "target": target, "target_rule": rule,
                             "step": None if first is None else int(steps[first]),
                             "step_before": None if first is None else (int(steps[first - 1]) if first else 0),
                             "final_step": int(steps[-1]), "final_value": float(values[-1])})
    return pd.DataFrame(rows, columns=list(STT_COLUMNS)).astype({"step": "Int64", "step_before": "Int64"})


def speedup_interval(sg: dict, nosg: dict) -> tuple[float, float, float]:
    """(point, low, high) of ``1 − steps_sg / steps_nosg`` for two steps-to-target rows: each true
    crossing lies in (step_before, step]; a run that never reached the target crossed after its
    final step (one-sided bound)."""
    def span(r):   # (lowest, highest) possible crossing step
        if pd.isna(r["step"]):
            return float(r["final_step"]), math.inf
        return float(r["step_before"]), float(r["step"])

    (x_lo, x_hi), (y_lo, y_hi) = span(sg), span(nosg)
    point = 1 - float(sg["step"]) / float(nosg["step"]) if not (pd.isna(sg["step"]) or pd.isna(nosg["step"])) \
        else math.nan
    low = 1 - x_hi / y_lo if y_lo > 0 else -math.inf
    high = 1 - x_lo / y_hi if y_hi > 0 else math.nan
    if math.isinf(x_hi) and math.isinf(y_hi):
        return math.nan, math.nan, math.nan       # neither reached the target
    return point, (-math.inf if math.isinf(x_hi) else low), high


def convergence(stt: pd.DataFrame, scene_graph: Mapping[str, bool], *, baseline: str = "full",
                stratum: str = "overall", metric: str = "accuracy", confidence: float = 0.95) -> dict:
    """The 18.1 convergence claim tested on the study (module docstring)."""
    from scipy import stats

    from cxrbench.ablate.expected import verdict

    part = stt[(stt["stratum"] == stratum) & (stt["metric"] == metric)]
    pairs = []
    if scene_graph.get(baseline):
        for cond in sorted(c for c, sg in scene_graph.items() if not sg and c in set(part["condition"])):
            per_seed = []
            for seed in sorted(set(part["seed"])):
                rows = part[part["seed"] == seed].set_index("condition")
                if baseline not in rows.index or cond not in rows.index:
                    continue
                sg_row, no_row = rows.loc[baseline], rows.loc[cond]
                point, lo, hi = speedup_interval(sg_row, no_row)
                v, reason = verdict(CLAIM, point, lo, hi, None)
                per_seed.append({"seed": int(seed), "target": float(sg_row["target"]),
                                 "steps_scene_graph": _int(sg_row["step"]), "steps_no_scene_graph": _int(no_row["step"]),
                                 "speedup": point, "low": lo, "high": hi, "verdict": v,
                                 "reason": reason + " (interval from the validation steps)"})
            points = np.array([s["speedup"] for s in per_seed], dtype=float)
            points = points[np.isfinite(points)]
            if len(per_seed) == 1:
                summary = {k: per_seed[0][k] for k in ("speedup", "low", "high", "verdict", "reason")}
            elif len(points) >= 2:
                half = stats.t.ppf(0.5 + confidence / 2, len(points) - 1) * points.std(ddof=1) / np.sqrt(len(points))
                lo, hi = float(points.mean() - half), float(points.mean() + half)
                v, reason = verdict(CLAIM, float(points.mean()), lo, hi, None)
                summary = {"speedup": float(points.mean()), "low": lo, "high": hi, "verdict": v,
                           "reason": f"{reason} ({confidence * 100:g}% t-interval over {len(points)} seeds)"}
            else:
                summary = {"speedup": math.nan, "low": math.nan, "high": math.nan, "verdict": "undecided",
                           "reason": "fewer than two seeds where both runs reached the target"}
            pairs.append(_unbounded_as_none({"scene_graph": baseline, "no_scene_graph": cond, **summary,
                                             "per_seed": per_seed}))
    return {"claim": "scene-graph conditions reach the target 10-15% sooner (design 18.1)",
            "expected": list(CLAIM), "speedup": "1 - steps_scene_graph / steps_no_scene_graph", "stratum": stratum,
            "metric": metric, "target_rule": ", ".join(sorted(set(part["target_rule"]))) if len(part) else "",
            "pairs": pairs}


def _unbounded_as_none(obj):
    """JSON has no infinity: a one-sided interval's open end is written as null."""
    if isinstance(obj, dict):
        return {k: _unbounded_as_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unbounded_as_none(v) for v in obj]
    return None if isinstance(obj, float) and math.isinf(obj) else obj


def _int(x) -> int | None:
    return None if pd.isna(x) else int(x)
