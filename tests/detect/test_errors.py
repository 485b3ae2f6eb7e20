"""Bad input to the detector commands: one line naming the file and the problem, exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("ultralytics")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cxrbench", *args], capture_output=True, text=True, cwd=REPO,
                          timeout=300)


def _one_line(p: subprocess.CompletedProcess) -> str:
    lines = [line for line in p.stderr.splitlines() if line.strip() and "RANDOM INITIALISATION" not in line]
    assert p.returncode == 1 and len(lines) == 1, p.stderr[-2000:]
    return lines[0]


def test_weights_that_are_not_a_detector(tmp_path, detect_dataset):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    (tmp_path / "images").mkdir()
    line = _one_line(_cli("scene-graph", str(detect_dataset / "images" / "test"), "--detector", str(junk),
                          "--out", str(tmp_path / "sg")))
    assert str(junk) in line and "not loadable as detector weights" in line
    line = _one_line(_cli("detector-train", str(detect_dataset), "--out", str(tmp_path / "run"), "--model",
                          "yolov8n.yaml", "--weights", str(junk), "--epochs", "1", "--imgsz", "64", "--device", "cpu"))
    assert str(junk) in line and "cannot transfer weights" in line
    line = _one_line(_cli("scene-graph", str(tmp_path / "images"), "--detector", str(tmp_path / "nowhere.pt"),
                          "--out", str(tmp_path / "sg2")))
    assert "no detector weights" in line


def test_another_models_classes_are_refused(tmp_path, detect_dataset):
    from cxrbench.detect.offline import load_ultralytics

    load_ultralytics(tmp_path, verbose=False)
    from ultralytics import YOLO

    coco = tmp_path / "coco80.pt"
    YOLO("yolov8n.yaml").save(str(coco))          # an untrained 80-class COCO model
    line = _one_line(_cli("detector-eval", str(coco), str(detect_dataset), "--out", str(tmp_path / "eval"),
                          "--imgsz", "64", "--device", "cpu"))
    assert "not a cxrbench detector" in line and "80 classes" in line


def test_bad_model_yaml_and_empty_folders(tmp_path, detect_dataset):
    line = _one_line(_cli("detector-train", str(detect_dataset), "--out", str(tmp_path / "run"), "--model",
                          "yolov99z.yaml", "--device", "cpu"))
    assert "yolov99z.yaml" in line and "not found" in line
    (tmp_path / "empty").mkdir()
    line = _one_line(_cli("scene-graph", str(tmp_path / "empty"), "--detector", str(tmp_path), "--out",
                          str(tmp_path / "sg")))
    assert "no detector weights" in line
