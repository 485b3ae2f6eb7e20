"""The synthetic generator: determinism, release layout (names, columns, keys), and its model of the data.

Tests of file names, columns and JSON keys read the legacy spelling (``synth_root_legacy``); the
real spelling and the equality of the two are tested in test_encodings.py."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cxrbench import questions, vocab
from cxrbench.data import layout as L
from cxrbench.data.quality import QualityDecoder, load_mapping, min_grade
from cxrbench.data.synth.generate import generate


def _tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_tree_whatever_the_workers(tmp_path):
    generate(tmp_path / "a", 3, seed=7, image_size=64, workers=1, progress=False)
    generate(tmp_path / "b", 3, seed=7, image_size=64, workers=2, progress=False)
    generate(tmp_path / "c", 3, seed=8, image_size=64, workers=1, progress=False)
    a, b, c = (_tree_hashes(tmp_path / x) for x in "abc")
    assert len(a) > 30 and a == b
    assert a != c


JPG_FILES = (L.METADATA_CSV, L.SPLIT_CSV, L.CHEXPERT_CSV, L.NEGBIO_CSV, L.GOLD_CSV, L.IMAGE_FILENAMES)


def test_release_file_names(synth_root_legacy):
    jpg, qba = synth_root_legacy / "mimic-cxr-jpg", synth_root_legacy / "mimic-ext-cxr-qba"
    for name in ("mimic-cxr-2.0.0-metadata.csv.gz", "mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-chexpert.csv.gz",
                 "mimic-cxr-2.0.0-negbio.csv.gz", "mimic-cxr-2.1.0-test-set-labeled.csv", "IMAGE_FILENAMES"):
        assert (jpg / name).is_file(), name
    for t in ("patient", "study", "image", "question", "question_image", "answer", "answer_image"):
        for ext in ("csv.gz", "parquet"):
            assert (qba / "metadata" / f"{t}_metadata.{ext}").is_file()
    for name in ("metadata/dataset_info.json", "scene_data.zip", "qa.zip", "quality_mappings.csv"):
        assert (qba / name).is_file(), name
    for export in ("A_frontal", "B_frontal"):
        assert (qba / "exports" / export / "qa.zip").is_file() and (qba / "exports" / export / "scene_data.zip").is_file()
        assert (qba / "exports" / export / "metadata" / "question_metadata.parquet").is_file()
    for sub in ("Ap", "App"):
        assert (qba / "exports" / "A_frontal" / "metadata" / sub / "question_metadata.csv.gz").is_file()
    images = (jpg / "IMAGE_FILENAMES").read_text().split()
    assert images and all(re.fullmatch(r"files/p1\d/p1\d{7}/s5\d{7}/[0-9a-f]{8}(-[0-9a-f]{8}){4}\.jpg", p) for p in images)
    assert all((jpg / p).is_file() for p in images)
    with zipfile.ZipFile(qba / "scene_data.zip") as z:
        names = z.namelist()
    assert names == sorted(names)
    assert all(re.fullmatch(r"p1\d/p1\d{7}/s5\d{7}\.(scene_graph|metadata)\.json", n) for n in names)
    with zipfile.ZipFile(qba / "qa.zip") as z:
        assert all(re.fullmatch(r"p1\d/p1\d{7}/s5\d{7}\.qa\.json", n) for n in z.namelist())
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in z.infolist())


def test_release_columns_and_values(synth_root_legacy):
    jpg, qba = synth_root_legacy / "mimic-cxr-jpg", synth_root_legacy / "mimic-ext-cxr-qba"
    meta = pd.read_csv(jpg / L.METADATA_CSV)
    assert tuple(meta.columns) == ("dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition",
                                   "Rows", "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                                   "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning")
    assert set(meta.ViewPosition) == {"PA", "AP", "LATERAL"} and (meta.Rows == 128).all() and (meta.Columns == 128).all()
    assert meta.groupby("study_id").size().between(1, 3).all()
    split = pd.read_csv(jpg / L.SPLIT_CSV)
    assert tuple(split.columns) == ("dicom_id", "study_id", "subject_id", "split")
    assert set(split.split) == {"train", "validate", "test"}
    assert split.groupby("subject_id").split.nunique().max() == 1  # patient-level split
    for name in (L.CHEXPERT_CSV, L.NEGBIO_CSV):
        with gzip.open(jpg / name, "rt") as fh:
            header = fh.readline().strip().split(",")
            body = fh.read()
        assert header == ["subject_id", "study_id", *vocab.CHEXPERT_LABELS]
        cells = {c for line in body.splitlines() for c in line.split(",")[2:]}
        assert cells <= {"1.0", "0.0", "-1.0", ""} and {"1.0", "0.0", ""} <= cells
    gold = pd.read_csv(jpg / L.GOLD_CSV)
    assert list(gold.columns) == ["study_id", *[("Airspace Opacity" if c == "Lung Opacity" else c) for c in vocab.CHEXPERT_LABELS]]
    test_studies = set(split[split.split == "test"].study_id)
    assert set(gold.study_id) == test_studies and len(test_studies) >= 5
    for t, cols in L.QBA_COLUMNS.items():
        p = pq.read_table(qba / "metadata" / f"{t}_metadata.parquet").to_pandas()
        c = pd.read_csv(qba / "metadata" / f"{t}_metadata.csv.gz")
        assert tuple(p.columns) == cols and tuple(c.columns) == cols and len(p) == len(c) > 0
    info = json.loads((qba / "metadata" / "dataset_info.json").read_text())
    assert 280 <= len(info["regions"]) <= 340 and 220 <= len(info["finding_entities"]) <= 250
    for key in ("categories", "subcategories", "answer_types", "modifier_types"):
        assert info[key]
    assert {"left lung", "right lower lung lobe", "cardiac silhouette", "left costophrenic angle"} <= set(info["regions"])
    assert {"pleural effusion", "cardiomegaly", "pneumothorax", "endotracheal tube"} <= set(info["finding_entities"])


SCENE_KEYS = ("patient_id", "study_id", "sentences", "top_level_obs_ids", "observations", "indication", "regions",
              "located_at_relations", "obs_relations", "obs_sent_relations", "region_region_relations", "study_quality",
              "study_img_localization_quality")
OBS_KEYS = ("obs_id", "name", "summary_sentence", "child_type", "child_level", "regions", "non_resolved_regions",
            "laterality", "default_regions", "obs_entities", "obs_entities_parents", "non_resolved_obs_entities",
            "obs_categories", "obs_subcategories", "probability", "certainty", "positiveness", "modifiers", "changes",
            "change_sentence", "from_report", "obs_quality", "localization")
LOC_KEYS = ("image_id", "localization_reference_ids", "bboxes", "instance_mask_ids", "missing_localization", "is_fallback",
            "localization_quality")
QUESTION_KEYS = ("question_id", "question_type", "question_strategy", "variables", "obs_ids", "contains_report_answers",
                 "contains_template_answers", "extraction_quality", "question_img_localization_quality", "question",
                 "answers", "question_quality")
ANSWER_KEYS = ("answer_id", "answer_type", "answer_level", "text", "name_tag", "laterality", "regions", "obs_entities",
               "obs_entities_parents", "obs_categories", "obs_subcategories", "certainty", "positiveness", "modifiers",
               "localization", "sub_answers", "from_report", "extraction_quality", "answer_quality")


def _docs(synth_root, zip_name, kind):
    with zipfile.ZipFile(synth_root / "mimic-ext-cxr-qba" / zip_name) as z:
        for n in z.namelist():
            if n.endswith(f".{kind}.json"):
                yield json.loads(z.read(n))


def test_scene_graph_and_qa_keys(synth_root_legacy):
    n_children = 0
    for sg in _docs(synth_root_legacy, "scene_data.zip", "scene_graph"):
        assert set(SCENE_KEYS) <= set(sg)
        assert set(sg["observations"]) >= set(sg["top_level_obs_ids"])
        for o in sg["observations"].values():
            assert set(OBS_KEYS) <= set(o)
            assert set(o["modifiers"]) == {"temporal", "severity", "texture", "spread"}
            n_children += o["child_level"] > 0
            for loc in o["localization"].values():
                assert set(LOC_KEYS) <= set(loc)
        if sg["indication"] is not None:
            assert sg["indication"]["answer_for_indication"]["obs_id"] == "OIND"
        assert {r["relation_type"] for r in sg["region_region_relations"]} <= {"sub_region", "left", "right", "above", "below", "adjacent"}
    assert n_children > 10
    seen_types = set()
    for doc in _docs(synth_root_legacy, "qa.zip", "qa"):
        assert re.fullmatch(r"p1\d{7}", doc["patient_id"]) and re.fullmatch(r"s5\d{7}", doc["study_id"])
        assert 30 <= len(doc["questions"]) <= 70
        for q in doc["questions"]:
            assert set(QUESTION_KEYS) <= set(q)
            seen_types.add(questions.normalize_question_type(q["question_type"], q["question_strategy"]))
            stack = list(q["answers"])
            assert any(a["answer_type"] == "main_answer" for a in stack)
            while stack:
                a = stack.pop()
                assert set(ANSWER_KEYS) <= set(a)
                assert a["answer_type"] in ("main_answer", "details", "related_information")
                stack.extend(a["sub_answers"])
    assert seen_types == {q.code for q in questions.QUESTION_TYPES}


def test_yes_no_and_severity_answers(synth_root_legacy):
    for doc in _docs(synth_root_legacy, "qa.zip", "qa"):
        for q in doc["questions"]:
            main = [a for a in q["answers"] if a["answer_type"] == "main_answer"]
            if q["question_type"] in ("is_abnormal", "is_normal", "has_finding", "has_device", "has_devices",
                                      "is_abnormal_region", "is_normal_region", "has_region_device", "has_imaging_artifacts"):
                assert main[0]["text"].split(",")[0] in ("Yes", "No")
            if q["question_type"] == "how_severe_is_finding" and main[0]["positiveness"] == "pos":
                sev = [v for k, v in main[0]["modifiers"] if k == "severity"]
                assert sev and all(s in main[0]["text"] for s in sev)
            if q["question_type"] == "where_is_finding" and main[0]["positiveness"] == "pos":
                assert main[0]["regions"] and all(r in main[0]["text"] for r in main[0]["regions"])


def test_overall_quality_is_the_minimum_of_scene_graph_and_answers(synth_root_legacy):
    qba = synth_root_legacy / "mimic-ext-cxr-qba"
    mapping, note = load_mapping(qba / "quality_mappings.csv")
    assert note is None
    mapping = QualityDecoder(mapping)
    qmeta = pd.read_parquet(qba / "metadata" / "question_metadata.parquet").set_index("question_id")["quality"]
    smeta = pd.read_parquet(qba / "metadata" / "study_metadata.parquet").set_index("study_id")["quality"]
    n = 0
    for doc in _docs(synth_root_legacy, "qa.zip", "qa"):
        study = mapping.to_grade(int(smeta[doc["study_id"]]))
        for q in doc["questions"]:
            grades = [study, mapping.to_grade(q["question_quality"])]
            stack = list(q["answers"])
            while stack:
                a = stack.pop()
                grades.append(mapping.to_grade(a["answer_quality"]))
                stack.extend(a["sub_answers"])
            want = "unrated" if q["question_quality"]["rating"] == 0 else min_grade(grades)
            assert mapping.to_grade(int(qmeta[q["question_id"]])) == want
            n += 1
    assert n > 1000


def test_exports_are_quality_and_frontal_subsets(synth_root_legacy):
    qba = synth_root_legacy / "mimic-ext-cxr-qba"
    full = pd.read_parquet(qba / "metadata" / "question_metadata.parquet")
    images = pd.read_parquet(qba / "metadata" / "image_metadata.parquet")
    sets = {}
    for export, threshold in (("A_frontal", 4), ("B_frontal", 3)):
        q = pd.read_parquet(qba / "exports" / export / "metadata" / "question_metadata.parquet")
        assert len(q) and (q.quality >= threshold).all()
        img = pd.read_parquet(qba / "exports" / export / "metadata" / "image_metadata.parquet")
        assert set(img.view_position) <= {"PA", "AP"}
        frontal_studies = set(images[images.view_position.isin(["PA", "AP"])].study_id)
        want = full[(full.quality >= threshold) & full.study_id.isin(frontal_studies)]
        assert set(q.question_id) == set(want.question_id)
        sets[export] = set(q.question_id)
    assert sets["A_frontal"] < sets["B_frontal"]
    app = pd.read_parquet(qba / "exports" / "A_frontal" / "metadata" / "App" / "question_metadata.parquet")
    assert (app.quality == 6).all() and set(app.question_id) < sets["A_frontal"]


def test_box_noise_and_label_noise_are_recorded(synth_root):
    truth = synth_root / "synthetic_truth"
    boxes = pd.read_parquet(truth / "boxes.parquet")
    rates = boxes.noise.value_counts(normalize=True)
    assert 0.03 < rates.get("displaced", 0) < 0.09
    assert 0.0 < rates.get("missing", 0) + rates.get("fallback", 0) < 0.03
    disp = boxes[boxes.noise == "displaced"]
    assert all(list(a) != list(b) for a, b in zip(disp.clean_bbox, disp.bbox))
    labels = pd.read_parquet(truth / "chexpert_noise.parquet")
    assert {"labeler_miss", "negation_error"} & set(labels.reason_chexpert.dropna())
    info = json.loads((truth / "generator.json").read_text())
    assert info["seed"] == 0 and info["counts"]["studies"] == len(pd.read_parquet(
        synth_root / "mimic-ext-cxr-qba" / "metadata" / "study_metadata.parquet"))


def test_chexpert_labels_mostly_agree_with_the_scene_graph(synth_root):
    noise = pd.read_parquet(synth_root / "synthetic_truth" / "chexpert_noise.parquet")
    cx = pd.read_csv(synth_root / "mimic-cxr-jpg" / L.CHEXPERT_CSV)
    n_cells = cx.shape[0] * 13
    disagree = noise[(noise.label != "No Finding") & noise.reason_chexpert.notna() & (noise.reason_chexpert != "not_labelled")]
    assert 0 < len(disagree) / n_cells < 0.1


@pytest.mark.parametrize("kind,region,side", [
    ("consolidation", "left lower lung zone", "left"), ("effusion", "right lung base", "right"),
    ("pneumothorax", "left upper lung zone", "left"), ("atelectasis", "right lower lung zone", "right"),
    ("nodule", "right upper lung zone", "right"), ("edema", "lungs", None), ("ett", "trachea", None),
    ("pacemaker", "left chest wall", "left"),
])
def test_findings_are_drawn_inside_their_box_and_grow_with_severity(kind, region, side):
    """Render with and without the finding: the change lies (almost) all inside the region's
    box, and a severe finding changes more pixels than a mild one."""
    from cxrbench.data.synth.anatomy import FrontalAnatomy, Pose, Traits, frontal_region_boxes
    from cxrbench.data.synth.render import Draw, render_frontal

    anat = FrontalAnatomy(Traits())
    box = frontal_region_boxes(anat)[region]
    pose = Pose(scale=1.0, theta=0.02, tx=0.01, ty=-0.01)

    def img(draws):
        return render_frontal(anat, pose, draws, 128, np.random.default_rng(1), np.random.default_rng(2)).astype(float)

    base = img([])
    diffs = {}
    for sev in ((1, 3) if kind not in ("nodule", "ett", "pacemaker") else (0,)):
        d = np.abs(img([Draw(kind, box, side, sev)]) - base)
        x1, y1, x2, y2 = pose.box(box, 128)
        inside = d[int(y1):int(np.ceil(y2)) + 1, int(x1):int(np.ceil(x2)) + 1].sum()
        assert d.sum() > 50, "the finding must change the picture"
        # a pacemaker's leads run to the heart: they belong to its child observation's regions
        assert inside / d.sum() > (0.85 if kind != "pacemaker" else 0.5), (kind, sev, inside / d.sum())
        diffs[sev] = d.sum()
    if 3 in diffs:
        assert diffs[3] > 1.3 * diffs[1]


def test_cardiomegaly_widens_the_heart_box_beyond_half_the_thorax():
    from dataclasses import replace

    from cxrbench.data.synth.anatomy import FrontalAnatomy, Modifiers, Traits, frontal_region_boxes

    def ctr(scale):
        b = frontal_region_boxes(FrontalAnatomy(Traits(), Modifiers(heart_scale=scale)))
        lungs = b["lungs"]
        return (b["heart"][2] - b["heart"][0]) / (lungs[2] - lungs[0])

    assert ctr(1.0) < 0.5 < ctr(1.2) < ctr(1.5)
    assert replace(Modifiers(), heart_scale=1.2).heart_scale == 1.2


def test_rerun_with_the_same_settings_is_a_no_op_and_other_settings_are_refused(synth_root):
    from cxrbench.data.synth.generate import generate
    from cxrbench.errors import CxrbenchError

    before = (synth_root / "mimic-ext-cxr-qba" / "qa.zip").stat().st_mtime_ns
    info = generate(synth_root, 16, seed=0, image_size=128, progress=False)
    assert info["up_to_date"] and (synth_root / "mimic-ext-cxr-qba" / "qa.zip").stat().st_mtime_ns == before
    with pytest.raises(CxrbenchError, match="other settings"):
        generate(synth_root, 17, seed=0, image_size=128, progress=False)


def test_synth_claims_its_output_folder(tmp_path, capsys):
    from cxrbench.cli import main as cli_main

    user = tmp_path / "mine"
    user.mkdir()
    (user / "thesis.tex").write_text("years of work")
    args = ["synth", str(user), "--patients", "1", "--image-size", "64", "--workers", "1", "--no-progress"]
    assert cli_main(args) == 1
    assert "not empty and not an output folder of 'cxrbench synth'" in capsys.readouterr().err
    assert sorted(p.name for p in user.iterdir()) == ["thesis.tex"]
    assert cli_main([*args, "--overwrite"]) == 0
    assert (user / "thesis.tex").read_text() == "years of work" and (user / "mimic-ext-cxr-qba" / "qa.zip").exists()
    assert not list(user.glob(".staging-*"))
    assert cli_main(args) == 0 and "up to date" in capsys.readouterr().out
