"""The detector end to end with the network off: train (cxrbench detector-train), measure
(the project's mAP beside ultralytics' own on the same detections), detect scene graphs
(cxrbench scene-graph) that the project's readers read. One training per session
(conftest.trained_detector)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pandas as pd
import pytest

from cxrbench.data.readers import validate_scene_graph
from cxrbench.detect.graphs import GRAPHS_DIR, detected_nodes
from cxrbench.detect.quality import AGREEMENT_TOLERANCE, class_average_precision, read_detections, split_images
from cxrbench.io import file_sha256
from tests.detect.netguard import run_offline

pytestmark = pytest.mark.slow
pytest.importorskip("ultralytics")


def test_guard_sees_a_plain_ultralytics_reach_out(tmp_path):
    """The proof below can fail: ultralytics imported without cxrbench's loader looks up DNS
    names (its online check) and writes settings into HOME, and the guard records both."""
    proc, attempts, _ = run_offline(["-c", "import ultralytics"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "getaddrinfo" in attempts
    assert (tmp_path / "home" / ".config" / "Ultralytics" / "settings.json").exists()


def test_training_runs_offline(trained_detector):
    t = trained_detector
    assert t["returncode"] == 0, t["stderr"][-3000:]
    assert t["attempts"] == "", t["attempts"][:3000]          # not a refused connection: no attempt at all
    print("isolation:", t["mode"])
    run = Path(t["run"])
    for name in ("detector.pt", "detector.json", "quality.json", "train/weights/best.pt", "train/results.csv"):
        assert (run / name).is_file(), name
    settings = json.loads((run / "ultralytics-settings" / "Ultralytics" / "settings.json").read_text())
    assert settings["sync"] is False and settings["api_key"] == "" and not settings["tensorboard"]
    home = Path(t["work"]) / "home"                               # ultralytics wrote nothing into the user's home
    assert not [p for p in home.rglob("*") if "ultralytics" in str(p).lower() or p.name.endswith((".pt", ".ttf"))]
    assert "RANDOM INITIALISATION" in t["stderr"]                 # from scratch, said loudly
    record = json.loads((run / "detector.json").read_text())
    assert record["init"] == "scratch" and record["weights_file"] is None
    assert record["ultralytics_args"]["fliplr"] == 0 and record["ultralytics_args"]["mosaic"] == 0
    assert record["ultralytics_args"]["degrees"] <= 5 and record["ultralytics_args"]["epochs"] == 25
    assert len(record["classes"]) == 52 and record["dataset"]["index_content_hash"]
    assert int(record["last_epoch"]["epoch"]) == 25
    assert "/" not in json.dumps(record["options"])                # no absolute paths
    assert "mAP@0.5" in t["stdout"]


def test_quality_agrees_with_ultralytics(trained_detector):
    run, dataset = Path(trained_detector["run"]), Path(trained_detector["dataset"])
    quality = json.loads((run / "quality.json").read_text())
    assert set(quality) == {"val", "test"}
    for split, q in quality.items():
        ours, theirs = q["cxrbench"]["map_50"], q["ultralytics"]["map_50"]
        print(f"{split}: mAP@0.5 cxrbench {ours:.4f} ultralytics {theirs:.4f}; "
              f"mAP@0.75 {q['cxrbench']['map_75']:.4f} / {q['ultralytics']['map_75']:.4f}; "
              f"mAP@[.5:.95] {q['cxrbench']['map_coco']:.4f} / {q['ultralytics']['map_coco']:.4f}")
        assert ours > 0.02 and sum(v["ap_50"] > 0.5 for v in q["per_class"].values() if v["ap_50"]) >= 2  # not vacuous
        assert abs(ours - theirs) <= AGREEMENT_TOLERANCE / 2
        assert abs(q["cxrbench"]["map_75"] - q["ultralytics"]["map_75"]) <= AGREEMENT_TOLERANCE / 2
        assert abs(q["cxrbench"]["map_coco"] - q["ultralytics"]["map_coco"]) <= AGREEMENT_TOLERANCE / 2
        for name, v in q["per_class"].items():
            if v["ap_50"] is not None:
                assert abs(v["ap_50"] - v["ultralytics_ap_50"]) <= AGREEMENT_TOLERANCE, (split, name, v)
        # the project's number is computed from ultralytics' own detections of that validation
        from PIL import Image

        images = split_images(dataset, split)
        labels, dets = {}, {}
        from cxrbench.detect.dataset import read_labels

        for image_id, path in images:
            with Image.open(path) as im:
                w, h = im.size
            labels[image_id] = read_labels(dataset, split, image_id, w, h)
            dets[image_id] = read_detections(run / "eval" / f"val-{split}" / "labels" / f"{image_id}.txt", w, h)
        assert sum(map(len, dets.values())) == q["detections"] > 0
        assert class_average_precision([i for i, _ in images], labels, dets)["map_50"] == pytest.approx(ours, abs=1e-12)


def test_scene_graph_command_offline(trained_detector, synth_root, synth_index, tmp_path):
    """The test split's primary images (--index): one graph each, valid for the readers,
    nodes for the model, keyed like the index."""
    run = Path(trained_detector["run"])
    images = synth_root / "mimic-cxr-jpg"
    out = tmp_path / "graphs"
    proc, attempts, _ = run_offline(["-m", "cxrbench", "scene-graph", str(images), "--detector", str(run), "--out",
                                     str(out), "--index", str(synth_index), "--split", "test",
                                     "--device", "cpu", "--conf", "0.1", "--no-progress"], tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert attempts == "", attempts[:3000]
    table = pd.read_parquet(out / "images.parquet")
    studies = pd.read_parquet(synth_index / "studies.parquet")
    test = studies[(studies["split"] == "test") & studies["image_id"].notna()]
    assert sorted(table["image_id"]) == sorted(test["image_id"]) and len(table) > 5
    assert dict(zip(table["image_id"], table["study_id"])) == dict(zip(test["image_id"], test["study_id"]))
    for r in table.itertuples(index=False):
        graph = orjson.loads((out / GRAPHS_DIR / r.graph).read_bytes())
        validate_scene_graph(graph, r.graph, {r.image_id: (float(r.width), float(r.height))})
        assert graph["study_id"] == f"s{r.study_id}"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["provenance"]["detector"]["sha256"] == file_sha256(run / "detector.pt")
    assert manifest["provenance"]["options"]["imgsz"] == 128      # no --imgsz: the detector's training size
    assert manifest["nodes"]["regions"] > 2 * len(table)           # the trained detector finds anatomy
    nodes = detected_nodes(out)
    assert set(nodes["image_id"]) <= set(table["image_id"]) and (nodes["node_kind"] == "region").sum() > 2 * len(table)
    # a folder the command did not create is refused, and what it holds is left alone
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    proc2, _, _ = run_offline(["-m", "cxrbench", "scene-graph", str(images), "--detector", str(run), "--out",
                               str(foreign), "--no-progress"], tmp_path / "w2")
    assert proc2.returncode == 1 and "not empty" in proc2.stderr
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
