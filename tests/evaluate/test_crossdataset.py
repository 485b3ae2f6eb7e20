"""VQA-RAD / SLAKE-EN loaders on the real test files, answer normalisation, validation errors."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cxrbench import vocab
from cxrbench.data import crossdataset as cd
from cxrbench.errors import DataError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crossdataset"   # the real files, with the tests
VQA_RAD = FIXTURES / "vqa-rad" / "testset.json"
SLAKE = FIXTURES / "slake" / "test.json"


@pytest.fixture(scope="module")
def vqa_rad():
    return cd.load_vqa_rad(VQA_RAD)


@pytest.fixture(scope="module")
def slake():
    return cd.load_slake(SLAKE)


def _row(frame, qid):
    rows = frame[frame["qid"] == str(qid)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_vqa_rad_test_split_parses_completely(vqa_rad):
    raw = json.loads(VQA_RAD.read_text())
    assert len(vqa_rad) == len(raw) == 450
    assert vqa_rad["answer_type"].value_counts().to_dict() == {"CLOSED": 265, "OPEN": 185}
    assert vqa_rad["organ"].value_counts().to_dict() == {"CHEST": 157, "HEAD": 151, "ABD": 142}
    assert vqa_rad["question_id"].is_unique
    # content type = first listed question type; the raw counts of single types plus the multi-type rows
    raw_first = Counter(r["question_type"].split(",")[0].strip() for r in raw)
    assert vqa_rad["content_type"].value_counts().to_dict() == dict(raw_first)
    assert _row(vqa_rad, 367)["content_types"] == ["POS", "PRES"]


def test_slake_english_rows_only(slake):
    raw = json.loads(SLAKE.read_text())
    assert len(raw) == 2094
    assert len(slake) == 1061
    assert slake["answer_type"].value_counts().to_dict() == {"OPEN": 645, "CLOSED": 416}
    assert slake["content_type"].value_counts().to_dict() == dict(
        Counter(r["content_type"] for r in raw if r["q_lang"] == "en"))
    assert set(slake["modality"]) == {"CT", "X-Ray", "MRI"}


@pytest.mark.parametrize("which", ["vqa-rad", "slake"])
def test_yes_no_answers_in_any_case_are_binary(which, vqa_rad, slake):
    frame = vqa_rad if which == "vqa-rad" else slake
    lower = frame["answer"].str.strip().str.lower()
    is_yes_no = lower.isin(["yes", "no"])
    assert (frame.loc[is_yes_no, "head"] == "binary").all()
    assert (frame.loc[lower == "yes", "answer_binary"] == 1).all()
    assert (frame.loc[lower == "no", "answer_binary"] == 0).all()
    assert (frame.loc[~is_yes_no, "answer_binary"] == -1).all()
    assert {"yes", "Yes"} <= set(frame.loc[lower == "yes", "answer"]) or which == "slake"
    assert int(is_yes_no.sum()) == int((frame["head"] == "binary").sum())


@pytest.mark.parametrize("qid, region", [
    (1539, "right hemidiaphragm"),      # "R hemidiaphragm": abbreviated side
    (724, "right upper lung lobe"),     # "Right upper lobe"
    (1954, "left lower lung lobe"),     # "retrocardiac"
])
def test_vqa_rad_chest_location_answers_map_to_region_classes(vqa_rad, qid, region):
    row = _row(vqa_rad, qid)
    assert row["head"] == "region"
    assert row["answer_regions"] == [region]
    assert region in vocab.HEAD_REGIONS


def test_vqa_rad_sides_and_non_chest_locations_stay_text(vqa_rad):
    on_left = _row(vqa_rad, 1508)                 # "On the left", where is the spleen (ABD)
    assert (on_left["answer"], on_left["head"], on_left["answer_norm"]) == ("On the left", "text", "on the left")
    left = _row(vqa_rad, 367)                     # "Left": which side is more clearly visualized
    assert left["head"] == "text"
    mr = _row(vqa_rad, 1415)                      # "MR - T2 weighted"
    assert (mr["head"], mr["answer_norm"]) == ("text", "mr t2 weighted")
    # no region answer outside the chest
    assert not ((vqa_rad["head"] == "region") & ~vqa_rad["is_chest"]).any()


def test_slake_position_answers(slake):
    lung_side = _row(slake, 11943)                # "Left Lung, Right": organ, then image side
    assert (lung_side["head"], lung_side["answer_regions"]) == ("region", ["left lung"])
    zone = _row(slake, 12298)                     # "Lower Left Lung": a zone, not a lobe
    assert zone["answer_regions"] == ["left lung"]
    brain = _row(slake, 12626)                    # "Upper Left Lobe" of a brain MRI: no lung lobe
    assert (brain["answer"], brain["head"]) == ("Upper Left Lobe", "text")
    body_part = _row(slake, 11973)                # "Abdomen": which part of the body
    assert body_part["head"] == "text"
    plane = _row(slake, 12089)
    assert (plane["answer"], plane["answer_norm"]) == ("Transverse  Plane", "transverse plane")
    regions = slake.loc[slake["head"] == "region", "answer_regions"]
    assert len(regions) > 20 and all(len(r) == 1 and r[0] in vocab.HEAD_REGIONS for r in regions)
    assert (slake.loc[slake["head"] == "region", "content_type"] == "Position").all()


@pytest.mark.parametrize("text, expected", [
    ("Yes", 1), ("yes.", 1), (" NO ", 0), ("No, there is not", -1), ("Right", -1),
])
def test_answer_binary(text, expected):
    assert cd.answer_binary(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("MRI - T2 Weighted", "mri t2 weighted"), ("5.6cm focal, predominantly hypodense", "5.6cm focal predominantly hypodense"),
    ("basal ganglia (caudate and putamen)", "basal ganglia caudate and putamen"), ("L1-L2", "l1 l2"),
])
def test_normalize_answer_text(text, expected):
    assert cd.normalize_answer_text(text) == expected


def _write(tmp_path, records, name="q.json"):
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


def _official(qid, **kw):
    rec = {"qid": qid, "phrase_type": "freeform", "qid_linked_id": f"0{qid}", "image_case_url": "https://x",
           "image_name": f"synpic{qid}.jpg", "image_organ": "CHEST", "evaluation": "given",
           "question": "Is there a pneumothorax?", "question_rephrase": "NULL", "question_relation": "NULL",
           "question_frame": "NULL", "question_type": "PRES", "answer": "Yes", "answer_type": "CLOSED"}
    rec.update(kw)
    return rec


def test_official_vqa_rad_format_with_numeric_answers_and_messy_types(tmp_path):
    path = _write(tmp_path, [
        _official(1),
        _official(2, question="How many ribs are fractured?", question_type="count", answer=2, answer_type="OPEN "),
        _official(3, question="Where is the effusion?", question_type="Pos", answer="Right lower lobe", answer_type="OPEN"),
    ])
    frame = cd.load_vqa_rad(path, images=tmp_path / "imgs")
    assert frame["question_id"].tolist() == ["vqa-rad:1", "vqa-rad:2", "vqa-rad:3"]
    assert frame["answer"].tolist() == ["Yes", "2", "Right lower lobe"]
    assert frame["answer_type"].tolist() == ["CLOSED", "OPEN", "OPEN"]
    assert frame["content_type"].tolist() == ["PRES", "COUNT", "POS"]
    assert frame["head"].tolist() == ["binary", "text", "region"]
    assert frame["answer_regions"].iloc[2] == ["right lower lung lobe"]
    assert frame["image_path"].iloc[0] == str(tmp_path / "imgs" / "synpic1.jpg")


@pytest.mark.parametrize("records, record, problem", [
    ([_official(7, answer_type="MAYBE")], "qid 7", "answer_type"),
    ([{k: v for k, v in _official(8).items() if k != "answer"}], "qid 8", "missing field(s) answer"),
    ([_official(9, question="  ")], "qid 9", "empty 'question'"),
    ([_official(5), _official(5)], "qid 5", "duplicate qid"),
    ([["not", "an", "object"]], "#0", "expected an object"),
])
def test_bad_records_name_file_and_record(tmp_path, records, record, problem):
    path = _write(tmp_path, records)
    with pytest.raises(DataError) as err:
        cd.load_vqa_rad(path)
    assert err.value.file == str(path) and err.value.record == record and problem in err.value.problem


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        cd.load_slake(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        cd.load_slake(bad)
    with pytest.raises(DataError, match="expected a JSON list"):
        cd.load_slake(_write(tmp_path, {"qid": 1}))


def test_slake_missing_field_and_images(tmp_path):
    rec = {"img_id": 1, "img_name": "xmlab1/source.jpg", "question": "Is this a CT?", "answer": "No", "q_lang": "en",
           "location": "Lung", "modality": "X-Ray", "answer_type": "CLOSED", "base_type": "vqa",
           "triple": ["vhead", "_", "_"], "qid": 11, "content_type": "Modality"}
    zh = dict(rec, qid=12, q_lang="zh", answer="否")
    frame = cd.load_slake(_write(tmp_path, [rec, zh]), images=tmp_path / "imgs")
    assert frame["qid"].tolist() == ["11"]
    with pytest.raises(DataError, match="image .*source.jpg not found"):
        cd.check_images(frame, "slake")
    (tmp_path / "imgs" / "xmlab1").mkdir(parents=True)
    (tmp_path / "imgs" / "xmlab1" / "source.jpg").write_bytes(b"x")
    cd.check_images(frame, "slake")
    broken = {k: v for k, v in rec.items() if k != "content_type"}
    with pytest.raises(DataError, match="qid 11.*content_type"):
        cd.load_slake(_write(tmp_path, [broken], "b.json"))
