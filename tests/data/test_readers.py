"""Reader validation (one test per bad input, each naming file and record) and tolerance counts."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cxrbench import questions
from cxrbench.cli import main as cli_main
from cxrbench.data import layout as L
from cxrbench.data.chexpert import read_labels
from cxrbench.data.index import build_index
from cxrbench.data.layout import resolve_roots
from cxrbench.data.readers import StudyJson
from cxrbench.errors import DataError
from tests.data.helpers import clone, edit_json, first_member, rewrite_member


def index_error(root: Path, tmp_path: Path) -> str:
    with pytest.raises(DataError) as err:
        build_index(resolve_roots(root), tmp_path / "idx", progress=False)
    return str(err.value)


def answer_with_box(doc: dict) -> tuple[dict, dict, str]:
    for q in doc["questions"]:
        for a in q["answers"]:
            for iid, loc in a["localization"].items():
                if loc["bboxes"]:
                    return q, a, iid
    raise AssertionError("no answer with a box")


def test_malformed_json_names_file_and_position(synth_root, tmp_path):
    root = clone(synth_root, tmp_path)
    member = first_member(root, L.QA_ZIP, "qa")
    rewrite_member(root / L.QBA_DIR / L.QA_ZIP, member, lambda b: b[:200])
    msg = index_error(root, tmp_path)
    assert f"qa.zip:{member}" in msg and "record char" in msg and "malformed JSON" in msg


def test_missing_answer_field_names_question_and_answer(synth_root, tmp_path):
    root = clone(synth_root, tmp_path)
    member = first_member(root, L.QA_ZIP, "qa")
    seen = {}

    def drop_text(doc):
        q = doc["questions"][3]
        seen["q"], seen["a"] = q["question_id"], q["answers"][0]["answer_id"]
        del q["answers"][0]["text"]

    rewrite_member(root / L.QBA_DIR / L.QA_ZIP, member, edit_json(drop_text))
    msg = index_error(root, tmp_path)
    assert member in msg and f"question {seen['q']}, answer {seen['a']}" in msg and "missing required field 'text'" in msg


def test_missing_observation_field_names_observation(synth_root, tmp_path):
    root = clone(synth_root, tmp_path)
    member = first_member(root, L.SCENE_ZIP, "scene_graph")
    rewrite_member(root / L.QBA_DIR / L.SCENE_ZIP, member, edit_json(lambda d: d["observations"]["O02"].pop("obs_entities")))
    msg = index_error(root, tmp_path)
    assert member in msg and "observation O02" in msg and "missing required field 'obs_entities'" in msg


def test_unknown_split_value_names_row(synth_root, tmp_path):
    root = clone(synth_root, tmp_path)
    path = root / L.JPG_DIR / L.SPLIT_CSV
    df = pd.read_csv(path)
    df.loc[4, "split"] = "training"
    df.to_csv(path, index=False, compression="gzip")
    msg = index_error(root, tmp_path)
    assert str(path) in msg and f"row 6 (dicom_id {df.dicom_id[4]})" in msg and "unknown split value 'training'" in msg


@pytest.mark.parametrize("how,problem", [("x", "x2 < x1"), ("y", "y2 < y1"), ("out", "lies outside the 128x128 image")])
def test_bad_answer_box_names_question_answer_and_image(synth_root, tmp_path, how, problem):
    root = clone(synth_root, tmp_path)
    member = first_member(root, L.QA_ZIP, "qa")
    seen = {}

    def corrupt(doc):
        q, a, iid = answer_with_box(doc)
        b = a["localization"][iid]["bboxes"][0]
        if how == "x":
            b[0], b[2] = b[2] + 5, b[0]
        elif how == "y":
            b[1], b[3] = b[3] + 5, b[1]
        else:
            b[2] = 128 + 40
        seen.update(q=q["question_id"], a=a["answer_id"], i=iid)

    rewrite_member(root / L.QBA_DIR / L.QA_ZIP, member, edit_json(corrupt))
    msg = index_error(root, tmp_path)
    assert member in msg and f"question {seen['q']}, answer {seen['a']}, image {seen['i']}" in msg and problem in msg


def test_bad_scene_graph_box_names_observation(synth_root, tmp_path):
    root = clone(synth_root, tmp_path)
    member = first_member(root, L.SCENE_ZIP, "scene_graph")

    def corrupt(doc):
        o = doc["observations"]["O01"]
        iid, loc = next((k, v) for k, v in o["localization"].items() if v["bboxes"])
        loc["bboxes"][0] = [10.0, 50.0, 20.0, 40.0]

    rewrite_member(root / L.QBA_DIR / L.SCENE_ZIP, member, edit_json(corrupt))
    msg = index_error(root, tmp_path)
    assert member in msg and "observation O01, image" in msg and "y2 < y1" in msg


def test_bad_chexpert_value_names_row(synth_root, tmp_path):
    path = tmp_path / "chexpert.csv.gz"
    src = synth_root / L.JPG_DIR / L.CHEXPERT_CSV
    df = pd.read_csv(src)
    df.loc[2, "Edema"] = 2.0
    df.to_csv(path, index=False, compression="gzip")
    with pytest.raises(DataError) as err:
        read_labels(path)
    assert str(path) in str(err.value) and f"row 4 (study_id {df.study_id[2]})" in str(err.value) and "Edema = 2.0" in str(err.value)


def test_quality_code_without_mapping_names_question(synth_root, tmp_path):
    root = clone(synth_root, tmp_path)
    path = root / L.QBA_DIR / "metadata" / "question_metadata.parquet"
    t = pq.read_table(path).to_pandas().reset_index()          # the ids may be the pandas index
    col = next(c for c in t.columns if L.column_meaning(c) == "quality")
    bad = 9 if pd.api.types.is_integer_dtype(t[col]) else "9_"  # 9 on the 0-6 scale, in either spelling
    t.loc[0, col] = bad
    t.to_parquet(path, index=False)
    msg = index_error(root, tmp_path)
    assert str(path) in msg and f"study {t.study_id[0]}, question {t.question_id[0]}" in msg
    assert f"quality value {bad!r} is not a rating" in msg and "np." not in msg


def test_cli_reports_data_errors_in_one_line_with_exit_code_1(synth_root, tmp_path, capsys):
    root = clone(synth_root, tmp_path)
    path = root / L.JPG_DIR / L.SPLIT_CSV
    df = pd.read_csv(path)
    df.loc[0, "split"] = "val"
    df.to_csv(path, index=False, compression="gzip")
    assert cli_main(["index", str(root), "--out", str(tmp_path / "idx"), "--quiet", "--workers", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cxrbench index: error:") and "unknown split value 'val'" in err[0]
    assert not (tmp_path / "idx" / "qa.parquet").exists() and not list((tmp_path / "idx").glob(".staging-*"))


# ----------------------------------------------------------------------------------------------
# tolerated problems are counted


def test_missing_boxes_and_unknown_names_are_counted(synth_root, synth_index, tmp_path):
    base = json.loads((synth_index / "manifest.json").read_text())["tolerance"]
    studies = pq.read_table(synth_index / "studies.parquet").to_pandas()
    row = studies[studies.image_id.notna()].iloc[0]
    root = clone(synth_root, tmp_path)
    folders = StudyJson(root / L.QBA_DIR)
    member = folders.top_folder("qa") + L.study_member(int(row.subject_id), int(row.study_id), "qa")

    def edit(doc):
        for q in doc["questions"]:
            main = q["answers"][0]
            loc = main["localization"].get(row.image_id)
            if questions.normalize_question_type(q["question_type"], q["question_strategy"]) == "D03_where_is_finding" or (
                    loc and loc["bboxes"] and main["regions"]):
                loc["bboxes"] = []
                main["regions"] = [*main["regions"], "left elbow"]
                main["obs_entities"] = [*main["obs_entities"], "unicorn sign"]
                return

    rewrite_member(root / L.QBA_DIR / L.QA_ZIP, member, edit_json(edit))
    sg_member = folders.top_folder("scene_graph") + L.study_member(int(row.subject_id), int(row.study_id), "scene_graph")

    def drop_obs_box(doc):
        o = next(o for o in doc["observations"].values() if o["localization"][row.image_id]["bboxes"])
        o["localization"][row.image_id]["bboxes"] = []

    rewrite_member(root / L.QBA_DIR / L.SCENE_ZIP, sg_member, edit_json(drop_obs_box))
    m = build_index(resolve_roots(root), tmp_path / "idx", progress=False)
    tol = m["tolerance"]
    assert tol.get("answers_missing_box", 0) == base.get("answers_missing_box", 0) + 1
    assert tol.get("observation_nodes_missing_box", 0) == base.get("observation_nodes_missing_box", 0) + 1
    assert tol["unknown_regions"]["top"] == {"left elbow": 1} and tol["unknown_entities"]["top"] == {"unicorn sign": 1}
    qa = pq.read_table(tmp_path / "idx" / "qa.parquet").to_pandas()
    hit = qa[qa.answer_regions.apply(lambda r: "left elbow" in list(r))]
    assert len(hit) == 1 and hit.answer_missing_box.iloc[0] and len(hit.answer_bboxes.iloc[0]) == 0


def test_extracted_folders_and_separate_release_roots_give_the_same_index(synth_root, synth_index, tmp_path):
    root = clone(synth_root, tmp_path)
    qba = root / L.QBA_DIR
    for name in ("qa", "scene_data"):
        with zipfile.ZipFile(qba / f"{name}.zip") as z:
            z.extractall(qba if StudyJson(qba).top_folder("qa" if name == "qa" else "scene_graph") else qba / name)
        (qba / f"{name}.zip").unlink()
    # PhysioNet's layout: physionet.org/files/<name>/<version>/
    phys = tmp_path / "physionet.org" / "files"
    (phys / "mimic-cxr-jpg").mkdir(parents=True)
    (phys / "mimic-ext-cxr-qba").mkdir(parents=True)
    (root / L.JPG_DIR).rename(phys / "mimic-cxr-jpg" / "2.1.0")
    qba.rename(phys / "mimic-ext-cxr-qba" / "1.0.0")
    roots = resolve_roots(tmp_path)
    assert roots.qba.name == "1.0.0" and roots.jpg.name == "2.1.0"
    m = build_index(roots, tmp_path / "idx", progress=False)
    want = json.loads((synth_index / "manifest.json").read_text())
    assert m["content_hash"] == want["content_hash"]
    separate = resolve_roots(None, jpg=phys / "mimic-cxr-jpg" / "2.1.0", qba=phys / "mimic-ext-cxr-qba" / "1.0.0")
    assert separate == roots
