"""The one door to ``ultralytics``: imported here, offline, with its settings in the run folder.

``ultralytics`` reaches for the network by default: at import it resolves two DNS names to
decide whether it is online, and when it thinks it is, training and prediction may send usage
events and error reports, check the package index for updates, pip-install missing
requirements, download fonts (``Arial.ttf``) for plots, pretrained weights for the AMP check
and any weights or dataset named but not found locally, and stream to its hub. It also writes
a ``settings.json`` into the user's home.

:func:`load_ultralytics` makes every one of those impossible before the package is imported
(the decisions are taken at import time, so the environment must be set first):

- ``YOLO_OFFLINE=1``: ``ultralytics.utils.ONLINE`` is False without any DNS lookup, which
  disables events, error reports, update checks and downloads guarded by it;
- ``YOLO_AUTOINSTALL=false``: no pip install of a missing requirement;
- ``YOLO_CONFIG_DIR=<run folder>/ultralytics-settings``: the settings file (and any font
  cache) lives in the run folder, never in the user's home;
- settings ``sync=False``, no API key, every logger integration off (ClearML, Comet, DVC,
  MLflow, Ray Tune, TensorBoard, W&B), so only the trainer's local files are written;
- ``ULTRALYTICS_API_KEY`` is removed from the environment (the hub callback reads it);
- a local stand-in for the ``Arial.ttf`` that ultralytics' dataset check would otherwise
  probe for and download (regardless of ``ONLINE``): matplotlib's DejaVu Sans, copied under
  that name into the settings folder (:func:`_local_fonts`).

The callers add what the arguments control: ``plots=False`` (plots need a downloaded font),
``amp=False`` (the AMP check downloads weights) and weights only from a local path
(:func:`cxrbench.detect.train.resolve_weights`). tests/detect proves the whole path with the
network off. Nothing else in cxrbench imports ultralytics: ``import cxrbench`` never does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

from cxrbench.errors import CxrbenchError

SETTINGS_DIR = "ultralytics-settings"
FONT_NAMES = ("Arial.ttf", "Arial.Unicode.ttf")   # the fonts ultralytics looks for (utils.checks.check_font)
INSTALL_HINT = ("the detector needs the optional extra: .venv/bin/pip install -e '.[detect]' "
                "torch==2.14.1 torchvision==0.29.1 (ultralytics, AGPL-3.0)")

# Everything in ultralytics' settings that would reach out, switched off.
OFFLINE_SETTINGS = {
    "sync": False, "api_key": "", "clearml": False, "comet": False, "dvc": False, "mlflow": False,
    "raytune": False, "tensorboard": False, "wandb": False, "vscode_msg": False, "openvino_msg": False,
}


def offline_environment(settings_dir: str | Path, verbose: bool = True) -> dict[str, str]:
    """The environment variables that make ultralytics offline with settings in ``settings_dir``."""
    return {
        "YOLO_OFFLINE": "1",
        "YOLO_AUTOINSTALL": "false",
        "YOLO_CONFIG_DIR": str(Path(settings_dir).resolve()),
        "YOLO_VERBOSE": "true" if verbose else "false",
    }


def load_ultralytics(run_dir: str | Path, verbose: bool = True) -> ModuleType:
    """Import ultralytics offline with its settings under ``run_dir/ultralytics-settings``.

    Settings directories are fixed at ultralytics' import: in a process that already imported
    it (through this function), the first run folder keeps the settings file and every later
    call re-applies :data:`OFFLINE_SETTINGS`. An ultralytics imported some other way, online,
    is refused: its network decisions are already taken.
    """
    settings_dir = Path(run_dir) / SETTINGS_DIR
    settings_dir.mkdir(parents=True, exist_ok=True)
    if "ultralytics" not in sys.modules:
        os.environ.update(offline_environment(settings_dir, verbose))
        os.environ.pop("ULTRALYTICS_API_KEY", None)
    try:
        import ultralytics
        from ultralytics import utils as ul_utils
    except ImportError as err:
        raise CxrbenchError(f"cannot import ultralytics ({err}); {INSTALL_HINT}") from None
    if ul_utils.ONLINE:
        raise CxrbenchError("ultralytics was imported before cxrbench.detect made it offline (it would use the "
                            "network); import it only through cxrbench.detect.offline.load_ultralytics")
    ul_utils.SETTINGS.update(OFFLINE_SETTINGS)
    _local_fonts(Path(ul_utils.USER_CONFIG_DIR))
    return ultralytics


def _local_fonts(config_dir: Path) -> None:
    """ultralytics checks for ``Arial.ttf`` whenever it reads a dataset (plots or not) and,
    when missing, probes and downloads it whatever ``ONLINE`` says. A local stand-in under
    that name in its settings folder ends the search: matplotlib's DejaVu Sans (shipped with
    matplotlib, a cxrbench dependency). Only ultralytics' plots would draw with it."""
    import shutil

    from matplotlib import font_manager

    src = Path(font_manager.findfont("DejaVu Sans", fallback_to_default=True))
    for name in FONT_NAMES:
        dst = config_dir / name
        if not dst.exists():
            shutil.copyfile(src, dst)


def describe(err: BaseException) -> str:
    """An ultralytics or torch exception in one line (theirs span several, with advice)."""
    text = str(err).strip().splitlines()[0].strip() if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def ultralytics_version() -> str | None:
    """The installed ultralytics version, without importing it (None when not installed)."""
    from importlib import metadata

    try:
        return metadata.version("ultralytics")
    except metadata.PackageNotFoundError:
        return None
