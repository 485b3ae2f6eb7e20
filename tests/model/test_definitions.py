"""One definition each: the data layer's name normalisation and its "answerable" rule, used by the model."""

import shutil

import pandas as pd
import torch

from cxrbench.data.selection import answerable
from cxrbench.data.vocabulary import load_vocabulary
from model.config import TokenConfig
from model.data import IndexData, build_graphs
from model.tokens import TokenEmbedder
from model.vocabularies import UNKNOWN, Vocabularies
from tests.model.helpers import small_config


def test_a_region_spelled_with_underscores_and_capitals_embeds_the_same_in_index_and_model(handmade_index):
    data_vocab = load_vocabulary(IndexData.load(handmade_index).dataset_info)
    model_vocab = Vocabularies.from_dataset(data_vocab)
    for canonical, spellings in {"left lung": ["Left_Lung", "LEFT LUNG", " left  lung "],
                                 "heart": ["Heart", "HEART"]}.items():
        index_id = data_vocab.region_index(canonical)
        assert index_id != data_vocab.unknown_region_index
        [model_id] = model_vocab.region_ids([canonical])
        assert model_id != UNKNOWN and model_id == index_id + 2            # model: 0 padding, 1 unknown
        for name in spellings:
            assert data_vocab.region_index(name) == index_id, name
            assert model_vocab.region_ids([name]) == [model_id], name
            assert model_vocab.head_region(name) == model_vocab.head_region(canonical)
            assert model_vocab.region_category(name) == model_vocab.region_category(canonical)
    assert model_vocab.entity_ids(["Pleural_Effusion"]) == model_vocab.entity_ids(["pleural effusion"]) != [UNKNOWN]
    assert model_vocab.chexpert_labels("Pleural_Effusion") == ("Pleural Effusion",)

    tokens = TokenEmbedder(TokenConfig(), 8, model_vocab.n_region_embeddings, model_vocab.n_entity_embeddings)
    geometry = torch.zeros(1, 2, 6)
    regions = torch.tensor([[model_vocab.region_ids(["Left_Lung"]), model_vocab.region_ids(["left lung"])]])
    entities = torch.tensor([[model_vocab.entity_ids(["Pleural_Effusion"]), model_vocab.entity_ids(["pleural effusion"])]])
    scene = tokens.scene(geometry, regions, entities)
    assert torch.equal(scene[0, 0], scene[0, 1]) and scene[0, 0].abs().sum() > 0


def test_lateral_only_studies_are_left_out_by_the_one_answerable_rule(handmade_index, tmp_path):
    """A study without a frontal image: its QA rows are not answerable, so neither the trainer's
    item set, the validation rows nor the token lists contain it."""
    from model.trainer import Trainer

    index_dir = tmp_path / "index"
    shutil.copytree(handmade_index, index_dir)            # its manifest names the releases by absolute path
    studies = pd.read_parquet(index_dir / "studies.parquet")
    lateral = int(studies.loc[studies["split"] == "train", "study_id"].iloc[0])
    studies.loc[studies["study_id"] == lateral, "image_id"] = None
    studies.to_parquet(index_dir / "studies.parquet")

    index = IndexData.load(index_dir)
    expected = index.qa[(index.qa["split"] == "train").to_numpy() & answerable(index.qa, index.studies)]
    assert lateral in set(index.qa.loc[index.qa["split"] == "train", "study_id"])
    assert lateral not in set(expected["study_id"])
    pd.testing.assert_frame_equal(index.answerable("train"), expected)

    graphs, counts = build_graphs(index.studies, index.nodes, 48)
    assert lateral not in graphs and counts["studies_without_frontal_image"] == 1

    trainer = Trainer(small_config(), index_dir, tmp_path / "run")
    trainer._setup_data()
    pd.testing.assert_frame_equal(trainer.train_qa, expected)
    assert set(trainer.eval_qa["study_id"]) <= set(graphs)
