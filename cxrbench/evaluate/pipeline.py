"""Evaluate a checkpoint: predictions, metrics with CIs, and the CheXpert, calibration and
attention reports of a run dir (docs/contracts.md §3, docs/evaluate.md).

Two forms, one pipeline: :func:`evaluate_index` answers every QA pair of a split of an index;
:func:`evaluate_crossdataset` is the zero-shot protocol on a VQA-RAD or SLAKE-EN question file
(seed 16.3: no scene graphs exist for those images). Both build the model through
:func:`cxrbench.predictor.load_predictor` (cxrbench never imports a model package), run it in
resumable shards (:mod:`cxrbench.evaluate.shards`, on one process or many), score the
predictions with :func:`cxrbench.score.score_frame`, and commit the run dir as one set
(:class:`cxrbench.outputs.OutputDir`): ``predictions.parquet``, ``metrics.json``,
``calibration.json``, ``chexpert_report.{json,csv,md}``, ``attention/``. ``shards/`` is the
resume cache, written in place.

Determinism: QA pairs are answered in key order (question_id, then study_id), batches are formed
inside a shard, so a resumed run computes every shard exactly as an uninterrupted one, and a run
on many processes exactly as a run on one; the bootstrap is seeded. Rerunning on the same inputs
gives byte-identical predictions.parquet and metrics.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from cxrbench.errors import CxrbenchError
from cxrbench.evaluate.inputs import (add_reference_columns, checkpoint_identity, drop_unanswerable, index_hash,
                                      load_split)
from cxrbench.evaluate.shards import SHARD_DIR, SHARD_SIZE, World, run_sharded
from cxrbench.io import file_sha256
from cxrbench.outputs import OutputDir
from cxrbench.predictor import PredictorSettings, load_predictor
from cxrbench.score import ScoreOptions

COMMAND = "cxrbench evaluate"
# per-token attention: kept in the shards (re-paintable), left out of predictions.parquet
RAW_ATTENTION = ("attn_text_visual", "attn_sim", "token_boxes")
# predictions.parquet starts with these (the rest in the predictor's order)
LEADING_COLUMNS = ("question_id", "study_id", "subject_id", "split", "question_type", "head", "question", "answer",
                   "prediction")


@dataclass(frozen=True)
class EvaluateOptions:
    """Everything an evaluation is made of besides the checkpoint and the data."""

    score: ScoreOptions = field(default_factory=ScoreOptions)     # metrics and CIs (unit, resamples, seed, skip)
    scene_graphs: str = "dataset"        # dataset | detected | none
    scene_graph_dir: Path | None = None  # detected scene graphs (cxrbench scene-graph)
    batch_size: int = 64
    shard_size: int = SHARD_SIZE
    device: str = "auto"                 # the loader's choice: cuda:LOCAL_RANK where there is a GPU, else cpu
    n_overlays: int = 8
    overwrite: bool = False
    progress: bool = True
    world: World = field(default_factory=World)

    def predictor_settings(self, index_dir: Path | None, image_root: Path | None = None,
                           scene_graphs: str | None = None) -> PredictorSettings:
        return PredictorSettings(index_dir=index_dir, image_root=image_root,
                                 scene_graphs=scene_graphs or self.scene_graphs, scene_graph_dir=self.scene_graph_dir,
                                 batch_size=self.batch_size, device=self.device, progress=self.progress)


def _attention_postprocess(frame: pd.DataFrame) -> pd.DataFrame:
    from cxrbench.reports.attention import attention_columns

    frame = frame.reset_index(drop=True)
    return pd.concat([frame, attention_columns(frame)], axis=1)


def _inference_inputs(options: EvaluateOptions, checkpoint: dict, scene_graphs: str, extra: dict) -> dict:
    """What the shards depend on (their fingerprint): the model, the data, the inference settings."""
    return {"checkpoint": checkpoint, "scene_graphs": scene_graphs, "batch_size": options.batch_size, **extra}


def write_run(out: OutputDir, frame: pd.DataFrame, options: EvaluateOptions, provenance_fields: dict, *,
              image_root: Path | None, chexpert: bool = True) -> dict:
    """Score the predictions and commit every file of the run dir as one set; returns metrics.json."""
    from cxrbench.reports import attention, calibration
    from cxrbench.reports.chexpert import ChexpertOptions, write_report
    from cxrbench.runs import stage_run
    from cxrbench.score import score_frame

    s = options.score
    first = [c for c in LEADING_COLUMNS if c in frame.columns]
    frame = frame[first + [c for c in frame.columns if c not in first]]
    scored, metrics = score_frame(frame.drop(columns=[c for c in RAW_ATTENTION if c in frame.columns]), s)
    prov = metrics["provenance"]
    prov["command"] = COMMAND
    prov.update(provenance_fields)
    staging = stage_run(out, scored, metrics)

    report_prov = {k: prov[k] for k in ("command", "git_commit", "packages", "inputs", "split",
                                        "ablation_condition") if k in prov}
    calibration.write_calibration(staging / "calibration.json", scored, n_resamples=s.n_resamples, seed=s.seed,
                                  unit=s.unit, provenance=report_prov)
    if chexpert:
        unit = s.unit if s.unit in ("study_id", "subject_id") else "study_id"
        write_report(staging, scored, ChexpertOptions(unit=unit, n_resamples=s.n_resamples, seed=s.seed),
                     provenance=report_prov)
    # the overlays need the raw attention: the scored frame with the shard's token columns
    with_tokens = scored.assign(**{c: frame[c].to_numpy() for c in RAW_ATTENTION if c in frame.columns})
    attention.write_attention_outputs(with_tokens, staging / "attention", image_root=image_root,
                                      n_overlays=options.n_overlays, n_resamples=s.n_resamples, seed=s.seed,
                                      unit=s.unit, provenance=report_prov)
    out.commit()                                   # keeps what _claim adopted (the shards, RUN_DIR/index)
    return metrics


def _claim(out_dir: Path, options: EvaluateOptions) -> OutputDir | None:
    """Rank 0 owns the run dir; the other ranks only write shards into it."""
    if not options.world.is_main:
        return None
    out = OutputDir.claim(out_dir, COMMAND, overwrite=options.overwrite)
    out.adopt(SHARD_DIR)
    return out


def evaluate_index(checkpoint: Path, index_dir: Path | None, split: str, out_dir: Path,
                   options: EvaluateOptions | None = None, *, data_root: Path | None = None) -> dict | None:
    """The index form: one split of an index (or of the index of ``data_root``, built into
    ``out_dir/index``). Returns metrics.json (None on ranks other than 0)."""
    options = options or EvaluateOptions()
    out = _claim(out_dir, options)                 # before any long work: the folder must be ours to write
    if index_dir is None:
        if data_root is None:
            raise CxrbenchError("give an index directory or a dataset root")
        index_dir = Path(out_dir) / "index"
        if out is not None:
            build_index_for(data_root, index_dir, options.progress)
            out.adopt("index")
    qa, studies, manifest = load_split(index_dir, split)
    qa, excluded = drop_unanswerable(qa, studies, index_dir / "studies.parquet")
    ckpt = checkpoint_identity(checkpoint)
    idx_hash = index_hash(index_dir, manifest)
    predictor = load_predictor(checkpoint, options.predictor_settings(index_dir))
    inputs = _inference_inputs(options, ckpt, options.scene_graphs, {"index_sha256": idx_hash, "split": split})
    pred = run_sharded(predictor.predict, qa, out_dir / SHARD_DIR, inputs=inputs, shard_size=options.shard_size,
                       postprocess=_attention_postprocess, overwrite=options.overwrite,
                       progress=options.progress, world=options.world)
    if pred is None:
        return None
    pred = add_reference_columns(pred, qa, studies)
    fields = {"split": split, "ablation_condition": predictor.identity.get("condition"),
              "model": dict(predictor.identity),
              "inputs": {"checkpoint": ckpt, "index": {"sha256": idx_hash, "n_qa": int(len(qa))}},
              "excluded": excluded,
              "inference": {"scene_graphs": options.scene_graphs, "batch_size": options.batch_size,
                            "shard_size": options.shard_size}}
    return write_run(out, pred, options, fields, image_root=predictor.image_root)


def build_index_for(root: Path, index_dir: Path, progress: bool) -> Path:
    """The index of a dataset root in RUN_DIR/index (reused when it indexes the same roots)."""
    from cxrbench.data.index import build_index
    from cxrbench.data.layout import resolve_roots

    roots = resolve_roots(root)
    manifest = index_dir / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("roots") == roots.as_dict(relative_to=index_dir):
        return index_dir
    build_index(roots, index_dir, progress=progress)
    return index_dir


def evaluate_crossdataset(checkpoint: Path, dataset: str, questions_file: Path, images: Path, out_dir: Path,
                          options: EvaluateOptions | None = None) -> dict | None:
    """The zero-shot form: a VQA-RAD / SLAKE question file and its images. No scene graphs exist
    for those images: the graph branch is off unless detected graphs are given."""
    from cxrbench.data.crossdataset import check_images, load_crossdataset
    from cxrbench.data.crossdataset_answers import crossdataset_frame

    options = options or EvaluateOptions()
    scene_graphs = "detected" if options.scene_graphs == "detected" else "none"
    options = replace(options, scene_graphs=scene_graphs)
    out = _claim(out_dir, options)
    questions = load_crossdataset(dataset, questions_file, images=Path(images).resolve())
    check_images(questions, questions_file)
    ckpt = checkpoint_identity(checkpoint)
    predictor = load_predictor(checkpoint, options.predictor_settings(None, image_root=Path(images)))
    q_hash = file_sha256(questions_file)
    inputs = _inference_inputs(options, ckpt, scene_graphs, {"dataset": dataset, "questions_sha256": q_hash})
    frame = questions[["question_id", "question", "image_path", "head", "content_type", "answer"]].rename(
        columns={"content_type": "question_type"})
    pred = run_sharded(predictor.predict, frame, out_dir / SHARD_DIR, inputs=inputs, shard_size=options.shard_size,
                       postprocess=_attention_postprocess, overwrite=options.overwrite, progress=options.progress,
                       world=options.world)
    if pred is None:
        return None
    pred = crossdataset_frame(questions, pred)
    # image paths are absolute on this machine: keep them out of the (portable) outputs
    pred["image_path"] = pred["question_id"].map(questions.set_index("question_id")["image_name"]).to_numpy()
    fields = {"split": None, "dataset": dataset, "ablation_condition": predictor.identity.get("condition"),
              "model": dict(predictor.identity),
              "inputs": {"checkpoint": ckpt, "questions": {"name": Path(questions_file).name, "sha256": q_hash,
                                                            "n_questions": int(len(questions))}},
              "inference": {"scene_graphs": scene_graphs, "batch_size": options.batch_size,
                            "shard_size": options.shard_size},
              "answer_normalisation": "cxrbench.data.crossdataset"}
    options = replace(options, score=replace(options.score, extra_strata=("answer_type",)))
    return write_run(out, pred, options, fields, image_root=Path(images), chexpert=False)


def default_out(checkpoint: Path, tag: str) -> Path:
    return Path("runs") / f"evaluate-{Path(checkpoint).resolve().name}-{tag}"

