"""ultralytics is an optional extra: nothing in cxrbench imports it at import time, the detector
commands say how to install it when it is missing, and training arguments keep the design's
augmentation limits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cxrbench.detect.train import FIXED_AUGMENTATION, TrainOptions, ultralytics_train_args
from cxrbench.errors import CxrbenchError

REPO = Path(__file__).resolve().parents[2]

IMPORT_ALL = r'''
import importlib, json, pkgutil, sys
import cxrbench
failed = {}
names = sorted(m.name for m in pkgutil.walk_packages(cxrbench.__path__, "cxrbench.") if m.name != "cxrbench.__main__")
for name in names:
    try:
        importlib.import_module(name)
    except Exception as err:  # another module's own trouble is reported, not hidden
        failed[name] = f"{type(err).__name__}: {err}"
print(json.dumps({"modules": names, "failed": failed, "ultralytics": sorted(m for m in sys.modules if m.split(".")[0] == "ultralytics")}))
'''

BLOCK = '''
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ultralytics":
            raise ImportError("No module named 'ultralytics'")
        return None
sys.meta_path.insert(0, _Block())
'''


def test_no_cxrbench_module_imports_ultralytics():
    out = subprocess.run([sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    detect = [m for m in got["modules"] if m.startswith("cxrbench.detect") or m in (
        "cxrbench.commands.detector_data", "cxrbench.commands.detector_train", "cxrbench.commands.detector_eval",
        "cxrbench.commands.scene_graph")]
    assert len(detect) >= 11 and not [m for m in detect if m in got["failed"]], got["failed"]
    assert got["ultralytics"] == [], got["ultralytics"]
    if got["failed"]:
        print("modules that did not import (not the detector's):", got["failed"])


def _blocked_env(tmp_path: Path) -> dict:
    import os

    d = tmp_path / "block"
    d.mkdir()
    (d / "sitecustomize.py").write_text(BLOCK)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(d), str(REPO)])}


def test_commands_without_the_extra_say_how_to_install_it(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "data.yaml").write_text("nc: 52\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"")
    (tmp_path / "w.pt").write_bytes(b"")
    env = _blocked_env(tmp_path)
    for args in (["detector-train", str(tmp_path / "data"), "--out", str(tmp_path / "run")],
                 ["scene-graph", str(tmp_path / "images"), "--detector", str(tmp_path / "w.pt"), "--out",
                  str(tmp_path / "sg")]):
        p = subprocess.run([sys.executable, "-m", "cxrbench", *args], capture_output=True, text=True, env=env,
                           timeout=300)
        assert p.returncode == 1, (args, p.stderr[-1500:])
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "pip install -e '.[detect]'" in lines[0] and "AGPL-3.0" in lines[0], p.stderr


def test_augmentation_limits_and_valid_arguments(tmp_path):
    (tmp_path / "data.yaml").write_text("nc: 52\n")
    args = ultralytics_train_args(tmp_path, tmp_path / "run", TrainOptions(device="cpu"))
    assert args["fliplr"] == args["flipud"] == args["mosaic"] == args["mixup"] == args["copy_paste"] == 0
    assert args["degrees"] == 5.0 and args["plots"] is False and args["amp"] is False
    assert {k: args[k] for k in FIXED_AUGMENTATION} == FIXED_AUGMENTATION
    for bad in (dict(degrees=6.0), dict(degrees=-1.0), dict(imgsz=100), dict(epochs=0)):
        with pytest.raises(CxrbenchError):
            TrainOptions(**bad)
    with pytest.raises(CxrbenchError, match="detector-data"):
        ultralytics_train_args(tmp_path / "nowhere", tmp_path, TrainOptions())
    pytest.importorskip("ultralytics")
    from cxrbench.detect.offline import load_ultralytics

    load_ultralytics(tmp_path, verbose=False)
    from ultralytics.cfg import DEFAULT_CFG_DICT, get_cfg

    assert set(args) <= set(DEFAULT_CFG_DICT), set(args) - set(DEFAULT_CFG_DICT)   # no key ultralytics would ignore
    cfg = get_cfg(overrides={**args, "mode": "train"})
    assert (cfg.fliplr, cfg.mosaic, cfg.degrees, cfg.close_mosaic) == (0.0, 0.0, 5.0, 0)


def test_offline_loader_settings(tmp_path):
    """Settings land in the run folder with every reach-out switched off."""
    pytest.importorskip("ultralytics")
    from cxrbench.detect.offline import OFFLINE_SETTINGS, SETTINGS_DIR, load_ultralytics

    ul = load_ultralytics(tmp_path, verbose=False)
    from ultralytics.utils import ONLINE, SETTINGS

    assert ONLINE is False and ul.__version__
    assert {k: SETTINGS[k] for k in OFFLINE_SETTINGS} == OFFLINE_SETTINGS
    assert (tmp_path / SETTINGS_DIR).is_dir()


def test_missing_weights_and_resume_are_user_errors(tmp_path):
    from cxrbench.detect.train import resolve_weights

    with pytest.raises(CxrbenchError, match="nothing is downloaded"):
        resolve_weights("yolov8m.pt")              # a name, not a local file: never a download
    assert resolve_weights(None) is None
