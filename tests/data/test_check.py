"""cxrbench check: clean trees in both encodings pass; a planted unknown column, an unknown rating
value, a missing zip and unknown JSON keys are reported with counts and examples."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cxrbench.cli import main as cli_main
from cxrbench.data import layout as L
from cxrbench.data.check import CheckOptions, check_install
from tests.data.helpers import clone, edit_json, first_member, rewrite_member


@pytest.mark.parametrize("which", ["synth_root_real", "synth_root_legacy"])
def test_clean_trees_pass_in_both_encodings(which, request, capsys):
    root = request.getfixturevalue(which)
    assert cli_main(["check", str(root), "--studies", "20"]) == 0
    out = capsys.readouterr().out
    assert "problems (the readers stop here): none" in out and "unknown (ignored by the readers): none" in out
    assert "index: would succeed (sample of 20 studies:" in out
    if which == "synth_root_real":
        assert "qa.zip members: top folder 'qa/'" in out
        assert "question_metadata ids: patient_id, study_id, question_id as the Parquet pandas index" in out
        assert "question rating (question.quality.rating): N_GRADE string" in out
        assert "recur across studies: keyed by (study_id, question_id)" in out
        assert "image view_position: frontal" in out and "observation modifiers: pairs" in out
    else:
        assert "qa.zip members: no top folder" in out and "question rating (quality): integer" in out
        assert "unique in the sample" in out


def test_unknown_column_is_reported_with_count_and_examples_and_does_not_fail(synth_root_real, tmp_path, capsys):
    root = clone(synth_root_real, tmp_path)
    path = root / L.QBA_DIR / "metadata" / "study_metadata.parquet"
    df = pd.read_parquet(path)
    df["study.mystery_score"] = [f"m{i}" for i in range(len(df))]
    df.to_parquet(path)  # the id columns stay the pandas index
    rep = check_install(root, options=CheckOptions(studies=5))
    hit = [(k, n, ex) for k, n, ex in rep.unknown.items() if k[2] == "study.mystery_score"]
    assert hit == [(("column", "metadata/study_metadata.parquet", "study.mystery_score"), len(df), ["m0", "m1"])]
    assert rep.ok
    assert cli_main(["check", str(root), "--studies", "5"]) == 0
    assert "column study.mystery_score in metadata/study_metadata.parquet: " in capsys.readouterr().out


def test_unknown_rating_value_fails_with_count_and_examples(synth_root_real, tmp_path, capsys):
    root = clone(synth_root_real, tmp_path)
    path = root / L.QBA_DIR / "metadata" / "question_metadata.parquet"
    df = pd.read_parquet(path)
    col = "question.quality.rating"
    df.iloc[[3, 7, 8], df.columns.get_loc(col)] = "7_S"
    df.to_parquet(path)
    rep = check_install(root, options=CheckOptions(studies=5))
    [(key, n, ex)] = [(k, n, ex) for k, n, ex in rep.problems.items() if k[0] == "unknown rating value"]
    assert key == ("unknown rating value", f"metadata/question_metadata.parquet column {col}") and n == 3
    sid, qid = df.index[3][1], df.index[3][2]
    assert ex == [f"'7_S' (study_id {sid}, question_id {qid})"]
    assert not rep.ok
    assert cli_main(["check", str(root), "--studies", "5"]) == 1
    assert "index: would FAIL" in capsys.readouterr().out


def test_missing_zip_fails(synth_root_real, tmp_path, capsys):
    root = clone(synth_root_real, tmp_path)
    (root / L.QBA_DIR / L.SCENE_ZIP).unlink()
    assert cli_main(["check", str(root), "--studies", "5"]) == 1
    out = capsys.readouterr().out
    assert "missing or unreadable archive in scene_data.zip: 1 (e.g. neither scene_data.zip nor an extracted scene_data/ folder found)" in out


def test_unknown_json_keys_and_question_types_are_reported(synth_root_real, tmp_path):
    root = clone(synth_root_real, tmp_path)
    member = first_member(root, L.QA_ZIP, "qa")

    def plant(doc):
        doc["questions"][0]["llm_judge"] = "x"
        doc["questions"][1]["answers"][0]["answer_confidence"] = 0.9
        doc["questions"][2]["question_type"] = "E01_describe_everything"

    rewrite_member(root / L.QBA_DIR / L.QA_ZIP, member, edit_json(plant))
    rep = check_install(root, options=CheckOptions(studies=3))
    unknown = {k: (n, ex) for k, n, ex in rep.unknown.items()}
    name = member.rsplit("/", 1)[-1]
    assert unknown[("key", "question objects", "llm_judge")] == (1, [name])
    assert unknown[("key", "answer objects", "answer_confidence")] == (1, [name])
    assert unknown[("value", "qa.json", "question_type")] == (1, ["E01_describe_everything"])
    assert rep.ok  # ignored keys and an unknown type (kept as given) do not stop the index


def test_check_runs_the_index_builder_on_the_sample(synth_root_real, tmp_path):
    root = clone(synth_root_real, tmp_path)
    member = first_member(root, L.QA_ZIP, "qa")
    rewrite_member(root / L.QBA_DIR / L.QA_ZIP, member, edit_json(lambda d: d["questions"][0].pop("answers")))
    rep = check_install(root, options=CheckOptions(studies=3))
    problems = {k: ex for k, n, ex in rep.problems.items()}
    [(key, ex)] = [(k, ex) for k, ex in problems.items() if k[0] == "index would stop"]
    assert "missing required field 'answers'" in ex[0] and member in ex[0]
    assert rep.sample["studies"] == 2
    assert pq.read_schema(root / L.QBA_DIR / "metadata" / "question_metadata.parquet")  # untouched tables still read
