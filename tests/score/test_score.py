import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import recall_score

from cxrbench import score
from cxrbench.score.contract import LIST_COLUMNS, qa_keys
from cxrbench.score.statistics import statistics_from_predictions
from cxrbench.cli import main
from cxrbench.metrics import spatial, text
from tests.score.synthetic import make_predictions

N_RESAMPLES = "200"


@pytest.fixture(scope="module")
def frame():
    return make_predictions(240, seed=3)


def _write(frame, path):
    if path.suffix == ".jsonl":  # exact floats (pandas' to_json rounds to 10 digits)
        def clean(v):
            return None if isinstance(v, float) and np.isnan(v) else v
        lines = [json.dumps({k: clean(v) for k, v in r.items()}) for r in frame.to_dict("records")]
        path.write_text("\n".join(lines) + "\n")
    elif path.suffix == ".csv":
        f = frame.copy()
        for col in LIST_COLUMNS:
            if col in f:
                f[col] = f[col].map(lambda v: json.dumps(v) if isinstance(v, list) else "")
        f.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def _score(path, out, *extra):
    return main(["score", str(path), "--out", str(out), "--n-resamples", N_RESAMPLES, "--no-progress", *extra])


@pytest.fixture(scope="module")
def run_dir(frame, tmp_path_factory):
    d = tmp_path_factory.mktemp("score")
    path = _write(frame, d / "preds.jsonl")
    assert _score(path, d / "run") == 0
    return d


def test_metrics_json_layout_and_values(frame, run_dir):
    m = json.loads((run_dir / "run" / "metrics.json").read_text())
    assert {"provenance", "overall", "by_question_type", "by_head", "by_region_category", "warnings"} <= set(m)
    for stratum in [m["overall"], *m["by_question_type"].values(), *m["by_head"].values()]:
        for name, entry in stratum.items():
            assert set(entry) == {"value", "ci", "n"}
            if entry["value"] is not None and entry["ci"][0] is not None:
                assert entry["ci"][0] - 1e-9 <= entry["value"] <= entry["ci"][1] + 1e-9, name
    overall = m["overall"]
    assert overall["exact_match"]["value"] == pytest.approx(text.exact_match(frame["answer"], frame["prediction"]))
    assert overall["bleu4"]["value"] == pytest.approx(text.bleu4(frame["answer"].tolist(), frame["prediction"].tolist()))
    where = frame[frame["question_type"] == "D03_where_is_finding"]
    assert overall["iou"]["value"] == pytest.approx(spatial.iou(where["boxes_true"].tolist(), where["boxes_pred"].tolist()))
    assert overall["iou"]["n"] == len(where)
    # every mAP of the registry, from the same detections as the metric functions
    for name in ("map_50", "map_75", "map_50_75", "map_coco"):
        fn = getattr(spatial, name)
        assert overall[name]["value"] == pytest.approx(fn(where["boxes_true"].tolist(), where["boxes_pred"].tolist(),
                                                          where["box_scores"].tolist())), name
    has = frame[frame["question_type"] == "D02_has_finding"]
    d02 = m["by_question_type"]["D02_has_finding"]
    assert d02["sensitivity"]["value"] == pytest.approx(recall_score(has["label_true"], has["label_pred"]))
    assert d02["sensitivity"]["n"] == len(has)
    sev = m["by_question_type"]["D04_how_severe_is_finding"]
    assert {"accuracy", "kappa", "mcc"} <= set(sev) and "auroc" not in sev
    # provenance: every metric's signature, the bootstrap settings, the input hash
    prov = m["provenance"]
    assert prov["metrics"]["bleu4"]["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    assert "all-MiniLM-L6-v2" in prov["metrics"]["bertscore_f1"]["signature"]
    assert prov["metrics"]["clinical_term_f1"]["signature"].startswith("quickumls:1.4.2")
    assert prov["bootstrap"] == {"n_resamples": 200, "unit": "study_id", "method": "percentile",
                                 "confidence": 0.95, "seed": 0, "draw": "shared"}
    assert prov["inputs"]["predictions"]["name"] == "preds.jsonl" and len(prov["inputs"]["predictions"]["sha256"]) == 64
    assert m["warnings"] == {"nan_confidence": m["warnings"]["nan_confidence"]}  # rows without a confidence


def test_predictions_parquet_has_item_scores(frame, run_dir):
    scored = pd.read_parquet(run_dir / "run" / "predictions.parquet")
    assert len(scored) == len(frame) and (scored["question_id"] == frame["question_id"]).all()
    for col in ("exact_match", "token_f1", "rouge_l", "bertscore_f1", "clinical_term_f1", "iou", "correct"):
        assert col in scored
    assert scored["iou"].notna().sum() == (frame["question_type"] == "D03_where_is_finding").sum()
    # the scored frame alone gives the same overall numbers, without running a model
    stats = statistics_from_predictions(scored)
    m = json.loads((run_dir / "run" / "metrics.json").read_text())
    for name, stat in stats.items():
        assert stat.value() == pytest.approx(m["overall"][name]["value"], nan_ok=True), name
        assert stat.n == len(scored)
        assert stat.info["n_defined"] == m["overall"][name]["n"], name


def test_rerun_is_byte_identical_and_formats_agree(frame, run_dir):
    first = (run_dir / "run" / "metrics.json").read_bytes()
    assert _score(run_dir / "preds.jsonl", run_dir / "again") == 0
    assert (run_dir / "again" / "metrics.json").read_bytes() == first
    base = json.loads(first)
    for suffix in (".csv", ".parquet"):
        path = _write(frame, run_dir / f"preds{suffix}")
        assert _score(path, run_dir / f"run{suffix}") == 0
        other = json.loads((run_dir / f"run{suffix}" / "metrics.json").read_text())
        assert other["overall"] == base["overall"], suffix


def _bad(frame, tmp_path, capsys, **change):
    f = frame.copy()
    for k, v in change.items():
        v(f) if callable(v) else f.__setitem__(k, v)
    path = _write(f, tmp_path / "bad.jsonl")
    code = _score(path, tmp_path / "out", "--skip", "bertscore_f1")
    return code, capsys.readouterr().err


def test_bad_input_errors_name_file_record_and_problem(frame, tmp_path, capsys):
    small = frame.head(30).copy()
    code, err = _bad(small, tmp_path, capsys, prediction=lambda f: f.drop(columns=["prediction"], inplace=True))
    assert code == 1 and "bad.jsonl" in err and "prediction" in err and "missing required column" in err

    def dup(f):
        f.loc[5, "question_id"] = f.loc[2, "question_id"]
    code, err = _bad(small, tmp_path, capsys, x=dup)
    assert code == 1 and "duplicate QA pair" in err and qa_keys(small)[2] in err

    def empty_answer(f):
        f.loc[4, "answer"] = "  "
    code, err = _bad(small, tmp_path, capsys, x=empty_answer)
    assert code == 1 and "empty answer" in err and small.loc[4, "question_id"] in err

    i = int(np.flatnonzero(small["question_type"] == "D03_where_is_finding")[0])

    def bad_box(f):
        f.at[i, "boxes_pred"] = [[10.0, 10.0, 5.0, 20.0]]
    code, err = _bad(small, tmp_path, capsys, x=bad_box)
    assert code == 1 and "malformed box" in err and small.loc[i, "question_id"] in err

    j = int(np.flatnonzero(small["confidence"].notna())[0])

    def bad_conf(f):
        f.loc[j, "confidence"] = 1.7
    code, err = _bad(small, tmp_path, capsys, x=bad_conf)
    assert code == 1 and "outside [0, 1]" in err and small.loc[j, "question_id"] in err

    path = _write(small, tmp_path / "ok.jsonl")
    assert _score(path, tmp_path / "o", "--umls-index", str(tmp_path / "no-index")) == 1
    assert "--umls-index" in capsys.readouterr().err
    assert _score(path, tmp_path / "o", "--bertscore-model", str(tmp_path / "no-model")) == 1
    assert "--bertscore-model" in capsys.readouterr().err

    (tmp_path / "p.txt").write_text("x")
    assert _score(tmp_path / "p.txt", tmp_path / "o") == 1
    assert "unknown predictions format" in capsys.readouterr().err


def test_tolerated_problems_are_counted_warnings(frame, tmp_path):
    f = frame.head(60).copy()
    f.loc[0, "prediction"] = ""
    f.loc[1, "question_type"] = "PRES"  # a foreign question type: text metrics only
    b = int(np.flatnonzero(f["head"] == "binary")[2])
    f.loc[b, "prediction"] = "Maybe."
    f["label_pred"] = f["label_pred"].astype(float)
    f.loc[b, "label_pred"] = np.nan  # no head label: the label is read from the text
    i = int(np.flatnonzero(f["question_type"] == "D03_where_is_finding")[0])
    f.at[i, "boxes_pred"] = [[10.0, 10.0, 2000.0, 20.0]]
    scored, m = score.score_frame(f, score.ScoreOptions(n_resamples=0, skip=("bertscore_f1",), progress=False))
    w, keys = m["warnings"], qa_keys(f)
    assert w["empty_prediction"] == {"count": 1, "examples": [keys[0]]}
    assert w["unknown_question_type"]["examples"] == [keys[1]]
    assert w["binary_prediction_unparsed"]["count"] >= 1
    assert w["boxes_pred_out_of_image"]["examples"] == [keys[i]]
    assert "PRES" in m["by_question_type"] and "exact_match" in m["by_question_type"]["PRES"]
    assert "sensitivity" not in m["by_question_type"]["PRES"]
    assert m["overall"]["exact_match"]["ci"] == [None, None]  # --n-resamples 0: no CIs


def test_cluster_unit_changes_interval_not_value(frame):
    opts = dict(n_resamples=300, skip=("bertscore_f1", "clinical_term_f1", "semantic_type_accuracy"), progress=False)
    _, by_study = score.score_frame(frame, score.ScoreOptions(unit="study_id", **opts))
    _, by_item = score.score_frame(frame, score.ScoreOptions(unit="question_id", **opts))
    a, b = by_study["overall"]["exact_match"], by_item["overall"]["exact_match"]
    assert a["value"] == b["value"] and a["ci"] != b["ci"]
    assert by_item["provenance"]["bootstrap"]["unit"] == "question_id"


@pytest.mark.slow
def test_score_300k_rows(tmp_path):
    f = make_predictions(300_000, seed=7, describe_sentences=1)
    path = _write(f, tmp_path / "big.parquet")
    assert main(["score", str(path), "--out", str(tmp_path / "run"), "--n-resamples", "200", "--no-progress"]) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["provenance"]["n_items"] == 300_000
    assert m["overall"]["exact_match"]["n"] == 300_000
    assert m["overall"]["exact_match"]["value"] == pytest.approx(text.exact_match(f["answer"], f["prediction"]))
    assert len(pd.read_parquet(tmp_path / "run" / "predictions.parquet", columns=["question_id"])) == 300_000
