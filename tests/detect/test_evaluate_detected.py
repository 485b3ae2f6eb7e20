"""`cxrbench evaluate --scene-graphs detected` end to end: the trained test detector's scene graphs
of the synthetic test split (cxrbench scene-graph, offline) as the model's visual tokens, against
the dataset's own graphs and none; and the cross-dataset mode with detected graphs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.detect.netguard import run_offline

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
COMMON = ["--split", "test", "--shard-size", "200", "--n-resamples", "50", "--no-progress", "--n-overlays", "0",
          "--skip", "bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall"]


def _evaluate(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "cxrbench", "evaluate", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=900, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def detected(trained_detector, synth_root, synth_index, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("detected") / "graphs"
    proc, attempts, _ = run_offline(["-m", "cxrbench", "scene-graph", str(synth_root / "mimic-cxr-jpg"), "--index",
                                     str(synth_index), "--split", "test", "--detector", str(trained_detector["run"]),
                                     "--out", str(out), "--no-progress"], out.parent / "work")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert attempts == ""                                        # offline
    return out


def test_evaluate_on_detected_dataset_and_no_scene_graphs(detected, tiny_checkpoint, synth_index, tmp_path):
    from cxrbench.detect.graphs import detected_nodes

    runs = {}
    for source in ("dataset", "detected", "none"):
        out = tmp_path / source
        extra = ["--scene-graph-dir", str(detected)] if source == "detected" else []
        _evaluate(str(tiny_checkpoint), "--index", str(synth_index), "--out", str(out), "--scene-graphs", source,
                  *extra, *COMMON)
        runs[source] = out
    metrics = {k: json.loads((v / "metrics.json").read_text()) for k, v in runs.items()}
    for source, m in metrics.items():
        assert m["provenance"]["inference"]["scene_graphs"] == source
        assert m["provenance"]["model"]["scene_graphs"] == source
    n = {k: m["provenance"]["n_items"] for k, m in metrics.items()}
    assert n["dataset"] == n["detected"] == n["none"]
    shards = {k: pd.concat([pd.read_parquet(p) for p in sorted((v / "shards").glob("shard-*.parquet"))])
              for k, v in runs.items()}
    tokens = {k: s["token_boxes"].map(len).to_numpy() for k, s in shards.items()}
    assert (tokens["none"] == 1).all()
    nodes = detected_nodes(detected)
    per_image = nodes.groupby("image_id").size()
    studies = pd.read_parquet(synth_index / "studies.parquet").set_index("study_id")
    expected = [1 + min(int(per_image.get(studies.loc[s, "image_id"], 0)), 48) for s in shards["detected"]["study_id"]]
    assert tokens["detected"].tolist() == expected               # the detected nodes, capped, plus the global token
    assert not np.array_equal(tokens["detected"], tokens["dataset"])
    # region answers' boxes come from the detected regions, not the dataset's
    region = shards["detected"]["head"] == "region"
    assert region.any()
    det = shards["detected"][region]["boxes_pred"].map(lambda b: [list(x) for x in b])
    ds = shards["dataset"][region]["boxes_pred"].map(lambda b: [list(x) for x in b])
    assert (det.to_numpy() != ds.to_numpy()).any()


def test_cross_dataset_with_detected_graphs(trained_detector, tiny_checkpoint, tmp_path):
    from PIL import Image

    src = REPO / "tests" / "fixtures" / "crossdataset" / "vqa-rad" / "testset.json"
    rows = [r for r in json.loads(src.read_text()) if r["qid"] in (1146, 1365, 724)]
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for r in rows:
        Image.fromarray(rng.integers(0, 255, (128, 128)).astype(np.uint8)).save(images / r["image_name"])
    (tmp_path / "q.json").write_text(json.dumps(rows))
    graphs = tmp_path / "graphs"
    proc, attempts, _ = run_offline(["-m", "cxrbench", "scene-graph", str(images), "--detector",
                                     str(trained_detector["run"]), "--out", str(graphs), "--no-progress",
                                     "--conf", "0.001"], tmp_path / "work")
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "run"
    _evaluate(str(tiny_checkpoint), "--dataset", "vqa-rad", "--questions", str(tmp_path / "q.json"), "--images",
              str(images), "--out", str(out), "--scene-graphs", "detected", "--scene-graph-dir", str(graphs),
              "--n-resamples", "20", "--no-progress", "--n-overlays", "0", "--skip", "bertscore_f1",
              "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall")
    m = json.loads((out / "metrics.json").read_text())
    assert m["provenance"]["inference"]["scene_graphs"] == "detected"
    shards = pd.concat([pd.read_parquet(p) for p in sorted((out / "shards").glob("shard-*.parquet"))])
    from cxrbench.detect.graphs import detected_nodes

    with_nodes = set(detected_nodes(graphs)["image_id"])
    n_tokens = shards["token_boxes"].map(len)
    has = shards["image_path"].map(lambda p: Path(p).stem in with_nodes).to_numpy()
    assert has.any()                                             # the detector found something somewhere
    assert (n_tokens[has] > 1).all() and (n_tokens[~has] == 1).all()
