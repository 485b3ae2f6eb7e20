"""Detected scene graphs: the release's format as the project's readers and index read it,
relations from box geometry, image keys, and detected_nodes in the index's node schema."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cxrbench.data.index import NODES_SCHEMA, build_index
from cxrbench.data.layout import image_relpath, resolve_roots
from cxrbench.data.readers import StudyJson, validate_scene_graph
from cxrbench.detect.classes import CLASS_ID, CLASS_KIND, node_labels
from cxrbench.detect.dataset import index_roots
from cxrbench.detect.graphs import (GRAPHS_DIR, GraphSetWriter, Detection, box_laterality, detected_nodes, image_key,
                                    list_images, scene_graph)
from cxrbench.errors import DataError


def _det(name, box, conf=0.9):
    return Detection(CLASS_ID[name], tuple(float(v) for v in box), conf)


def test_scene_graph_format_by_hand():
    """A 200x100 image: lungs, heart, an effusion in the left lung's base and a tube across the midline."""
    dets = [
        _det("right lung", (10, 10, 95, 90)), _det("left lung", (105, 10, 190, 90)),
        _det("left lung", (100, 5, 195, 95), 0.3),               # a weaker second left lung: dropped
        _det("mediastinum", (90, 5, 110, 80)),
        _det("pleural effusion", (150, 60, 185, 88), 0.8),       # inside the left lung
        _det("endotracheal tube", (97, 0, 103, 40), 0.4),         # narrow, across the midline
    ]
    g = scene_graph("img", 200, 100, dets, subject_id=10000032, study_id=50414267)
    validate_scene_graph(g, "mem", {"img": (200.0, 100.0)})
    assert (g["patient_id"], g["study_id"]) == ("p10000032", "s50414267")
    assert list(g["regions"]) == ["left lung", "right lung", "mediastinum"]          # class order
    assert g["regions"]["left lung"]["localization"]["img"]["bboxes"] == [[105.0, 10.0, 190.0, 90.0]]
    assert g["regions"]["left lung"]["laterality"] == "left"
    o1, o2 = g["observations"]["O01"], g["observations"]["O02"]
    assert (o1["obs_entities"], o1["positiveness"], o1["probability"], o1["certainty"]) == \
        (["pleural effusion"], "pos", "positive", "certain")
    assert o1["regions"] == [{"region": "left lung", "distances": []}] and o1["laterality"] == "left"
    assert o1["localization"]["img"]["localization_quality"] == 3 and o1["localization"]["img"]["confidence"] == 0.8
    assert (o2["obs_entities"], o2["probability"], o2["certainty"]) == (["endotracheal tube"], "may", "uncertain")
    assert o2["laterality"] == "midline" and o2["obs_categories"] == ["DEVICE"]
    assert o2["regions"] == [{"region": "mediastinum", "distances": []}]
    assert g["top_level_obs_ids"] == ["O01", "O02"] and isinstance(o1["modifiers"], list)
    assert g["located_at_relations"] == [
        {"region": "left lung", "observation_id": "O01", "distances": [], "where_specified": "direct"},
        {"region": "mediastinum", "observation_id": "O02", "distances": [], "where_specified": "direct"}]
    rel = {(r["region"], r["related_region"]): r["relation_type"] for r in g["region_region_relations"]}
    # relation_type: where related_region lies relative to region; the patient's left is the image's right
    assert rel[("right lung", "left lung")] == "left" and rel[("left lung", "right lung")] == "right"
    assert g["study_img_localization_quality"] == {"img": 3}
    assert scene_graph("x", 10, 10, [])["study_img_localization_quality"] == {"x": 0}


def test_relations_follow_the_anatomy_tree_and_geometry():
    dets = [_det("left lung", (100, 0, 200, 100)), _det("left upper lung lobe", (100, 0, 200, 45)),
            _det("left lower lung lobe", (100, 55, 200, 100)), _det("heart", (60, 50, 110, 95))]
    rels = scene_graph("i", 200, 100, dets)["region_region_relations"]
    assert {"region": "left lung", "related_region": "left upper lung lobe", "relation_type": "sub_region"} in rels
    assert {"region": "left upper lung lobe", "related_region": "left lower lung lobe", "relation_type": "below"} in rels
    assert {"region": "left lower lung lobe", "related_region": "left upper lung lobe", "relation_type": "above"} in rels


def test_box_laterality():
    assert box_laterality((120, 0, 180, 10), 100, 200) == "left"       # image right = patient left
    assert box_laterality((10, 0, 60, 10), 100, 200) == "right"
    assert box_laterality((90, 0, 130, 10), 100, 200) == "left"        # three quarters on the image right
    assert box_laterality((20, 0, 180, 10), 100, 200) == "bilateral"
    assert box_laterality((85, 0, 115, 10), 100, 200) == "midline"


def test_image_key():
    k = image_key("files/p10/p10000032/s50414267/02aa804e-bde0afdd-112c0b34-7bc16630-4e384014.jpg")
    assert (k.image_id, k.subject_id, k.study_id) == ("02aa804e-bde0afdd-112c0b34-7bc16630-4e384014", 10000032, 50414267)
    assert image_key("xmlab102/source.jpg") == image_key("xmlab102/source.png")
    assert image_key("xmlab102/source.jpg").image_id == "xmlab102/source" and image_key("synpic54610.jpg").study_id is None


def test_list_images(tmp_path):
    for rel in ("a/x.jpg", "a/y.PNG", "b.jpeg", ".hidden/z.jpg", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert list_images(tmp_path) == ["a/x.jpg", "a/y.PNG", "b.jpeg"]


def _oracle(graph, image_id):
    """Detections equal to the dataset's labels (what a perfect detector would report)."""
    dets = []
    for lab in node_labels(graph, image_id)[0]:
        boxes = lab.boxes[:1] if CLASS_KIND[_name(lab.class_id)] == "region" else lab.boxes
        dets.extend(Detection(lab.class_id, b, 0.9 - 0.01 * i) for i, b in enumerate(boxes))
    return dets


def _name(c):
    from cxrbench.detect.classes import CLASS_NAMES

    return CLASS_NAMES[c]


@pytest.fixture(scope="module")
def oracle_graphs(synth_index, tmp_path_factory):
    """A scene-graph set (as cxrbench scene-graph writes it) of every study's primary image,
    with the dataset's own labels as detections, plus one non-MIMIC image."""
    _, jpg, qba = index_roots(synth_index)
    studies = pd.read_parquet(synth_index / "studies.parquet").dropna(subset=["image_id"])
    out = tmp_path_factory.mktemp("oracle-graphs")
    writer = GraphSetWriter(out)
    sj = StudyJson(qba)
    try:
        for row in studies.itertuples(index=False):
            graph, _ = sj.load(row.subject_id, row.study_id, "scene_graph")
            rel = image_relpath(row.subject_id, row.study_id, row.image_id)
            writer.add(rel, image_key(rel), int(row.image_width), int(row.image_height), _oracle(graph, row.image_id))
    finally:
        sj.close()
    writer.add("vqa-rad/synpic1.jpg", image_key("vqa-rad/synpic1.jpg"), 64, 64, [_det("heart", (10, 10, 30, 30))])
    writer.finish({"command": "test"})
    return out, studies


def test_graph_set_validates_with_the_readers(oracle_graphs):
    out, studies = oracle_graphs
    images = pd.read_parquet(out / "images.parquet")
    assert len(images) == len(studies) + 1 and images["image_id"].is_unique
    for r in images.itertuples(index=False):
        g = orjson.loads((out / GRAPHS_DIR / r.graph).read_bytes())
        validate_scene_graph(g, r.graph, {r.image_id: (float(r.width), float(r.height))})
    # a box outside its image is what the readers refuse: the check above can fail
    bad = orjson.loads((out / GRAPHS_DIR / images["graph"].iloc[0]).read_bytes())
    iid = images["image_id"].iloc[0]
    next(iter(bad["regions"].values()))["localization"][iid]["bboxes"] = [[0, 0, 1e6, 1]]
    with pytest.raises(DataError, match="outside"):
        validate_scene_graph(bad, "bad", {iid: (128.0, 128.0)})


def test_detected_nodes_schema(oracle_graphs):
    out, studies = oracle_graphs
    nodes = detected_nodes(out)
    assert list(nodes.columns) == NODES_SCHEMA.names
    assert nodes["image_id"].isin([*studies["image_id"], "vqa-rad/synpic1"]).all()
    mimic = nodes[nodes["image_id"] != "vqa-rad/synpic1"]
    assert (mimic["study_id"].astype("int64").to_numpy() ==
            mimic["image_id"].map(dict(zip(studies["image_id"], studies["study_id"]))).to_numpy()).all()
    other = nodes[nodes["image_id"] == "vqa-rad/synpic1"]
    assert other["study_id"].isna().all() and other["node_id"].tolist() == ["heart"]
    assert set(nodes["node_kind"]) == {"region", "observation"}
    for r in nodes.itertuples(index=False):
        b = list(r.bbox)
        assert b == [min(x[0] for x in r.bboxes), min(x[1] for x in r.bboxes), max(x[2] for x in r.bboxes),
                     max(x[3] for x in r.bboxes)]
    obs = nodes[nodes["node_kind"] == "observation"]
    assert (obs["entities"].map(len) == 1).all() and not obs["is_fallback"].any()


def test_the_index_reads_detected_graphs_as_its_own(oracle_graphs, synth_root, tmp_path):
    """A release whose scene graphs are the detected ones: cxrbench index accepts it, and its
    nodes.parquet equals detected_nodes() row for row."""
    out, studies = oracle_graphs
    roots = resolve_roots(synth_root)
    root = tmp_path / "root"
    root.mkdir()
    (root / "mimic-cxr-jpg").symlink_to(roots.jpg)
    qba = root / "mimic-ext-cxr-qba"
    shutil.copytree(roots.qba, qba, ignore=shutil.ignore_patterns("scene_data.zip", "exports"))
    images = pd.read_parquet(out / "images.parquet").dropna(subset=["study_id"])
    graph_of = {int(r.study_id): (out / GRAPHS_DIR / r.graph).read_bytes() for r in images.itertuples(index=False)}
    replaced = 0
    with zipfile.ZipFile(roots.qba / "scene_data.zip") as src, zipfile.ZipFile(qba / "scene_data.zip", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            name = info.filename
            if name.endswith(".scene_graph.json"):
                study = int(Path(name).name.split(".")[0].lstrip("s"))
                if study in graph_of:
                    data, replaced = graph_of[study], replaced + 1
            dst.writestr(info, data)
    assert replaced == len(studies)
    build_index(resolve_roots(root), tmp_path / "index", workers=1, progress=False)
    got = pq.read_table(tmp_path / "index" / "nodes.parquet").to_pandas()
    want = detected_nodes(out).dropna(subset=["study_id"])
    key = ["image_id", "node_kind", "node_id"]
    got, want = (f.sort_values(key).reset_index(drop=True) for f in (got, want))
    want["study_id"] = want["study_id"].astype("int64")
    assert len(got) == len(want) > 100
    pd.testing.assert_frame_equal(got.map(_plain), want.map(_plain), check_dtype=False)


def _plain(v):
    return [_plain(x) for x in v] if hasattr(v, "__len__") and not isinstance(v, str) else v
