"""`cxrbench score` run dirs into `cxrbench compare`, with the real metric statistics
(cxrbench.score.statistics_from_predictions) and the relational parse."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cxrbench.cli import main

QUESTIONS = {  # question type -> (question text, its two answers)
    "B03_is_abnormal": ("Is the study abnormal?", ("Yes.", "No.")),
    "D02_has_finding": ("Is there an effusion in the left lung?", ("Yes.", "No.")),
    "D03_where_is_finding": ("Where is the effusion located?", ("left lung", "right lung")),
    "C03_is_abnormal_region": ("Is the left lower lung zone abnormal?", ("Yes.", "No.")),
}


def predictions(p_correct_spatial: float, seed: int, n_studies=40, per_study=6) -> pd.DataFrame:
    rng = np.random.default_rng(0)  # the same questions and item difficulty for every run
    n = n_studies * per_study
    qtype = np.array(list(QUESTIONS))[rng.integers(0, len(QUESTIONS), n)]
    answer_idx = rng.integers(0, 2, n)
    ease = rng.random(n)
    spatial = np.isin(qtype, ["D03_where_is_finding", "C03_is_abnormal_region"])
    hit = ease < np.where(spatial, p_correct_spatial, 0.8)
    frame = pd.DataFrame({
        "question_id": [f"q{i:04d}" for i in range(n)],
        "study_id": np.repeat(np.arange(n_studies, dtype=np.int64) + 50_000_000, per_study),
        "question_type": qtype,
        "question": [QUESTIONS[t][0] for t in qtype],
        "answer": [QUESTIONS[t][1][a] for t, a in zip(qtype, answer_idx)],
        "prediction": [QUESTIONS[t][1][a if h else 1 - a] for t, a, h in zip(qtype, answer_idx, hit)],
    })
    return frame.sample(frac=1.0, random_state=seed)  # each run lists the questions in its own order


@pytest.mark.slow
def test_score_then_compare_finds_the_planted_spatial_loss(tmp_path, capsys):
    runs = {}
    for name, p_spatial in (("full", 0.8), ("no_sg", 0.3)):
        src = tmp_path / f"{name}.parquet"
        predictions(p_spatial, seed=len(runs)).to_parquet(src, index=False)
        assert main(["score", str(src), "--out", str(tmp_path / name), "--skip", "bertscore_f1", "clinical_term_f1",
                     "--n-resamples", "50", "--no-progress"]) == 0
        runs[name] = tmp_path / name
    out = tmp_path / "cmp"
    assert main(["compare", str(runs["full"]), str(runs["no_sg"]), "--out", str(out), "--n-resamples", "500"]) == 0
    table = pd.read_csv(out / "comparison.csv")
    assert {"exact_match", "token_f1", "mcc", "accuracy"} <= set(table.metric)
    assert {"overall", "spatial", "relational", "D03_where_is_finding"} <= set(table.stratum)
    assert table[["value_baseline", "value_run"]].notna().any(axis=1).all()  # not-applicable rows left out
    em = table[(table.metric == "exact_match") & (table.test == "paired_bootstrap")].set_index("stratum")
    assert em.loc["spatial", "significant"] and em.loc["spatial", "diff"] < -0.3
    assert em.loc["B03_is_abnormal", "diff"] == 0 and not em.loc["B03_is_abnormal", "significant"]
    # the relational subset: questions whose parse has a relation ("in the left lung", "of ...")
    assert em.loc["relational", "n"] > 0
    # values agree with what score wrote into each run's metrics.json
    metrics = json.loads((runs["full"] / "metrics.json").read_text())
    assert em.loc["overall", "value_baseline"] == pytest.approx(metrics["overall"]["exact_match"]["value"])
    cells = pd.read_csv(out / "ablation_matrix.csv").set_index("subset")
    assert cells.loc["spatial", "significant"] and cells.loc["relational", "n"] > 0
