"""A fake model behind cxrbench's Predictor protocol and checkpoint-loader hook, and frames for it.

Its outputs are a deterministic function of the question id (so resumed and uninterrupted runs
must agree byte for byte), and it can log its calls and sleep (to be killed mid-run).
:class:`FakeLoader` loads any folder holding ``fake-checkpoint.json``, so ``cxrbench evaluate``
runs end to end without the ``model`` package.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from cxrbench import questions, vocab

TYPES = ("D02_has_finding", "D03_where_is_finding", "D04_how_severe_is_finding", "B01_describe_all")
ANSWERS = {"D03_where_is_finding": "left lung", "D04_how_severe_is_finding": "mild",
           "B01_describe_all": "no acute cardiopulmonary process"}


def qa_frame(n: int, n_studies: int | None = None) -> pd.DataFrame:
    """A QA frame in question_id order (what the runner receives)."""
    n_studies = n_studies or max(1, n // 4)
    rows = [{"question_id": f"q{i:05d}", "study_id": 1000 + i % n_studies, "question_type": TYPES[i % len(TYPES)],
             "question": f"question {i}?", "split": "test",
             "answer": ANSWERS.get(TYPES[i % len(TYPES)], "yes" if i % 8 < 4 else "no")} for i in range(n)]
    return pd.DataFrame(rows)


def _rng(qid: str) -> np.random.Generator:
    return np.random.default_rng(int(hashlib.sha256(qid.encode()).hexdigest()[:12], 16))


HEAD_CLASSES = {"binary": 2, "region": 26, "severity": 4, "text": len(vocab.CHEXPERT_LABELS)}


def _probs(head: str, label: int | None, p_yes: float) -> list[float]:
    """Probabilities of the head's classes: softmax-like for binary/severity, sigmoids otherwise."""
    if head == "binary":
        return [1 - p_yes, p_yes]
    k = HEAD_CLASSES[head]
    if head == "severity":
        p = np.full(k, (1 - 0.7) / (k - 1))
        p[label] = 0.7
        return p.tolist()
    return [0.8 if i == (label or 0) else 0.1 for i in range(k)]


class FakePredictor:
    """A Predictor (cxrbench.predictor): ``identity``, ``image_root``, ``predict``."""

    def __init__(self, log: str | Path | None = None, delay: float = 0.0, condition: str = "fake"):
        self.log, self.delay = log, delay
        self.identity = {"condition": condition, "model": "FakePredictor"}
        self.image_root = None

    def predict(self, qa: pd.DataFrame) -> pd.DataFrame:
        if self.log is not None:
            with open(self.log, "a") as fh:
                fh.write(f"{qa['question_id'].iloc[0]}\n")
        time.sleep(self.delay)
        rows = []
        for r in qa.to_dict("records"):
            rng = _rng(r["question_id"])
            head = questions.get(r["question_type"]).head
            p_yes = float(rng.uniform())
            n_tok = int(rng.integers(3, 9))
            boxes = [[0.0, 0.0, 512.0, 512.0]] + [sorted(rng.uniform(0, 512, 2).round(1).tolist())[:1]
                                                  + sorted(rng.uniform(0, 512, 2).round(1).tolist())[:1]
                                                  + [400.0, 450.0] for _ in range(n_tok - 1)]
            w = rng.dirichlet(np.ones(n_tok)).tolist()
            label_pred = int(p_yes >= 0.5) if head == "binary" else (1 if head == "severity" else 0)
            if head == "text":
                label_pred = None
            rows.append({
                "question_id": r["question_id"], "study_id": r["study_id"], "question_type": r["question_type"],
                "question": r["question"], "head": head, "answer": r["answer"],
                "prediction": ("yes" if label_pred == 1 else "no") if head == "binary" else r["answer"],
                "label_true": (int(r["answer"] == "yes") if head == "binary" else 1 if head == "severity"
                               else 0 if head == "region" else None),
                "label_pred": label_pred, "score": p_yes if head == "binary" else None,
                "probs": _probs(head, label_pred, p_yes), "confidence": max(p_yes, 1 - p_yes),
                "regions_true": ["left lung"], "regions_pred": ["left lung"],
                "boxes_true": [[10.0, 10.0, 200.0, 300.0]] if head == "region" else [],
                "boxes_pred": [[20.0, 10.0, 210.0, 300.0]] if head == "region" else [],
                "box_scores": [0.9] if head == "region" else [],
                "image_width": 512.0, "image_height": 512.0, "region_category": "pulmonary", "split": r.get("split"),
                "chexpert_true": [float(x) for x in rng.integers(-1, 2, len(vocab.CHEXPERT_LABELS))],
                "chexpert_prob": rng.uniform(size=len(vocab.CHEXPERT_LABELS)).tolist(),
                "attn_text_visual": w, "attn_sim": w[::-1], "token_boxes": boxes,
                "image_path": f"files/p10/{r['study_id']}.jpg",
            })
        return pd.DataFrame(rows)


CHECKPOINT_FILE = "fake-checkpoint.json"


class FakeLoader:
    """Loads folders that hold ``fake-checkpoint.json`` ({"condition": ...})."""

    name = "fake"

    def can_load(self, path: Path) -> bool:
        return (Path(path) / CHECKPOINT_FILE).is_file()

    def load(self, path: Path, settings) -> FakePredictor:
        spec = json.loads((Path(path) / CHECKPOINT_FILE).read_text())
        return FakePredictor(condition=spec.get("condition", "fake"))


def write_fake_checkpoint(folder: Path, condition: str = "fake") -> Path:
    """A checkpoint folder :class:`FakeLoader` loads."""
    folder.mkdir(parents=True)
    (folder / CHECKPOINT_FILE).write_text(json.dumps({"condition": condition}))
    return folder


@contextmanager
def registered_fake_checkpoint(folder: Path, condition: str = "fake") -> Iterator[Path]:
    """:func:`write_fake_checkpoint`, with the loader registered in this process meanwhile."""
    from cxrbench.predictor import register_loader, unregister_loader

    register_loader(FakeLoader())
    try:
        yield write_fake_checkpoint(folder, condition)
    finally:
        unregister_loader(FakeLoader.name)


def run_fake(out: str, n: int, shard_size: int, delay: float = 0.0, log: str | None = None) -> None:
    """What the kill test runs in a subprocess: shards, then the final file."""
    from cxrbench.evaluate.pipeline import _attention_postprocess
    from cxrbench.evaluate.shards import run_sharded
    from cxrbench.io import atomic_write_parquet

    frame = run_sharded(FakePredictor(log, delay).predict, qa_frame(n), Path(out) / "shards",
                        inputs={"test": "fake"}, shard_size=shard_size, postprocess=_attention_postprocess,
                        progress=False)
    atomic_write_parquet(Path(out) / "predictions.parquet", frame)
