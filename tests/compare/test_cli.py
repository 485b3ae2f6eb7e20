"""`cxrbench compare` over run dirs: pairing, errors, outputs, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cxrbench import compare as compare_cmd
from cxrbench.cli import main
from cxrbench.metrics.base import mean_stats
from cxrbench.metrics.classification import mcc_stats
from cxrbench.stats.comparison import COLUMNS, MATRIX_COLUMNS

TYPES = ["B03_is_abnormal", "D03_where_is_finding", "C03_is_abnormal_region", "A_indication"]


def frame_statistics(run) -> dict:
    """Statistics from per-item columns, standing in for the registry's
    (cxrbench.score.statistics.statistics_from_predictions) so these tests exercise compare's
    own logic whatever the metric set is."""
    frame = run.frame
    return {"exact_match": mean_stats("exact_match", frame["exact_match"].to_numpy(float)),
            "token_f1": mean_stats("token_f1", frame["token_f1"].to_numpy(float)),
            "mcc": mcc_stats(frame["label_true"].to_numpy(), frame["label_pred"].to_numpy())}


@pytest.fixture(autouse=True)
def _stand_in_statistics(monkeypatch):
    monkeypatch.setattr(compare_cmd, "run_statistics", frame_statistics)


def make_predictions(n_studies=40, per_study=6, seed=0):
    rng = np.random.default_rng(seed)
    n = n_studies * per_study
    frame = pd.DataFrame({
        "question_id": [f"q{i:05d}" for i in range(n)],
        "study_id": np.repeat(np.arange(n_studies, dtype=np.int64) + 50_000_000, per_study),
        "question_type": [TYPES[i] for i in rng.integers(0, len(TYPES), n)],
        "answer": rng.choice(["yes", "no"], n),
    })
    frame["label_true"] = (frame["answer"] == "yes").astype(int)
    frame["_ease"] = rng.random(n)
    return frame


def write_run(path, base: pd.DataFrame, p_correct, seed, condition=None, drop=(), shuffle=True):
    rng = np.random.default_rng(seed)
    f = base.copy()
    hit = f["_ease"].to_numpy() < p_correct
    f["exact_match"] = hit.astype(float)
    f["correct"] = hit
    f["token_f1"] = np.clip(0.7 * hit + 0.3 * rng.random(len(f)), 0, 1)
    f["label_pred"] = np.where(hit, f["label_true"], 1 - f["label_true"])
    f["prediction"] = np.where(f["label_pred"] == 1, "yes", "no")
    f = f.drop(columns="_ease").drop(index=list(drop))
    if shuffle:  # runs need not list questions in the same order
        f = f.sample(frac=1.0, random_state=seed)
    path.mkdir(parents=True)
    f.to_parquet(path / "predictions.parquet", index=False)
    prov = {"command": "test"} | ({"ablation_condition": condition} if condition else {})
    (path / "metrics.json").write_text(json.dumps({"provenance": prov, "overall": {}}))
    return path


@pytest.fixture()
def runs(tmp_path):
    # 60 studies: every question-type stratum keeps the 30 resampling units a test needs (stats.guards)
    base = make_predictions(n_studies=60)
    spatial = base["question_type"].isin(["D03_where_is_finding", "C03_is_abnormal_region"]).to_numpy()
    return {
        "full": write_run(tmp_path / "run_full", base, 0.75, 1, condition="full"),
        "no_sg": write_run(tmp_path / "run_nosg", base, np.where(spatial, 0.3, 0.75), 2, condition="no_sg"),
        "resnet": write_run(tmp_path / "resnet18", base, 0.72, 3),
    }


def compare(runs, out, *extra):
    return main(["compare", str(runs["full"]), str(runs["no_sg"]), str(runs["resnet"]), "--out", str(out),
                 "--n-resamples", "300", *extra])


def test_writes_every_output_with_the_contract_columns(runs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert compare(runs, out) == 0
    printed = capsys.readouterr().out
    assert "family: Bonferroni correction at α = 0.05, one family per metric and test" in printed
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == [*COLUMNS, "direction"]
    assert set(table.run) == {"no_sg", "resnet18"}  # ablation_condition, else the directory name
    assert (table.baseline == "full").all()
    strata = list(dict.fromkeys(table.stratum))
    assert strata[:2] == ["overall", "spatial"] and set(strata[2:]) == set(TYPES)
    assert strata[2:] == ["A_indication", "B03_is_abnormal", "C03_is_abnormal_region", "D03_where_is_finding"]
    assert (table.n_clusters[table.stratum == "overall"] == 60).all()  # default unit: the study
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["provenance"]["unit"] == "study" and doc["provenance"]["n_questions"] == 360
    assert doc["family"]["definition"] in printed and len(doc["rows"]) == len(table)
    assert any("no relational stratum" in n for n in doc["notes"])
    md = (out / "comparison.md").read_text()
    assert "## no_sg vs full" in md and "χ²(1) = " in md and "t(" in md and "[95% CI: " in md
    matrix = pd.read_csv(out / "ablation_matrix.csv")
    assert list(matrix.columns) == list(MATRIX_COLUMNS)
    assert matrix.set_index(["condition", "subset"]).loc[("no_sg", "spatial"), "significant"]
    assert "| no_sg | " in (out / "ablation_matrix.md").read_text()


def test_the_planted_spatial_loss_is_significant_only_on_spatial_strata(runs, tmp_path):
    out = tmp_path / "cmp"
    assert compare(runs, out, "--metrics", "exact_match") == 0
    t = pd.read_csv(out / "comparison.csv")
    t = t[(t.run == "no_sg") & (t.test == "paired_bootstrap")].set_index("stratum")
    assert t.loc[["spatial", "D03_where_is_finding", "C03_is_abnormal_region"], "significant"].all()
    assert (t.loc[["spatial", "D03_where_is_finding"], "direction"] == "worse").all()   # exact match: higher is better
    assert (t.loc[["B03_is_abnormal", "A_indication"], "diff"] == 0).all()
    assert set(pd.read_csv(out / "comparison.csv").metric) == {"exact_match"}


def test_reruns_are_byte_identical(runs, tmp_path):
    compare(runs, tmp_path / "a")
    compare(runs, tmp_path / "b")
    for name in ("comparison.csv", "comparison.json", "comparison.md", "ablation_matrix.csv",
                 "ablation_matrix.json", "ablation_matrix.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_differing_question_sets_fail_with_counts_unless_intersect(tmp_path, capsys):
    base = make_predictions()
    a = write_run(tmp_path / "a", base, 0.7, 1)
    b = write_run(tmp_path / "b", base, 0.7, 2, drop=[0, 1, 2])
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "o"), "--n-resamples", "100"]) == 1
    err = capsys.readouterr().err
    assert "3 QA pair(s) only in the baseline, 0 only in the run" in err and "--intersect" in err
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "o"), "--n-resamples", "100", "--intersect"]) == 0
    doc = json.loads((tmp_path / "o" / "comparison.json").read_text())
    assert doc["provenance"]["n_questions"] == 237
    assert any("3 of 240 QA pairs of a" in n for n in doc["notes"])


def test_bad_run_dirs_get_clear_errors(tmp_path, capsys):
    base = make_predictions()
    a = write_run(tmp_path / "a", base, 0.7, 1)
    dup = write_run(tmp_path / "dup", base, 0.7, 2, shuffle=False)
    f = pd.read_parquet(dup / "predictions.parquet")
    f.loc[5, "question_id"] = f.loc[4, "question_id"]
    f.to_parquet(dup / "predictions.parquet", index=False)
    assert main(["compare", str(a), str(dup), "--out", str(tmp_path / "o")]) == 1
    assert "predictions.parquet, record 50000000/q00004: duplicate QA pair" in capsys.readouterr().err
    other = write_run(tmp_path / "other", base.assign(answer="maybe"), 0.7, 3)
    assert main(["compare", str(a), str(other), "--out", str(tmp_path / "o")]) == 1
    assert "another 'answer' than in the baseline" in capsys.readouterr().err
    assert main(["compare", str(a), str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 1
    assert "predictions.parquet is missing" in capsys.readouterr().err
    b = write_run(tmp_path / "b", base, 0.6, 4)
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "o"), "--unit", "patient"]) == 1
    assert "--unit patient needs a 'subject_id' column" in capsys.readouterr().err
    assert main(["compare", str(a), str(a), "--out", str(tmp_path / "o")]) == 1
    assert "runs have the same name (a)" in capsys.readouterr().err


def test_pair_unit_and_holm_are_recorded(runs, tmp_path):
    out = tmp_path / "cmp"
    assert compare(runs, out, "--unit", "pair", "--correction", "holm", "--family", "all", "--metrics", "mcc") == 0
    doc = json.loads((out / "comparison.json").read_text())
    assert doc["provenance"]["unit"] == "pair"
    assert doc["provenance"]["settings"]["correction"] == "holm"
    assert {r["n_clusters"] for r in doc["rows"] if r["stratum"] == "overall"} == {360}
    assert doc["family"]["sizes"] == {"all": len(doc["rows"])}


def test_bad_settings_are_user_errors(runs, tmp_path, capsys):
    assert compare(runs, tmp_path / "o", "--alpha", "1.5") == 1
    assert "--alpha must lie strictly between 0 and 1" in capsys.readouterr().err
    assert main(["compare", str(runs["full"]), str(runs["no_sg"]), "--out", str(tmp_path / "o"),
                 "--n-resamples", "0"]) == 1
    assert "--n-resamples must be at least 1" in capsys.readouterr().err
    assert compare(runs, tmp_path / "o", "--metrics", "token_f1", "--matrix-metric", "exact_match") == 0
    doc = json.loads((tmp_path / "o" / "comparison.json").read_text())
    assert any("ablation matrix metric 'exact_match' is not among the compared metrics" in n for n in doc["notes"])
