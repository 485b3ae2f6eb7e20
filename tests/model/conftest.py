"""Fixtures of the model tests: the hand-made contract index and small built models."""

from __future__ import annotations

import pytest

from tests.model.handmade import write_index


@pytest.fixture(scope="session")
def handmade_index(tmp_path_factory):
    return write_index(tmp_path_factory.mktemp("handmade"))


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(1)
    yield
