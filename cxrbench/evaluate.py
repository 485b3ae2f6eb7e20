"""Evaluate a checkpoint: predictions, metrics with CIs, CheXpert report, attention, calibration.

    cxrbench evaluate CHECKPOINT --split test (--data ROOT | --index INDEX) [--out RUN_DIR]
                      [--no-scene-graph] [--batch-size 64] [--shard-size 2048]
                      [--n-resamples 10000] [--seed 0] [--skip METRIC ...]
    cxrbench evaluate CHECKPOINT --dataset vqa-rad|slake --questions FILE --images DIR [--out RUN_DIR]

The first form answers every QA pair of a split of an index (built from ``--data`` into
``RUN_DIR/index`` when no ``--index`` is given); the second is the zero-shot cross-dataset
protocol (seed 16.3): a VQA-RAD or SLAKE-EN question file, its image folder, the scene-graph
branch off, answers normalised to the heads (:mod:`cxrbench.data.crossdataset`).

RUN_DIR (docs/contracts.md section 3) receives:

- ``predictions.parquet``: one row per QA pair, the predictor's columns (ids, question type,
  head, labels, probabilities, confidence, answers, boxes, regions, CheXpert probabilities),
  the per-item attention scores (``plausibility``, ``attention_entropy``, ``*_sim``) and the
  per-item metric columns of ``cxrbench score``. Raw per-token attention stays in ``shards/``.
- ``metrics.json``: ``cxrbench.score.score_frame`` on those predictions (every metric with a
  bootstrap CI, overall / by_question_type / by_head / by_region_category; the cross-dataset
  mode adds by_answer_type), its provenance extended with the checkpoint (hash, ablation
  condition), the index (content hash), the split and the inference settings.
- ``chexpert_report.{json,csv,md}`` (:mod:`cxrbench.chexpert_report`), ``calibration.json``
  (:mod:`cxrbench.calibration_report`), ``attention/summary.json`` + overlay PNGs
  (:mod:`cxrbench.attention`).
- ``shards/``: inference in shards of ``--shard-size`` QA pairs, each written atomically as
  soon as it is done, with the inputs' fingerprint. A killed run started again with the same
  inputs skips the finished shards; other inputs are refused (``--overwrite`` discards them).

Determinism: QA pairs are answered in question_id order, batches are formed inside a shard,
so a resumed run computes every shard exactly as an uninterrupted one; the bootstrap is
seeded. Rerunning on the same inputs gives byte-identical predictions.parquet and metrics.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from cxrbench import vocab
from cxrbench.errors import CxrbenchError, DataError
from cxrbench.io import atomic_write_json, atomic_write_parquet, dumps_json, file_sha256

SHARD_SIZE = 2048
SHARD_DIR = "shards"
SHARD_MANIFEST = "manifest.json"
# per-token attention: kept in the shards (re-paintable), left out of predictions.parquet
RAW_ATTENTION = ("attn_text_visual", "attn_sim", "token_boxes")
# predictions.parquet starts with these (the rest in the predictor's order)
LEADING_COLUMNS = ("question_id", "study_id", "subject_id", "split", "question_type", "head", "question", "answer",
                   "prediction")


# ============================================================================ sharded inference
def fingerprint(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``fields``: what a shard directory was made from."""
    return hashlib.sha256(dumps_json(fields).encode()).hexdigest()


def _shard_path(shard_dir: Path, i: int) -> Path:
    return shard_dir / f"shard-{i:05d}.parquet"


def _prepare_shard_dir(shard_dir: Path, manifest: dict, overwrite: bool) -> None:
    shard_dir.mkdir(parents=True, exist_ok=True)
    for tmp in shard_dir.glob(".shard-*.tmp"):   # a write killed before its rename
        tmp.unlink()
    path = shard_dir / SHARD_MANIFEST
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("fingerprint") == manifest["fingerprint"]:
            return
        if not overwrite:
            changed = sorted(k for k in set(old.get("inputs", {})) | set(manifest["inputs"])
                             if old.get("inputs", {}).get(k) != manifest["inputs"].get(k))
            raise CxrbenchError(f"{shard_dir} holds shards of a different evaluation (changed: "
                                f"{', '.join(changed) or 'fingerprint'}); use another --out or --overwrite")
        for old_shard in shard_dir.glob("shard-*.parquet"):
            old_shard.unlink()
    atomic_write_json(path, manifest)


def run_sharded(predict: Callable[[pd.DataFrame], pd.DataFrame], frame: pd.DataFrame, shard_dir: str | Path, *,
                inputs: dict[str, Any], shard_size: int = SHARD_SIZE,
                postprocess: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                overwrite: bool = False, progress: bool | None = None) -> pd.DataFrame:
    """Answer ``frame`` (already in its final, deterministic order) shard by shard.

    Shard ``i`` is rows ``[i·shard_size, (i+1)·shard_size)``: ``predict`` is called on it,
    then ``postprocess`` (e.g. per-item attention scores), and the result is written
    atomically to ``shard_dir/shard-0000i.parquet``. Shards already on disk from the same
    ``inputs`` (and the same question ids) are skipped, so a killed run resumes where it
    stopped. Returns the concatenation of all shards *as read back from disk*, so a resumed
    and an uninterrupted run return the same frame.
    """
    from tqdm.auto import tqdm

    shard_dir = Path(shard_dir)
    if shard_size < 1:
        raise ValueError("shard_size must be positive")
    ids = frame["question_id"].astype(str).tolist()
    n_shards = max(1, math.ceil(len(frame) / shard_size))
    ids_hash = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    all_inputs = {**inputs, "shard_size": int(shard_size), "question_ids_sha256": ids_hash}
    manifest = {"fingerprint": fingerprint(all_inputs), "inputs": all_inputs, "n_items": len(frame),
                "n_shards": n_shards}
    _prepare_shard_dir(shard_dir, manifest, overwrite)
    todo = [i for i in range(n_shards) if not _shard_path(shard_dir, i).exists()]
    done_items = len(frame) - sum(len(frame.iloc[i * shard_size:(i + 1) * shard_size]) for i in todo)
    bar = tqdm(total=len(frame), initial=done_items, desc="inference", unit="QA",
               disable=None if progress is None else not progress)
    for i in todo:
        part = frame.iloc[i * shard_size:(i + 1) * shard_size]
        out = predict(part)
        if len(out) != len(part) or out["question_id"].astype(str).tolist() != part["question_id"].astype(str).tolist():
            raise CxrbenchError(f"predictor returned {len(out)} rows for shard {i} of {len(part)} "
                                "(or in another order): every QA pair must get exactly one row")
        if postprocess is not None:
            out = postprocess(out)
        atomic_write_parquet(_shard_path(shard_dir, i), out.reset_index(drop=True))
        bar.update(len(part))
    bar.close()
    parts = []
    for i in range(n_shards):
        part = pd.read_parquet(_shard_path(shard_dir, i))
        expected = ids[i * shard_size:(i + 1) * shard_size]
        if part["question_id"].astype(str).tolist() != expected:
            raise DataError(_shard_path(shard_dir, i), None, "shard does not hold the expected question ids; "
                            "rerun with --overwrite")
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def read_shards(run_dir: str | Path) -> pd.DataFrame:
    """All rows of a run's shards, raw per-token attention included (for re-painting maps)."""
    shard_dir = Path(run_dir) / SHARD_DIR
    paths = sorted(shard_dir.glob("shard-*.parquet"))
    if not paths:
        raise CxrbenchError(f"no shards in {shard_dir}")
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


# ============================================================================ inputs
def load_split(index_dir: str | Path, split: str) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The QA rows of ``split`` in question_id order, the studies table and the manifest."""
    index_dir = Path(index_dir)
    for name in ("qa.parquet", "studies.parquet", "manifest.json"):
        if not (index_dir / name).exists():
            raise DataError(index_dir / name, None, "missing: not an index directory (cxrbench index ROOT --out DIR)")
    import pyarrow.parquet as pq

    if "split" not in pq.read_schema(index_dir / "qa.parquet").names:
        raise DataError(index_dir / "qa.parquet", None, "no 'split' column")
    # read only the split's rows: a full release index holds tens of millions of QA pairs
    qa = pd.read_parquet(index_dir / "qa.parquet", filters=[("split", "==", split)])
    if qa.empty:
        raise CxrbenchError(f"{index_dir}: no QA pairs in split {split!r}")
    qa = qa.sort_values("question_id", kind="stable").reset_index(drop=True)
    studies = pd.read_parquet(index_dir / "studies.parquet")
    manifest = json.loads((index_dir / "manifest.json").read_text())
    return qa, studies, manifest


def drop_unanswerable(qa: pd.DataFrame, studies: pd.DataFrame, where: Path) -> tuple[pd.DataFrame, dict]:
    """Remove the QA pairs of studies without a frontal image (the model answers from the
    study's primary PA/AP image; training skips them too), counted and warned about."""
    with_image = set(studies.loc[studies["image_id"].notna(), "study_id"])
    keep = qa["study_id"].isin(with_image).to_numpy()
    lost = qa.loc[~keep, "study_id"]
    excluded = {"no_frontal_image": {"qa_pairs": int(len(lost)), "studies": int(lost.nunique())}}
    if len(lost):
        if keep.sum() == 0:
            raise DataError(where, None, "no study of the split has a frontal (PA/AP) image to answer from")
        print(f"warning: {len(lost)} QA pairs of {lost.nunique()} studies without a frontal (PA/AP) image "
              f"are not evaluated (counted in metrics.json provenance: excluded)", file=sys.stderr)
    return qa[keep].reset_index(drop=True), excluded


def index_hash(index_dir: Path, manifest: dict) -> str:
    """The index's content hash from its manifest, else the SHA-256 of its qa.parquet."""
    return manifest.get("content_hash") or manifest.get("hash") or file_sha256(index_dir / "qa.parquet")


def checkpoint_identity(path: str | Path) -> dict[str, str]:
    """Name and hashes of a checkpoint directory (weights and config), for provenance."""
    path = Path(path)
    out = {"name": path.name}
    for name in ("model.safetensors", "config.json"):
        if (path / name).exists():
            out[name.split(".")[0] + "_sha256"] = file_sha256(path / name)
    return out


def _finding_names(variables: Any, entities: Any) -> list[str]:
    """The finding a has_finding question asks about: its template variable, else the
    answer's entities."""
    if isinstance(variables, str) and variables.strip():
        try:
            variables = json.loads(variables)
        except json.JSONDecodeError:
            variables = None
    if isinstance(variables, dict):
        for key in ("finding", "finding_entity", "entity", "obs_entity", "finding_name"):
            value = variables.get(key)
            if isinstance(value, str) and value:
                return [value]
            if isinstance(value, (list, tuple)) and value:
                return [str(v) for v in value]
    if entities is None or isinstance(entities, float):
        return []
    return [str(e) for e in entities]


def finding_chexpert(qa: pd.DataFrame) -> list[list[str]]:
    """Per QA row, the CheXpert classes its has_finding question asks about (empty for other
    question types and for findings outside the 14 classes)."""
    from cxrbench.data.vocabulary import entity_chexpert

    out = []
    variables = qa["variables"] if "variables" in qa.columns else [None] * len(qa)
    entities = qa["answer_entities"] if "answer_entities" in qa.columns else [None] * len(qa)
    for qt, var, ent in zip(qa["question_type"], variables, entities):
        if qt != "D02_has_finding":
            out.append([])
            continue
        labels: list[str] = []
        for name in _finding_names(var, ent):
            labels.extend(x for x in entity_chexpert(name) if x not in labels)
        out.append(sorted(labels, key=vocab.CHEXPERT_LABELS.index))
    return out


def _label_list(value: Any) -> list[float] | None:
    if value is None or isinstance(value, float):
        return None
    arr = np.asarray(value, dtype=np.float64)
    return [float(v) for v in arr] if arr.shape == (len(vocab.CHEXPERT_LABELS),) else None


def add_reference_columns(pred: pd.DataFrame, qa: pd.DataFrame, studies: pd.DataFrame) -> pd.DataFrame:
    """Join what the CheXpert report needs from the index: ``subject_id``, the automatic and
    the radiologist labels of the study (``chexpert_auto``, ``chexpert_gold``), and the
    CheXpert classes of has_finding questions (``finding_chexpert``)."""
    pred = pred.copy()
    by_study = studies.drop_duplicates("study_id").set_index("study_id")
    sid = pred["study_id"]
    if "subject_id" not in pred.columns and "subject_id" in by_study.columns:
        pred["subject_id"] = sid.map(by_study["subject_id"]).astype("Int64")
    for src, dst in (("chexpert", "chexpert_auto"), ("chexpert_gold", "chexpert_gold")):
        if src in by_study.columns:
            pred[dst] = [_label_list(by_study[src].get(s)) for s in sid]
    per_q = dict(zip(qa["question_id"].astype(str), finding_chexpert(qa)))
    pred["finding_chexpert"] = [per_q.get(str(q), []) for q in pred["question_id"]]
    return pred


# ============================================================================ the pipeline
def _score_options(args) -> Any:
    from cxrbench.score import ScoreOptions

    return ScoreOptions(n_resamples=args.n_resamples, unit=args.unit, seed=args.seed, skip=tuple(args.skip),
                        bertscore_model=args.bertscore_model, bertscore_layers=args.bertscore_layers,
                        umls_index=args.umls_index, source="predictions", progress=not args.no_progress)


def extra_strata(scored: pd.DataFrame, column: str, options) -> dict[str, dict]:
    """Metrics with CIs by the values of ``column`` (a stratification ``score_frame`` does
    not make, e.g. the cross-dataset answer type), through the public statistics API."""
    from cxrbench.score import statistics_from_predictions
    from cxrbench.stats.bootstrap import bootstrap_many

    out: dict[str, dict] = {}
    unit = options.unit if options.unit in scored.columns else None
    for value in sorted(scored[column].dropna().astype(str).unique()):
        sub = scored[scored[column].astype(str) == value].reset_index(drop=True)
        stats = statistics_from_predictions(sub)
        clusters = None if unit is None else pd.factorize(sub[unit])[0]
        res = bootstrap_many(stats, clusters, n_resamples=options.n_resamples, seed=options.seed,
                             method=options.ci_method, confidence=options.confidence) if options.n_resamples else {}
        out[value] = {name: {"value": st.value(), "ci": [res[name].ci_low, res[name].ci_high] if name in res
                             else [None, None], "n": int(st.info.get("n_defined", len(sub)))}
                      for name, st in stats.items()}
    return out


def write_run(run_dir: Path, frame: pd.DataFrame, args, provenance_fields: dict, *, image_root: Path | None,
              extra_strata_columns: tuple[str, ...] = (), chexpert: bool = True) -> dict:
    """Score the predictions and write every report of the run dir; returns metrics.json."""
    from cxrbench import attention, calibration_report, chexpert_report
    from cxrbench.score import score_frame

    options = _score_options(args)
    first = [c for c in LEADING_COLUMNS if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    scored, metrics = score_frame(frame.drop(columns=[c for c in RAW_ATTENTION if c in frame.columns]), options)
    for column in extra_strata_columns:
        metrics[f"by_{column}"] = extra_strata(scored, column, options)
    prov = metrics["provenance"]
    prov["command"] = "cxrbench evaluate"
    prov.update(provenance_fields)
    atomic_write_parquet(run_dir / "predictions.parquet", scored)
    atomic_write_json(run_dir / "metrics.json", metrics)

    report_prov = {k: prov[k] for k in ("command", "git_commit", "packages", "inputs", "split",
                                        "ablation_condition") if k in prov}
    calibration_report.write_calibration(run_dir / "calibration.json", scored, n_resamples=args.n_resamples,
                                         seed=args.seed, unit=args.unit, provenance=report_prov)
    if chexpert:
        chexpert_report.write_report(run_dir, scored, n_resamples=args.n_resamples, seed=args.seed,
                                     provenance=report_prov)
    # the overlays need the raw attention: the scored frame with the shard's token columns
    with_tokens = scored.assign(**{c: frame[c].to_numpy() for c in RAW_ATTENTION if c in frame.columns})
    attention.write_attention_outputs(with_tokens, run_dir / "attention", image_root=image_root,
                                      n_overlays=args.n_overlays, n_resamples=args.n_resamples, seed=args.seed,
                                      provenance=report_prov)
    return metrics


def _attention_postprocess(frame: pd.DataFrame) -> pd.DataFrame:
    from cxrbench.attention import attention_columns

    return pd.concat([frame.reset_index(drop=True), attention_columns(frame.reset_index(drop=True))], axis=1)


def _predictor(bundle, index_dir, args, image_root=None):
    from model.inference import Predictor

    return Predictor(bundle, index_dir, use_scene_graph=not args.no_scene_graph, batch_size=args.batch_size,
                     image_root=image_root)


def _inference_inputs(args, checkpoint: dict, extra: dict) -> dict:
    return {"checkpoint": checkpoint, "use_scene_graph": not args.no_scene_graph, "batch_size": args.batch_size,
            **extra}


def evaluate_index(args) -> dict:
    """The index form: one split of an index."""
    from model.checkpoint import load_checkpoint

    out = Path(args.out)
    index_dir = Path(args.index) if args.index else _build_index(Path(args.data), out / "index", args)
    qa, studies, manifest = load_split(index_dir, args.split)
    qa, excluded = drop_unanswerable(qa, studies, index_dir / "studies.parquet")
    ckpt = checkpoint_identity(args.checkpoint)
    bundle = load_checkpoint(args.checkpoint, device="cpu")
    idx_hash = index_hash(index_dir, manifest)
    inputs = _inference_inputs(args, ckpt, {"index_sha256": idx_hash, "split": args.split})
    predictor = _predictor(bundle, index_dir, args)
    pred = run_sharded(predictor.predict, qa, out / SHARD_DIR, inputs=inputs, shard_size=args.shard_size,
                       postprocess=_attention_postprocess, overwrite=args.overwrite,
                       progress=not args.no_progress)
    pred = add_reference_columns(pred, qa, studies)
    image_root = getattr(getattr(predictor, "index", None), "image_root", None)
    fields = {"split": args.split, "ablation_condition": bundle.condition,
              "inputs": {"checkpoint": ckpt, "index": {"sha256": idx_hash, "n_qa": int(len(qa))}},
              "excluded": excluded,
              "inference": {"use_scene_graph": not args.no_scene_graph, "batch_size": args.batch_size,
                            "shard_size": args.shard_size}}
    return write_run(out, pred, args, fields, image_root=image_root)


def _build_index(root: Path, index_dir: Path, args) -> Path:
    """Build the index of a dataset root into RUN_DIR/index (reused when it indexes the same roots)."""
    from cxrbench.data.index import build_index
    from cxrbench.data.layout import resolve_roots

    roots = resolve_roots(root)
    manifest = index_dir / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("roots") == json.loads(dumps_json(roots.as_dict())):
        return index_dir
    build_index(roots, index_dir, progress=not args.no_progress)
    return index_dir


def crossdataset_frame(questions: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
    """The zero-shot predictions in the terms of the foreign dataset's reference answers.

    Per head: binary rows compare ``yes``/``no`` (reference: the normalised answer; prediction:
    the binary head's label), region rows compare region-head classes (reference: the class the
    location answer names; prediction: the top predicted region), text rows compare the model's
    answer text with the reference text. ``question_type`` is the dataset's content type
    (VQA-RAD question type, SLAKE content_type), so ``by_question_type`` is by content type.
    """
    q = questions.set_index("question_id")
    pred = pred.copy()
    qid = pred["question_id"].astype(str)
    head = qid.map(q["head"])
    pred["head"] = head.to_numpy()
    pred["model_answer"] = pred["prediction"]
    answers, predictions, label_true, regions_true = [], [], [], []
    for i, h in enumerate(head):
        row_q = q.loc[qid.iat[i]]
        if h == "binary":
            answers.append("yes" if row_q["answer_binary"] == 1 else "no")
            lp = pred["label_pred"].iat[i]
            predictions.append("" if lp is None or lp != lp else ("yes" if int(lp) == 1 else "no"))
            label_true.append(int(row_q["answer_binary"]))
            regions_true.append([])
        elif h == "region":
            answers.append(row_q["answer_regions"][0])
            rp = pred["regions_pred"].iat[i]
            predictions.append(str(rp[0]) if rp is not None and len(rp) else "")
            label_true.append(vocab.HEAD_REGIONS.index(row_q["answer_regions"][0]))
            regions_true.append(list(row_q["answer_regions"]))
        else:
            answers.append(row_q["answer"])
            predictions.append(str(pred["prediction"].iat[i]))
            label_true.append(None)
            regions_true.append([])
    pred["answer"], pred["prediction"] = answers, predictions
    pred["label_true"] = pd.array(label_true, dtype="Int64")
    pred["regions_true"] = regions_true
    pred["boxes_true"] = [[] for _ in range(len(pred))]   # no reference boxes: no plausibility, no IoU
    for col in ("dataset", "answer_type", "content_type", "organ", "modality", "answer_norm"):
        pred[col] = qid.map(q[col]).to_numpy()
    pred["question_type"] = pred["content_type"]
    pred["study_id"] = qid.map(q["image_name"]).to_numpy()   # resampling unit: the image
    return pred


def evaluate_crossdataset(args) -> dict:
    """The zero-shot form: a VQA-RAD / SLAKE question file and its images, scene graph off."""
    from cxrbench.data.crossdataset import check_images, load_crossdataset
    from model.checkpoint import load_checkpoint

    if not args.questions or not args.images:
        raise CxrbenchError("--dataset needs --questions FILE and --images DIR")
    args.no_scene_graph = True   # no scene graphs exist for these images (seed 16.3)
    out = Path(args.out)
    questions = load_crossdataset(args.dataset, args.questions, images=Path(args.images).resolve())
    check_images(questions, args.questions)
    ckpt = checkpoint_identity(args.checkpoint)
    bundle = load_checkpoint(args.checkpoint, device="cpu")
    q_hash = file_sha256(args.questions)
    inputs = _inference_inputs(args, ckpt, {"dataset": args.dataset, "questions_sha256": q_hash})
    predictor = _predictor(bundle, None, args)
    frame = questions[["question_id", "question", "image_path", "head", "content_type", "answer"]].rename(
        columns={"content_type": "question_type"})
    pred = run_sharded(predictor.predict, frame, out / SHARD_DIR, inputs=inputs, shard_size=args.shard_size,
                       postprocess=_attention_postprocess, overwrite=args.overwrite, progress=not args.no_progress)
    pred = crossdataset_frame(questions, pred)
    # image paths are absolute on this machine: keep them out of the (portable) outputs
    pred["image_path"] = pred["question_id"].map(questions.set_index("question_id")["image_name"]).to_numpy()
    fields = {"split": None, "dataset": args.dataset, "ablation_condition": bundle.condition,
              "inputs": {"checkpoint": ckpt, "questions": {"name": Path(args.questions).name, "sha256": q_hash,
                                                            "n_questions": int(len(questions))}},
              "inference": {"use_scene_graph": False, "batch_size": args.batch_size, "shard_size": args.shard_size},
              "answer_normalisation": "cxrbench.data.crossdataset"}
    return write_run(out, pred, args, fields, image_root=Path(args.images), extra_strata_columns=("answer_type",),
                     chexpert=False)


# ============================================================================ CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="checkpoint directory (config.json + model.safetensors)")
    parser.add_argument("--split", choices=vocab.SPLITS, default="test", help="split of the index to evaluate")
    src = parser.add_mutually_exclusive_group()
    src.add_argument("--index", help="index directory (cxrbench index)")
    src.add_argument("--data", help="dataset root; its index is built into RUN_DIR/index")
    parser.add_argument("--out", default=None, help="run directory (default: runs/evaluate-<checkpoint>-<split>)")
    parser.add_argument("--no-scene-graph", action="store_true",
                        help="scene-graph branch off: global image features only (zero-shot mode)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--shard-size", type=int, default=SHARD_SIZE, help="QA pairs per resumable shard")
    parser.add_argument("--overwrite", action="store_true", help="discard shards of a different evaluation in --out")
    parser.add_argument("--dataset", choices=("vqa-rad", "slake"), default=None,
                        help="zero-shot cross-dataset mode on a VQA-RAD / SLAKE-EN question file")
    parser.add_argument("--questions", help="question file of --dataset (e.g. testset.json, test.json)")
    parser.add_argument("--images", help="image folder of --dataset")
    parser.add_argument("--n-resamples", type=int, default=10_000, help="bootstrap resamples (0: no CIs)")
    parser.add_argument("--unit", default="study_id", help="bootstrap resampling unit column")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--n-overlays", type=int, default=8, help="attention overlay images to save")
    from cxrbench.metrics import registry

    parser.add_argument("--skip", nargs="*", default=[], metavar="METRIC", choices=sorted(registry.METRICS),
                        help="metrics not to compute (e.g. bertscore_f1 for a CPU-only quick look)")
    parser.add_argument("--bertscore-model", default=None)
    parser.add_argument("--bertscore-layers", type=int, default=None)
    parser.add_argument("--umls-index", default=None)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 8)))
    if not args.index and not args.data and not args.dataset:
        raise CxrbenchError("give --index INDEX or --data ROOT (or --dataset for the zero-shot mode)")
    if args.out is None:
        tag = args.dataset or args.split
        args.out = str(Path("runs") / f"evaluate-{Path(args.checkpoint).resolve().name}-{tag}")
    metrics = evaluate_crossdataset(args) if args.dataset else evaluate_index(args)
    overall = metrics.get("overall", {})
    shown = ", ".join(f"{k}={v['value']:.4f}" for k, v in list(overall.items())[:5] if v.get("value") is not None)
    print(f"evaluated {metrics['provenance'].get('n_items')} QA pairs -> {args.out} ({shown})", file=sys.stderr)
    return 0

