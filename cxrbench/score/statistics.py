"""The statistic of every metric of a scored predictions frame, from the registry.

:func:`build_statistics` turns a frame that holds the per-item score columns (what
``cxrbench score`` writes into predictions.parquet) into one statistic per (metric, label space),
each covering ALL rows of the frame (rows the metric does not apply to contribute nothing), so
that all of them are resampled together and two runs compare item by item. No model runs here:
``score`` and ``compare`` share this one definition of every metric.

Label spaces: the confusion-matrix metrics are computed on the binary questions' labels and on
the severity questions' labels; a stratum reports the binary space where it holds binary
questions, else the severity one (:func:`pick`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from cxrbench.metrics import registry
from cxrbench.metrics.base import Statistic, SufficientStats, mean_stats
from cxrbench.metrics.registry import LabelInputs, MetricInputs
from cxrbench.score.contract import Warnings
from cxrbench.score.items import applies
from cxrbench.score.labels import space_labels
from cxrbench.score.validate import family


@dataclass
class Built:
    """A metric's statistic over all rows and the rows it is defined on (``n`` and strata)."""

    stat: Statistic
    mask: np.ndarray
    space: str = ""     # label space of labels/auroc metrics


def embed(stat: SufficientStats, mask: np.ndarray) -> SufficientStats:
    """A statistic computed on ``mask`` rows, as rows over all items (zero rows elsewhere)."""
    rows = np.zeros((len(mask), stat.stats.shape[1]))
    rows[mask] = stat.stats
    return SufficientStats(stat.name, rows, stat.reduce, stat.signature, stat.info)


def build_statistics(frame: pd.DataFrame, warnings: Warnings | None = None, skip: Iterable[str] = (),
                     signatures: Mapping[str, str] | None = None) -> dict[tuple[str, str], Built]:
    """(metric, label space) -> :class:`Built`, for every registered metric that applies to a
    row of ``frame``. ``signatures``: of the per-item metrics computed by a model (from
    :func:`cxrbench.score.items.add_item_scores`, or a run's metrics.json)."""
    skip, signatures = set(skip), dict(signatures or {})
    n = len(frame)
    built: dict[tuple[str, str], Built] = {}
    labels = {}
    group_cache: dict = {}
    flags = None
    present: dict = {}
    for name, spec in registry.METRICS.items():
        if name in skip:
            continue
        if spec.kind == "item":
            if name not in frame.columns:
                continue
            v = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64).copy()
            rows = applies(frame, name, present)
            v[~rows] = np.nan
            if np.isnan(v).all():
                continue
            if spec.from_column:   # the predictor's own per-item scores: the constructor averages the column
                stat = embed(spec.statistic(MetricInputs(frame.loc[rows])), rows)
            else:
                stat = mean_stats(name, v, signatures.get(name, ""), outcome=spec.outcome)
            built[(name, "")] = Built(stat, ~np.isnan(v))
        elif spec.kind == "corpus":
            built[(name, "")] = Built(spec.statistic(MetricInputs(frame)), np.ones(n, dtype=bool))
        elif spec.kind in ("labels", "auroc"):
            for space in spec.spaces:
                if space not in labels:
                    labels[space] = space_labels(frame, space, family(frame), warnings)
                y_true, y_pred, rows = labels[space]
                if spec.kind == "auroc":
                    if "score" not in frame.columns:
                        continue
                    s = frame["score"].to_numpy(dtype=np.float64)
                    rows = rows & ~np.isnan(s)
                    inputs = LabelInputs(space, y_true[rows], y_pred[rows], s[rows])
                else:
                    inputs = LabelInputs(space, y_true[rows], y_pred[rows])
                if rows.any():
                    built[(name, space)] = Built(embed(spec.statistic(inputs), rows), rows, space)
        elif spec.kind == "ece":
            rows = applies(frame, name, present)
            if rows.any():
                built[(name, "")] = Built(embed(spec.statistic(MetricInputs(frame.loc[rows])), rows), rows)
        elif spec.kind == "map":
            rows = applies(frame, name, present)
            if not rows.any():
                continue
            key = spec.statistic          # the family's members share one constructor and one result
            if key not in group_cache:
                # the family shares one detection table: boxes outside the metric's rows count as none
                empty = frame.loc[:, [c for c in ("boxes_true", "boxes_pred", "box_scores") if c in frame.columns]]
                empty = empty.assign(**{c: [b if m else ([] if c != "box_scores" else None)
                                            for b, m in zip(empty[c], rows)] for c in empty.columns})
                group_cache[key] = spec.statistic(MetricInputs(empty))
            stat = group_cache[key].get(name)
            if stat is not None:
                built[(name, "")] = Built(stat, rows)
        elif spec.kind == "subset":
            if "question" not in frame.columns:
                continue
            if flags is None:
                from cxrbench.metrics.relational import question_flags

                flags = question_flags(frame["question"].fillna("").astype(str).tolist())
            rows = flags[registry.SUBSET_FLAGS[name]] & applies(frame, name, present)
            if rows.any():
                built[(name, "")] = Built(spec.statistic(MetricInputs(frame, mask=rows)), rows)
    return built


def pick(built: Mapping[tuple[str, str], Built], stratum: np.ndarray) -> dict[str, Built]:
    """One statistic per metric for a stratum: the binary label space where the stratum has
    binary questions, else the severity one; metrics with no defined item are dropped. In
    registry order."""
    out: dict[str, Built] = {}
    for (name, _space), b in built.items():
        if not (b.mask & stratum).any():
            continue
        if name in out and out[name].space == "binary":
            continue
        out[name] = b
    return {name: out[name] for name in registry.order(out)}


def statistics_from_predictions(frame: pd.DataFrame, signatures: Mapping[str, str] | None = None
                                ) -> dict[str, Statistic]:
    """The statistic of every metric that applies to a scored predictions frame; runs no model.
    Each covers all rows of ``frame``; ``stat.info["n_defined"]`` is the number of items the
    metric is defined on (the ``n`` of metrics.json); ``stat.n`` the number of rows."""
    from cxrbench import questions

    frame = frame.reset_index(drop=True)
    if "question_type" in frame.columns:
        frame = frame.assign(question_type=[questions.normalize_question_type(q) for q in frame["question_type"]])
    built = build_statistics(frame, None, signatures=signatures)
    return {name: dataclasses.replace(b.stat, info={**b.stat.info, "n_defined": int(b.mask.sum())})
            for name, b in pick(built, np.ones(len(frame), dtype=bool)).items()}


def signature_table(built: Mapping[tuple[str, str], Built]) -> dict[str, dict]:
    """Provenance: every metric's signature (one per label space for the label metrics)."""
    out: dict[str, dict] = {}
    for (name, space), b in built.items():
        entry = out.setdefault(name, {})
        if space:
            entry.setdefault("signature", {})[space] = b.stat.signature
        else:
            entry["signature"] = b.stat.signature
        if "max_error" in b.stat.info:   # binned AUROC: the bound on its error
            entry["max_error"] = b.stat.info["max_error"]
    return dict(sorted(out.items()))

