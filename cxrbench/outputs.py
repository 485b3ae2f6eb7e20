"""Output directories owned by the command that writes them, committed as one set.

Every command that writes a directory (``index --out``, ``score --out``, ``evaluate --out``,
``compare --out``, ``stats --out``, ``train --out``, ...) claims it with :meth:`OutputDir.claim`:

- a directory that does not exist, or is empty, is created and marked with
  :data:`MARKER` (which command made it, which entries it wrote);
- a directory holding that marker for the same command is reused (a rerun or a resume);
- any other non-empty directory (a user's folder, the dataset root, another command's output)
  is refused, unless ``overwrite`` is given; even then nothing the command did not write is
  ever deleted: ``--overwrite`` only replaces and removes the entries the marker lists.

Outputs that belong together (predictions + metrics + reports) are written into a staging
folder inside the directory (:meth:`OutputDir.staging`) and moved into place by
:meth:`OutputDir.commit`. The marker is a journal: it records the pending commit before the
first move, so a kill during the moves is rolled forward by the next command that claims or
reads the directory (:func:`settle`). A kill therefore leaves the old set or the new set,
never a mix; a kill before the commit leaves the old set and a stale staging folder that the
next claim removes.

The claim also proves, before any long work starts, that the directory can be written.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cxrbench.errors import CxrbenchError

MARKER = ".cxrbench-output.json"
STAGING_PREFIX = ".staging-"
FORMAT = "cxrbench-output/1"


def _read_marker(path: Path) -> dict | None:
    p = path / MARKER
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as err:
        raise CxrbenchError(f"{p}: unreadable output marker ({err}); remove it if you know what the folder holds") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CxrbenchError(f"{p}: not a cxrbench output marker")
    return data


def _write_marker(path: Path, data: dict) -> None:
    from cxrbench.io import atomic_write_json

    atomic_write_json(path / MARKER, data)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    elif p.exists() or p.is_symlink():
        p.unlink()


def _roll_forward(path: Path, data: dict) -> dict:
    """Finish an interrupted commit: move what is still staged, drop what the new set replaced."""
    pending = data.get("pending")
    if not pending:
        return data
    staging = path / pending["staging"]
    trash = staging / ".replaced"
    for name in pending["entries"]:
        src, dst = staging / name, path / name
        if not src.exists() and not src.is_symlink():
            continue                       # moved before the kill
        if dst.exists() or dst.is_symlink():
            trash.mkdir(parents=True, exist_ok=True)
            os.replace(dst, trash / name)
        os.replace(src, dst)
    for name in data.get("owned", []):
        if name not in pending["entries"]:
            _remove(path / name)           # the old set's entries the new set does not have
    if staging.exists():
        shutil.rmtree(staging)
    data = {**data, "owned": sorted(pending["entries"]), "pending": None}
    _write_marker(path, data)
    return data


def settle(path: str | Path) -> None:
    """Complete a commit a killed command left pending in ``path`` (readers call this before
    reading a run dir; a no-op for folders without a marker or without a pending commit)."""
    path = Path(path)
    data = _read_marker(path) if path.is_dir() else None
    if data and data.get("pending"):
        try:
            _roll_forward(path, data)
        except OSError as err:
            raise CxrbenchError(f"{path}: an interrupted write of {data.get('command')} could not be completed "
                                f"({err}); rerun that command") from None


@dataclass
class OutputDir:
    path: Path
    command: str
    owned: list[str] = field(default_factory=list)
    _staging: Path | None = None
    _in_place: set[str] = field(default_factory=set)   # adopted by this command: kept by commit

    @classmethod
    def claim(cls, path: str | Path, command: str, *, overwrite: bool = False) -> "OutputDir":
        """Claim ``path`` for ``command`` (see the module docstring); raises CxrbenchError for a
        folder the command may not write, before any work is done."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise CxrbenchError(f"{path}: exists and is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
            data = _read_marker(path)
            if data is not None:
                data = _roll_forward(path, data)
                if data.get("command") != command:
                    if not overwrite:
                        raise CxrbenchError(f"{path}: written by {data.get('command')!r}, not {command!r}; "
                                            "choose another output folder (or --overwrite)")
                    data = {**data, "owned": []}   # the other command's files are not ours to remove
            else:
                foreign = sorted(p.name for p in path.iterdir())
                if foreign and not overwrite:
                    shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                    raise CxrbenchError(f"{path}: not empty and not an output folder of {command!r} "
                                        f"(holds {shown}); choose an empty or new folder, or pass --overwrite "
                                        "(which replaces only the files this command writes)")
                data = {"format": FORMAT, "command": command, "owned": [], "pending": None}
            data = {**data, "command": command}
            _write_marker(path, data)    # proves the folder is writable before any long work
            for stale in path.glob(STAGING_PREFIX + "*"):
                shutil.rmtree(stale, ignore_errors=True)
        except PermissionError as err:
            raise CxrbenchError(f"{path}: cannot write here ({err.strerror})") from None
        except OSError as err:
            raise CxrbenchError(f"{path}: cannot use as an output folder ({err.strerror or err})") from None
        return cls(path, command, list(data.get("owned", [])))

    def staging(self) -> Path:
        """A fresh folder inside the output folder: write the new set here, then :meth:`commit`."""
        if self._staging is None:
            self._staging = self.path / f"{STAGING_PREFIX}{uuid.uuid4().hex[:12]}"
            self._staging.mkdir()
        return self._staging

    def commit(self, keep: tuple[str, ...] = ()) -> list[str]:
        """Move every staged entry into place as one set. Entries of the previous set that the
        new set lacks are removed, except ``keep`` and what this command :meth:`adopt`-ed (entries
        written in place, e.g. a resume cache or the index ``evaluate --data`` builds).
        Returns the names now owned."""
        if self._staging is None:
            raise RuntimeError("nothing staged")
        keep = tuple(sorted(set(keep) | self._in_place))
        entries = sorted(p.name for p in self._staging.iterdir())
        data = _read_marker(self.path) or {"format": FORMAT, "command": self.command, "owned": []}
        owned_kept = [n for n in data.get("owned", []) if n in keep]
        data = {**data, "command": self.command, "owned": sorted(set(data.get("owned", [])) - set(keep)),
                "pending": {"staging": self._staging.name, "entries": entries}}
        _write_marker(self.path, data)
        data = _roll_forward(self.path, data)
        self.owned = sorted(set(data["owned"]) | set(owned_kept))
        _write_marker(self.path, {**data, "owned": self.owned})
        self._staging = None
        return self.owned

    def adopt(self, *names: str) -> None:
        """Record entries written in place (not staged), e.g. a resume cache such as ``shards/``,
        so that ``--overwrite`` may later replace them."""
        data = _read_marker(self.path) or {"format": FORMAT, "command": self.command, "owned": [], "pending": None}
        self._in_place |= set(names)
        self.owned = sorted(set(data.get("owned", [])) | set(names))
        _write_marker(self.path, {**data, "owned": self.owned})

    def discard(self) -> None:
        """Drop the staged set (the previous set stays as it was)."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)
            self._staging = None
