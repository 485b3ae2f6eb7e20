"""Per-pathology CheXpert report of a run dir (seed 3.2 use cases 2-3, targets of 13.3).

For each of the 14 CheXpert classes, one row per *study* (the labels are per study):
accuracy, sensitivity, specificity, PPV, NPV, F1, MCC, Cohen's kappa and AUROC, each with a
bootstrap CI, with the class prevalence and ``n``, beside the seed's per-pathology targets
(section 13.3: sensitivity / specificity / AUROC for seven pathologies). Two predictors:

- ``aux_head``: the model's auxiliary CheXpert head, ``chexpert_prob`` (mean over the study's
  QA rows; it is a function of the image, the rows agree), positive at ``>= threshold``;
- ``qa_has_finding``: the answers to the study's has_finding questions whose finding maps to
  the class (``finding_chexpert``, from :func:`cxrbench.data.vocabulary.entity_chexpert`):
  positive if any of them is answered yes, score = the largest P(yes); only studies with
  such a question count.

And the consistency check of use case 2: per class, how often the has_finding answers agree
with the study's CheXpert label, for the reference answers (a check of the dataset) and the
model's answers.

**Labels.** The reference is the radiologist test-set labels (``chexpert_gold``,
mimic-cxr-2.1.0-test-set-labeled.csv) where the run has them (``--labels auto``, the
default), else the automatic CheXpert labels (``chexpert_auto``, or ``chexpert_true``).
Per class: ``1`` positive, ``0`` negative, ``-1`` uncertain is **excluded** from that class
(U-Ignore, the seed's recommended option C, applied at evaluation: an uncertain label is not
evidence either way), blank (not mentioned) is **negative** (the report would have mentioned a
present finding; the convention of the CheXpert labeler evaluations). Studies without the chosen
labels are left out and counted.

Writes ``chexpert_report.json`` (everything, with provenance), ``chexpert_report.csv`` (long:
one row per source, class and metric) and ``chexpert_report.md`` (tables for the book).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cxrbench import vocab
from cxrbench.errors import CxrbenchError
from cxrbench.io import atomic_write_json, atomic_write_text
from cxrbench.metrics import registry
from cxrbench.stats.report import metric_entry

# the registry's binary-space metrics, in registry order: the same definitions as metrics.json
METRICS: tuple[str, ...] = tuple(n for n, s in registry.METRICS.items()
                                 if s.kind in ("labels", "auroc") and "binary" in s.spaces)
UNITS = ("study_id", "subject_id")
LABEL_POLICY = {"1": "positive", "0": "negative", "-1": "excluded for that class (U-Ignore)",
                "blank": "negative (not mentioned)"}
REFERENCE_KINDS = {"chexpert_gold": "radiologist", "chexpert_auto": "automatic",
                   "chexpert_true": "as given by the run (chexpert_true)"}

# Seed 13.3, per-pathology targets ("> value": the measured value must exceed it).
TARGETS: dict[str, dict[str, Any]] = {
    "Pneumothorax": {"sensitivity": 0.90, "specificity": 0.85, "auroc": 0.90, "priority": "Critical"},
    "Pleural Effusion": {"sensitivity": 0.85, "specificity": 0.80, "auroc": 0.85, "priority": "High"},
    "Cardiomegaly": {"sensitivity": 0.80, "specificity": 0.80, "auroc": 0.85, "priority": "High"},
    "Consolidation": {"sensitivity": 0.80, "specificity": 0.80, "auroc": 0.85, "priority": "High"},
    "Pneumonia": {"sensitivity": 0.75, "specificity": 0.80, "auroc": 0.80, "priority": "High"},
    "Edema": {"sensitivity": 0.75, "specificity": 0.80, "auroc": 0.80, "priority": "Medium"},
    "Atelectasis": {"sensitivity": 0.70, "specificity": 0.75, "auroc": 0.75, "priority": "Medium"},
}
assert set(TARGETS) <= set(vocab.CHEXPERT_LABELS)


# ------------------------------------------------------------------------------------ labels
def _vector(value: Any) -> np.ndarray | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    arr = np.asarray(value, dtype=np.float64)
    return arr if arr.shape == (len(vocab.CHEXPERT_LABELS),) else None


def apply_label_policy(labels: np.ndarray) -> np.ndarray:
    """CheXpert values (1, 0, -1, NaN = blank) -> 1 / 0 / NaN (excluded): -1 excluded, blank negative."""
    labels = np.asarray(labels, dtype=np.float64)
    out = np.where(np.isnan(labels), 0.0, labels)
    out = np.where(labels == -1, np.nan, out)
    bad = ~np.isnan(out) & ~np.isin(out, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"CheXpert labels must be 1, 0, -1 or blank, got {sorted(set(labels[bad].tolist()))}")
    return out


def choose_reference(frame: pd.DataFrame, labels: str = "auto") -> str:
    """The column holding the reference labels: ``chexpert_gold`` (radiologist) or the automatic
    ``chexpert_auto`` / ``chexpert_true``."""
    has = {c for c in ("chexpert_gold", "chexpert_auto", "chexpert_true") if c in frame.columns
           and frame[c].map(lambda v: _vector(v) is not None).any()}
    if labels == "gold" or (labels == "auto" and "chexpert_gold" in has):
        if "chexpert_gold" not in has:
            raise CxrbenchError("no radiologist labels (chexpert_gold) in this run: use --labels automatic")
        return "chexpert_gold"
    for col in ("chexpert_auto", "chexpert_true"):
        if col in has:
            return col
    raise CxrbenchError("the run has no CheXpert labels (chexpert_gold / chexpert_auto / chexpert_true)")


def study_table(frame: pd.DataFrame, reference: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per study: ``study_id``, ``subject_id``, ``prob`` (14, mean over the study's
    rows, or None), ``label`` (14 after the label policy), plus counts."""
    if "study_id" not in frame.columns:
        raise CxrbenchError("the run has no study_id column: CheXpert labels are per study")
    counts = {"studies": 0, "studies_without_reference": 0, "studies_prob_varies": 0}
    rows = []
    for sid, grp in frame.groupby("study_id", sort=True):
        counts["studies"] += 1
        ref = next((v for v in map(_vector, grp[reference]) if v is not None), None)
        if ref is None:
            counts["studies_without_reference"] += 1
            continue
        probs = [v for v in map(_vector, grp["chexpert_prob"])] if "chexpert_prob" in grp.columns else []
        probs = [p for p in probs if p is not None]
        prob = np.mean(probs, axis=0) if probs else None
        if len(probs) > 1 and np.ptp(np.stack(probs), axis=0).max() > 1e-6:
            counts["studies_prob_varies"] += 1
        subject = grp["subject_id"].iloc[0] if "subject_id" in grp.columns else sid
        rows.append({"study_id": sid, "subject_id": subject, "prob": prob, "raw": ref,
                     "label": apply_label_policy(ref)})
    return pd.DataFrame(rows, columns=["study_id", "subject_id", "prob", "raw", "label"]), counts


# ------------------------------------------------------------------------------------ metrics
@dataclass(frozen=True)
class ChexpertOptions:
    labels: str = "auto"          # auto | gold | automatic
    threshold: float = 0.5        # of the auxiliary head's probabilities
    unit: str = "study_id"        # bootstrap resampling unit: study_id (rows are studies) or subject_id
    n_resamples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.labels not in ("auto", "gold", "automatic"):
            raise ValueError(f"labels must be auto, gold or automatic, got {self.labels!r}")
        if self.unit not in UNITS:
            raise ValueError(f"unit must be one of {UNITS}, got {self.unit!r}")


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray | None, clusters, *,
                   n_resamples: int, seed: int) -> dict[str, dict]:
    """The registry's binary metrics of one class with bootstrap CIs (one shared set of resamples)."""
    from cxrbench.metrics.registry import LabelInputs
    from cxrbench.stats.bootstrap import bootstrap_many

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    score = None if y_score is None else np.asarray(y_score, dtype=np.float64)
    stats = {}
    for name in METRICS:
        spec = registry.METRICS[name]
        if spec.kind == "auroc" and score is None:
            continue
        stats[name] = spec.statistic(LabelInputs("binary", y_true, y_pred, score))
    res = bootstrap_many(stats, clusters, n_resamples=n_resamples, seed=seed) if n_resamples > 0 else {}
    out = {}
    for name, stat in stats.items():
        out[name] = metric_entry(stat.value(), res.get(name), len(y_true))
        if "max_error" in stat.info:
            out[name]["max_binning_error"] = stat.info["max_error"]
    return out


def _vs_target(pathology: str, metrics: dict[str, dict]) -> dict | None:
    target = TARGETS.get(pathology)
    if target is None:
        return None
    out = {"priority": target["priority"]}
    for name in ("sensitivity", "specificity", "auroc"):
        m = metrics.get(name)
        value = None if m is None else m["value"]
        lo = None if m is None else m["ci"][0]
        defined = value is not None and not math.isnan(value)
        out[name] = {"target": target[name],
                     "meets": bool(value > target[name]) if defined else None,
                     "ci_above": bool(lo > target[name]) if defined and lo is not None and not math.isnan(lo) else None}
    return out


def _class_entry(pathology: str, y: np.ndarray, pred: np.ndarray, score: np.ndarray | None, raw: np.ndarray,
                 clusters, n_resamples: int, seed: int) -> dict:
    ok = ~np.isnan(y)
    entry = {"n": int(ok.sum()), "n_positive": int((y[ok] == 1).sum()),
             "prevalence": float((y[ok] == 1).mean()) if ok.any() else None,
             "n_uncertain_excluded": int((raw == -1).sum()), "n_blank_as_negative": int(np.isnan(raw).sum())}
    if ok.any():
        cl = None if clusters is None else clusters[ok]
        entry["metrics"] = binary_metrics(y[ok], pred[ok], None if score is None else score[ok], cl,
                                          n_resamples=n_resamples, seed=seed)
    else:
        entry["metrics"] = {}
    entry["targets"] = _vs_target(pathology, entry["metrics"])
    return entry


def _clusters(table: pd.DataFrame, unit: str):
    if unit == "subject_id" and "subject_id" in table.columns:
        return pd.factorize(table["subject_id"])[0]
    return None   # one row per study: study-level resampling is item-level


def aux_head_report(table: pd.DataFrame, threshold: float, unit: str, n_resamples: int, seed: int) -> dict | None:
    table = table[table["prob"].map(lambda p: p is not None)].reset_index(drop=True)
    if table.empty:
        return None
    prob = np.stack(table["prob"].to_numpy())
    label = np.stack(table["label"].to_numpy())
    raw = np.stack(table["raw"].to_numpy())
    clusters = _clusters(table, unit)
    return {name: _class_entry(name, label[:, c], (prob[:, c] >= threshold).astype(int), prob[:, c], raw[:, c],
                               clusters, n_resamples, seed)
            for c, name in enumerate(vocab.CHEXPERT_LABELS)}


def _has_finding_rows(frame: pd.DataFrame) -> pd.DataFrame:
    if "finding_chexpert" not in frame.columns or "question_type" not in frame.columns:
        return frame.iloc[0:0]
    mask = (frame["question_type"] == "D02_has_finding") & frame["finding_chexpert"].map(
        lambda v: v is not None and not isinstance(v, float) and len(v) > 0)
    return frame[mask]


def qa_report(frame: pd.DataFrame, table: pd.DataFrame, unit: str, n_resamples: int, seed: int) -> dict | None:
    """Per class, the has_finding answers aggregated per study (any yes), against the label."""
    rows = _has_finding_rows(frame)
    if rows.empty or "label_pred" not in rows.columns:
        return None
    label_of = dict(zip(table["study_id"], table["label"]))
    raw_of = dict(zip(table["study_id"], table["raw"]))
    subject_of = dict(zip(table["study_id"], table["subject_id"]))
    out = {}
    for c, name in enumerate(vocab.CHEXPERT_LABELS):
        per_study: dict[Any, list[float]] = {}
        for sid, classes, lp, sc in zip(rows["study_id"], rows["finding_chexpert"], rows["label_pred"],
                                        rows["score"] if "score" in rows.columns else [None] * len(rows)):
            if name not in list(classes) or sid not in label_of or lp is None or lp != lp:
                continue
            cur = per_study.setdefault(sid, [0.0, 0.0])
            cur[0] = max(cur[0], float(lp))
            cur[1] = max(cur[1], float(sc) if sc is not None and sc == sc else float(lp))
        if not per_study:
            continue
        sids = sorted(per_study)
        y = np.array([label_of[s][c] for s in sids])
        raw = np.array([raw_of[s][c] for s in sids])
        pred = np.array([per_study[s][0] for s in sids]).astype(int)
        score = np.array([per_study[s][1] for s in sids])
        clusters = pd.factorize(pd.Series([subject_of[s] for s in sids]))[0] if unit == "subject_id" else None
        entry = _class_entry(name, y, pred, score, raw, clusters, n_resamples, seed)
        entry["n_studies_with_question"] = len(sids)
        out[name] = entry
    return out or None


def consistency_report(frame: pd.DataFrame, table: pd.DataFrame, n_resamples: int, seed: int) -> dict | None:
    """Seed 3.2 use case 2: agreement of has_finding answers (reference and predicted) with
    the study's CheXpert label, per class and pooled; rows whose label is excluded (uncertain)
    do not count. CIs resample studies."""
    from cxrbench.metrics.base import mean_stats
    from cxrbench.stats.bootstrap import bootstrap_many

    rows = _has_finding_rows(frame)
    if rows.empty:
        return None
    label_of = dict(zip(table["study_id"], table["label"]))
    records = []
    for row in rows[["study_id", "finding_chexpert"] + [c for c in ("label_true", "label_pred")
                                                       if c in rows.columns]].to_dict("records"):
        if row["study_id"] not in label_of:
            continue
        for name in row["finding_chexpert"]:
            y = label_of[row["study_id"]][vocab.CHEXPERT_LABELS.index(name)]
            if np.isnan(y):
                continue
            lt, lp = row.get("label_true"), row.get("label_pred")
            records.append({"class": name, "study_id": row["study_id"],
                            "reference": float(lt == y) if lt is not None and lt == lt and lt >= 0 else np.nan,
                            "predicted": float(lp == y) if lp is not None and lp == lp and lp >= 0 else np.nan})
    if not records:
        return None
    rec = pd.DataFrame(records)
    out = {}
    groups = [("all", np.ones(len(rec), dtype=bool))]
    groups += [(c, (rec["class"] == c).to_numpy()) for c in vocab.CHEXPERT_LABELS if (rec["class"] == c).any()]
    for name, mask in groups:
        sub = rec[mask]
        stats = {k: mean_stats(k, sub[k].to_numpy()) for k in ("reference", "predicted") if sub[k].notna().any()}
        res = bootstrap_many(stats, pd.factorize(sub["study_id"])[0], n_resamples=n_resamples, seed=seed) \
            if n_resamples > 0 and stats else {}
        out[name] = {k: metric_entry(st.value(), res.get(k), int(sub[k].notna().sum())) for k, st in stats.items()}
    return out


def chexpert_report(frame: pd.DataFrame, options: ChexpertOptions | None = None) -> dict:
    """The report dict (see the module docstring) of a predictions frame."""
    o = options or ChexpertOptions()
    reference = choose_reference(frame, o.labels)
    table, counts = study_table(frame, reference)
    return {
        "reference": {"column": reference, "kind": REFERENCE_KINDS[reference]},
        "label_policy": LABEL_POLICY,
        "threshold": o.threshold,
        "bootstrap": {"n_resamples": o.n_resamples, "seed": o.seed, "unit": o.unit, "method": "percentile",
                      "confidence": 0.95},
        "counts": {**counts, "studies_evaluated": int(len(table))},
        "targets": TARGETS,
        "aux_head": aux_head_report(table, o.threshold, o.unit, o.n_resamples, o.seed),
        "qa_has_finding": qa_report(frame, table, o.unit, o.n_resamples, o.seed),
        "consistency": consistency_report(frame, table, o.n_resamples, o.seed),
    }


# ------------------------------------------------------------------------------------ writing
def _fmt(m: dict | None) -> str:
    from cxrbench.stats.report import _num

    if not m or m.get("value") is None or (isinstance(m["value"], float) and math.isnan(m["value"])):
        return "n/a"
    lo, hi = m["ci"]
    return f"{_num(m['value'], 3)} [{_num(lo, 2)}, {_num(hi, 2)}]"


def _cell(v: Any) -> Any:
    """CSV cell: empty for undefined values."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else v


def to_csv(report: dict) -> str:
    """Long format: one row per (source, pathology, metric); undefined values are empty cells."""
    rows = [["source", "pathology", "metric", "value", "ci_low", "ci_high", "n", "prevalence", "target", "meets_target"]]
    for source in ("aux_head", "qa_has_finding"):
        for name, entry in (report.get(source) or {}).items():
            for metric, m in entry["metrics"].items():
                tgt = (entry.get("targets") or {}).get(metric) or {}
                rows.append([source, name, metric, m["value"], m["ci"][0], m["ci"][1], m["n"], entry["prevalence"],
                             tgt.get("target"), tgt.get("meets")])
    for name, entry in (report.get("consistency") or {}).items():
        for kind, m in entry.items():
            rows.append(["consistency", name, f"agreement_{kind}", m["value"], m["ci"][0], m["ci"][1], m["n"],
                         None, None, None])
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([[_cell(v) for v in row] for row in rows])
    return buf.getvalue()


def to_markdown(report: dict) -> str:
    ref = report["reference"]
    lines = ["# Per-pathology CheXpert report", "",
             f"Reference: {ref['kind']} labels (`{ref['column']}`); -1 excluded per class, blank = negative; "
             f"threshold {report['threshold']}; {report['counts']['studies_evaluated']} studies "
             f"({report['counts']['studies_without_reference']} without reference labels left out). "
             f"Values: estimate [95% CI]; targets (seed 13.3) in parentheses, ✓ when the estimate exceeds them.", ""]
    titles = {"aux_head": "Auxiliary CheXpert head", "qa_has_finding": "has_finding answers (any yes per study)"}
    for source, title in titles.items():
        block = report.get(source)
        if not block:
            continue
        lines += [f"## {title}", "", "| Pathology | n | prev. | " + " | ".join(METRICS) + " |",
                  "|---|---:|---:|" + "---|" * len(METRICS)]
        for name, entry in block.items():
            cells = []
            for metric in METRICS:
                cell = _fmt(entry["metrics"].get(metric))
                tgt = (entry.get("targets") or {}).get(metric)
                if tgt:
                    cell += f" (> {tgt['target']:.2f}{' ✓' if tgt['meets'] else ''})"
                cells.append(cell)
            prev = "n/a" if entry["prevalence"] is None else f"{entry['prevalence']:.3f}"
            lines.append(f"| {name} | {entry['n']} | {prev} | " + " | ".join(cells) + " |")
        lines.append("")
    if report.get("consistency"):
        lines += ["## Consistency of has_finding answers with CheXpert labels (seed 3.2, use case 2)", "",
                  "| Class | reference answers agree | model answers agree |", "|---|---|---|"]
        for name, entry in report["consistency"].items():
            lines.append(f"| {name} | {_fmt(entry.get('reference'))} (n={entry.get('reference', {}).get('n', 0)}) | "
                         f"{_fmt(entry.get('predicted'))} (n={entry.get('predicted', {}).get('n', 0)}) |")
        lines.append("")
    return "\n".join(lines)


def write_report(out_dir: str | Path, frame: pd.DataFrame, options: ChexpertOptions | None = None,
                 provenance: dict | None = None) -> dict | None:
    """Write chexpert_report.{json,csv,md} into ``out_dir``; None (nothing written) when the
    run has no CheXpert labels and none were asked for explicitly."""
    options = options or ChexpertOptions()
    try:
        report = chexpert_report(frame, options)
    except CxrbenchError:
        if options.labels == "auto":
            return None
        raise
    if provenance is not None:
        report["provenance"] = provenance
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "chexpert_report.json", report)
    atomic_write_text(out_dir / "chexpert_report.csv", to_csv(report))
    atomic_write_text(out_dir / "chexpert_report.md", to_markdown(report))
    return report
