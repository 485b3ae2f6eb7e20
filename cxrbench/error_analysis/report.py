"""``cxrbench errors``: run every analysis of 17.1-17.2 on a run dir and commit the output folder
(docs/contracts.md §8)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cxrbench import io
from cxrbench.error_analysis import benefit, inputs, misaligned, overlap, propagation, rates
from cxrbench.errors import DataError
from cxrbench.outputs import OutputDir
from cxrbench.score.contract import qa_keys

COMMAND = "cxrbench errors"
UNITS = {"study": "study_id", "patient": "subject_id", "pair": None}
STRATA = ("question_type", "head", "region_category", "iou_bin", "sg_status")
ITEM_COLUMNS = ("question_id", "study_id", "question_type", "head", "region_category", "question", "answer",
                "prediction", "error", "max_iou", "iou_bin", "sg_error_kinds", "sg_status", "plausibility",
                "attention_entropy", "misaligned", "baseline_error")


@dataclass(frozen=True)
class ErrorOptions:
    n_resamples: int = 10_000
    seed: int = 0
    unit: str = "study"                  # study | patient | pair
    alpha: float = 0.05
    correction: str = "bonferroni"
    n_overlays: int = 20
    misaligned_below: float = misaligned.THRESHOLD
    overwrite: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {tuple(UNITS)}, got {self.unit!r}")
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be at least 1, got {self.n_resamples}")


def _errors_of(frame: pd.DataFrame, source: Path) -> np.ndarray:
    if "correct" in frame.columns:
        return ~frame["correct"].astype(bool).to_numpy()
    if "exact_match" in frame.columns:
        return frame["exact_match"].to_numpy(dtype=float) < 1
    raise DataError(source / "predictions.parquet", None, "no 'correct' or 'exact_match' column: score the "
                    "predictions first (cxrbench score)")


def build_items(inp: inputs.ErrorInputs, error: np.ndarray, threshold: float) -> tuple[pd.DataFrame, dict]:
    """The per-QA-pair table of §8 (without ``baseline_error``) and what was counted on the way."""
    f = inp.items
    items = pd.DataFrame({c: f[c].to_numpy() for c in ("question_id", "study_id", "question_type", "head",
                                                       "region_category", "question", "answer", "prediction")
                          if c in f.columns})
    items["error"] = error
    boxes = f["boxes_true"] if "boxes_true" in f.columns else [None] * len(f)
    items["max_iou"] = overlap.max_iou_column(boxes, f["study_id"], overlap.image_boxes(inp.nodes, inp.studies))
    items["iou_bin"] = overlap.iou_bin(items["max_iou"].to_numpy())
    counted: dict = {}
    if inp.truth is not None:
        primary = dict(zip(inp.studies["study_id"].astype("int64"), inp.studies["image_id"].astype(str)))
        kinds, status, unknown = propagation.truth_kinds(f["obs_ids"], f["study_id"], inp.truth, primary)
        counted["source"] = "synthetic_truth"
        counted["unknown_noise_values"] = dict(sorted(unknown.items()))
        present = sorted(set(inp.truth["noise"].astype(str)) - {"none"})
        counted["noise_values_in_truth"] = present
        counted["design_kinds_absent"] = [k for k in propagation.DESIGN_KINDS
                                          if k not in {propagation.NOISE_KINDS.get(v) for v in present}]
    else:
        kinds, status = propagation.proxy_kinds(f)
        counted["source"] = "chexpert_proxy"
    items["sg_error_kinds"] = kinds
    items["sg_status"] = status
    for col in ("plausibility", "attention_entropy"):
        items[col] = f[col].to_numpy(dtype=float) if col in f.columns else np.nan
    items["misaligned"] = items["plausibility"].notna() & (items["plausibility"] < threshold)
    if "subject_id" in f.columns:
        items["subject_id"] = f["subject_id"].to_numpy()
    return items, counted


def _baseline_errors(baseline_dir: Path, keys: np.ndarray) -> np.ndarray:
    from cxrbench.runs import read_run

    base = read_run(baseline_dir)
    err = dict(zip(qa_keys(base.frame), _errors_of(base.frame, base.path)))
    missing = [k for k in keys if k not in err]
    if missing:
        raise DataError(Path(baseline_dir) / "predictions.parquet", missing[0],
                        f"{len(missing)} QA pair(s) of the run are not in the baseline: the runs were not made on "
                        "the same questions")
    return np.array([err[k] for k in keys], dtype=bool)


def analyze_run(run_dir: Path, out_dir: Path, options: ErrorOptions | None = None, *, baseline_dir: Path | None = None,
                index: Path | None = None, data: Path | None = None) -> dict:
    """Every analysis of §8 on ``run_dir``, committed into ``out_dir``; returns summary.json."""
    from cxrbench.runs import read_run

    options = options or ErrorOptions()
    out = OutputDir.claim(out_dir, COMMAND, overwrite=options.overwrite)    # before any work
    run = read_run(run_dir)
    error = _errors_of(run.frame, run.path)
    index_dir = inputs.find_index(run_dir, index, data, out_dir, options.progress)
    if index_dir == Path(out_dir) / "index":
        out.adopt("index")
    truth_dir = inputs.find_truth(data, index_dir)
    inp = inputs.load(run.frame, index_dir, truth_dir)
    items, counted = build_items(inp, error, options.misaligned_below)
    keys = qa_keys(items)
    if baseline_dir is not None:
        items["baseline_error"] = _baseline_errors(baseline_dir, keys)
    col = UNITS[options.unit]
    if col is not None and (col not in items.columns or items[col].isna().any()):
        raise DataError(Path(run_dir) / "predictions.parquet", None, f"--unit {options.unit} needs a {col!r} value "
                        "on every row; use --unit pair")
    clusters = None if col is None else items[col].to_numpy()
    boot = {"n_resamples": options.n_resamples, "seed": options.seed}

    strata = rates.error_rates(error, rates.strata_of(items, STRATA), clusters, **boot)
    corr = overlap.overlap_correlation(error, items["max_iou"].to_numpy(), clusters, **boot)
    corr["bins"] = strata[strata["group"] == "iou_bin"].drop(columns="group").to_dict("records")
    order = propagation.DESIGN_KINDS if counted["source"] == "synthetic_truth" else propagation.PROXY_KINDS
    prop = propagation.propagation_table(error, items["sg_error_kinds"].tolist(), items["sg_status"].tolist(),
                                         items["question_type"], order=order, source=counted["source"],
                                         clusters=clusters,
                                         baseline_error=items["baseline_error"].to_numpy()
                                         if "baseline_error" in items else None, **boot)
    ben, ben_notes = (None, [])
    if baseline_dir is not None:
        ben, ben_notes = benefit.graph_benefit(run_dir, baseline_dir, unit=options.unit, alpha=options.alpha,
                                               correction=options.correction, **boot)
    cases = misaligned.misaligned_cases(items, options.misaligned_below)

    staging = out.staging()
    (staging / "overlays").mkdir()
    overlay_counts = misaligned.write_overlays(cases, run_dir, staging / "overlays", options.n_overlays, inp.image_root)
    summary = {
        "provenance": io.provenance(COMMAND, extra_packages=("statsmodels",),
                                    inputs={"run": run.name, "predictions_sha256": io.file_sha256(
                                        Path(run_dir) / "predictions.parquet"),
                                            "baseline": None if baseline_dir is None else Path(baseline_dir).name,
                                            "index_sha256": _index_hash(index_dir), "truth": counted["source"]},
                                    bootstrap={**boot, "unit": options.unit}),
        "n_items": int(len(items)), "n_errors": int(error.sum()), "error_rate": float(error.mean()),
        "propagation": {"source": counted["source"], "target": propagation.TARGET,
                        "rows": prop.to_dict("records"),
                        **{k: v for k, v in counted.items() if k != "source"}},
        "overlap": corr,
        "graph_benefit": None if ben is None else _benefit_summary(ben, ben_notes),
        "misaligned": {**misaligned.summarize(cases, items), "overlays": overlay_counts},
        "strata": strata.to_dict("records"),
    }
    io.atomic_write_parquet(staging / "items.parquet", items[[c for c in ITEM_COLUMNS if c in items.columns]])
    io.atomic_write_text(staging / "strata.csv", _csv(strata))
    io.atomic_write_json(staging / "overlap.json", corr)
    io.atomic_write_text(staging / "propagation.csv", _csv(prop))
    if ben is not None:
        io.atomic_write_text(staging / "graph_benefit.csv", _csv(ben))
    io.atomic_write_text(staging / "misaligned.csv", _csv(cases.assign(
        sg_error_kinds=[";".join(k) if isinstance(k, (list, np.ndarray)) else "" for k in cases["sg_error_kinds"]])))
    io.atomic_write_json(staging / "summary.json", summary)
    io.atomic_write_text(staging / "errors.md", markdown(summary, run.name))
    out.commit(keep=("index",))
    return summary


def _index_hash(index_dir: Path) -> str | None:
    import json

    from cxrbench.evaluate.inputs import index_hash

    path = Path(index_dir) / "manifest.json"
    return index_hash(Path(index_dir), json.loads(path.read_text())) if path.is_file() else None


def _benefit_summary(ben: pd.DataFrame, notes: list[str]) -> dict:
    boot = ben[ben["test"] == "paired_bootstrap"]
    return {"metric": benefit.METRIC, "test": "paired_bootstrap (corrected over question types)",
            "helps": sorted(boot.loc[boot["effect"] == "helps", "stratum"]),
            "hurts": sorted(boot.loc[boot["effect"] == "hurts", "stratum"]),
            "no_benefit": sorted(boot.loc[boot["effect"] == "no_benefit", "stratum"]),
            "delta_le_zero": sorted(boot.loc[boot["delta_le_zero"], "stratum"]), "notes": notes}


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}%"


def markdown(summary: dict, run: str) -> str:
    p = summary["propagation"]
    lines = [f"# Error analysis of `{run}` (design 17.1-17.2)", "",
             f"{summary['n_items']} QA pairs, {summary['n_errors']} errors ({_pct(summary['error_rate'])}); "
             "error = not an exact match; CIs resample studies.", "",
             f"## Scene-graph error propagation ({p['source']})", "",
             "| kind | touched QA pairs | answered wrong [95% CI] | < 50%? | clean (type-matched) | excess [95% CI] |",
             "|---|---:|---|---|---|---|"]
    for r in p["rows"]:
        lines.append(f"| {r['kind']} | {r['n']} | {_pct(r['error_rate'])} [{_pct(r['ci_low'])}, {_pct(r['ci_high'])}] "
                     f"| {r['meets_target']} | {_pct(r['clean_error_rate'])} ({_pct(r['clean_rate_type_matched'])}) "
                     f"| {_pct(r['excess'])} [{_pct(r['excess_ci_low'])}, {_pct(r['excess_ci_high'])}] |")
    if p.get("design_kinds_absent"):
        lines += ["", f"Kinds the truth table does not contain: {', '.join(p['design_kinds_absent'])}."]
    o = summary["overlap"]
    lines += ["", "## Errors against the answer box's overlap with its neighbours", "",
              f"{o['n']} QA pairs with an answer box; point-biserial r = "
              + ("n/a" if o["r"] is None else f"{o['r']:.3f} [95% CI {o['r_ci'][0]:.3f}, {o['r_ci'][1]:.3f}], "
                 f"p = {o['r_p_value']:.3g}; Spearman rho = {o['rho']:.3f}, p = {o['rho_p_value']:.3g}") + ".", "",
              "| max IoU | QA pairs | error rate [95% CI] |", "|---|---:|---|"]
    for b in o["bins"]:
        lines.append(f"| {b['stratum']} | {b['n']} | {_pct(b['error_rate'])} [{_pct(b['ci_low'])}, {_pct(b['ci_high'])}] |")
    g = summary["graph_benefit"]
    if g is not None:
        lines += ["", "## Question types where the scene graph does not help", "",
                  f"helps: {', '.join(g['helps']) or 'none'}; hurts: {', '.join(g['hurts']) or 'none'}; "
                  f"no detectable benefit: {', '.join(g['no_benefit']) or 'none'}; Δ ≤ 0: "
                  f"{', '.join(g['delta_le_zero']) or 'none'} (graph_benefit.csv)."]
    m = summary["misaligned"]
    lines += ["", f"## Attention misalignment (plausibility < {m['threshold']})", "",
              f"{m['n_misaligned']} of {m['n_scored']} scored QA pairs; error rate {_pct(m['error_rate_misaligned'])} "
              f"(aligned: {_pct(m['error_rate_aligned'])}); touched by a scene-graph error: "
              f"{_pct(m['share_touched_by_scene_graph_error'])}; answer box overlapping a neighbour at IoU ≥ "
              f"{m['high_overlap']}: {_pct(m['share_high_overlap'])} (misaligned.csv, overlays/)."]
    return "\n".join(lines) + "\n"

