"""The QA-pair key is (study_id, question_id): in MIMIC-Ext-CXR-QBA a question_id is a template
name that recurs in every study. Score and compare keep such pairs apart; a file that cannot be
keyed gets a clear error."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cxrbench.cli import main
from cxrbench.errors import DataError
from cxrbench.score import ScoreOptions, score_frame
from cxrbench.score.contract import qa_keys

SKIP = ("bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall")


def template_predictions(right_in_second: bool) -> pd.DataFrame:
    """Two studies asking the same templated questions (real-release ids)."""
    rows = []
    for study, correct in ((50414267, True), (53189527, right_in_second)):
        rows += [
            {"study_id": study, "question_id": "B03_is_abnormal_000", "question_type": "B03_is_abnormal",
             "question": "Is the study abnormal?", "answer": "Yes.", "prediction": "Yes." if correct else "No."},
            {"study_id": study, "question_id": "D02_has_finding_003", "question_type": "D02_has_finding",
             "question": "Is there an effusion?", "answer": "No.", "prediction": "No." if correct else "Yes."},
        ]
    return pd.DataFrame(rows)


def test_keys_join_study_and_question():
    frame = template_predictions(True)
    assert list(qa_keys(frame)) == ["50414267/B03_is_abnormal_000", "50414267/D02_has_finding_003",
                                    "53189527/B03_is_abnormal_000", "53189527/D02_has_finding_003"]
    # study ids read back as floats (a CSV with gaps) key the same
    assert list(qa_keys(frame.astype({"study_id": float}))) == list(qa_keys(frame))
    assert list(qa_keys(frame.drop(columns="study_id")))[:2] == ["B03_is_abnormal_000", "D02_has_finding_003"]


def test_score_keeps_recurring_question_ids_of_different_studies_apart():
    scored, m = score_frame(template_predictions(False), ScoreOptions(n_resamples=0, skip=SKIP, progress=False))
    assert len(scored) == 4
    assert scored["exact_match"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert m["overall"]["exact_match"] == {"value": 0.5, "ci": [None, None], "n": 4}
    assert m["by_question_type"]["B03_is_abnormal"]["exact_match"]["n"] == 2


def test_a_file_without_study_id_whose_question_ids_repeat_cannot_be_keyed():
    frame = template_predictions(True).drop(columns="study_id")
    with pytest.raises(DataError, match="question_id repeats .* no study_id column .* add a study_id column"):
        score_frame(frame, ScoreOptions(n_resamples=0, skip=SKIP, progress=False))
    dup = pd.concat([template_predictions(True).iloc[:1]] * 2)
    with pytest.raises(DataError, match="duplicate QA pair"):
        score_frame(dup, ScoreOptions(n_resamples=0, skip=SKIP, progress=False))


def many_studies(wrong_every: int, n_studies: int = 40) -> pd.DataFrame:
    """``n_studies`` studies with the same two template questions; every ``wrong_every``-th study
    answered wrong (0: none)."""
    frames = []
    for i in range(n_studies):
        f = template_predictions(not (wrong_every and i % wrong_every == 0)).iloc[2:].copy()
        f["study_id"] = 50_000_000 + i
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def test_compare_pairs_runs_on_the_key(tmp_path):
    for name, wrong_every in (("a", 0), ("b", 4)):
        frame = many_studies(wrong_every)
        if name == "b":   # another order: pairs must be matched by key, not by position or question_id
            frame = frame.iloc[::-1]
        frame.to_parquet(tmp_path / f"{name}.parquet", index=False)
        assert main(["score", str(tmp_path / f"{name}.parquet"), "--out", str(tmp_path / name), "--n-resamples", "0",
                     "--no-progress", "--skip", *SKIP]) == 0
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "cmp"),
                 "--n-resamples", "200", "--metrics", "exact_match"]) == 0
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    overall = next(r for r in rows if r["stratum"] == "overall" and r["test"] == "paired_bootstrap")
    assert (overall["value_baseline"], overall["value_run"], overall["n"]) == (1.0, 0.75, 80)
    mcnemar = next(r for r in rows if r["stratum"] == "overall" and r["test"] == "mcnemar_exact")
    assert mcnemar["report"].startswith("b = 20, c = 0")   # exactly the 10 wrong studies' 2 pairs each
