import dataclasses

import numpy as np
import torch

from model.backbone import backbone_fingerprint
from model.feature_cache import FeatureCache
from tests.model.helpers import Setup


def _graphs(s):
    return [s.graphs[sid] for sid in sorted(s.graphs)][:6]


def test_cached_features_give_the_same_model_outputs_as_the_online_backbone(handmade_index, tmp_path):
    s = Setup(handmade_index, "full", "train.augment.hflip=1.0", train=True)
    fp = backbone_fingerprint(s.model.backbone)
    counts = FeatureCache.build(tmp_path / "f.h5", s.model.backbone, fp, s.graphs.values(), s.images,
                                variants=("orig", "flip"), progress=False)
    assert counts["extracted"] == len(s.graphs)
    cache = FeatureCache(tmp_path / "f.h5")
    model = s.model.eval()
    idx = list(range(8))
    with torch.no_grad():
        online = model(s.batch(idx, epoch=0))
        cached = model(s.batch(idx, epoch=0, features=cache))   # same items, flipped ones read the flip variant
    for key in ("binary", "region", "text", "chexpert", "attn_sim"):
        torch.testing.assert_close(cached[key], online[key], atol=1e-4, rtol=1e-4)
    cache.close()


def test_cache_is_reused_and_invalidated_by_boxes_or_backbone(handmade_index, tmp_path):
    s = Setup(handmade_index)
    path = tmp_path / "f.h5"
    fp = backbone_fingerprint(s.model.backbone)
    graphs = _graphs(s)
    assert FeatureCache.build(path, s.model.backbone, fp, graphs, s.images, progress=False)["extracted"] == 6
    again = FeatureCache.build(path, s.model.backbone, fp, graphs, s.images, progress=False)
    assert again == {"extracted": 0, "reused": 6, "stale": 0, "rebuilt_file": 0}
    # one image's boxes change (another index, another node cap): that image alone is redone
    moved = [dataclasses.replace(g, boxes=g.boxes + np.float32(1.0)) if k == 2 else g for k, g in enumerate(graphs)]
    counts = FeatureCache.build(path, s.model.backbone, fp, moved, s.images, progress=False)
    assert counts == {"extracted": 1, "reused": 5, "stale": 1, "rebuilt_file": 0}
    # other backbone weights: the whole file is rebuilt
    other = Setup(handmade_index)
    with torch.no_grad():
        next(other.model.backbone.parameters()).add_(1.0)
    fp2 = backbone_fingerprint(other.model.backbone)
    assert fp2 != fp
    counts = FeatureCache.build(path, other.model.backbone, fp2, moved, s.images, progress=False)
    assert counts["rebuilt_file"] == 1 and counts["extracted"] == 6
    assert FeatureCache(path).fingerprint == fp2


def test_a_killed_extraction_resumes_without_trusting_incomplete_images(handmade_index, tmp_path):
    import h5py

    s = Setup(handmade_index)
    path = tmp_path / "f.h5"
    fp = backbone_fingerprint(s.model.backbone)
    graphs = _graphs(s)
    FeatureCache.build(path, s.model.backbone, fp, graphs, s.images, progress=False)
    with h5py.File(path, "a") as f:          # simulate a kill between writing data and the flag
        del f["images"][graphs[0].image_id].attrs["complete"]
    counts = FeatureCache.build(path, s.model.backbone, fp, graphs, s.images, progress=False)
    assert counts["extracted"] == 1 and counts["reused"] == 5
