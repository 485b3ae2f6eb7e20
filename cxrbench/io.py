"""Atomic output and provenance.

Every file cxrbench writes goes through these helpers: the content is written to a temporary
file in the same directory and renamed over the target, so a killed job never leaves a
half-written output that a later step would read as complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable

PathLike = str | os.PathLike


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


# mkstemp creates 0600 files; outputs get the mode a plain open() would give them
_FILE_MODE = 0o666 & ~_umask()


def _atomic(path: PathLike, write: Callable[[str], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, _FILE_MODE)
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    return _atomic(path, write)


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    # numpy scalars and arrays, paths, sets: written as their plain JSON equivalents
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, 2-space indent, NaN written as null."""
    return json.dumps(_nan_to_none(obj), indent=2, sort_keys=True, default=_json_default,
                      allow_nan=False) + "\n"


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    if hasattr(obj, "dtype") and hasattr(obj, "tolist"):
        return _nan_to_none(obj.tolist())
    return obj


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj))


def atomic_write_parquet(path: PathLike, frame: Any, **kwargs: Any) -> Path:
    """Write a pandas DataFrame or pyarrow Table to Parquet atomically (no pandas index)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    return _atomic(path, lambda tmp: pq.write_table(table, tmp, **kwargs))


def file_sha256(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(names: Iterable[str] = ("cxrbench", "numpy", "pandas", "pyarrow", "scipy",
                                              "scikit-learn", "torch", "transformers")) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(command: str, extra_packages: Iterable[str] = (), **fields: Any) -> dict[str, Any]:
    """What every report records about how it was made: command, versions, commit, and the
    caller's fields (input hashes, seeds, settings).

    No wall-clock time and no absolute paths: the same inputs and settings give a byte-identical
    report, which is what lets tests and users check that a rerun reproduced a result.
    """
    names = ("cxrbench", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", *extra_packages)
    return {
        "command": command,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "packages": package_versions(dict.fromkeys(names)),
        **fields,
    }
