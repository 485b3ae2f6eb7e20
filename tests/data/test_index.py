"""The index against a brute-force join of the release files, and its schema (contracts §2)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import orjson
import pandas as pd
import pyarrow.parquet as pq

from cxrbench import questions, vocab
from cxrbench.data import layout as L
from cxrbench.data.index import IndexFilters, build_index
from cxrbench.outputs import MARKER

QA_COLUMNS = ("question_id", "study_id", "subject_id", "split", "question_type", "question_strategy", "question",
              "variables", "obs_ids", "quality", "answer", "answer_full", "answer_positiveness", "answer_binary",
              "answer_regions", "answer_entities", "answer_categories", "answer_severity", "answer_bboxes",
              "answer_is_fallback")
STUDY_COLUMNS = ("study_id", "subject_id", "split", "study_quality", "n_images", "image_id", "view", "image_path",
                 "image_width", "image_height", "chexpert", "chexpert_gold", "n_observations", "region_categories")
NODE_COLUMNS = ("study_id", "image_id", "node_id", "node_kind", "bbox", "is_fallback", "regions", "entities",
                "categories", "laterality")


def test_index_files_and_columns(synth_index):
    assert {p.name for p in synth_index.iterdir()} == {"qa.parquet", "studies.parquet", "nodes.parquet", "manifest.json", MARKER}
    qa = pq.read_schema(synth_index / "qa.parquet").names
    assert set(QA_COLUMNS) <= set(qa)
    assert set(STUDY_COLUMNS) - {"region_categories"} <= set(qa)  # the joined study columns
    assert set(STUDY_COLUMNS) <= set(pq.read_schema(synth_index / "studies.parquet").names)
    nodes = pq.read_schema(synth_index / "nodes.parquet").names
    assert set(NODE_COLUMNS) <= set(nodes)
    assert not {"positiveness", "probability", "polarity"} & set(nodes)  # tokens must not leak the answer
    m = json.loads((synth_index / "manifest.json").read_text())
    for key in ("provenance", "roots", "filters", "rows", "tolerance", "files", "content_hash"):
        assert key in m


def _brute_force(root) -> pd.DataFrame:
    """The join the index makes, done the naive way: json.load of every qa.json + pandas merges on
    the QA-pair key (study_id, question_id); column names by meaning, ratings by their N_GRADE
    prefix or integer (either encoding)."""
    jpg, qba = root / L.JPG_DIR, root / L.QBA_DIR
    split = pd.read_csv(jpg / L.SPLIT_CSV)
    meta = pd.read_csv(jpg / L.METADATA_CSV)
    cx = pd.read_csv(jpg / L.CHEXPERT_CSV)
    qmeta = pd.read_parquet(qba / "metadata" / "question_metadata.parquet").reset_index()
    qmeta = qmeta.rename(columns={c: L.column_meaning(c) for c in qmeta.columns})
    qmeta["study_id"] = qmeta["study_id"].str[1:].astype("int64")
    qmeta["quality"] = [vocab.QUALITY_GRADES[::-1][int(str(v).split("_")[0])] for v in qmeta["quality"]]
    rows = []
    with zipfile.ZipFile(qba / L.QA_ZIP) as zf:
        for name in zf.namelist():
            doc = json.loads(zf.read(name))
            for q in doc["questions"]:
                mains = [a for a in q["answers"] if a["answer_type"] == "main_answer"]
                rows.append({"question_id": q["question_id"], "study_id": int(doc["study_id"][1:]),
                             "subject_id": int(doc["patient_id"][1:]), "question": q["question"],
                             "question_type": questions.normalize_question_type(q["question_type"], q["question_strategy"]),
                             "answer": " ".join(a["text"] for a in mains), "_mains": mains})
    qa = pd.DataFrame(rows).merge(qmeta[["study_id", "question_id", "quality"]], on=["study_id", "question_id"],
                                  how="left", validate="one_to_one")
    study_split = split.groupby("study_id")["split"].first().reset_index()
    frontal = meta[meta.ViewPosition.isin(["PA", "AP"])].copy()
    frontal["rank"] = frontal.ViewPosition.map({"PA": 0, "AP": 1})
    prim = frontal.sort_values(["study_id", "rank", "dicom_id"]).groupby("study_id").head(1)
    prim = prim.rename(columns={"dicom_id": "image_id", "ViewPosition": "view", "Columns": "image_width", "Rows": "image_height"})
    qa = qa.merge(study_split, on="study_id").merge(prim[["study_id", "image_id", "view", "image_width", "image_height"]],
                                                     on="study_id", how="left")
    qa = qa.merge(cx, on=["subject_id", "study_id"], how="left")
    return qa.sort_values(["study_id", "question_id"]).reset_index(drop=True)


def test_index_rows_equal_brute_force_join(synth_root, synth_index):
    want = _brute_force(synth_root)
    got = pq.read_table(synth_index / "qa.parquet").to_pandas().sort_values(["study_id", "question_id"]).reset_index(drop=True)
    assert len(got) == len(want) > 1000
    for col in ("question_id", "study_id", "subject_id", "split", "question_type", "question", "answer", "quality"):
        assert got[col].tolist() == want[col].tolist(), col
    for col in ("image_id", "view"):
        assert [v if isinstance(v, str) else None for v in got[col]] == [v if isinstance(v, str) else None for v in want[col]]
    has_img = want["image_id"].notna()
    assert (got.loc[has_img, "image_width"].to_numpy() == want.loc[has_img, "image_width"].to_numpy()).all()
    expected_path = [f"files/p{str(s)[:2]}/p{s}/s{st}/{i}.jpg" if isinstance(i, str) else None
                     for s, st, i in zip(want.subject_id, want.study_id, want.image_id)]
    assert [p if isinstance(p, str) else None for p in got["image_path"]] == expected_path
    cx = want[list(vocab.CHEXPERT_LABELS)].to_numpy(float)
    gcx = np.stack(got["chexpert"].to_numpy()).astype(float)
    assert np.array_equal(np.isnan(cx), np.isnan(gcx)) and np.allclose(np.nan_to_num(cx), np.nan_to_num(gcx))
    # main answers' boxes on the primary image
    for (_, g), (_, w) in zip(got.iterrows(), want.iterrows()):
        img = w["image_id"]
        boxes = [b for a in w["_mains"] for b in (a["localization"].get(img, {}).get("bboxes", []) if isinstance(img, str) else [])]
        assert [list(b) for b in g["answer_bboxes"]] == boxes
        yes_no = questions.BY_CODE[w["question_type"]].head == "binary"
        binary = (1 if w["answer"].startswith("Yes,") else 0 if w["answer"].startswith("No,") else -1) if yes_no else -1
        assert g["answer_binary"] == binary


def test_answer_binary_only_for_yes_no_questions():
    from cxrbench.data.index import answer_binary

    assert answer_binary("Yes, there is a pleural effusion.", "D02_has_finding") == 1
    assert answer_binary("No, there is no pneumothorax.", "B03_is_abnormal") == 0
    assert answer_binary("No abnormalities are seen.", "B02_describe_abnormal") == -1
    assert answer_binary("Nodules are seen.", "D02_has_finding") == -1
    assert answer_binary("no.", "PRES") == 0 and answer_binary("No abnormality", "PRES") == -1


def test_index_filters_and_quality_grades(synth_root, tmp_path):
    from cxrbench.data.layout import resolve_roots

    roots = resolve_roots(synth_root)
    out = tmp_path / "idx"
    m = build_index(roots, out, IndexFilters(min_quality="A", frontal_only=True, splits=("test",)), progress=False)
    qa = pq.read_table(out / "qa.parquet").to_pandas()
    assert len(qa) == m["rows"]["qa"] > 0
    assert set(qa["split"]) == {"test"}
    assert set(qa["quality"]) <= {"A++", "A+", "A"}
    assert qa["image_id"].notna().all() and set(qa["view"]) <= {"PA", "AP"}
    assert m["filters"] == {"min_quality": "A", "frontal_only": True, "splits": ["test"]}


def test_two_workers_give_the_same_index(synth_root, synth_index, tmp_path):
    from cxrbench.data.layout import resolve_roots

    m = build_index(resolve_roots(synth_root), tmp_path / "idx", workers=2, progress=False)
    assert m["content_hash"] == json.loads((synth_index / "manifest.json").read_text())["content_hash"]
    # other chunk sizes give other row groups (so other file bytes) but the same rows
    build_index(resolve_roots(synth_root), tmp_path / "idx7", workers=2, chunk_size=7, progress=False)
    for name in ("qa", "studies", "nodes"):
        a, b = (pq.read_table(p / f"{name}.parquet").to_pylist() for p in (tmp_path / "idx7", synth_index))
        assert orjson.dumps(a) == orjson.dumps(b)  # (orjson writes NaN as null: NaN labels compare equal)
    assert pq.ParquetFile(tmp_path / "idx7" / "qa.parquet").metadata.num_row_groups > 1  # written incrementally
