"""Editing copies of a synthetic root: the damaged inputs of the reader, index, check and probe tests."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

from cxrbench.data import layout as L


def clone(synth_root: Path, tmp_path: Path, name: str = "root") -> Path:
    """A writable copy of a fixture root without the images and exports (the index needs neither)."""
    dst = tmp_path / name
    shutil.copytree(synth_root, dst, ignore=shutil.ignore_patterns("files", "exports", "synthetic_truth"))
    return dst


def rewrite_member(zip_path: Path, member: str, edit) -> None:
    """Replace one member of a zip with ``edit(bytes) -> bytes``."""
    with zipfile.ZipFile(zip_path) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            z.writestr(info, edit(data) if info.filename == member else data)


def first_member(root: Path, zip_name: str, kind: str) -> str:
    with zipfile.ZipFile(root / L.QBA_DIR / zip_name) as z:
        return next(n for n in z.namelist() if n.endswith(f".{kind}.json"))


def edit_json(fn):
    def edit(data: bytes) -> bytes:
        doc = json.loads(data)
        fn(doc)
        return json.dumps(doc).encode()

    return edit


def corrupt_deflate(zip_path: Path, member: str) -> None:
    """Overwrite bytes inside ``member``'s compressed stream (the zip's directory stays intact)."""
    with zipfile.ZipFile(zip_path) as z:
        info = z.getinfo(member)
    with open(zip_path, "r+b") as fh:
        fh.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(fh.read(2), "little"), int.from_bytes(fh.read(2), "little")
        start = info.header_offset + 30 + name_len + extra_len
        fh.seek(start + info.compress_size // 3)
        fh.write(b"\xff" * 64)
