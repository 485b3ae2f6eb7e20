"""The model tests run with one torch thread (the hand-made index fixture is in tests/fixtures/model.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(1)
    yield
