"""Pushing a checkpoint to the Hugging Face Hub: off unless asked, private, with a DUA warning.

Models trained on MIMIC-CXR derivatives are derived data under the PhysioNet Credentialed
Health Data Use Agreement: sharing them publicly can breach it. ``cxrbench train --push-to-hub
REPO`` is the only way in, uploads to a *private* repository, and prints the warning first.
"""

from __future__ import annotations

import logging
from pathlib import Path

from cxrbench.errors import CxrbenchError

log = logging.getLogger(__name__)

DUA_WARNING = ("WARNING: this checkpoint was trained on MIMIC-CXR-derived data. The PhysioNet Credentialed "
               "Health Data Use Agreement forbids sharing such data with anyone not bound by it; the weights "
               "and answer bank may memorise it. Pushing to a PRIVATE repository; do not make it public.")


def push_checkpoint(checkpoint: str | Path, repo_id: str) -> str:
    import sys

    print(DUA_WARNING, file=sys.stderr)
    log.warning(DUA_WARNING)
    try:
        from huggingface_hub import HfApi
    except ImportError as err:  # pragma: no cover - transformers depends on it
        raise CxrbenchError("--push-to-hub needs huggingface_hub") from err
    api = HfApi()
    try:
        api.create_repo(repo_id, private=True, exist_ok=True)
        info = api.upload_folder(folder_path=str(checkpoint), repo_id=repo_id,
                                 commit_message="cxrbench checkpoint")
    except Exception as err:  # network, auth: the trained checkpoint stays on disk either way
        raise CxrbenchError(f"push to {repo_id} failed ({type(err).__name__}: {err}); "
                            f"the checkpoint is safe at {checkpoint}") from err
    return str(info)
