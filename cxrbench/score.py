"""Score a predictions file from any model: per-item scores and metrics.json with bootstrap CIs.

    cxrbench score PREDICTIONS --out RUN_DIR [--bertscore-model PATH --bertscore-layers N]
                   [--umls-index PATH] [--n-resamples 10000] [--unit study_id] [--seed 0]
                   [--ci-method percentile|bca]

PREDICTIONS is JSONL, CSV or Parquet with at least ``question_id``, ``question_type``,
``answer`` (reference) and ``prediction``; the optional columns of docs/contracts.md §3
(``study_id``, ``head``, ``label_true``/``label_pred``, ``score``, ``confidence``,
``boxes_true``/``boxes_pred``/``box_scores``, ``regions_true``/``regions_pred``,
``image_width``/``image_height``, ``region_category``, ``question``, ``answer_entities``,
``plausibility``, ``attention_entropy``) switch on the metrics that need them
(``cxrbench.metrics.registry``). Writes RUN_DIR/predictions.parquet (the input plus one column
per per-item metric and ``correct``) and RUN_DIR/metrics.json (``overall``,
``by_question_type``, ``by_head``, ``by_region_category``; each metric ``{value, ci, n}``;
``provenance`` with every metric's signature and the bootstrap settings; ``warnings``).

Bad input is an error naming the file, the record and the problem (missing columns, duplicate
or empty question ids, empty references, malformed boxes, confidences outside [0, 1]) or, where
a run can still be scored honestly, a counted warning in metrics.json with example ids (empty
predictions, NaN confidences, boxes outside the image, unparseable yes/no answers).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from cxrbench import questions, vocab
from cxrbench.errors import CxrbenchError, DataError
from cxrbench.metrics import registry
from cxrbench.metrics.base import GenericStatistic, Statistic, SufficientStats, mean_stats

REQUIRED = ("question_id", "question_type", "answer", "prediction")
LIST_COLUMNS = ("boxes_true", "boxes_pred", "box_scores", "regions_true", "regions_pred", "answer_entities", "probs")
ITEM_METRICS = ("exact_match", "token_f1", "rouge_l", "bertscore_f1", "clinical_term_f1", "semantic_type_accuracy",
                "iou", "pointing_accuracy", "multi_region_f1", "graph_entity_recall")
N_EXAMPLES = 5
AUROC_BINS = 100


@dataclass
class ScoreOptions:
    bertscore_model: str | None = None
    bertscore_layers: int | None = None
    umls_index: str | None = None
    n_resamples: int = 10_000
    unit: str = "study_id"
    seed: int = 0
    ci_method: str = "percentile"
    confidence: float = 0.95
    skip: tuple[str, ...] = ()          # metric names not to compute (e.g. bertscore_f1)
    source: str = "<frame>"             # file name used in error messages
    progress: bool = True


@dataclass
class Warnings:
    """Counted, reported problems: name -> (count, first example ids)."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, ids) -> None:
        ids = [str(i) for i in ids]
        if not ids:
            return
        self.counts[name] = self.counts.get(name, 0) + len(ids)
        ex = self.examples.setdefault(name, [])
        ex.extend(ids[: max(0, N_EXAMPLES - len(ex))])

    def to_dict(self) -> dict:
        return {k: {"count": self.counts[k], "examples": self.examples[k]} for k in sorted(self.counts)}


# ----------------------------------------------------------------------------- reading
def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a predictions file (.jsonl/.json lines, .csv, .parquet); list columns given as JSON
    strings (CSV) are parsed."""
    import orjson

    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "file not found")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    if suffix in (".jsonl", ".json", ".ndjson"):
        records = []
        with open(path, "rb") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError as err:
                    raise DataError(path, f"line {lineno}", f"invalid JSON: {err}") from None
                if not isinstance(rec, dict):
                    raise DataError(path, f"line {lineno}", "each line must be a JSON object")
                records.append(rec)
        frame = pd.DataFrame.from_records(records)
    elif suffix in (".csv", ".csv.gz"):
        frame = pd.read_csv(path, dtype={"question_id": str, "question_type": str, "answer": str, "prediction": str},
                            keep_default_na=False, na_values=[""])
    elif suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        raise DataError(path, None, f"unknown predictions format {path.suffix!r} (use .jsonl, .csv or .parquet)")
    for col in LIST_COLUMNS:
        if col in frame.columns and frame[col].map(lambda v: isinstance(v, str)).any():
            def parse(v, col=col):
                if isinstance(v, str):
                    try:
                        return orjson.loads(v) if v.strip() else None
                    except orjson.JSONDecodeError:
                        raise DataError(path, None, f"column {col}: not a JSON list: {v[:60]!r}") from None
                return v
            frame[col] = frame[col].map(parse)
    return frame


# ----------------------------------------------------------------------------- validation
def _is_blank(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and not v.strip())


def _listish(v) -> list | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return list(v)


def validate(frame: pd.DataFrame, source: str, warnings: Warnings) -> pd.DataFrame:
    """Check and normalise a predictions frame; raise :class:`DataError` or count warnings."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(source, None, f"missing required column(s) {missing}; have {sorted(frame.columns)}")
    frame = frame.reset_index(drop=True).copy()
    qid = frame["question_id"]
    blank = qid.map(_is_blank)
    if blank.any():
        raise DataError(source, f"row {int(np.flatnonzero(blank)[0])}", "empty question_id")
    frame["question_id"] = qid.astype(str)
    dup = frame["question_id"].duplicated(keep=False)
    if dup.any():
        first = frame.loc[dup, "question_id"].iloc[0]
        rows = np.flatnonzero(frame["question_id"].to_numpy() == first)[:3].tolist()
        raise DataError(source, first, f"duplicate question_id (rows {rows}); "
                        f"{int(frame['question_id'].duplicated().sum())} duplicate(s) in all")
    for col in ("question_type", "answer"):
        blank = frame[col].map(_is_blank)
        if blank.any():
            raise DataError(source, frame["question_id"].iloc[int(np.flatnonzero(blank)[0])],
                            f"empty {col}" + (" (the reference answer)" if col == "answer" else "")
                            + f"; {int(blank.sum())} row(s) in all")
    blank_pred = frame["prediction"].map(_is_blank)
    warnings.add("empty_prediction", frame.loc[blank_pred, "question_id"])
    frame["prediction"] = frame["prediction"].where(~blank_pred, "").astype(str)
    frame["answer"] = frame["answer"].astype(str)
    strategy = frame["question_strategy"] if "question_strategy" in frame.columns else [None] * len(frame)
    frame["question_type"] = [questions.normalize_question_type(q, s) for q, s in zip(frame["question_type"], strategy)]
    unknown = ~frame["question_type"].isin(questions.BY_CODE)
    warnings.add("unknown_question_type", frame.loc[unknown, "question_id"])

    for col in ("confidence", "score"):
        if col in frame.columns:
            v = pd.to_numeric(frame[col], errors="coerce").astype(float)
            nan = v.isna() & frame[col].notna()
            if nan.any():  # non-numeric text
                raise DataError(source, frame["question_id"][nan].iloc[0], f"{col} is not a number: {frame[col][nan].iloc[0]!r}")
            bad = (v < 0) | (v > 1)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(source, frame["question_id"].iloc[i], f"{col} {v.iloc[i]} outside [0, 1]")
            counted = v.isna() if col == "confidence" else v.isna() & (_family(frame) == "binary")
            warnings.add(f"nan_{col}", frame.loc[counted, "question_id"])
            frame[col] = v

    from cxrbench.metrics.spatial import box_problem

    for col in ("boxes_true", "boxes_pred"):
        if col not in frame.columns:
            continue
        frame[col] = frame[col].map(_listish)
        width = frame["image_width"] if "image_width" in frame.columns else pd.Series([None] * len(frame))
        height = frame["image_height"] if "image_height" in frame.columns else pd.Series([None] * len(frame))
        outside = []
        for qid, boxes, w, h in zip(frame["question_id"], frame[col], width, height):
            for box in boxes or ():
                problem = box_problem(box, None if _is_blank(w) else float(w), None if _is_blank(h) else float(h))
                if problem == "malformed":
                    raise DataError(source, qid, f"{col}: malformed box {list(box) if hasattr(box, '__iter__') else box!r} "
                                    "(need [x1, y1, x2, y2] with x2 >= x1, y2 >= y1)")
                if problem == "out_of_image":
                    outside.append(qid)
                    break
        warnings.add(f"{col}_out_of_image", outside)
    if "box_scores" in frame.columns and "boxes_pred" in frame.columns:
        frame["box_scores"] = frame["box_scores"].map(_listish)
        for qid, b, s in zip(frame["question_id"], frame["boxes_pred"], frame["box_scores"]):
            if s is not None and len(s) != len(b or ()):
                raise DataError(source, qid, f"{len(b or ())} predicted boxes but {len(s)} box_scores")
    for col in ("regions_true", "regions_pred", "answer_entities"):
        if col in frame.columns:
            frame[col] = frame[col].map(_listish)
    return frame


# ----------------------------------------------------------------------------- per-item scores
def _family(frame: pd.DataFrame) -> np.ndarray:
    return np.array([registry.family_of(q) or "" for q in frame["question_type"]], dtype=object)


def _applies(frame: pd.DataFrame, name: str) -> np.ndarray:
    """Rows a metric applies to: in its question type's metric list and with its columns."""
    spec = registry.METRICS[name]
    ok = np.array([name in registry.metrics_for(q) for q in frame["question_type"].unique()])
    table = dict(zip(frame["question_type"].unique(), ok))
    mask = frame["question_type"].map(table).to_numpy(dtype=bool).copy()
    for col in spec.needs:
        if col not in frame.columns:
            return np.zeros(len(frame), dtype=bool)
        mask &= ~frame[col].map(lambda v: v is None or (isinstance(v, float) and np.isnan(v))).to_numpy()
    return mask


def add_item_scores(frame: pd.DataFrame, options: ScoreOptions, warnings: Warnings) -> tuple[pd.DataFrame, dict]:
    """Add one column per per-item metric (NaN where it does not apply) and ``correct``.
    Returns the frame and the signatures of the metrics that ran a model or an index."""
    from cxrbench.metrics import spatial, text

    out = frame.copy()
    sigs: dict[str, str] = {}
    refs, preds = out["answer"].tolist(), out["prediction"].tolist()
    skip = set(options.skip)
    out["exact_match"] = text.exact_match_items(refs, preds)
    out["correct"] = out["exact_match"] == 1.0
    out["token_f1"] = text.token_f1_items(refs, preds)
    if "rouge_l" not in skip:
        out["rouge_l"] = text.rouge_l_items(refs, preds)
    if "bertscore_f1" not in skip:
        from cxrbench.metrics import bertscore

        try:
            scorer = bertscore.get_scorer(options.bertscore_model, options.bertscore_layers)
        except FileNotFoundError as err:
            raise CxrbenchError(f"--bertscore-model: {err}") from None
        out["bertscore_f1"] = scorer.score(preds, refs, progress=options.progress)[2]
        sigs["bertscore_f1"] = scorer.signature
    if not {"clinical_term_f1", "semantic_type_accuracy"} <= skip:
        from cxrbench.metrics import clinical_terms, semantic_type

        try:
            extractor = clinical_terms.get_extractor(options.umls_index)
        except FileNotFoundError as err:
            raise CxrbenchError(f"--umls-index: {err}") from None
        if "clinical_term_f1" not in skip:
            out["clinical_term_f1"] = clinical_terms.clinical_term_f1_items(refs, preds, extractor, options.progress)
            sigs["clinical_term_f1"] = extractor.signature
        if "semantic_type_accuracy" not in skip:
            out["semantic_type_accuracy"] = semantic_type.semantic_type_items(refs, preds, extractor)
            sigs["semantic_type_accuracy"] = semantic_type.semantic_type_accuracy_stats([], [], extractor).signature
    n = len(out)
    for name, fn in (("iou", spatial.iou_items), ("pointing_accuracy", spatial.pointing_items)):
        if name in skip:
            continue
        mask = _applies(out, name)
        v = np.full(n, np.nan)
        if mask.any():
            v[mask] = fn(out.loc[mask, "boxes_true"].tolist(), out.loc[mask, "boxes_pred"].tolist())
        if mask.any() or name in out.columns:
            out[name] = v
    mask = _applies(out, "multi_region_f1") & ("multi_region_f1" not in skip)
    if mask.any():
        v = np.full(n, np.nan)
        v[mask] = spatial.multi_region_f1_items(out.loc[mask, "regions_true"].tolist(),
                                                out.loc[mask, "regions_pred"].tolist())
        out["multi_region_f1"] = v
    mask = _applies(out, "graph_entity_recall") & ("graph_entity_recall" not in skip)
    if mask.any():
        from cxrbench.metrics import clinical_terms, relational

        v = np.full(n, np.nan)
        v[mask] = relational.graph_entity_recall_items(out.loc[mask, "answer_entities"].tolist(),
                                                       out.loc[mask, "prediction"].tolist(),
                                                       clinical_terms.get_extractor(options.umls_index))
        out["graph_entity_recall"] = v
    return out, sigs


# ----------------------------------------------------------------------------- statistics
def _embed(stat: SufficientStats, mask: np.ndarray) -> SufficientStats:
    """A statistic computed on ``mask`` rows, as rows over all items (zero rows elsewhere), so
    every statistic of a frame shares the items the bootstrap resamples."""
    rows = np.zeros((len(mask), stat.stats.shape[1]))
    rows[mask] = stat.stats
    return SufficientStats(stat.name, rows, stat.reduce, stat.signature, stat.info)


def _labels_for(frame: pd.DataFrame, space: str, warnings: Warnings | None):
    """(y_true, y_pred, rows mask, labels) of the binary or severity label space."""
    from cxrbench.metrics.text import binary_labels

    fam = _family(frame)
    rows = fam == space
    y_true = np.full(len(frame), -1, dtype=np.int64)
    y_pred = np.full(len(frame), -1, dtype=np.int64)
    answers, preds = frame["answer"].to_numpy()[rows], frame["prediction"].to_numpy()[rows]
    if space == "binary":
        labels = [0, 1]
        y_true[rows], y_pred[rows] = binary_labels(answers), binary_labels(preds)
    else:
        labels = list(range(len(vocab.SEVERITY_LEVELS)))
        y_true[rows] = [severity_label(t) for t in answers]
        y_pred[rows] = [severity_label(t) for t in preds]
    for col, arr in (("label_true", y_true), ("label_pred", y_pred)):
        if col in frame.columns:
            given = pd.to_numeric(frame[col], errors="coerce").to_numpy()
            use = rows & ~np.isnan(given)
            arr[use] = given[use].astype(np.int64)
    if warnings is not None:
        qid = frame["question_id"].to_numpy()
        warnings.add(f"{space}_reference_unparsed", qid[rows & (y_true < 0)])
        warnings.add(f"{space}_prediction_unparsed", qid[rows & (y_pred < 0)])
    rows &= y_true >= 0
    return y_true, y_pred, rows, labels


_SEVERITY_WORDS = {"none": 0, "no": 0, "normal": 0, "absent": 0, "mild": 1, "minimal": 1, "slight": 1, "small": 1,
                   "moderate": 2, "severe": 3, "large": 3, "marked": 3, "extensive": 3}


def severity_label(text: str) -> int:
    """Severity class index (``vocab.SEVERITY_LEVELS``) of a severity answer: the first
    severity word in it ("The effusion is mild." -> 1); -1 when there is none. Words:
    none/no/normal/absent -> none; mild/minimal/slight/small -> mild; moderate; severe/large/
    marked/extensive -> severe."""
    from cxrbench.metrics.text import normalize_answer

    for w in normalize_answer(text).split():
        if w in _SEVERITY_WORDS:
            return _SEVERITY_WORDS[w]
    return -1


@dataclass
class _Built:
    stat: Statistic
    mask: np.ndarray   # rows where the metric is defined (for n and strata)
    space: str = ""    # label space for "labels"/"auroc" metrics


def _item_signatures(model_signatures: Mapping[str, str]) -> dict[str, str]:
    """Signatures of the per-item metrics, taken from their own ``*_stats`` constructors."""
    from cxrbench.metrics import attention, relational, spatial, text

    sigs = {
        "exact_match": text.exact_match_stats([], []).signature,
        "token_f1": text.token_f1_stats([], []).signature,
        "rouge_l": text.rouge_l_stats([], []).signature,
        "iou": spatial.iou_stats([], []).signature,
        "pointing_accuracy": spatial.pointing_accuracy_stats([], []).signature,
        "multi_region_f1": spatial.multi_region_f1_stats([], []).signature,
        "graph_entity_recall": relational.graph_entity_recall_stats([], [], extractor=True).signature,
        "plausibility": attention.plausibility_stats([]).signature,
        "attention_entropy": attention.attention_entropy_stats([]).signature,
    }
    sigs.update(model_signatures)
    return sigs


def _build(frame: pd.DataFrame, warnings: Warnings | None, skip=(),
           model_signatures: Mapping[str, str] | None = None) -> dict[tuple[str, str], _Built]:
    from cxrbench.metrics import calibration, classification, relational, spatial, text

    n = len(frame)
    built: dict[tuple[str, str], _Built] = {}
    signatures = _item_signatures(model_signatures or {})
    # per-item means
    for name in ITEM_METRICS + ("plausibility", "attention_entropy"):
        if name not in frame.columns or name in skip:
            continue
        v = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64).copy()
        v[~_applies(frame, name)] = np.nan
        if not np.isnan(v).all():
            built[(name, "")] = _Built(mean_stats(name, v, signatures.get(name, "")), ~np.isnan(v))
    # corpus BLEU
    if "bleu4" not in skip:
        st = text.bleu4_stats(frame["answer"].tolist(), frame["prediction"].tolist())
        built[("bleu4", "")] = _Built(st, np.ones(n, dtype=bool))
    # confusion-matrix metrics, one label space per family
    for space in registry.LABEL_SPACE:
        y_true, y_pred, rows, labels = _labels_for(frame, space, warnings)
        if not rows.any():
            continue
        kinds = {"accuracy": dict(metric="accuracy"), "mcc": dict(metric="mcc"),
                 "kappa": dict(metric="kappa", weights="quadratic" if space == "severity" else None)}
        for m in ("sensitivity", "specificity", "ppv", "npv", "f1"):
            kinds[m] = dict(metric=m, average="binary" if space == "binary" else "macro", pos_label=1)
        for name, kw in kinds.items():
            if name in skip:
                continue
            sub = classification.confusion_stats(name, y_true[rows], y_pred[rows], labels, **kw)
            built[(name, space)] = _Built(_embed(sub, rows), rows, space)
        if space == "binary" and "score" in frame.columns and "auroc" not in skip:
            s = frame["score"].to_numpy(dtype=np.float64)
            arows = rows & ~np.isnan(s)
            if arows.any():
                sub = classification.auroc_stats(y_true[arows], s[arows], max_bins=AUROC_BINS)
                built[("auroc", space)] = _Built(_embed(sub, arows), arows, space)
    # calibration
    if "confidence" in frame.columns and "ece" not in skip:
        c = frame["confidence"].to_numpy(dtype=np.float64)
        rows = ~np.isnan(c)
        if rows.any():
            correct = frame["correct"].to_numpy(dtype=np.float64) if "correct" in frame.columns else \
                text.exact_match_items(frame["answer"].tolist(), frame["prediction"].tolist())
            sub = calibration.ece_stats(correct[rows], c[rows])
            built[("ece", "")] = _Built(_embed(sub, rows), rows)
    # detection mAP
    rows = _applies(frame, "map_50")
    if rows.any():
        bt = [b if m else [] for b, m in zip(frame["boxes_true"], rows)]
        bp = [b if m else [] for b, m in zip(frame["boxes_pred"], rows)]
        bs = (list(frame["box_scores"]) if "box_scores" in frame.columns else [None] * n)
        bs = [s if (m and s is not None) else None for s, m in zip(bs, rows)]
        for name, stat in spatial.map_family_stats(bt, bp, bs).items():
            if name not in skip:
                built[(name, "")] = _Built(stat, rows)
    # exact match on question subsets (relational parse)
    if "question" in frame.columns:
        flags = relational.question_flags(frame["question"].fillna("").astype(str).tolist())
        em = frame["exact_match"].to_numpy(dtype=np.float64) if "exact_match" in frame.columns else \
            text.exact_match_items(frame["answer"].tolist(), frame["prediction"].tolist())
        for name, flag in (("relationship_accuracy", "relational"), ("multi_hop_accuracy", "multi_hop"),
                           ("spatial_relation_accuracy", "spatial_relation")):
            rows = flags[flag] & _applies(frame, name)
            if rows.any() and name not in skip:
                built[(name, "")] = _Built(relational.subset_accuracy_stats(name, em, rows), rows)
    return built


def _pick(built: Mapping[tuple[str, str], _Built], stratum: np.ndarray) -> dict[str, _Built]:
    """One statistic per metric name for a stratum: the binary label space where the stratum
    has binary questions, else the severity one; metrics with no defined item are dropped."""
    out: dict[str, _Built] = {}
    for (name, space), b in built.items():
        if not (b.mask & stratum).any():
            continue
        if name in out and out[name].space == "binary":
            continue
        out[name] = b
    order = list(registry.METRICS)
    return dict(sorted(out.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def statistics_from_predictions(frame: pd.DataFrame) -> dict[str, Statistic]:
    """The statistic of every metric that applies to a scored predictions frame (one that
    already holds the per-item score columns ``score`` writes); runs no model. Every statistic
    covers all rows of ``frame`` (rows a metric does not apply to add nothing), so they can be
    resampled together and compared between runs item by item (``cxrbench compare``).
    ``stat.info["n_defined"]`` is the number of items the metric is defined on (the ``n`` of
    metrics.json); ``stat.n`` is the number of rows."""
    if "question_type" in frame.columns:
        frame = frame.assign(question_type=[questions.normalize_question_type(q) for q in frame["question_type"]])
    built = _build(frame.reset_index(drop=True), None)
    return {name: dataclasses.replace(b.stat, info={**b.stat.info, "n_defined": int(b.mask.sum())})
            for name, b in _pick(built, np.ones(len(frame), dtype=bool)).items()}


# ----------------------------------------------------------------------------- CIs and strata
def _confidence_intervals(stats: Mapping[str, Statistic], clusters, options: ScoreOptions) -> dict:
    """The one place that calls the statistics engine."""
    from cxrbench.stats.bootstrap import bootstrap_many

    return bootstrap_many(stats, clusters, n_resamples=options.n_resamples, confidence=options.confidence,
                          method=options.ci_method, seed=options.seed)


def _stratum_metrics(built, stratum: np.ndarray, clusters, options: ScoreOptions) -> dict:
    chosen = _pick(built, stratum)
    if not chosen:
        return {}
    everything = bool(stratum.all())
    stats = {k: (b.stat if everything else b.stat.subset(stratum)) for k, b in chosen.items()}
    cl = None if clusters is None else clusters[stratum]
    results = _confidence_intervals(stats, cl, options) if options.n_resamples > 0 else {}
    out = {}
    for name, b in chosen.items():
        value = stats[name].value()
        r = results.get(name)
        ci = [r.ci_low, r.ci_high] if r is not None else [None, None]
        out[name] = {"value": value, "ci": ci, "n": int((b.mask & stratum).sum())}
    return out


def _clusters(frame: pd.DataFrame, options: ScoreOptions, warnings: Warnings):
    unit = options.unit
    if unit == "question_id":
        return None, "question_id"
    if unit not in frame.columns:
        warnings.add("unit_column_missing", [unit])
        return None, "question_id"
    col = frame[unit]
    if col.isna().any():
        raise DataError(options.source, frame.loc[col.isna(), "question_id"].iloc[0], f"empty {unit} (the resampling unit)")
    return pd.factorize(col)[0], unit


def score_frame(frame: pd.DataFrame, options: ScoreOptions | None = None) -> tuple[pd.DataFrame, dict]:
    """Validate, score every item and aggregate with bootstrap CIs.

    Returns ``(scored_frame, metrics)``: the input plus per-item score columns, and the
    ``metrics.json`` dict (``provenance`` without the input file hash, which the CLI adds).
    """
    from cxrbench.io import provenance
    options = options or ScoreOptions()
    warnings = Warnings()
    frame = validate(frame, options.source, warnings)
    scored, sigs = add_item_scores(frame, options, warnings)
    built = _build(scored, warnings, options.skip, sigs)
    clusters, unit = _clusters(scored, options, warnings)
    everything = np.ones(len(scored), dtype=bool)
    metrics: dict[str, Any] = {"overall": _stratum_metrics(built, everything, clusters, options)}
    for key, col in (("by_question_type", "question_type"), ("by_head", "head"),
                     ("by_region_category", "region_category")):
        if col not in scored.columns:
            continue
        values = scored[col].astype(object).where(scored[col].notna(), None)
        groups = {}
        for value in sorted({v for v in values if v is not None}, key=str):
            groups[str(value)] = _stratum_metrics(built, (values == value).to_numpy(), clusters, options)
        metrics[key] = groups
    signatures: dict[str, dict] = {}
    for (name, space), b in built.items():
        entry = signatures.setdefault(name, {})
        if space:  # label-space metrics: one signature per space (binary, severity)
            entry.setdefault("signature", {})[space] = b.stat.signature
        else:
            entry["signature"] = b.stat.signature
    if ("auroc", "binary") in built:
        signatures["auroc"]["max_error"] = built[("auroc", "binary")].stat.info["max_error"]
    if ("ece", "") in built:
        from cxrbench.metrics.calibration import reliability_table

        rows = built[("ece", "")].mask
        metrics["reliability_diagram"] = reliability_table(scored["correct"].to_numpy()[rows],
                                                           scored["confidence"].to_numpy()[rows])
    metrics["provenance"] = provenance(
        "cxrbench score", extra_packages=("sacrebleu", "rouge-score", "bert-score", "quickumls", "spacy",
                                          "transformers", "torch", "pycocotools"),
        bootstrap={"n_resamples": options.n_resamples, "unit": unit, "method": options.ci_method,
                   "confidence": options.confidence, "seed": options.seed},
        metrics=dict(sorted(signatures.items())), n_items=len(scored))
    metrics["warnings"] = warnings.to_dict()
    return scored, metrics


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="JSONL, CSV or Parquet with question_id, question_type, answer, prediction")
    parser.add_argument("--out", required=True, help="run directory to write predictions.parquet and metrics.json")
    parser.add_argument("--bertscore-model", default=None,
                        help="local model directory for BERTScore (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--bertscore-layers", type=int, default=None, help="BERTScore layer (default 6 for MiniLM)")
    parser.add_argument("--umls-index", default=None, help="a full QuickUMLS index directory (default: shipped table)")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (0: no CIs)")
    parser.add_argument("--unit", default="study_id", help="resampling unit column: study_id, subject_id, question_id")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ci-method", choices=("percentile", "bca"), default="percentile")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--skip", nargs="*", default=[], choices=sorted(registry.METRICS), metavar="METRIC",
                        help="metrics not to compute (e.g. bertscore_f1 on a CPU-only quick look)")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from cxrbench.io import atomic_write_json, atomic_write_parquet, file_sha256

    path = Path(args.predictions)
    options = ScoreOptions(bertscore_model=args.bertscore_model, bertscore_layers=args.bertscore_layers,
                           umls_index=args.umls_index, n_resamples=args.n_resamples, unit=args.unit,
                           seed=args.seed, ci_method=args.ci_method, confidence=args.confidence,
                           skip=tuple(args.skip), source=str(path), progress=not args.no_progress)
    frame = read_predictions(path)
    scored, metrics = score_frame(frame, options)
    metrics["provenance"]["inputs"] = {"predictions": {"name": path.name, "sha256": file_sha256(path),
                                                       "rows": len(scored)}}
    out = Path(args.out)
    atomic_write_parquet(out / "predictions.parquet", scored)
    atomic_write_json(out / "metrics.json", metrics)
    n_warn = sum(metrics["warnings"][k]["count"] for k in metrics["warnings"])
    overall = metrics["overall"]
    summary = ", ".join(f"{k}={v['value']:.4f}" for k, v in list(overall.items())[:6] if v["value"] is not None)
    print(f"scored {len(scored)} items -> {out}/metrics.json ({summary}; {n_warn} warning(s))")
    return 0
