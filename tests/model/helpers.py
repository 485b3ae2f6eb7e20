"""Small models and real batches over the hand-made index, for the unit tests."""

from __future__ import annotations

from cxrbench.data.vocabulary import load_vocabulary
from model.config import load_config
from model.data import DatasetSettings, ImageStore, IndexData, QADataset, build_graphs, collate
from model.network import build_model
from model.tokenizer import build_tokenizer
from model.vocabularies import Vocabularies

SMALL = ["model.encoder.hidden_size=32", "model.encoder.num_layers=1", "model.encoder.num_heads=2",
         "model.encoder.intermediate_size=64", "model.heads.hidden=32", "model.backbone.image_size=64"]


def small_config(condition: str = "full", *overrides: str):
    return load_config("tiny", condition=condition, overrides=[*SMALL, *overrides])


class Setup:
    """Model + dataset + online-feature batches of one condition on an index."""

    def __init__(self, index_dir, condition: str = "full", *overrides: str, split: str = "train", train: bool = False):
        self.cfg = small_config(condition, *overrides)
        m = self.cfg.model
        self.index = IndexData.load(index_dir)
        self.vocabs = Vocabularies.from_dataset(load_vocabulary(self.index.dataset_info))
        self.tokenizer = build_tokenizer(m.tokenizer.vocab)
        self.graphs, self.graph_counts = build_graphs(self.index.studies, self.index.nodes, m.tokens.max_nodes,
                                                      m.tokens.scene_graph)
        qa = self.index.qa[self.index.qa["split"] == split]
        self.settings = DatasetSettings(m.encoder.max_question_tokens, m.backbone.image_size, m.tokens.scene_graph,
                                        "online", self.cfg.train.augment, seed=self.cfg.seed)
        self.dataset = QADataset(qa, self.graphs, self.vocabs, self.settings, studies=self.index.studies, train=train)
        self.images = ImageStore(self.index.image_root, m.backbone.image_size)
        self.model = build_model(m, self.vocabs, self.tokenizer, seed=0)

    def batch(self, indices, epoch: int = 0, features=None):
        items = [self.dataset.item(i, epoch) for i in indices]
        settings = self.settings
        if features is not None:
            settings = DatasetSettings(**{**settings.__dict__, "features": "cache"})
        return collate(items, self.tokenizer, settings, features=features, images=self.images)
