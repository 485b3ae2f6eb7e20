"""The hand-written root in the real releases' encodings (tests/fixtures/real_encoding, written
from real-release-evidence.md, not by the generator) indexes to the QA pairs, grades, types and
splits worked out by hand; and each encoding variant of a field reads the same."""

from __future__ import annotations

import json
import shutil
import zipfile

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cxrbench.data import layout as L
from cxrbench.data.index import build_index
from cxrbench.data.layout import column_meaning, resolve_roots, view_kind

PA = "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"
AP = "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab"

# (study_id, question_id, question_type, quality, split, answer_binary, answer_severity, answer_positiveness,
#  n_answers, number of boxes on the primary image), worked out by hand from the fixture's files
EXPECTED = [
    (50414267, "B01_describe_all_001", "B01_describe_all", "A", "train", -1, "mild", "mixed", 3, 3),
    (50414267, "B03_is_abnormal_001", "B03_is_abnormal", "A++", "train", 1, None, "pos", 2, 1),
    (50414267, "D04_how_severe_is_finding_001", "D04_how_severe_is_finding", "B", "train", -1, "mild", "pos", 1, 0),
    (50414267, "C03_is_abnormal_region_001", "C03_is_abnormal_region", "unrated", "train", 0, None, "neg", 1, 1),
    (53189527, "B01_describe_all_001", "B01_describe_all", "B", "train", -1, None, "neg", 1, 0),
    (53189527, "D02_has_finding_001", "D02_has_finding", "B", "train", 0, None, "neg", 1, 1),
    (57375967, "B01_describe_all_001", "B01_describe_all", "A", "test", -1, None, "neg", 1, 0),
    (57375967, "B03_is_abnormal_001", "B03_is_abnormal", "A", "test", 0, None, "neg", 1, 0),
]
COLUMNS = ["study_id", "question_id", "question_type", "quality", "split", "answer_binary", "answer_severity",
           "answer_positiveness", "n_answers"]


def _rows(index) -> list[tuple]:
    qa = pq.read_table(index / "qa.parquet").to_pandas()
    return [(*(r[c] if not (isinstance(r[c], float) and r[c] != r[c]) else None for c in COLUMNS), len(r["answer_bboxes"]))
            for _, r in qa.iterrows()]


def test_hand_written_real_encoding_indexes_to_the_expected_qa_pairs(real_encoding_root, tmp_path):
    roots = resolve_roots(real_encoding_root)
    m = build_index(roots, tmp_path / "idx", workers=2, chunk_size=1, progress=False)
    assert _rows(tmp_path / "idx") == EXPECTED
    qa = pq.read_table(tmp_path / "idx" / "qa.parquet").to_pandas()
    b01 = qa.iloc[0]
    assert b01["answer"] == "There is no focal consolidation. There is a small left pleural effusion."
    assert b01["answer_full"].endswith("There is a small left pleural effusion. There is blunting of the left costophrenic angle.")
    assert list(b01["answer_regions"]) == ["lungs", "left costophrenic angle"]
    assert list(b01["answer_entities"]) == ["consolidation", "pleural effusion"]
    # the QA-pair key: question_id exactly as released, recurring across studies, unique with study_id
    assert (qa["question_id"] == "B01_describe_all_001").sum() == 3
    assert not qa.duplicated(["study_id", "question_id"]).any()
    studies = pq.read_table(tmp_path / "idx" / "studies.parquet").to_pandas().set_index("study_id")
    assert studies.loc[50414267, "image_id"] == PA and studies.loc[50414267, "view"] == "PA"
    assert studies.loc[53189527, "image_id"] == AP and studies.loc[53189527, "view"] == "AP"
    assert pd.isna(studies.loc[57375967, "image_id"])  # lateral only
    assert studies["study_quality"].to_dict() == {50414267: "A++", 53189527: "B", 57375967: "A"}
    nodes = pq.read_table(tmp_path / "idx" / "nodes.parquet").to_pandas()
    assert sorted(zip(nodes.study_id, nodes.node_id)) == [(50414267, "O01"), (50414267, "O02"), (50414267, "left costophrenic angle"),
                                                          (50414267, "lungs"), (53189527, "O01")]
    lungs = nodes[(nodes.study_id == 50414267) & (nodes.node_id == "O01")].iloc[0]
    assert list(lungs["bbox"]) == [136.0, 370.0, 1610.0, 1678.0] and len(lungs["bboxes"]) == 2
    # an unknown mapping header is a counted note, never a crash
    assert m["tolerance"]["quality_mappings_not_used"] == 1
    assert any("header (column_name, encoded_value, meaning) not recognised" in n for n in m["notes"])
    assert m["tolerance"]["unknown_regions"]["count"] == 0 and m["tolerance"]["unknown_entities"]["count"] == 0
    # no absolute path in the manifest: the roots are relative to the index folder
    assert m["roots"] == {"mimic_cxr_jpg": "../physionet/physionet.org/files/mimic-cxr-jpg/2.1.0",
                          "mimic_ext_cxr_qba": "../physionet/physionet.org/files/mimic-ext-cxr-qba/1.0.0"}
    assert str(tmp_path) not in (tmp_path / "idx" / "manifest.json").read_text()


def test_grades_from_the_json_equal_those_of_the_metadata(real_encoding_root, tmp_path):
    """Without study and question metadata the grades come from the JSON: study_quality's
    extraction_rating, question_quality (a rating, or criteria only: release 3a) and every answer's
    answer_quality rating; the minimum equals the metadata's overall rating."""
    roots = resolve_roots(real_encoding_root)
    for table in ("study", "question"):
        (roots.qba / "metadata" / f"{table}_metadata.parquet").unlink()
    m = build_index(roots, tmp_path / "idx", progress=False)
    assert _rows(tmp_path / "idx") == EXPECTED
    assert "question_metadata not found: quality, type and strategy read from the JSON" in m["notes"]


def test_csv_gz_tables_read_like_parquet(real_encoding_root, tmp_path):
    roots = resolve_roots(real_encoding_root)
    want = build_index(roots, tmp_path / "a", progress=False)["content_hash"]
    for table in ("study", "question"):
        p = roots.qba / "metadata" / f"{table}_metadata.parquet"
        pd.read_parquet(p).reset_index().to_csv(p.with_name(f"{table}_metadata.csv.gz"), index=False)
        p.unlink()
    assert build_index(roots, tmp_path / "b", progress=False)["content_hash"] == want


def test_zip_members_with_or_without_a_top_folder_and_extracted_folders(real_encoding_root, tmp_path):
    roots = resolve_roots(real_encoding_root)
    want = build_index(roots, tmp_path / "a", progress=False)["content_hash"]
    for name in ("qa", "scene_data"):
        z = roots.qba / f"{name}.zip"
        with zipfile.ZipFile(z) as src:
            items = [(i.filename, src.read(i)) for i in src.infolist()]
        assert all(n.startswith(f"{name}/") for n, _ in items)
        with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as dst:
            for n, data in items:
                dst.writestr(n.removeprefix(f"{name}/"), data)
    assert build_index(roots, tmp_path / "b", progress=False)["content_hash"] == want
    for name in ("qa", "scene_data"):
        with zipfile.ZipFile(roots.qba / f"{name}.zip") as z:
            z.extractall(roots.qba / name)
        (roots.qba / f"{name}.zip").unlink()
    assert build_index(roots, tmp_path / "c", progress=False)["content_hash"] == want


def test_project_page_spellings_read_the_same(real_encoding_root, tmp_path):
    """The same study in the project page's spellings (criterion names region_quality / issue_level,
    observation modifiers as a dict, integer ratings, plain column names) gives the same rows."""
    roots = resolve_roots(real_encoding_root)
    want = build_index(roots, tmp_path / "a", progress=False)["content_hash"]
    from tests.data.helpers import rewrite_member

    def page_spelling(data: bytes) -> bytes:
        doc = json.loads(data)
        doc["study_quality"] = {"rating": 6, "region_quality": 4, "issue_level": 5}
        for o in doc["observations"].values():
            o["modifiers"] = {"severity": [v for k, v in o["modifiers"] if k == "severity"], "spread": []}
        return json.dumps(doc).encode()

    rewrite_member(roots.qba / L.SCENE_ZIP, "scene_data/p10/p10000032/s50414267.scene_graph.json", page_spelling)
    (roots.qba / "metadata" / "study_metadata.parquet").unlink()  # study grades from the scene graphs' study_quality
    p = roots.qba / "metadata" / "question_metadata.parquet"
    df = pd.read_parquet(p).reset_index()
    codes = {"0_": 0, "3_B": 3, "4_A": 4, "6_A++": 6}
    df = df.rename(columns={"question.question_type": "question_type", "question.question_strategy": "strategy"})
    df["quality"] = df.pop("question.quality.rating").map(codes)
    df.to_parquet(p, index=False)
    assert build_index(roots, tmp_path / "b", progress=False)["content_hash"] == want


@pytest.mark.parametrize("name,meaning", [
    ("study.quality.extraction_rating", "quality"), ("question.quality.rating", "quality"), ("quality", "quality"),
    ("question_quality.rating", "quality"), ("answer.quality.rating", "quality"), ("rating", "quality"),
    ("answer_img.quality.localization_quality", "quality.localization_quality"),
    ("localization_quality", "quality.localization_quality"),
    ("study.quality.region_extract_quality", "quality.region_quality"),
    ("img.view_position", "view_position"), ("ViewPosition", "view_position"), ("view_position", "view_position"),
    ("question.question_type", "question_type"), ("question.question_strategy", "question_strategy"),
    ("subject_id", "patient_id"), ("dicom_id", "image_id"), ("patient.total_studies", "total_studies"),
    ("answer_img.has_bboxes", "has_bboxes"), ("img.size", "size"), ("study.foo.bar", "foo.bar"),
])
def test_column_meaning(name, meaning):
    assert column_meaning(name) == meaning


def test_view_positions_in_both_spellings():
    assert [view_kind(v) for v in ("PA", "AP", "frontal", "FRONTAL")] == ["frontal"] * 4
    assert [view_kind(v) for v in ("LATERAL", "LL", "lateral")] == ["lateral"] * 3
    assert view_kind("AP AXIAL") == "other" and view_kind("") is None and view_kind(None) is None


def test_frontal_view_spelled_frontal_is_a_primary_image(real_encoding_root, tmp_path):
    roots = resolve_roots(real_encoding_root)
    meta = roots.jpg / L.METADATA_CSV
    df = pd.read_csv(meta)
    df["ViewPosition"] = df["ViewPosition"].map({"PA": "frontal", "AP": "frontal", "LATERAL": "lateral"})
    df.to_csv(meta, index=False)
    build_index(roots, tmp_path / "idx", progress=False)
    studies = pq.read_table(tmp_path / "idx" / "studies.parquet").to_pandas().set_index("study_id")
    assert studies.loc[50414267, "image_id"] == PA and studies.loc[53189527, "image_id"] == AP
    assert pd.isna(studies.loc[57375967, "image_id"])
    shutil.rmtree(tmp_path / "idx")
