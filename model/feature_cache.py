"""Backbone RoI features pre-extracted once to HDF5 (seed 6.3), so training never reruns the backbone.

Layout::

    features.h5
      attrs: format, fingerprint (sha256 of backbone config + weights), channels, dtype
      images/<image_id>/orig   (n_tokens, channels)   features of the image's token boxes
      images/<image_id>/flip   (n_tokens, channels)   same boxes, horizontally flipped image
      images/<image_id>.attrs: boxes_sha (sha256 of the boxes and image size), complete

Validity: a file whose fingerprint differs from the current backbone's is rebuilt from
scratch; an image whose boxes changed (another index, another node cap) is re-extracted; an
image without the ``complete`` flag (a killed extraction) is re-extracted. Extraction resumes
where a killed one stopped, flushing every few images. Features are computed one image at a
time in eval mode, exactly as :class:`model.inference.Predictor` computes them online.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Iterable

import numpy as np

from model.data import ImageGraph, ImageStore

log = logging.getLogger(__name__)
FORMAT = "cxrbench-roi-features/1"


def boxes_sha(graph: ImageGraph) -> str:
    return hashlib.sha256(graph.boxes_key()).hexdigest()


def extract_image(backbone, image: np.ndarray, boxes_px: np.ndarray):
    """(n, channels) features of one (3, S, S) image for boxes in resized-image pixels."""
    import torch

    device = backbone.mean.device          # the backbone's own device (a GPU at inference, if asked)
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(image))[None].to(device)
        boxes = torch.from_numpy(boxes_px.astype(np.float32)).to(device)
        return backbone(x, [boxes]).float().cpu().numpy()


class FeatureCache:
    """Read access to a built cache (one open HDF5 handle, read-only)."""

    def __init__(self, path: str | Path):
        import h5py

        self.path = Path(path)
        self._file = h5py.File(self.path, "r")
        self.fingerprint = str(self._file.attrs["fingerprint"])
        self.channels = int(self._file.attrs["channels"])

    def get(self, image_id: str, variant: str = "orig") -> np.ndarray:
        return self._file["images"][str(image_id)][variant][()].astype(np.float32)

    def has(self, image_id: str, variant: str = "orig") -> bool:
        g = self._file["images"].get(str(image_id))
        return g is not None and variant in g

    def close(self) -> None:
        self._file.close()

    @staticmethod
    def build(path: str | Path, backbone, fingerprint: str, graphs: Iterable[ImageGraph], images: ImageStore,
              variants: tuple[str, ...] = ("orig",), dtype: str = "float32", progress: bool = True,
              flush_every: int = 32) -> dict[str, int]:
        """Extract what is missing or stale; returns counts (extracted, reused, rebuilt)."""
        import h5py
        from tqdm import tqdm

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        counts = {"extracted": 0, "reused": 0, "stale": 0, "rebuilt_file": 0}
        if path.exists():
            try:
                with h5py.File(path, "r") as f:
                    ok = f.attrs.get("format") == FORMAT and f.attrs.get("fingerprint") == fingerprint
            except OSError:
                ok = False
            if not ok:
                log.warning("feature cache %s: backbone changed or file unreadable; rebuilding", path)
                path.unlink()
                counts["rebuilt_file"] = 1
        backbone.eval()
        size = images.size
        graphs = [g for g in graphs if g.image_id is not None]
        with h5py.File(path, "a") as f:
            f.attrs["format"] = FORMAT
            f.attrs["fingerprint"] = fingerprint
            f.attrs["channels"] = int(backbone.channels)
            f.attrs["dtype"] = dtype
            root = f.require_group("images")
            todo = []
            for g in graphs:
                key = str(g.image_id)
                sha = boxes_sha(g)
                grp = root.get(key)
                if (grp is not None and grp.attrs.get("complete") and grp.attrs.get("boxes_sha") == sha
                        and all(v in grp for v in variants)):
                    counts["reused"] += 1
                    continue
                if grp is not None:
                    counts["stale"] += 1
                    del root[key]
                todo.append((g, sha))
            for k, (g, sha) in enumerate(tqdm(todo, desc="extracting RoI features", unit="image",
                                              disable=not progress or not todo)):
                image = images.get(g.image_path)
                scale = np.array([size / g.width, size / g.height] * 2, dtype=np.float32)
                grp = root.create_group(str(g.image_id))
                for variant in variants:
                    if variant == "orig":
                        feats = extract_image(backbone, image, g.boxes * scale)
                    else:
                        from model.augment import flip_boxes

                        flipped = np.ascontiguousarray(image[:, :, ::-1])
                        feats = extract_image(backbone, flipped, flip_boxes(g.boxes, g.width) * scale)
                    grp.create_dataset(variant, data=feats.astype(dtype))
                grp.attrs["boxes_sha"] = sha
                grp.attrs["complete"] = True
                counts["extracted"] += 1
                if (k + 1) % flush_every == 0:
                    f.flush()
        return counts
