"""Scene-graph error propagation (design 17.1 category 1, 17.2 "SG propagation").

Which QA pairs does a scene-graph error touch, and how often are they answered wrong?

- **Synthetic roots** (:func:`truth_kinds`): ``synthetic_truth/boxes.parquet`` logs every
  observation box the generator released with the noise it applied (docs/data.md). A QA pair is
  touched by an error of kind K when one of its observations (qa.parquet ``obs_ids``) has a row of
  that kind on the study's primary image (the image the model answers from). The generator's
  ``noise`` values map to the design's kinds by :data:`NOISE_KINDS`; a ``fallback`` box (the
  parent region's box released instead) is a missing box. ``clean``: the QA pair names
  observations and none is touched; ``unknown``: it names none (in neither rate).
- **Real data** (:func:`proxy_kinds`): no clean truth exists; the CheXpert-disagreement proxy
  flags a has_finding question whose graph-derived reference answer (``label_true``) disagrees with
  the study's CheXpert label of that finding (radiologist labels where the study has them, else the
  automatic ones; uncertain or blank labels: ``unknown``).

:func:`propagation_table`: per kind, the share of touched QA pairs answered wrong (the design's
"% of SG errors → model errors", target under 50%) with a bootstrap CI over studies; beside it the
error rate of clean QA pairs, the clean rate re-weighted to the touched pairs' question-type mix
(touched and clean pairs differ in type, and types differ in difficulty), and their difference
(``excess``), the error the scene-graph errors add.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from cxrbench import vocab
from cxrbench.metrics.base import SufficientStats, mean_stats

DESIGN_KINDS = ("displaced", "missing", "misclassified", "duplicated")
NOISE_KINDS = {"displaced": "displaced", "missing": "missing", "fallback": "missing",
               "misclassified": "misclassified", "duplicated": "duplicated"}
PROXY_KINDS = ("proxy_graph_positive", "proxy_graph_negative")
STATUSES = ("affected", "clean", "unknown")
TARGET = 0.5
COLUMNS = ("kind", "source", "n", "n_errors", "error_rate", "ci_low", "ci_high", "target", "meets_target",
           "clean_error_rate", "clean_ci_low", "clean_ci_high", "clean_rate_type_matched", "excess",
           "excess_ci_low", "excess_ci_high", "baseline_error_rate")


def _ids(value) -> list[str]:
    if value is None or isinstance(value, float):
        return []
    return [str(v) for v in value]


def truth_kinds(obs_ids, study_ids, truth: pd.DataFrame, primary_image: dict[int, str]
                ) -> tuple[list[list[str]], list[str], Counter]:
    """(design kinds touching each QA pair, its status, unknown noise values counted)."""
    unknown: Counter = Counter()
    errors: dict[tuple[int, str], set[str]] = {}
    for sid, image, obs, noise in zip(truth["study_id"].astype("int64"), truth["image_id"].astype(str),
                                      truth["obs_id"].astype(str), truth["noise"].astype(str)):
        if noise == "none" or primary_image.get(int(sid)) != image:
            continue
        kind = NOISE_KINDS.get(noise)
        if kind is None:
            unknown[noise] += 1
            continue
        errors.setdefault((int(sid), obs), set()).add(kind)
    kinds, status = [], []
    for ids, sid in zip(obs_ids, study_ids):
        ids = _ids(ids)
        found = sorted(set().union(*(errors.get((int(sid), o), set()) for o in ids)), key=DESIGN_KINDS.index) \
            if ids else []
        kinds.append(found)
        status.append("affected" if found else ("clean" if ids else "unknown"))
    return kinds, status, unknown


def proxy_kinds(frame: pd.DataFrame) -> tuple[list[list[str]], list[str]]:
    """(proxy kinds, status) per QA pair from a predictions frame with ``question_type``,
    ``label_true``, ``finding_chexpert`` and ``chexpert_gold`` / ``chexpert_auto`` (module docstring)."""
    index = {c: i for i, c in enumerate(vocab.CHEXPERT_LABELS)}
    n = len(frame)

    def col(name):
        return frame[name].tolist() if name in frame.columns else [None] * n

    kinds, status = [], []
    for qt, answer, classes, gold, auto in zip(col("question_type"), col("label_true"), col("finding_chexpert"),
                                               col("chexpert_gold"), col("chexpert_auto")):
        classes = _ids(classes)
        labels = gold if gold is not None and not isinstance(gold, float) else auto
        if qt != "D02_has_finding" or not classes or labels is None or isinstance(labels, float) \
                or answer is None or pd.isna(answer):
            kinds.append([])
            status.append("unknown")
            continue
        values = [float(labels[index[c]]) for c in classes if c in index]
        decided = [v for v in values if v in (0.0, 1.0)]
        if not decided:
            kinds.append([])
            status.append("unknown")
            continue
        says_yes = int(answer) == 1
        disagree = any((v == 1.0) != says_yes for v in decided)
        kinds.append([PROXY_KINDS[0] if says_yes else PROXY_KINDS[1]] if disagree else [])
        status.append("affected" if disagree else "clean")
    return kinds, status


def _ratio_minus_matched(num: np.ndarray, den: np.ndarray, clean_num: np.ndarray, clean_den: np.ndarray,
                         weights: np.ndarray, with_rate: bool) -> SufficientStats:
    """rate(touched) − Σ_t w_t rate_t(clean), or Σ_t w_t rate_t(clean) alone, as sufficient stats."""
    stats = np.column_stack([num, den, *[x for pair in zip(clean_num.T, clean_den.T) for x in pair]])
    w = np.asarray(weights, dtype=float)

    def reduce(t: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            matched = sum(w[i] * t[..., 2 + 2 * i] / t[..., 3 + 2 * i] for i in range(len(w)))
            return matched if not with_rate else t[..., 0] / t[..., 1] - matched

    return SufficientStats("excess" if with_rate else "matched", stats, reduce)


def propagation_table(error: np.ndarray, kinds: list[list[str]], status: list[str], question_type, *,
                      order: tuple[str, ...], source: str, clusters=None, n_resamples: int = 10_000, seed: int = 0,
                      baseline_error: np.ndarray | None = None) -> pd.DataFrame:
    """One row per kind of ``order`` and ``any`` (module docstring)."""
    from cxrbench.stats.bootstrap import bootstrap_many

    e = np.asarray(error, dtype=float)
    st = np.asarray(status, dtype=object)
    qt = np.asarray(question_type, dtype=object).astype(str)
    clean = st == "clean"
    masks = {k: np.array([k in ks for ks in kinds]) for k in order}
    masks["any"] = st == "affected"
    stats = {"clean": mean_stats("clean", np.where(clean, e, np.nan), outcome="binary")}
    matched_weights = {}
    for k, m in masks.items():
        stats[f"{k}/rate"] = mean_stats(f"{k}/rate", np.where(m, e, np.nan), outcome="binary")
        types = [t for t in sorted(set(qt[m])) if (clean & (qt == t)).any()]
        if not types:
            continue
        w = np.array([np.sum(m & (qt == t)) for t in types], dtype=float)
        w /= w.sum()
        cn = np.column_stack([e * (clean & (qt == t)) for t in types])
        cd = np.column_stack([(clean & (qt == t)).astype(float) for t in types])
        stats[f"{k}/matched"] = _ratio_minus_matched(e * m, m.astype(float), cn, cd, w, with_rate=False)
        stats[f"{k}/excess"] = _ratio_minus_matched(e * m, m.astype(float), cn, cd, w, with_rate=True)
        matched_weights[k] = w
    boot = bootstrap_many(stats, clusters, n_resamples=n_resamples, seed=seed)
    rows = []
    c = boot["clean"]
    for k, m in masks.items():
        r = boot[f"{k}/rate"]
        n = int(m.sum())
        meets = "undecided"
        if n and np.isfinite(r.ci_high) and r.ci_high < TARGET:
            meets = "yes"
        elif n and np.isfinite(r.ci_low) and r.ci_low > TARGET:
            meets = "no"
        ex = boot.get(f"{k}/excess")
        rows.append({"kind": k, "source": source, "n": n, "n_errors": int(e[m].sum()),
                     "error_rate": r.value if n else np.nan, "ci_low": r.ci_low if n else np.nan,
                     "ci_high": r.ci_high if n else np.nan, "target": TARGET, "meets_target": meets,
                     "clean_error_rate": c.value, "clean_ci_low": c.ci_low, "clean_ci_high": c.ci_high,
                     "clean_rate_type_matched": boot[f"{k}/matched"].value if ex is not None else np.nan,
                     "excess": ex.value if ex is not None else np.nan,
                     "excess_ci_low": ex.ci_low if ex is not None else np.nan,
                     "excess_ci_high": ex.ci_high if ex is not None else np.nan,
                     "baseline_error_rate": float(np.asarray(baseline_error, dtype=float)[m].mean())
                     if baseline_error is not None and n else np.nan})
    return pd.DataFrame(rows, columns=list(COLUMNS))
