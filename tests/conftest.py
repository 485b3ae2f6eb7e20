"""Shared fixtures live in tests/fixtures/, one module per owner, registered here.

cxrbench never imports the ``model`` package (the model plugs in through the Predictor protocol
and an entry point): every test outside tests/model/ runs with ``model`` made unimportable in its
process, so a stray ``import model`` in cxrbench fails the suite. Tests that drive the model in
process opt out with ``@pytest.mark.uses_model`` (subprocesses, e.g. ``cxrbench train``, are not
affected).
"""

from __future__ import annotations

import sys
from importlib.abc import MetaPathFinder

import pytest

pytest_plugins = ("tests.fixtures.data", "tests.fixtures.model")

BLOCKED = "model"


class _Unimportable(MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == BLOCKED or fullname.startswith(BLOCKED + "."):
            raise ImportError(f"cxrbench must not import {fullname!r} (tests run with the model package blocked; "
                              "mark a test that drives the model with @pytest.mark.uses_model)")
        return None


def _uses_model(item) -> bool:
    parts = item.path.parts
    return "model" in parts[parts.index("tests") + 1:parts.index("tests") + 2] or \
        item.get_closest_marker("uses_model") is not None


@pytest.fixture(autouse=True)
def _model_unimportable(request):
    if _uses_model(request.node):
        yield
        return
    saved = {k: v for k, v in sys.modules.items() if k == BLOCKED or k.startswith(BLOCKED + ".")}
    for k in saved:
        del sys.modules[k]
    finder = _Unimportable()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.update(saved)
