"""How ``cxrbench evaluate`` runs a model it does not know: the Predictor protocol and the
checkpoint-loader hook.

``cxrbench`` never imports a model package. A model package (this repository's ``model/``, or
anyone's) makes its checkpoints evaluable by publishing a :class:`CheckpointLoader` under the
entry-point group ``cxrbench.checkpoint_loaders`` in its ``pyproject.toml``::

    [project.entry-points."cxrbench.checkpoint_loaders"]
    ssgvqa = "model.plugin:LOADER"

or, in a script or a test, by calling :func:`register_loader`. :func:`load_predictor` asks every
loader, in registration order (explicit registrations first, then entry points by name), whether
it can load a checkpoint directory, and the first that says yes builds the :class:`Predictor`.
``can_load`` must be cheap (read a ``config.json``; no torch import): it is asked before any
model code runs.

The frames a predictor sees and returns are the contracts of docs/contracts.md: ``predict``
receives QA rows (the index's ``qa.parquet`` columns, or a cross-dataset frame with
``question_id``, ``question``, ``image_path``, ``head``, ``question_type``, ``answer``) in their
final order and returns one row per input row, in the same order, with the predictions
contract's columns (section 3) and optionally the raw attention columns ``attn_text_visual``,
``attn_sim``, ``token_boxes`` that the attention report paints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cxrbench.errors import CxrbenchError

ENTRY_POINT_GROUP = "cxrbench.checkpoint_loaders"
SCENE_GRAPH_SOURCES = ("dataset", "detected", "none")


@dataclass(frozen=True)
class PredictorSettings:
    """What evaluate tells a loader about the run it is building a predictor for."""

    index_dir: Path | None = None        # the index whose QA rows will be predicted (None: cross-dataset)
    image_root: Path | None = None       # images for rows that carry an image_path (cross-dataset)
    scene_graphs: str = "dataset"        # dataset | detected | none (SCENE_GRAPH_SOURCES)
    scene_graph_dir: Path | None = None  # detected scene graphs (cxrbench scene-graph output)
    batch_size: int = 64
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.scene_graphs not in SCENE_GRAPH_SOURCES:
            raise ValueError(f"scene_graphs must be one of {SCENE_GRAPH_SOURCES}, got {self.scene_graphs!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")

    @property
    def use_scene_graph(self) -> bool:
        return self.scene_graphs != "none"


@runtime_checkable
class Predictor(Protocol):
    """A model ready to answer QA rows (see the module docstring for the frames)."""

    #: what the run records about the model: at least ``condition`` (ablation condition or model
    #: name); anything JSON-serialisable beside it
    identity: dict[str, Any]
    #: the folder image paths of the predicted rows are relative to (attention overlays), or None
    image_root: Path | None

    def predict(self, frame: Any) -> Any:
        """One output row per input row, in the input's order."""
        ...


@runtime_checkable
class CheckpointLoader(Protocol):
    name: str

    def can_load(self, path: Path) -> bool:
        """Whether ``path`` is a checkpoint directory of this loader's format (cheap)."""
        ...

    def load(self, path: Path, settings: PredictorSettings) -> Predictor:
        ...


_REGISTERED: list[CheckpointLoader] = []


def register_loader(loader: CheckpointLoader) -> None:
    """Make ``loader`` known to :func:`load_predictor` (asked before the entry points)."""
    if not isinstance(loader, CheckpointLoader):
        raise TypeError(f"{loader!r} is not a CheckpointLoader (needs name, can_load, load)")
    _REGISTERED[:] = [x for x in _REGISTERED if x.name != loader.name] + [loader]


def unregister_loader(name: str) -> None:
    _REGISTERED[:] = [x for x in _REGISTERED if x.name != name]


def _candidates():
    """(name, loader or the ImportError that loading it gave): registered loaders first, then the
    entry points of installed packages by name, each imported only when it is reached."""
    from importlib.metadata import entry_points

    yield from ((x.name, x) for x in list(_REGISTERED))
    known = {x.name for x in _REGISTERED}
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in known:
            continue
        try:
            yield ep.name, ep.load()
        except ImportError as err:   # a package whose model code cannot import here: reported below
            yield ep.name, err


def loaders() -> list[CheckpointLoader]:
    """Every loader that imports: the registered ones, then the installed entry points."""
    return [x for _, x in _candidates() if not isinstance(x, ImportError)]


def load_predictor(path: str | Path, settings: PredictorSettings) -> Predictor:
    """The predictor of checkpoint directory ``path``, built by the first loader that knows it."""
    path = Path(path)
    if not path.is_dir():
        raise CxrbenchError(f"{path}: checkpoint directory not found")
    tried, broken = [], []
    for name, loader in _candidates():
        if isinstance(loader, ImportError):
            broken.append(f"{name} ({loader})")
            continue
        tried.append(name)
        if loader.can_load(path):
            predictor = loader.load(path, settings)
            if not isinstance(predictor, Predictor):
                raise CxrbenchError(f"checkpoint loader {name!r} returned {type(predictor).__name__}, "
                                    "not a Predictor (identity, image_root, predict)")
            return predictor
    hint = f"; loaders that failed to import: {', '.join(broken)}" if broken else ""
    raise CxrbenchError(f"{path}: no checkpoint loader recognises this directory (asked: "
                        f"{', '.join(tried) or 'none installed'}){hint}; a model package registers one under the "
                        f"entry-point group {ENTRY_POINT_GROUP!r}")
