"""Per-finding decision thresholds of the text head, tuned on the validation split.

The text head gives 14 independent sigmoid probabilities; the answer names every finding at or
above its threshold ("No Finding" when none is). A fixed 0.5 suits calibrated outputs, but a
small model trained for minutes ranks well and calibrates badly: on the synthetic data the tiny
model's text head reached per-finding AUROCs of 0.6-0.93 while no positive ever scored above
0.5, so every answer was "No Finding" (docs/model.md, "Decision thresholds").

:func:`tune_finding_thresholds` picks one threshold per finding by coordinate ascent on the
metric the text answers are judged by, exact match of the finding set, over the validation
split's text-head questions; the thresholds go into the checkpoint's ``config.json``
(``model.heads.finding_thresholds``), so training tunes them once and every later inference
(``cxrbench evaluate``) uses them. The test split is never looked at. The rule the thresholds
feed is :func:`model.decisions.decide_findings` (inference applies it; this module only tunes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from model.decisions import decide_findings
from model.vocabularies import FINDING_CLASSES

GRID = np.round(np.linspace(0.02, 0.98, 49), 2)
MAX_TUNING_ROWS = 20_000          # validation questions used (a fixed sample beyond that)


def tune_finding_thresholds(probs: np.ndarray, truth: np.ndarray, start: float = 0.5, passes: int = 3,
                            grid: Sequence[float] = GRID) -> tuple[np.ndarray, float, float]:
    """Thresholds maximising exact-set accuracy of :func:`decide_findings` on (probs, truth).

    ``probs`` (n, 14) probabilities, ``truth`` (n, 14) bool true sets. Coordinate ascent from
    ``start`` for every class, ``passes`` sweeps over the classes in order; a class moves only
    when another grid value is strictly better, and among equally good values the one nearest
    the current threshold wins (deterministic). Returns (thresholds, accuracy at ``start``,
    accuracy at the returned thresholds).
    """
    probs, truth = np.asarray(probs, dtype=np.float64), np.asarray(truth, dtype=bool)
    if probs.shape != truth.shape or probs.ndim != 2 or probs.shape[1] != len(FINDING_CLASSES):
        raise ValueError(f"probs {probs.shape} and truth {truth.shape} must both be (n, {len(FINDING_CLASSES)})")
    thresholds = np.full(probs.shape[1], float(start))

    def accuracy(t: np.ndarray) -> float:
        return float((decide_findings(probs, t) == truth).all(axis=1).mean()) if len(probs) else 0.0

    before = best = accuracy(thresholds)
    grid = np.asarray(grid, dtype=np.float64)
    for _ in range(passes):
        moved = False
        for k in range(probs.shape[1]):
            current = thresholds[k]
            scores = []
            for g in grid:
                trial = thresholds.copy()
                trial[k] = g
                scores.append(accuracy(trial))
            scores = np.asarray(scores)
            top = scores.max()
            if top > best:
                candidates = grid[scores == top]
                thresholds[k] = float(candidates[np.argmin(np.abs(candidates - current))])
                best, moved = top, True
        if not moved:
            break
    return thresholds, before, best


def text_rows_truth(frame) -> tuple[np.ndarray, np.ndarray]:
    """(probs, truth) of the text-head rows of a :class:`model.inference.Predictor` frame."""
    text = frame[frame["head"] == "text"]
    probs = np.array([list(p) for p in text["probs"]], dtype=np.float64).reshape(len(text), len(FINDING_CLASSES))
    index = {c: k for k, c in enumerate(FINDING_CLASSES)}
    truth = np.zeros(probs.shape, dtype=bool)
    for i, found in enumerate(text["findings_true"]):
        for name in found:
            truth[i, index[name]] = True
    return probs, truth


def tune_on_split(bundle, index_dir: str | Path, qa, batch_size: int = 64, seed: int = 0) -> dict[str, Any]:
    """Tune ``bundle.config.heads.finding_thresholds`` on the QA rows ``qa`` (the validation
    split; a fixed sample of ``MAX_TUNING_ROWS`` beyond that); returns the report recorded in
    the checkpoint's ``training_metadata.json``."""
    from model.inference import Predictor

    if len(qa) > MAX_TUNING_ROWS:
        qa = qa.sample(n=MAX_TUNING_ROWS, random_state=seed).sort_index()

    report: dict[str, Any] = {"split_rows": int(len(qa)), "criterion": "exact finding-set match"}
    if bundle.config.heads.kind != "multi":
        return {**report, "skipped": "single head: the unified argmax has no thresholds"}
    if len(qa) == 0:
        return {**report, "skipped": "no validation questions"}
    was_training = bundle.model.training
    bundle.model.eval()
    frame = Predictor(bundle, index_dir, use_scene_graph=True, batch_size=batch_size).predict(qa)
    bundle.model.train(was_training)
    probs, truth = text_rows_truth(frame)
    if len(probs) == 0:
        return {**report, "skipped": "no text-head questions"}
    thresholds, before, after = tune_finding_thresholds(probs, truth, start=bundle.config.heads.finding_threshold)
    bundle.config.heads.finding_thresholds = [float(t) for t in thresholds]
    return {**report, "text_rows": int(len(probs)), "exact_match_at_default": before,
            "exact_match_tuned": after, "thresholds": dict(zip(FINDING_CLASSES, map(float, thresholds)))}

def retune_checkpoint(checkpoint: str | Path, index_dir: str | Path, split: str = "validate") -> dict[str, Any]:
    """Tune a saved checkpoint's thresholds on ``split`` of ``index_dir`` and rewrite it in
    place (atomically); for checkpoints trained before tuning existed or with ``tune_thresholds``
    off. ``python -m model.thresholds CHECKPOINT --index INDEX``."""
    from model.checkpoint import load_checkpoint, save_checkpoint
    from model.data import IndexData

    bundle = load_checkpoint(checkpoint)
    qa = IndexData.load(index_dir).answerable(split)
    report = {**tune_on_split(bundle, index_dir, qa, seed=int(bundle.metadata.get("seed", 0))), "split": split}
    save_checkpoint(bundle.path, bundle.model, bundle.config, bundle.vocabularies, bundle.tokenizer,
                    bundle.answer_bank, {**bundle.metadata, "thresholds": report})
    return report


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=retune_checkpoint.__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--index", required=True)
    parser.add_argument("--split", default="validate")
    args = parser.parse_args()
    print(json.dumps(retune_checkpoint(args.checkpoint, args.index, args.split), indent=2))
