"""Scene-graph boxes -> YOLO labels: the class rules, the round trip, reproducibility, and
ultralytics reading the folder as we wrote it."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd
import pytest

from cxrbench.data.readers import StudyJson
from cxrbench.detect.classes import CLASS_ID, CLASS_NAMES, node_labels
from cxrbench.detect.dataset import (DATA_YAML, DATASET_JSON, DatasetOptions, build_yolo_dataset, index_roots,
                                     parse_yolo_line, read_labels, yolo_line)
from cxrbench.errors import CxrbenchError

IMG = "img-1"


def _obs(entities, positiveness="pos", boxes=((10, 10, 50, 50),), parents=(), fallback=False):
    return {"obs_entities": list(entities), "obs_entities_parents": list(parents), "positiveness": positiveness,
            "localization": {IMG: {"bboxes": [list(b) for b in boxes], "is_fallback": fallback}}}


def _region(boxes=((0, 0, 60, 90),)):
    return {"localization": {IMG: {"bboxes": [list(b) for b in boxes], "is_fallback": False}}}


def _labels(graph):
    labels, skipped = node_labels(graph, IMG)
    return sorted((CLASS_NAMES[lab.class_id], lab.boxes, lab.node_id) for lab in labels), skipped


def test_class_rules_by_hand():
    graph = {
        "observations": {
            "O01": _obs(["pleural effusion"], boxes=((1, 2, 3, 4), (5, 6, 7, 8))),      # bilateral: two instances
            "O02": _obs(["pneumothorax"], positiveness="neg"),                           # negated: no label
            "O03": _obs(["rib fracture"], parents=["fracture"]),                         # parent class
            "O04": _obs(["chest tube"], boxes=((20, 0, 40, 80),)),
            "O04.01": _obs(["chest tube"], boxes=((20, 0, 40, 10),)),                    # tip of its parent: no label
            "O05": _obs(["consolidation"], fallback=True),                              # fallback box: no label
            "O06": _obs(["ecg leads"]),                                                  # not a class
            "O07": _obs(["Endotracheal_Tube"], boxes=((30, 0, 34, 30),)),                # normalised name
        },
        "regions": {"left lung": _region(), "left lung base": _region(), "heart": _region(((9, 9, 19, 19),)),
                    "aorta": {"localization": {"other-image": {"bboxes": [[0, 0, 1, 1]]}}}},
    }
    labels, skipped = _labels(graph)
    assert labels == sorted([
        ("pleural effusion", ((1.0, 2.0, 3.0, 4.0), (5.0, 6.0, 7.0, 8.0)), "O01"),
        ("fracture", ((10.0, 10.0, 50.0, 50.0),), "O03"),
        ("chest tube", ((20.0, 0.0, 40.0, 80.0),), "O04"),
        ("endotracheal tube", ((30.0, 0.0, 34.0, 30.0),), "O07"),
        ("left lung", ((0.0, 0.0, 60.0, 90.0),), "left lung"),
        ("heart", ((9.0, 9.0, 19.0, 19.0),), "heart"),
    ])
    assert skipped == {"fallback_boxes": 1, "negative_observations": 1, "unmapped_positive_observations": 1,
                       "child_duplicates": 1}


def test_yolo_line_round_trip_and_clipping():
    line = yolo_line(CLASS_ID["heart"], (10.0, 20.0, 50.0, 100.0), 200, 400)
    assert line == "2 0.150000 0.150000 0.200000 0.200000"
    c, box = parse_yolo_line(line, 200, 400)
    assert c == 2 and box == pytest.approx([10, 20, 50, 100], abs=1e-6)
    # boxes the readers tolerate slightly outside the image are clipped; nothing inside: no line
    assert parse_yolo_line(yolo_line(0, (-1.0, -1.0, 201.0, 401.0), 200, 400), 200, 400)[1] == pytest.approx([0, 0, 200, 400])
    assert yolo_line(0, (205.0, 0.0, 210.0, 10.0), 200, 400) is None


def test_conversion_round_trip(detect_dataset, synth_index):
    """Every label file holds exactly the boxes the class rules take from the study's scene
    graph on its primary image, back in pixels to 6-decimal precision."""
    _, _, qba = index_roots(synth_index)
    studies = pd.read_parquet(synth_index / "studies.parquet")
    studies = studies[studies["image_id"].notna()]
    split_dir = {"train": "train", "validate": "val", "test": "test"}
    sj = StudyJson(qba)
    n_boxes = 0
    try:
        for row in studies.itertuples(index=False):
            graph, _ = sj.load(row.subject_id, row.study_id, "scene_graph")
            w, h = float(row.image_width), float(row.image_height)
            want = Counter()
            for lab in node_labels(graph, row.image_id)[0]:
                for b in lab.boxes:
                    want[(lab.class_id, tuple(round(min(max(v, 0.0), s), 2) for v, s in zip(b, (w, h, w, h))))] += 1
            got = Counter((c, tuple(round(v, 2) for v in box))
                          for c, box in read_labels(detect_dataset, split_dir[row.split], row.image_id, w, h))
            assert set(got) == set(want), row.image_id        # duplicates are written once
            assert all(v == 1 for v in got.values())
            n_boxes += sum(got.values())
    finally:
        sj.close()
    summary = orjson.loads((detect_dataset / DATASET_JSON).read_bytes())
    assert n_boxes == sum(sum(v.values()) for v in summary["instances"].values()) > 500
    assert summary["images"] == {"train": (studies["split"] == "train").sum(), "val": (studies["split"] == "validate").sum(),
                                 "test": (studies["split"] == "test").sum()}
    # every kind is represented in the synthetic training split
    kinds = {c["name"]: c["kind"] for c in summary["classes"]}
    assert {kinds[n] for n in summary["instances"]["train"]} == {"region", "finding", "device"}


def test_images_link_to_the_release(detect_dataset, synth_index):
    _, jpg, _ = index_roots(synth_index)
    studies = pd.read_parquet(synth_index / "studies.parquet").dropna(subset=["image_id"])
    row = studies.iloc[0]
    split = {"train": "train", "validate": "val", "test": "test"}[row["split"]]
    link = detect_dataset / "images" / split / f"{row['image_id']}.jpg"
    assert link.is_symlink() and link.resolve() == (jpg / row["image_path"]).resolve()


def _tree(root: Path) -> dict[str, bytes]:
    """Every file's bytes (a link: its target); ultralytics' own label caches left out, and
    dataset.json without the git commit (teammates may commit during a test session)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = b"-> " + os.readlink(p).encode()
        elif p.is_file() and not rel.endswith(".cache"):
            out[rel] = p.read_bytes()
    summary = orjson.loads(out[DATASET_JSON])
    summary["provenance"].pop("git_commit")
    out[DATASET_JSON] = orjson.dumps(summary)
    return out


def test_reproducible_bytes(detect_dataset, synth_index, tmp_path):
    again = tmp_path / "again"
    build_yolo_dataset(synth_index, again, DatasetOptions(progress=False))
    a, b = _tree(detect_dataset), _tree(again)
    assert len(a) > 100 and a == b
    copied = tmp_path / "copied"
    build_yolo_dataset(synth_index, copied, DatasetOptions(images="copy", progress=False))
    c = _tree(copied)
    assert {k: v for k, v in c.items() if k.startswith("labels/")} == {k: v for k, v in b.items() if k.startswith("labels/")}
    img = next(k for k in c if k.startswith("images/test/"))
    assert not (copied / img).is_symlink() and c[img] == (again / img).resolve().read_bytes()


def test_ultralytics_reads_the_labels_we_wrote(detect_dataset, tmp_path):
    """ultralytics' own dataset loader parses the folder into the same instances per class."""
    pytest.importorskip("ultralytics")
    from cxrbench.detect.offline import load_ultralytics

    data = tmp_path / "data"
    shutil.copytree(detect_dataset, data, symlinks=True)
    load_ultralytics(tmp_path, verbose=False)
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    cfg = check_det_dataset(str(data / DATA_YAML))
    assert cfg["nc"] == len(CLASS_NAMES) and [cfg["names"][i] for i in range(cfg["nc"])] == list(CLASS_NAMES)
    summary = orjson.loads((data / DATASET_JSON).read_bytes())
    for split in ("train", "val", "test"):
        ds = YOLODataset(img_path=cfg[split], data=cfg, task="detect", augment=False, imgsz=128)
        got = Counter(CLASS_NAMES[int(c)] for lab in ds.labels for c in lab["cls"].ravel())
        assert got == Counter(summary["instances"][split]), split
        assert len(ds.labels) == summary["images"][split]


def test_hand_written_real_encoding_release(real_encoding_root, tmp_path):
    """The hand-written root in the real releases' encodings (tests/fixtures/real_encoding: zip
    members under a top folder, N_GRADE ratings, modifiers as pairs, PhysioNet layout): its
    one positive observation and its one region class become the PA image's labels."""
    from cxrbench.data.index import build_index
    from cxrbench.data.layout import image_relpath, resolve_roots

    roots = resolve_roots(real_encoding_root)
    build_index(roots, tmp_path / "idx", workers=1, progress=False)
    for subject, study, dicom in ((10000032, 50414267, "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014"),
                                  (10000032, 53189527, "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab")):
        img = roots.jpg / image_relpath(subject, study, dicom)
        img.parent.mkdir(parents=True, exist_ok=True)
        img.write_bytes(b"\xff\xd8")     # linked, never decoded by the conversion
    summary = build_yolo_dataset(tmp_path / "idx", tmp_path / "yolo", DatasetOptions(progress=False))
    assert summary["images"] == {"train": 2, "val": 0, "test": 0}      # the lateral-only test study has no primary image
    w, h = 2544, 3056                                                  # Columns x Rows of the PA image
    labels = read_labels(tmp_path / "yolo", "train", "02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", w, h)
    assert sorted((CLASS_NAMES[c], [round(v, 1) for v in b]) for c, b in labels) == [
        ("left costophrenic angle", [1700.0, 2100.0, 2300.0, 2600.0]),
        ("pleural effusion", [1700.0, 2100.0, 2300.0, 2600.0])]        # the negated consolidation and "lungs": none
    assert read_labels(tmp_path / "yolo", "train", "2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab", 3056, 2705) == []
    assert summary["left_out"]["negative_observations"] == 2


def test_bad_options_and_inputs(tmp_path, synth_index):
    with pytest.raises(CxrbenchError, match="images must be one of"):
        DatasetOptions(images="hardlink")
    with pytest.raises(CxrbenchError, match="unknown split"):
        DatasetOptions(splits=("val",))
    with pytest.raises(CxrbenchError, match="manifest.json"):
        build_yolo_dataset(tmp_path, tmp_path / "out", DatasetOptions(progress=False))
