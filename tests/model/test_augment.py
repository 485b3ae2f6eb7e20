import numpy as np
import torch

from model import augment
from model.data import REGION_MIRROR, load_image
from model.vocabularies import REGION_CLASSES
from tests.model.helpers import Setup


def test_swap_left_right_is_an_involution_that_keeps_case():
    text = "Is there an effusion in the Left lung or the right costophrenic angle? LEFT. leftover"
    swapped = augment.swap_left_right(text)
    assert swapped == "Is there an effusion in the Right lung or the left costophrenic angle? RIGHT. leftover"
    assert augment.swap_left_right(swapped) == text


def test_region_mirror_maps_sides_and_keeps_midline():
    names = [REGION_CLASSES[k] for k in REGION_MIRROR]
    assert names[REGION_CLASSES.index("left lung")] == "right lung"
    assert names[REGION_CLASSES.index("right lower lung lobe")] == "left lower lung lobe"
    assert names[REGION_CLASSES.index("heart")] == "heart"
    assert np.array_equal(REGION_MIRROR[REGION_MIRROR], np.arange(len(REGION_CLASSES)))
    # right middle lobe has no mirror class: it stays itself rather than inventing one
    assert names[REGION_CLASSES.index("right middle lung lobe")] == "right middle lung lobe"


def test_flipped_item_is_consistent_with_the_flipped_image(handmade_index):
    s = Setup(handmade_index, "full", "train.augment.hflip=1.0", train=True)
    ds = s.dataset
    i = next(k for k in range(len(ds)) if ds.qa["question_type"].iat[k] == "D03_where_is_finding")
    plain = Setup(handmade_index, "full", train=False).dataset.item(i)
    flipped = ds.item(i, epoch=0)
    assert flipped["flip"] and not plain["flip"]
    w = ds.graphs[int(ds.study_ids[i])].width
    np.testing.assert_allclose(flipped["token_boxes"][:, [0, 2]], w - plain["token_boxes"][:, [2, 0]])
    assert flipped["question"] == augment.swap_left_right(plain["question"])
    np.testing.assert_array_equal(flipped["region"], plain["region"][REGION_MIRROR])
    assert np.flatnonzero(flipped["region"]).tolist() != np.flatnonzero(plain["region"]).tolist()
    # node regions are swapped by name, entities are not
    obs = next(j for j, ids in enumerate(plain["entity_ids"]) if ids and ids[0] > 1)
    assert flipped["entity_ids"][obs] == plain["entity_ids"][obs]
    assert flipped["region_ids"][obs] != plain["region_ids"][obs]
    # the pixels under a flipped box of the flipped image are the mirrored pixels of the original box
    image = load_image(s.images.path(plain["image_path"]), 96)
    mirrored = np.ascontiguousarray(image[:, :, ::-1])
    x1, y1, x2, y2 = plain["token_boxes"][obs].astype(int)
    fx1, fy1, fx2, fy2 = flipped["token_boxes"][obs].astype(int)
    np.testing.assert_array_equal(mirrored[:, fy1:fy2, fx1:fx2], image[:, y1:y2, x1:x2][:, :, ::-1])
    # the online batch carries the flipped pixels
    batch = s.batch([i])
    orig = torch.from_numpy(load_image(s.images.path(plain["image_path"]), s.settings.image_size))
    torch.testing.assert_close(batch["images"][0], orig.flip(-1))


def test_augmentation_is_deterministic_per_seed_epoch_and_item(handmade_index):
    s = Setup(handmade_index, "full", "train.augment.hflip=0.5", "train.augment.node_dropout=0.5",
              "train.augment.box_jitter=0.1", "train.augment.question_synonyms=1.0",
              "train.augment.template_variation=0.5", "train.augment.edge_perturbation=0.5", train=True)
    a = [s.dataset.item(i, epoch=3) for i in range(8)]
    b = [s.dataset.item(i, epoch=3) for i in range(8)]
    c = [s.dataset.item(i, epoch=4) for i in range(8)]
    for x, y in zip(a, b):
        assert x["question"] == y["question"] and np.array_equal(x["token_boxes"], y["token_boxes"])
    assert any(x["question"] != y["question"] or not np.array_equal(x["token_boxes"], y["token_boxes"])
               for x, y in zip(a, c))
    for it in a:   # the global token is never dropped nor jittered
        assert it["feature_rows"][0] == 0
        np.testing.assert_array_equal(it["token_boxes"][0], [0, 0, 96, 96])


def test_question_and_graph_augmentations():
    rng = np.random.default_rng(0)
    assert augment.vary_template("Is there cardiomegaly?", rng) in (
        "Do you see cardiomegaly?", "Can you identify cardiomegaly?", "Is cardiomegaly present?")
    out = augment.synonym_replace("Is there pleural effusion or Cardiomegaly?", rng)
    assert "pleural effusion" not in out and "Cardiomegaly" not in out and out.endswith("?")
    kept = augment.drop_nodes(["global", "region", "observation", "observation"], 1.0, rng)
    assert kept.tolist() == [0, 1]
    siblings = augment.sibling_groups({"left lung": "left lung", "left lung base": "left lung", "heart": "heart"})
    assert augment.perturb_regions(["left lung base", "heart"], siblings, 1.0, rng) == ["left lung", "heart"]
    boxes = np.array([[10.0, 10.0, 30.0, 50.0]])
    jittered = augment.jitter_boxes(boxes, 0.05, 100, 100, rng)
    assert np.all(np.abs(jittered - boxes) <= 0.05 * np.array([20, 40, 20, 40]) + 1e-5)
