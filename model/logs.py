"""Console output of the model code: our logging set-up and the libraries' bars and chatter.

``--no-progress`` means no progress bar at all, including those of the libraries that build
and load the model (transformers, timm, huggingface_hub): :func:`quiet_libraries` turns them
and their info logs off. Warnings stay (a randomly initialised backbone must never pass
unnoticed).
"""

from __future__ import annotations

import logging
import os

NOISY = ("DeepSpeed", "deepspeed", "torch.distributed")
LIBRARIES = ("transformers", "timm", "huggingface_hub")


def setup_logging(rank: int) -> None:
    """INFO from rank 0 (our messages), warnings only from the other ranks and from DeepSpeed."""
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def quiet_libraries() -> None:
    """No progress bars and no info logs from the model-building libraries (warnings remain)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_warning()
    hf_logging.disable_progress_bar()
