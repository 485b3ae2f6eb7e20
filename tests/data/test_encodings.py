"""The generator's two spellings of the same tree: the real release's encodings and the legacy
one index to the same QA pairs (grades, types, splits, answers, boxes, nodes), and the real
spelling is what real-release-evidence.md describes."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile

import orjson
import pandas as pd
import pyarrow.parquet as pq

from cxrbench import questions
from cxrbench.data import layout as L
from cxrbench.data.index import build_index
from cxrbench.data.layout import resolve_roots
from cxrbench.data.synth.generate import generate


def test_both_encodings_index_to_the_same_qa_pairs(synth_root_real, synth_root_legacy, tmp_path):
    real = build_index(resolve_roots(synth_root_real), tmp_path / "real", progress=False)
    legacy = build_index(resolve_roots(synth_root_legacy), tmp_path / "legacy", workers=2, progress=False)
    a = pq.read_table(tmp_path / "real" / "qa.parquet")
    b = pq.read_table(tmp_path / "legacy" / "qa.parquet")
    assert a.num_rows == b.num_rows > 1000
    # every column but the question ids' spelling is equal, row by row (grades, types, splits, answers, boxes)
    others = [c for c in a.column_names if c != "question_id"]
    assert orjson.dumps(a.select(others).to_pylist()) == orjson.dumps(b.select(others).to_pylist())
    for name in ("studies", "nodes"):
        assert orjson.dumps(pq.read_table(tmp_path / "real" / f"{name}.parquet").to_pylist()) == \
            orjson.dumps(pq.read_table(tmp_path / "legacy" / f"{name}.parquet").to_pylist())
    assert real["tolerance"] == legacy["tolerance"] and real["rows"] == legacy["rows"]
    qa_a, qa_b = a.to_pandas(), b.to_pandas()
    # legacy ids are unique; real ids are template names that recur across studies, unique per study
    assert qa_b["question_id"].is_unique and not qa_a["question_id"].is_unique
    assert not qa_a.duplicated(["study_id", "question_id"]).any()
    assert all(re.fullmatch(rf"{t}_\d{{3}}", q) for q, t in zip(qa_a["question_id"], qa_a["question_type"]))
    assert (qa_a["question_id"] == "B01_describe_all_001").sum() == qa_a["study_id"].nunique()
    for col in ("quality", "question_type", "split"):
        assert qa_a[col].tolist() == qa_b[col].tolist()


def test_real_spelling_of_the_files(synth_root_real):
    qba = synth_root_real / L.QBA_DIR
    with zipfile.ZipFile(qba / L.QA_ZIP) as z:
        names = z.namelist()
        doc = json.loads(z.read(names[0]))
    assert all(re.fullmatch(r"qa/p1\d/p1\d{7}/s5\d{7}\.qa\.json", n) for n in names)
    with zipfile.ZipFile(qba / L.SCENE_ZIP) as z:
        sg_names = z.namelist()
        sg = json.loads(z.read(next(n for n in sg_names if n.endswith(".scene_graph.json"))))
    assert all(n.startswith("scene_data/p1") for n in sg_names)
    q = doc["questions"][0]
    assert q["question_type"] in questions.BY_CODE and q["question_id"] == f"{q['question_type']}_001"
    ids = []
    stack = list(q["answers"])
    while stack:
        a = stack.pop(0)
        ids.append(a["answer_id"])
        assert re.fullmatch(r"[0-6]_(D|C|B|A|A\+|A\+\+)?", a["answer_quality"]["rating"])
        assert "rating" not in a["extraction_quality"]
        stack = a["sub_answers"] + stack
    assert ids == list(range(1, len(ids) + 1))
    assert re.fullmatch(r"[0-6]_.*", sg["study_quality"]["extraction_rating"])
    assert {"region_extract_quality", "entity_extract_quality", "general_issue_level"} <= set(sg["study_quality"])
    obs = next(iter(sg["observations"].values()))
    assert isinstance(obs["modifiers"], list) and "rating" not in obs["obs_quality"]
    qmeta = pd.read_parquet(qba / "metadata" / "question_metadata.parquet")
    assert list(qmeta.index.names) == ["patient_id", "study_id", "question_id"]
    assert {"question.question_type", "question.question_strategy", "question.quality.rating"} <= set(qmeta.columns)
    smeta = pd.read_parquet(qba / "metadata" / "study_metadata.parquet")
    assert list(smeta.index.names) == ["patient_id", "study_id"] and "study.quality.extraction_rating" in smeta.columns
    img = pd.read_parquet(qba / "metadata" / "image_metadata.parquet")
    assert set(img["img.view_position"]) == {"frontal", "lateral"} and "img.size" in img.columns
    ans = pd.read_parquet(qba / "metadata" / "answer_metadata.parquet")
    assert ans.index.get_level_values("answer_id").dtype == "int64"
    csv = pd.read_csv(qba / "metadata" / "question_metadata.csv.gz")
    assert list(csv.columns[-3:]) == ["patient_id", "study_id", "question_id"] and len(csv) == len(qmeta)
    # the exports speak the same spelling
    with zipfile.ZipFile(qba / "exports" / "A_frontal" / L.QA_ZIP) as z:
        assert all(n.startswith("qa/") for n in z.namelist())


def test_real_encoding_is_byte_identical_whatever_the_workers(tmp_path):
    def hashes(root):
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".cxrbench-output.json"}

    generate(tmp_path / "a", 3, seed=5, image_size=64, workers=1, progress=False, encoding="real")
    generate(tmp_path / "b", 3, seed=5, image_size=64, workers=2, progress=False, encoding="real")
    ha = hashes(tmp_path / "a")
    assert len(ha) > 30 and ha == hashes(tmp_path / "b")
