"""Scoring a predictions frame: per-item scores and metrics.json with study-clustered CIs.

The steps, one module each: :mod:`~cxrbench.score.read` (a file into a frame),
:mod:`~cxrbench.score.validate` (the contract: types, ranges, the QA-pair key of
:mod:`~cxrbench.score.contract`), :mod:`~cxrbench.score.items` (per-item metric columns),
:mod:`~cxrbench.score.statistics` (one statistic per metric, from the registry),
:mod:`~cxrbench.score.strata` (overall, by question type, by head, by region category), and
here the CIs of every metric in every stratum from one call of the statistics engine.
``cxrbench score`` (``cxrbench.commands.score``) and ``cxrbench evaluate`` call
:func:`score_frame`; ``cxrbench compare`` reuses the statistics and strata.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cxrbench.errors import DataError
from cxrbench.metrics.registry import MetricResources
from cxrbench.score.contract import Warnings, qa_keys
from cxrbench.score.items import add_item_scores
from cxrbench.score.statistics import build_statistics, pick, signature_table
from cxrbench.score.strata import report_strata
from cxrbench.score.validate import validate

CI_DRAWS = ("shared", "per_stratum")
PROVENANCE_PACKAGES = ("sacrebleu", "rouge-score", "bert-score", "quickumls", "spacy", "transformers", "torch",
                       "pycocotools")


@dataclass(frozen=True)
class ScoreOptions:
    bertscore_model: str | None = None
    bertscore_layers: int | None = None
    umls_index: str | None = None
    n_resamples: int = 10_000
    unit: str = "study_id"               # resampling unit column; "question_id": QA pairs
    seed: int = 0
    ci_method: str = "percentile"
    confidence: float = 0.95
    ci_draw: str = "shared"              # one draw of units for every stratum; or per_stratum (docs/statistics.md)
    skip: tuple[str, ...] = ()           # metric names not to compute (e.g. bertscore_f1)
    extra_strata: tuple[str, ...] = ()   # more by_<column> strata (e.g. answer_type)
    source: str = "<frame>"              # file name used in error messages
    progress: bool = True

    def __post_init__(self) -> None:
        if self.ci_draw not in CI_DRAWS:
            raise ValueError(f"ci_draw must be one of {CI_DRAWS}, got {self.ci_draw!r}")
        if self.n_resamples < 0:
            raise ValueError(f"n_resamples must be >= 0, got {self.n_resamples}")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must lie in (0, 1), got {self.confidence}")

    def resources(self) -> MetricResources:
        return MetricResources(self.bertscore_model, self.bertscore_layers, self.umls_index, self.progress)


def resampling_units(frame: pd.DataFrame, unit: str, source: str,
                     warnings: Warnings | None = None) -> tuple[np.ndarray | None, str]:
    """The bootstrap's cluster label per row and the unit used (``question_id``: QA pairs)."""
    if unit == "question_id":
        return None, "question_id"
    if unit not in frame.columns:
        if warnings is not None:
            warnings.add("unit_column_missing", [unit])
        return None, "question_id"
    col = frame[unit]
    if col.isna().any():
        raise DataError(source, qa_keys(frame)[int(np.flatnonzero(col.isna().to_numpy())[0])],
                        f"empty {unit} (the resampling unit)")
    return pd.factorize(col)[0], unit


def confidence_intervals(built, strata: dict[str, dict[str, np.ndarray]], clusters,
                         options: ScoreOptions) -> dict[str, dict[str, dict[str, dict]]]:
    """``{group: {value: {metric: {value, ci, n}}}}`` of every metric the stratum has, all strata
    from one call of the statistics engine."""
    from cxrbench.stats.bootstrap import bootstrap_table
    from cxrbench.stats.report import metric_entry

    flat = {f"{g}\x00{v}": m for g, values in strata.items() for v, m in values.items()}
    chosen = {k: pick(built, m) for k, m in flat.items()}
    results: dict[str, dict] = {}
    if options.n_resamples > 0:
        stats = {f"{name}\x00{space}": b.stat for (name, space), b in built.items()}
        table = bootstrap_table(stats, flat, clusters, n_resamples=options.n_resamples,
                                confidence=options.confidence, method=options.ci_method, seed=options.seed,
                                progress=options.progress, draw=options.ci_draw)
        results = {k: {name: table[k][f"{name}\x00{b.space}"] for name, b in chosen[k].items()} for k in flat}
    out: dict[str, dict[str, dict[str, dict]]] = {g: {} for g in strata}
    for k, mask in flat.items():
        g, v = k.split("\x00")
        entries = {}
        for name, b in chosen[k].items():
            n = int((b.mask & mask).sum())
            # the point estimate straight from the items: it must not depend on the resampling unit
            value = b.stat.value() if mask.all() else b.stat.subset(mask).value()
            entries[name] = metric_entry(value, results.get(k, {}).get(name), n)
        if entries:
            out[g][v] = entries
    return out


def score_frame(frame: pd.DataFrame, options: ScoreOptions | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate, score every item and aggregate with bootstrap CIs.

    Returns ``(scored_frame, metrics)``: the input plus per-item score columns, and the
    ``metrics.json`` dict (``provenance`` without the input file hash, which the caller adds).
    """
    from cxrbench.io import provenance

    options = options or ScoreOptions()
    warnings = Warnings()
    frame = validate(frame, options.source, warnings)
    scored, model_signatures = add_item_scores(frame, options.resources(), options.skip)
    built = build_statistics(scored, warnings, options.skip, model_signatures)
    clusters, unit = resampling_units(scored, options.unit, options.source, warnings)
    strata = report_strata(scored, options.extra_strata)
    cis = confidence_intervals(built, strata, clusters, options)
    metrics: dict[str, Any] = {"overall": cis.pop("overall").get("", {}), **cis}
    if ("ece", "") in built:
        from cxrbench.metrics.calibration import reliability_table

        rows = built[("ece", "")].mask
        metrics["reliability_diagram"] = reliability_table(scored["correct"].to_numpy()[rows],
                                                           scored["confidence"].to_numpy()[rows])
    metrics["provenance"] = provenance(
        "cxrbench score", extra_packages=PROVENANCE_PACKAGES,
        bootstrap={"n_resamples": options.n_resamples, "unit": unit, "method": options.ci_method,
                   "confidence": options.confidence, "seed": options.seed, "draw": options.ci_draw},
        metrics=signature_table(built), n_items=len(scored))
    metrics["warnings"] = warnings.to_dict()
    return scored, metrics


def summary_line(metrics: dict, k: int = 6) -> str:
    """``exact_match=0.4123, token_f1=...`` of the first ``k`` overall metrics."""
    shown = [(n, e["value"]) for n, e in list(metrics.get("overall", {}).items())[:k] if e.get("value") is not None]
    return ", ".join(f"{n}={v:.4f}" for n, v in shown)

