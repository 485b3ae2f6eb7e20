"""Synthetic predictions frames of any size, shaped like MIMIC-Ext-CXR-QBA run dirs (templated
answers, one study per ~10 questions, every head), for the score tests and the benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd

FINDINGS = ("pleural effusion", "pneumothorax", "cardiomegaly", "atelectasis", "consolidation", "edema",
            "pneumonia", "nodule")
REGIONS = ("left lung", "right lung", "heart", "mediastinum", "left costophrenic angle", "right hilar structures")
SEVERITY = ("mild", "moderate", "severe")
TYPES = ("B03_is_abnormal", "D02_has_finding", "C03_is_abnormal_region", "D03_where_is_finding",
         "D04_how_severe_is_finding", "D01_describe_finding", "B01_describe_all", "B12_describe_device")


def _describe(rng, k=2):
    parts = []
    for _ in range(k):
        f = FINDINGS[rng.integers(len(FINDINGS))]
        if rng.random() < 0.4:
            parts.append(f"No {f}.")
        else:
            parts.append(f"There is {SEVERITY[rng.integers(3)]} {f} in the {REGIONS[rng.integers(len(REGIONS))]}.")
    return " ".join(parts)


def make_predictions(n: int, seed: int = 0, accuracy: float = 0.7, describe_sentences: int = 2) -> pd.DataFrame:
    """``describe_sentences``: sentences per free-text answer (2: ~20K distinct answers; 1: ~200)."""
    rng = np.random.default_rng(seed)
    qt = np.array(TYPES)[rng.integers(len(TYPES), size=n)]
    rows = []
    for i in range(n):
        t = qt[i]
        f = FINDINGS[rng.integers(len(FINDINGS))]
        r = REGIONS[rng.integers(len(REGIONS))]
        right = rng.random() < accuracy
        row = {"question_id": f"q{i:07d}", "study_id": 50_000_000 + i // 10, "question_type": t}
        if t in ("B03_is_abnormal", "D02_has_finding", "C03_is_abnormal_region"):
            yes = rng.random() < 0.4
            ans = f"Yes, there is {f}." if yes else f"No, there is no {f}."
            pred_yes = yes if right else not yes
            row.update(answer=ans, prediction=(f"Yes, there is {f}." if pred_yes else f"No, there is no {f}."),
                       head="binary", label_true=int(yes), label_pred=int(pred_yes),
                       score=float(np.clip(pred_yes * 0.6 + rng.normal(0.2, 0.15), 0, 1)),
                       question=f"Is there {f} in the {r}?" if t != "B03_is_abnormal" else "Is the study abnormal?")
            row["confidence"] = row["score"] if pred_yes else 1 - row["score"]
        elif t == "D03_where_is_finding":
            x, y = rng.uniform(0, 600, 2)
            w, h = rng.uniform(50, 300, 2)
            bt = [[x, y, x + w, y + h]]
            jit = rng.normal(0, 25 if right else 120, 4)
            bp = [[min(x + jit[0], x + w + jit[2]), min(y + jit[1], y + h + jit[3]),
                   max(x + jit[0], x + w + jit[2]), max(y + jit[1], y + h + jit[3])]]
            bp = [[float(v) for v in np.clip(b, 0.0, 1024.0)] for b in bp]
            bt = [[float(v) for v in b] for b in bt]
            r2 = r if right else REGIONS[rng.integers(len(REGIONS))]
            row.update(answer=f"The {f} is located in the {r}.", prediction=f"The {f} is located in the {r2}.",
                       head="region", boxes_true=bt, boxes_pred=bp, box_scores=[float(rng.uniform(0.3, 1))],
                       regions_true=[r], regions_pred=[r2], image_width=1024.0, image_height=1024.0,
                       question=f"Where is the {f}?", region_category="pulmonary" if "lung" in r else "cardiac")
        elif t == "D04_how_severe_is_finding":
            s = int(rng.integers(3))
            p = s if right else int(rng.integers(3))
            row.update(answer=f"The {f} is {SEVERITY[s]}.", prediction=f"The {f} is {SEVERITY[p]}.", head="severity",
                       label_true=s + 1, label_pred=p + 1, question=f"How severe is the {f}?")
        else:
            ans = _describe(rng, describe_sentences)
            row.update(answer=ans, prediction=ans if right else _describe(rng, describe_sentences), head="text",
                       answer_entities=[f], question="Describe the given study." if t == "B01_describe_all"
                       else f"Describe the {f}.")
        rows.append(row)
    return pd.DataFrame.from_records(rows)
