"""Training dynamics: validation metrics and training loss at regular steps, as one long table.

``RUN/dynamics.csv`` (schema in docs/contracts.md, "Training dynamics") has one row per
(step, source, group, stratum, metric): at every validation of a run (``train.validate_every``
optimizer steps, the end of an epoch with ``train.eval_every_epoch``, and the last step),

* ``source=validation``: accuracy per head, per question type and overall, and the text head's
  micro-F1, on a fixed subset of the validation split (:func:`validation_subset`: the same rows
  for every condition trained with the same seed, so the curves of two conditions are paired);
* ``source=train``: the mean of each logged loss term over the optimizer steps since the
  previous validation (``n`` = those steps).

The table is rewritten atomically at each validation and truncated to the resumed step on
``--resume`` (as ``train_log.jsonl``), so a resumed run writes the same table as an
uninterrupted one. Accuracy definitions are :mod:`model.evaluation`'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COLUMNS = ("condition", "seed", "step", "epoch", "source", "group", "stratum", "metric", "value", "n")
SUBSET_SALT = 104_729     # the validation subset's generator: (seed, salt), apart from every training draw


def validation_subset(qa, n_rows: int, seed: int):
    """``n_rows`` rows of ``qa`` drawn without replacement by ``seed`` (all rows when fewer), in
    their original order: the subset does not depend on the condition, only on the seed."""
    if len(qa) <= n_rows:
        return qa
    rng = np.random.default_rng([seed, SUBSET_SALT])
    keep = np.sort(rng.choice(len(qa), size=n_rows, replace=False))
    return qa.iloc[keep]


def validation_rows(frame, ident: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one validation from a :class:`model.inference.Predictor` frame (``ident``: condition,
    seed, step, epoch)."""
    from model.evaluation import head_accuracy, item_hits

    hits = item_hits(frame)
    acc = head_accuracy(frame)
    rows = []

    def add(group: str, stratum: str, metric: str, value: Any, n: int) -> None:
        if value is not None and n > 0:
            rows.append({**ident, "source": "validation", "group": group, "stratum": stratum, "metric": metric,
                         "value": float(value), "n": int(n)})

    add("overall", "overall", "accuracy", acc["accuracy/overall"], acc["n/overall"])
    for head in ("binary", "region", "severity", "text"):
        add("head", head, "accuracy", acc[f"accuracy/{head}"], acc[f"n/{head}"])
    add("head", "text", "f1", acc["f1/text"], acc["n/text"])
    ok = ~np.isnan(hits)
    types = frame["question_type"].astype(str).to_numpy()
    for qt in sorted(set(types[ok])):
        sel = ok & (types == qt)
        add("question_type", qt, "accuracy", hits[sel].mean(), sel.sum())
    return rows


def loss_rows(window: list[dict[str, Any]], ident: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean of every loss term of the logged steps ``window`` (train_log.jsonl rows)."""
    terms = sorted({k for row in window for k in row if k == "loss" or k.startswith("loss/")})
    out = []
    for term in terms:
        values = [row[term] for row in window if term in row]
        out.append({**ident, "source": "train", "group": "loss", "stratum": term, "metric": "mean",
                    "value": float(np.mean(values)), "n": len(values)})
    return out


def write(path: Path, rows: list[dict[str, Any]]) -> None:
    import pandas as pd

    from cxrbench.io import atomic_write_text

    atomic_write_text(path, pd.DataFrame(rows, columns=list(COLUMNS)).to_csv(index=False))


def read(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    if not path.is_file():
        return []
    frame = pd.read_csv(path, float_precision="round_trip")    # rewritten byte for byte on resume
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        from cxrbench.errors import CxrbenchError

        raise CxrbenchError(f"{path}: not a training dynamics table (missing columns {missing})")
    return frame.to_dict("records")


def steps_to_target(frame, target: float, stratum: str = "overall", metric: str = "accuracy") -> int | None:
    """The first validated step at which ``stratum``'s ``metric`` reaches ``target`` (None: never),
    from a dynamics table of one run."""
    rows = frame[(frame["source"] == "validation") & (frame["stratum"] == stratum) & (frame["metric"] == metric)]
    reached = rows.loc[rows["value"] >= target, "step"]
    return int(reached.min()) if len(reached) else None
