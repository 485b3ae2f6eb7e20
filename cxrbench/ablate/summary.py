"""The summary set of a finished study: seed spread, expected matrix, dynamics (docs/contracts.md §7).

Read from the finished steps (``compare/seed*/``, ``runs/*/seed*/``), written into the study's
staging folder and committed as one set, so a reader never sees a new matrix beside old
dynamics.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cxrbench import io
from cxrbench.ablate import dynamics, expected, seeds
from cxrbench.ablate.plan import BASELINE, Manifest, StudyOptions, compare_dir, run_dir
from cxrbench.errors import reading
from cxrbench.outputs import OutputDir


def _csv(rows, columns) -> str:
    return pd.DataFrame(list(rows), columns=list(columns)).to_csv(index=False, lineterminator="\n")


def _read_json(path: Path) -> dict:
    with reading(path, what="JSON file"):
        return json.loads(path.read_text())


def gather(study: Path, manifest: Manifest):
    """(comparison rows by seed, matrix cells by seed, dynamics frames, training logs by run)."""
    rows, cells, dyn, logs = {}, {}, [], {}
    for seed in manifest.data["seeds"]:
        comp = Path(study) / compare_dir(seed)
        rows[seed] = _read_json(comp / "comparison.json")["rows"]
        cells[seed] = _read_json(comp / "ablation_matrix.json")["cells"]
        for cond in manifest.data["conditions"]:
            run = Path(study) / run_dir(cond, seed)
            if (run / "dynamics.csv").is_file():
                dyn.append(dynamics.read_dynamics(run / "dynamics.csv"))
            if (run / "train_log.jsonl").is_file():
                logs[(cond, seed)] = dynamics.read_train_log(run / "train_log.jsonl")
    return rows, cells, dyn, logs


def write_summary(claim: OutputDir, manifest: Manifest, options: StudyOptions) -> dict:
    """Compute and commit the summary set; returns what study.md summarises."""
    study = claim.path
    rows, cells, dyn_frames, logs = gather(study, manifest)
    spread = seeds.seed_spread(rows, seed_test=options.seed_test, correction=options.correction, alpha=options.alpha)
    matrix = (expected.accuracy_rows(cells, options.expected_scale)
              + expected.loss_rows(dynamics.final_losses(logs), BASELINE))
    dyn = dynamics.collect_dynamics(dyn_frames)
    curve, width = dynamics.loss_curve(logs, options.loss_bin)
    stt = dynamics.steps_to_target(dyn, baseline=BASELINE, targets=options.targets, fraction=options.target_fraction)
    scene_graph = {m["condition"]: m["scene_graph"] for m in manifest.data["runs"].values()}
    conv = dynamics.convergence(stt, scene_graph, baseline=BASELINE)

    prov = io.provenance("cxrbench ablate", extra_packages=("statsmodels",), study=manifest.identity(),
                         settings={"expected_scale": options.expected_scale, "seed_test": options.seed_test,
                                   "targets": list(options.targets), "target_fraction": options.target_fraction,
                                   "loss_bin": width, "alpha": options.alpha, "correction": options.correction})
    staging = claim.staging()
    io.atomic_write_text(staging / "seed_spread.csv",
                         _csv(({k: r[k] for k in seeds.COLUMNS} for r in spread), seeds.COLUMNS))
    io.atomic_write_json(staging / "seed_spread.json",
                         {"provenance": prov, "seed_test": "paired t over seeds (cxrbench.ablate.seeds)"
                          if options.seed_test else None, "rows": spread})
    io.atomic_write_text(staging / "expected_matrix.csv", _csv(matrix, expected.COLUMNS))
    io.atomic_write_json(staging / "expected_matrix.json",
                         {"provenance": prov, "rule": expected.__doc__.split("**The verdict rule**")[1].strip(),
                          "rows": matrix})
    io.atomic_write_text(staging / "expected_matrix.md", matrix_markdown(matrix, options.expected_scale))
    io.atomic_write_text(staging / "dynamics.csv", dyn.to_csv(index=False, lineterminator="\n"))
    io.atomic_write_text(staging / "loss_curve.csv", curve.to_csv(index=False, lineterminator="\n"))
    io.atomic_write_text(staging / "steps_to_target.csv", stt.to_csv(index=False, lineterminator="\n"))
    io.atomic_write_json(staging / "convergence.json", {"provenance": prov, **conv})
    io.atomic_write_text(staging / "study.md", study_markdown(manifest, matrix, spread, conv, options))
    claim.commit()                                 # the entries the runner adopted stay
    return {"matrix": matrix, "spread": spread, "convergence": conv}


# ------------------------------------------------------------------------------------ reports
def _pts(x, scale: str = "points") -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    return f"{100 * x:+.1f}" + ("%" if scale == "relative" else "")


def matrix_markdown(matrix: list[dict], scale: str) -> str:
    unit = "percentage points" if scale == "points" else "% relative change"
    lines = ["# Expected (design 16.2) and measured ablation matrix", "",
             f"Δ against `full` in {unit} (training loss: % relative change of the mean loss over the last steps). "
             "Per seed: the study-level paired bootstrap CI and the corrected p of `cxrbench compare`'s matrix; "
             "`all`: the mean over seeds ± SD and the verdict every seed gives. Rule: docs/ablation.md.", "",
             "| condition | subset | expected | seed | Δ [95% CI] | p (adj.) | verdict |",
             "|---|---|---|---|---|---:|---|"]
    for r in matrix:
        sc = r["scale"]
        exp = "n/a" if np.isnan(r["expected_low"]) else f"{_pts(r['expected_low'], sc)} to {_pts(r['expected_high'], sc)}"
        if r["seed"] == "all":
            meas = _pts(r["diff"], sc) + ("" if np.isnan(r["diff_sd"]) else f" ± {100 * r['diff_sd']:.1f}")
        else:
            meas = f"{_pts(r['diff'], sc)} [{_pts(r['ci_low'], sc)}, {_pts(r['ci_high'], sc)}]"
        p = "" if r["p_adjusted"] is None or np.isnan(r["p_adjusted"]) else (
            "<0.001" if r["p_adjusted"] < 0.001 else f"{r['p_adjusted']:.3f}")
        lines.append(f"| {r['condition']} | {r['subset']} | {exp} | {r['seed']} | {meas} | {p} | "
                     f"**{r['verdict']}**: {r['reason']} |" if r["seed"] == "all" else
                     f"| {r['condition']} | {r['subset']} | {exp} | {r['seed']} | {meas} | {p} | {r['verdict']} |")
    return "\n".join(lines) + "\n"


def study_markdown(manifest: Manifest, matrix: list[dict], spread: list[dict], conv: dict,
                   options: StudyOptions) -> str:
    d = manifest.data
    lines = ["# Ablation study", "",
             f"Conditions {', '.join(d['conditions'])}; seeds {', '.join(map(str, d['seeds']))}; config "
             f"`{d['config']['argument']}`" + (f", {d['config']['max_steps']} steps" if d['config']['max_steps'] else "")
             + f"; evaluated on `{d['split']}`; index {d['index']['sha256'][:12]}.", "",
             "## Verdicts against the design's expectations (16.2)", ""]
    for r in matrix:
        if r["seed"] == "all":
            lines.append(f"- {r['condition']} / {r['subset']}: **{r['verdict']}** ({r['reason']})")
    lines += ["", "## Seed-to-seed spread of exact match (Δ against full, points)", "",
              "| condition | stratum | seeds | Δ mean | SD over seeds | mean bootstrap half-width | seeds significant |"
              + (" seed test p (adj.) |" if options.seed_test else ""),
              "|---|---|---:|---:|---:|---:|---:|" + ("---:|" if options.seed_test else "")]
    for r in spread:
        if r["metric"] == "exact_match" and r["stratum"] in expected.SUBSETS:
            sd = "n/a" if np.isnan(r["diff_sd"]) else f"{100 * r['diff_sd']:.2f}"
            line = (f"| {r['condition']} | {r['stratum']} | {r['n_seeds']} | {_pts(r['diff_mean'])} | {sd} | "
                    f"{100 * r['boot_halfwidth_mean']:.2f} | {r['boot_significant']} |")
            if options.seed_test:
                p = r["seed_p_adjusted"]
                line += (" n/a |" if np.isnan(p) else f" {p:.3f} |")
            lines.append(line)
    lines += ["", "## Convergence (18.1)", "", f"Claim: {conv['claim']}; speed-up = {conv['speedup']} on "
              f"{conv['stratum']} {conv['metric']}, target {conv['target_rule'] or 'n/a'}.", ""]
    for p in conv["pairs"]:
        lines.append(f"- {p['scene_graph']} vs {p['no_scene_graph']}: speed-up {_pts(p['speedup'])}% "
                     f"[{_pts(p['low'])}, {_pts(p['high'])}]: **{p['verdict']}** ({p['reason']})")
    if not conv["pairs"]:
        lines.append("- no pair of a scene-graph baseline and a condition without one")
    lines += ["", "Files: expected_matrix.*, seed_spread.*, dynamics.csv, loss_curve.csv, steps_to_target.csv, "
              "convergence.json; per seed compare/seed*/; per run runs/*/seed*/ and eval/*/seed*/ "
              "(docs/contracts.md §7)."]
    return "\n".join(lines) + "\n"
