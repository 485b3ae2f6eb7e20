"""Detector fixtures (session-scoped, shared by pytest-xdist workers like tests/fixtures/data.py).

``detect_dataset``: ``cxrbench detector-data`` output of the ``synth_index`` fixture (16
patients, 128-pixel images). ``trained_detector``: ``cxrbench detector-train`` on it, run once
per session as a subprocess with the network off (tests/detect/netguard.py): YOLOv8n from
scratch, 25 epochs at 128 pixels on one CPU thread (about a minute); the fixture returns the
run folder and what the run printed and attempted. Treat both as read-only.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fixtures.data import shared_tmp

TRAIN_ARGS = ("--model", "yolov8n.yaml", "--epochs", "25", "--imgsz", "128", "--batch", "8", "--device", "cpu",
              "--workers", "0", "--lr0", "0.01", "--seed", "0", "--no-progress")


@pytest.fixture(scope="session")
def detect_dataset(synth_index, tmp_path_factory) -> Path:
    from filelock import FileLock

    from cxrbench.detect.dataset import DATASET_JSON, DatasetOptions, build_yolo_dataset

    out = shared_tmp(tmp_path_factory) / "cxrbench-detect-dataset"
    with FileLock(str(out) + ".lock"):
        if not (out / DATASET_JSON).exists():   # written last
            build_yolo_dataset(synth_index, out, DatasetOptions(progress=False))
    return out


@pytest.fixture(scope="session")
def trained_detector(detect_dataset, tmp_path_factory) -> dict:
    from filelock import FileLock

    from tests.detect.netguard import run_offline

    base = shared_tmp(tmp_path_factory) / "cxrbench-detect-train"
    record = base / "result.json"
    with FileLock(str(base) + ".lock"):
        if not record.exists():
            # ultralytics writes its label cache beside the labels: train on a private copy
            data = base / "dataset"
            shutil.copytree(detect_dataset, data, symlinks=True, dirs_exist_ok=True)
            proc, attempts, mode = run_offline(["-m", "cxrbench", "detector-train", str(data), "--out",
                                                str(base / "run"), *TRAIN_ARGS], base)
            record.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout,
                                          "stderr": proc.stderr, "attempts": attempts, "mode": mode}))
    out = json.loads(record.read_text())
    return {**out, "run": base / "run", "dataset": base / "dataset", "work": base}
