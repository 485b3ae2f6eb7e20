"""Resuming a run from RUN/deepspeed/ without unpickling anything but tensors and plain data.

DeepSpeed saves its engine and ZeRO optimizer state with ``torch.save`` and loads it with
``torch.load(weights_only=False)``: full unpickling, so a file planted in a run directory
would run code on ``--resume``. Here every load goes through :func:`safe_load` instead
(``torch.load(weights_only=True)``, PyTorch's restricted unpickler, with only the few DeepSpeed
types its state holds allow-listed: :data:`DEEPSPEED_TYPES`):

1. :func:`latest_tag` reads ``latest`` and accepts only a tag this trainer writes
   (``stepNNNNNNNN``, a folder beside it), never a path;
2. :func:`check_state` opens every file DeepSpeed will read (and any other ``*.pt`` of the tag)
   with :func:`safe_load` (memory-mapped: the tensors are not read) on every rank, and the ranks agree before anyone loads, so a bad
   file stops all ranks with the same one-line error naming the file, never one rank hanging;
3. :func:`install_safe_loader` replaces the engine's checkpoint-engine ``load`` (the one door
   through which DeepSpeed reads these files) by :func:`safe_load` for the real load.

Our own client state (position, RNG states) is saved as tensors, numbers and strings
(:func:`rng_state`: Python's and NumPy's generator states as ``repr`` text, parsed back with
``ast.literal_eval``), so it needs no allow-listed type at all.
"""

from __future__ import annotations

import ast
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cxrbench.errors import CxrbenchError

TAG = re.compile(r"step\d{8}")
#: "module.name" of the DeepSpeed classes a ZeRO 0-2 state pickles (loss scalers, the ZeRO
#: stage enum, the fragment addresses of the partitioned fp32 groups)
DEEPSPEED_TYPES = ("deepspeed.runtime.fp16.loss_scaler.LossScaler",
                   "deepspeed.runtime.fp16.loss_scaler.DynamicLossScaler",
                   "deepspeed.runtime.zero.config.ZeroStageEnum",
                   "deepspeed.utils.tensor_fragment.fragment_address")
_UNSUPPORTED = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _allowed_types() -> list[type]:
    import importlib

    out = []
    for dotted in DEEPSPEED_TYPES:
        module, name = dotted.rsplit(".", 1)
        try:
            out.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue          # another DeepSpeed version: a state that needs it is refused by name
    return out


def safe_load(path: str | Path, map_location: Any = None, mmap: bool = False) -> Any:
    """``torch.load`` with the restricted unpickler; a one-line CxrbenchError naming the file
    for anything else (a foreign type, a truncated or garbage file)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise CxrbenchError(f"{path}: resume state file missing; the run directory is incomplete")
    if not zipfile.is_zipfile(path):      # DeepSpeed writes torch's zip format; anything else is not its state
        raise CxrbenchError(f"{path}: unreadable resume state (not a torch zip checkpoint as DeepSpeed writes; "
                            "refused without unpickling it)")
    try:
        with torch.serialization.safe_globals(_allowed_types()):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        unsafe = _UNSUPPORTED.search(str(err))
        if unsafe:
            raise CxrbenchError(f"{path}: refused to load: it pickles {unsafe.group(1)}, which is not part of a "
                                "DeepSpeed training state (a foreign or planted file?); remove it, or the run's "
                                "deepspeed/ folder to start over") from None
        raise CxrbenchError(f"{path}: unreadable resume state (not a DeepSpeed checkpoint file)") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CxrbenchError(f"{path}: unreadable resume state (truncated or damaged: {first[:200]})") from None


def latest_tag(deepspeed_dir: Path) -> str:
    latest = deepspeed_dir / "latest"
    try:
        tag = latest.read_text().strip()
    except (OSError, UnicodeDecodeError) as err:
        raise CxrbenchError(f"{latest}: unreadable ({err})") from None
    if not TAG.fullmatch(tag):
        raise CxrbenchError(f"{latest}: names {tag[:60]!r}, not a checkpoint tag of this trainer (stepNNNNNNNN)")
    if not (deepspeed_dir / tag).is_dir():
        raise CxrbenchError(f"{latest}: names {tag}, but {deepspeed_dir / tag} does not exist")
    return tag


def expected_files(folder: Path, world: int, zero_stage: int) -> list[Path]:
    """The files DeepSpeed reads to resume a ZeRO 0-2 run of ``world`` ranks (no model parallelism)."""
    files = [folder / "mp_rank_00_model_states.pt"]
    if zero_stage > 0:
        for rank in range(world):
            name = f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt"
            bf16 = folder / f"bf16_{name}"
            files.append(bf16 if bf16.exists() else folder / name)
    return files


def check_state(deepspeed_dir: Path, tag: str, world: int, zero_stage: int) -> str | None:
    """The first problem with the files of ``tag`` (None: every file is there and loads safely)."""
    folder = deepspeed_dir / tag
    files = sorted(set(expected_files(folder, world, zero_stage)) | set(folder.glob("*.pt")))
    for path in files:
        try:
            safe_load(path, map_location="cpu", mmap=True)
        except CxrbenchError as err:
            return str(err)
    return None


def install_safe_loader(engine) -> None:
    """Route DeepSpeed's own reads of checkpoint files through :func:`safe_load`."""
    engine.checkpoint_engine.load = lambda path, map_location=None: safe_load(path, map_location)


def client_position(client: Any, where: Path) -> dict[str, int]:
    """The (epoch, micro_step, global_step) of a loaded client state, validated."""
    position = client.get("position") if isinstance(client, dict) else None
    keys = ("epoch", "micro_step", "global_step")
    if not isinstance(position, dict) or not all(isinstance(position.get(k), int) and position[k] >= 0 for k in keys):
        raise CxrbenchError(f"{where}: the resume state has no valid position (epoch, micro_step, global_step)")
    if not isinstance(client.get("rng"), list) or not client["rng"]:
        raise CxrbenchError(f"{where}: the resume state has no RNG states")
    return {k: int(position[k]) for k in keys}


def rng_state() -> dict[str, Any]:
    import torch

    state = {"torch": torch.get_rng_state(), "python": repr(random.getstate()),
             "numpy": repr(np.random.get_state()[1].tolist())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(ast.literal_eval(state["python"]))
    np.random.set_state(("MT19937", np.array(ast.literal_eval(state["numpy"]), dtype=np.uint32), 624, 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])
