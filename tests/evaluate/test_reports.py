"""CheXpert report, calibration report and the metrics strata of a run, on planted predictions."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from cxrbench import vocab
from cxrbench.commands import evaluate as evaluate_cmd
from cxrbench.evaluate import inputs, pipeline
from cxrbench.outputs import OutputDir
from cxrbench.reports import calibration as calibration_report
from cxrbench.reports import chexpert as chexpert_report
from cxrbench.reports.chexpert import ChexpertOptions
from cxrbench.errors import CxrbenchError, DataError
from tests.evaluate.fakes import FakePredictor, qa_frame

K = len(vocab.CHEXPERT_LABELS)
PTX = vocab.CHEXPERT_LABELS.index("Pneumothorax")
EDEMA = vocab.CHEXPERT_LABELS.index("Edema")


def _studies(n=60, seed=0):
    """One QA row per study (plus has_finding rows added by tests), gold labels with -1 and
    blanks, automatic labels, aux-head probabilities on a 0.05 grid (exact AUROC)."""
    rng = np.random.default_rng(seed)
    gold = rng.choice([1.0, 0.0, -1.0, np.nan], size=(n, K), p=[0.3, 0.4, 0.15, 0.15])
    auto = rng.choice([1.0, 0.0, -1.0, np.nan], size=(n, K), p=[0.3, 0.4, 0.15, 0.15])
    prob = np.round(rng.uniform(size=(n, K)) * 20) / 20
    prob[:, PTX] = np.where(gold[:, PTX] == 1, 0.95, 0.05)      # a perfect pneumothorax detector
    rows = [{"question_id": f"q{i:03d}", "study_id": 5000 + i, "subject_id": 900 + i // 3,
             "question_type": "B03_is_abnormal", "answer": "Yes.", "prediction": "Yes.",
             "chexpert_gold": gold[i].tolist(), "chexpert_auto": auto[i].tolist(),
             "chexpert_prob": prob[i].tolist(), "finding_chexpert": [], "label_true": 1, "label_pred": 1,
             "score": 0.9} for i in range(n)]
    return pd.DataFrame(rows), gold, auto, prob


def _expected(y_raw, prob, threshold=0.5):
    y = np.where(np.isnan(y_raw), 0.0, y_raw)
    keep = y_raw != -1
    yt, s = y[keep].astype(int), prob[keep]
    yp = (s >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(yt, yp, labels=[0, 1]).ravel()
    return {"accuracy": skm.accuracy_score(yt, yp), "sensitivity": skm.recall_score(yt, yp, zero_division=np.nan),
            "specificity": tn / (tn + fp), "ppv": skm.precision_score(yt, yp, zero_division=np.nan),
            "npv": tn / (tn + fn), "f1": skm.f1_score(yt, yp, zero_division=np.nan),
            "mcc": skm.matthews_corrcoef(yt, yp), "kappa": skm.cohen_kappa_score(yt, yp),
            "auroc": skm.roc_auc_score(yt, s)}, int(keep.sum()), float(yt.mean())


def test_aux_head_metrics_agree_with_sklearn_under_the_label_policy():
    frame, gold, _, prob = _studies()
    report = chexpert_report.chexpert_report(frame, ChexpertOptions(n_resamples=300, seed=1))
    assert report["reference"]["column"] == "chexpert_gold"
    for c, name in enumerate(vocab.CHEXPERT_LABELS):
        entry = report["aux_head"][name]
        expected, n, prevalence = _expected(gold[:, c], prob[:, c])
        assert entry["n"] == n and entry["prevalence"] == pytest.approx(prevalence)
        assert entry["n_uncertain_excluded"] == int((gold[:, c] == -1).sum())
        assert entry["n_blank_as_negative"] == int(np.isnan(gold[:, c]).sum())
        for metric, value in expected.items():
            got = entry["metrics"][metric]
            assert got["value"] == pytest.approx(value, abs=1e-12), (name, metric)
            assert got["n"] == n
            lo, hi = got["ci"]
            assert lo <= got["value"] + 1e-12 and got["value"] - 1e-12 <= hi
        assert entry["metrics"]["auroc"]["max_binning_error"] == 0.0


def test_targets_shown_beside_the_measured_values():
    frame, *_ = _studies()
    report = chexpert_report.chexpert_report(frame, ChexpertOptions(n_resamples=200))
    ptx = report["aux_head"]["Pneumothorax"]["targets"]
    assert ptx["priority"] == "Critical"
    assert ptx["sensitivity"] == {"target": 0.90, "meets": True, "ci_above": True}
    assert ptx["auroc"]["meets"] is True
    assert report["aux_head"]["Fracture"]["targets"] is None       # the seed sets none
    assert set(chexpert_report.TARGETS) == {"Pneumothorax", "Pleural Effusion", "Cardiomegaly", "Consolidation",
                                            "Pneumonia", "Edema", "Atelectasis"}
    md = chexpert_report.to_markdown(report)
    assert "| Pneumothorax |" in md and "(> 0.90 ✓)" in md
    rows = chexpert_report.to_csv(report).splitlines()
    assert len(rows) == 1 + 14 * 9
    assert "aux_head,Pneumothorax,sensitivity,1.0,1.0,1.0" in chexpert_report.to_csv(report)


def test_reference_choice_and_studies_without_labels():
    frame, gold, auto, prob = _studies()
    frame.loc[:9, "chexpert_gold"] = None           # 10 studies without radiologist labels
    report = chexpert_report.chexpert_report(frame, ChexpertOptions(n_resamples=0))
    assert report["counts"]["studies_without_reference"] == 10 and report["counts"]["studies_evaluated"] == 50
    expected, n, _ = _expected(gold[10:, EDEMA], prob[10:, EDEMA])
    assert report["aux_head"]["Edema"]["metrics"]["mcc"]["value"] == pytest.approx(expected["mcc"])
    assert report["aux_head"]["Edema"]["metrics"]["mcc"]["ci"] == [None, None]
    automatic = chexpert_report.chexpert_report(frame, ChexpertOptions(labels="automatic", n_resamples=0))
    assert automatic["reference"] == {"column": "chexpert_auto", "kind": "automatic"}
    expected, n, _ = _expected(auto[:, EDEMA], prob[:, EDEMA])
    assert automatic["aux_head"]["Edema"]["n"] == n
    with pytest.raises(CxrbenchError, match="no radiologist labels"):
        chexpert_report.chexpert_report(frame.drop(columns=["chexpert_gold"]), ChexpertOptions(labels="gold"))
    with pytest.raises(ValueError, match="must be 1, 0, -1 or blank"):
        chexpert_report.apply_label_policy(np.array([2.0]))


def test_has_finding_answers_any_yes_per_study_and_consistency():
    frame, gold, _, _ = _studies(n=8)
    # edema label per study after the policy; make them definite for the planted studies
    labels = [1.0, 0.0, 1.0, 0.0]
    for i, y in enumerate(labels):
        g = list(frame.at[i, "chexpert_gold"])
        g[EDEMA] = y
        frame.at[i, "chexpert_gold"] = g
    extra = []
    # study 0: two questions, one answered yes -> predicted positive; reference answers agree
    # study 1: one question answered yes (label 0) -> false positive; reference answer "no" agrees
    # study 2: answered no (label 1) -> false negative; reference answer "no" disagrees
    # study 3: answered no (label 0) -> true negative; reference "no" agrees
    plan = [(0, 0, 1, 0.2), (0, 1, 1, 0.8), (1, 1, 0, 0.7), (2, 0, 0, 0.1), (3, 0, 0, 0.3)]
    for j, (i, lp, lt, sc) in enumerate(plan):
        extra.append({"question_id": f"h{j}", "study_id": 5000 + i, "subject_id": 900, "question_type": "D02_has_finding",
                      "chexpert_gold": frame.at[i, "chexpert_gold"], "chexpert_auto": None,
                      "chexpert_prob": frame.at[i, "chexpert_prob"], "finding_chexpert": ["Edema"],
                      "label_true": lt, "label_pred": lp, "score": sc})
    frame = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    report = chexpert_report.chexpert_report(frame, ChexpertOptions(n_resamples=100))
    qa = report["qa_has_finding"]
    assert list(qa) == ["Edema"]
    e = qa["Edema"]
    assert e["n_studies_with_question"] == 4 and e["n"] == 4
    m = e["metrics"]
    assert (m["sensitivity"]["value"], m["specificity"]["value"], m["accuracy"]["value"]) == (0.5, 0.5, 0.5)
    assert m["auroc"]["value"] == pytest.approx(skm.roc_auc_score([1, 0, 1, 0], [0.8, 0.7, 0.1, 0.3]))
    cons = report["consistency"]["Edema"]
    # reference answers vs label: h0 (1 vs 1), h1 (1 vs 1), h2 (0 vs 0), h3 (0 vs 1), h4 (0 vs 0) -> 4/5
    assert cons["reference"]["value"] == pytest.approx(4 / 5) and cons["reference"]["n"] == 5
    # model answers: h0 0 vs 1, h1 1 vs 1, h2 1 vs 0, h3 0 vs 1, h4 0 vs 0 -> 2/5
    assert cons["predicted"]["value"] == pytest.approx(2 / 5)
    assert report["consistency"]["all"]["predicted"]["n"] == 5


def test_chexpert_cli_writes_deterministic_files(tmp_path):
    from cxrbench.cli import main
    from cxrbench.io import atomic_write_parquet

    frame, *_ = _studies(n=30)
    atomic_write_parquet(tmp_path / "predictions.parquet", frame)
    assert main(["chexpert", str(tmp_path), "--n-resamples", "100"]) == 0
    first = {n: (tmp_path / f"chexpert_report.{n}").read_bytes() for n in ("json", "csv", "md")}
    assert main(["chexpert", str(tmp_path), "--n-resamples", "100"]) == 0
    assert first == {n: (tmp_path / f"chexpert_report.{n}").read_bytes() for n in ("json", "csv", "md")}
    report = json.loads(first["json"])
    assert report["provenance"]["command"] == "cxrbench chexpert"
    assert main(["chexpert", str(tmp_path / "nothing")]) == 1


def test_calibration_matches_torchmetrics():
    torch = pytest.importorskip("torch")
    from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

    rng = np.random.default_rng(3)
    n = 400
    p = rng.uniform(0.01, 0.99, n)
    y = (rng.uniform(size=n) < p ** 1.5).astype(int)              # miscalibrated on purpose
    heads = np.where(np.arange(n) < 300, "binary", "severity")
    frame = pd.DataFrame({"question_id": [f"q{i}" for i in range(n)], "study_id": np.arange(n) // 3, "head": heads,
                          "score": p, "label_true": y, "label_pred": (p >= 0.5).astype(int),
                          "confidence": np.maximum(p, 1 - p), "correct": False})
    summary = calibration_report.calibration_summary(frame, n_resamples=200)
    b = heads == "binary"
    probs = torch.tensor(np.stack([1 - p, p], 1)[b])
    expected_top = multiclass_calibration_error(probs, torch.tensor(y[b]), num_classes=2, n_bins=15).item()
    expected_pos = binary_calibration_error(torch.tensor(p[b]), torch.tensor(y[b]), n_bins=15).item()
    got = summary["by_head"]["binary"]
    assert got["top_label"]["ece"]["value"] == pytest.approx(expected_top, abs=1e-6)
    assert got["positive_class"]["ece"]["value"] == pytest.approx(expected_pos, abs=1e-6)
    assert got["top_label"]["ece"]["n"] == 300
    lo, hi = got["top_label"]["ece"]["ci"]
    assert lo < got["top_label"]["ece"]["value"] < hi
    assert sum(r["count"] for r in got["top_label"]["reliability"]) == 300
    assert "positive_class" not in summary["by_head"]["severity"]
    assert summary["overall"]["top_label"]["ece"]["n"] == n


def test_text_rows_fall_back_to_exact_match_correctness():
    frame = pd.DataFrame({"label_true": [None, 1, None], "label_pred": [None, 0, 2], "correct": [True, True, False]})
    assert calibration_report.head_correct(frame).tolist() == [1.0, 0.0, 0.0]


# ------------------------------------------------------------------------------ run strata
def _args(extra=()):
    p = argparse.ArgumentParser()
    evaluate_cmd.add_arguments(p)
    return evaluate_cmd.options_from(p.parse_args(["ckpt", "--index", "idx", "--n-resamples", "300", "--no-progress", "--n-overlays", "2",
                         "--skip", "bertscore_f1", "clinical_term_f1", "semantic_type_accuracy",
                         "graph_entity_recall", *extra]))


def _planted(n=160):
    """Predictions right exactly on the has_finding questions, wrong on every other type."""
    frame = pipeline._attention_postprocess(FakePredictor().predict(qa_frame(n, n_studies=40)))
    right = frame["question_type"] == "D02_has_finding"
    wrong = {"D03_where_is_finding": "heart", "D04_how_severe_is_finding": "severe",
             "B01_describe_all": "large right pleural effusion"}
    frame["prediction"] = [a if r else wrong[q] for a, r, q in zip(frame["answer"], right, frame["question_type"])]
    frame["label_pred"] = [lt if r or pd.isna(lt) else {"region": 2, "severity": 3}[h]
                           for lt, r, h in zip(frame["label_true"], right, frame["head"])]
    frame["regions_pred"] = [["left lung"] if r else ["heart"] for r in right]
    frame["boxes_pred"] = [b if r or not len(b) else [[400.0, 400.0, 500.0, 500.0]] for b, r in
                           zip(frame["boxes_true"], right)]
    frame["region_category"] = np.where(right, "pleural", "cardiac")
    frame["chexpert_auto"] = frame["chexpert_true"]
    frame["finding_chexpert"] = [[] for _ in range(n)]
    return frame


def test_every_stratum_reports_the_planted_pattern(tmp_path):
    frame = _planted()
    metrics = pipeline.write_run(OutputDir.claim(tmp_path, "cxrbench evaluate"), frame, _args(),
                                 {"split": "test", "ablation_condition": "full"},
                                 image_root=None)
    n_type = int((frame["question_type"] == "D02_has_finding").sum())
    by_type = metrics["by_question_type"]
    assert set(by_type) == set(frame["question_type"])
    for qt, block in by_type.items():
        em = block["exact_match"]
        expected = 1.0 if qt == "D02_has_finding" else 0.0
        assert (em["value"], em["ci"], em["n"]) == (expected, [expected, expected], n_type)
    assert metrics["overall"]["exact_match"]["value"] == pytest.approx(0.25)
    lo, hi = metrics["overall"]["exact_match"]["ci"]
    assert lo < 0.25 < hi
    assert metrics["by_head"]["binary"]["exact_match"]["value"] == 1.0
    assert metrics["by_head"]["binary"]["mcc"]["value"] == 1.0
    assert metrics["by_head"]["region"]["exact_match"]["value"] == 0.0
    assert metrics["by_head"]["region"]["iou"]["value"] == 0.0
    assert metrics["by_region_category"]["pleural"]["exact_match"]["value"] == 1.0
    assert metrics["by_region_category"]["cardiac"]["exact_match"]["value"] == 0.0
    assert metrics["provenance"]["command"] == "cxrbench evaluate"
    assert metrics["provenance"]["ablation_condition"] == "full"
    # the files of the run dir
    pred = pd.read_parquet(tmp_path / "predictions.parquet")
    assert len(pred) == len(frame) and not set(pipeline.RAW_ATTENTION) & set(pred.columns)
    assert {"plausibility", "attention_entropy", "exact_match", "correct"} <= set(pred.columns)
    assert pred.loc[pred["question_type"] == "D02_has_finding", "correct"].all()
    assert metrics["overall"]["attention_entropy"]["n"] == len(frame)
    cal = json.loads((tmp_path / "calibration.json").read_text())
    assert cal["by_head"]["binary"]["top_label"]["ece"]["n"] == n_type
    summary = json.loads((tmp_path / "attention" / "summary.json").read_text())
    assert summary["sources"]["text_visual"]["D03_where_is_finding"]["n_with_roi"] == n_type
    assert len(summary["overlays"]) == 2
    assert (tmp_path / "chexpert_report.md").exists()


def test_write_run_is_byte_identical(tmp_path):
    frame = _planted(80)
    for d in ("a", "b"):
        pipeline.write_run(OutputDir.claim(tmp_path / d, "cxrbench evaluate"), frame, _args(), {"split": "test"},
                           image_root=None)
    for name in ("predictions.parquet", "metrics.json", "calibration.json", "chexpert_report.json",
                 "chexpert_report.csv", "attention/summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_finding_chexpert_maps_has_finding_questions():
    qa = pd.DataFrame({"question_type": ["D02_has_finding", "D02_has_finding", "D01_describe_finding",
                                         "D02_has_finding"],
                       "variables": ['{"finding": "pleural effusion"}', None, '{"finding": "edema"}', "{}"],
                       "answer_entities": [[], ["pneumothorax", "rib fracture"], ["edema"], ["granuloma"]]})
    assert inputs.finding_chexpert(qa) == [["Pleural Effusion"], ["Fracture", "Pneumothorax"], [], []]


def test_bad_index_directory(tmp_path):
    with pytest.raises(DataError, match="not an index directory"):
        inputs.load_split(tmp_path, "test")
