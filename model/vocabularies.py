"""The label spaces a checkpoint is bound to: fine region/entity vocabularies and head classes.

The fine vocabularies (the release's ~310 regions and ~237 finding entities) index the learned
region and entity embeddings of the scene-graph token; their maps onto the fixed head label
spaces (:data:`cxrbench.vocab.HEAD_REGIONS`, :data:`cxrbench.vocab.CHEXPERT_LABELS`) turn
answers into targets. All of it is taken from the data layer (``cxrbench.data.vocabulary``)
once, at training time, and frozen into the checkpoint's ``config.json``, so that inference
derives true labels exactly as training did even if the data layer's mapping later changes.

Embedding indices: 0 is padding (an empty list pools to the zero vector), 1 is unknown
(names outside the vocabulary, counted), the vocabulary starts at 2. Names are looked up in the
data layer's spelling (:func:`cxrbench.data.vocabulary.normalize_name`: ``Left_Lung`` ->
``left lung``), the one normalisation the index uses too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from cxrbench import vocab as V
from cxrbench.data.vocabulary import normalize_name

PAD, UNKNOWN = 0, 1

# Answer spaces of the heads. Binary: index 1 = yes (contract: label 1 = yes).
BINARY_CLASSES: tuple[str, ...] = ("no", "yes")
REGION_CLASSES: tuple[str, ...] = V.HEAD_REGIONS
SEVERITY_CLASSES: tuple[str, ...] = V.SEVERITY_LEVELS
FINDING_CLASSES: tuple[str, ...] = V.CHEXPERT_LABELS
HEAD_CLASSES: dict[str, tuple[str, ...]] = {
    "binary": BINARY_CLASSES,
    "region": REGION_CLASSES,
    "severity": SEVERITY_CLASSES,
    "text": FINDING_CLASSES,
}
HEAD_NAMES: tuple[str, ...] = tuple(HEAD_CLASSES)          # binary, region, severity, text
HEAD_INDEX: dict[str, int] = {h: i for i, h in enumerate(HEAD_NAMES)}
# The single-head ablation's unified answer classes: every head's classes in one softmax.
UNIFIED_OFFSETS: dict[str, int] = {}
_off = 0
for _head, _classes in HEAD_CLASSES.items():
    UNIFIED_OFFSETS[_head] = _off
    _off += len(_classes)
UNIFIED_SIZE = _off
UNIFIED_CLASSES: tuple[str, ...] = tuple(c for classes in HEAD_CLASSES.values() for c in classes)


@dataclass
class Vocabularies:
    regions: tuple[str, ...]
    entities: tuple[str, ...]
    region_to_head: dict[str, str | None] = field(default_factory=dict)      # fine -> HEAD_REGIONS
    region_to_category: dict[str, str] = field(default_factory=dict)         # fine -> category
    entity_to_chexpert: dict[str, tuple[str, ...]] = field(default_factory=dict)  # entity -> CheXpert labels

    def __post_init__(self) -> None:
        self.regions = tuple(self.regions)
        self.entities = tuple(self.entities)
        self._region_index = {name: i + 2 for i, name in enumerate(self.regions)}
        self._entity_index = {name: i + 2 for i, name in enumerate(self.entities)}
        bad = {h for h in self.region_to_head.values() if h is not None and h not in REGION_CLASSES}
        if bad:
            raise ValueError(f"region_to_head maps onto unknown head regions {sorted(bad)}")
        self.entity_to_chexpert = {k: tuple(v) for k, v in self.entity_to_chexpert.items()}
        bad = {c for labels in self.entity_to_chexpert.values() for c in labels if c not in FINDING_CLASSES}
        if bad:
            raise ValueError(f"entity_to_chexpert maps onto unknown CheXpert labels {sorted(bad)}")

    @property
    def n_region_embeddings(self) -> int:
        return len(self.regions) + 2

    @property
    def n_entity_embeddings(self) -> int:
        return len(self.entities) + 2

    def region_ids(self, names: Iterable[str]) -> list[int]:
        return [self._region_index.get(normalize_name(n), UNKNOWN) for n in names]

    def entity_ids(self, names: Iterable[str]) -> list[int]:
        return [self._entity_index.get(normalize_name(n), UNKNOWN) for n in names]

    def head_region(self, name: str) -> str | None:
        """Head class of a fine region name (head names map to themselves)."""
        name = normalize_name(name)
        if name in REGION_CLASSES:
            return name
        return self.region_to_head.get(name)

    def region_category(self, name: str) -> str:
        name = normalize_name(name)
        if name in V.HEAD_REGION_CATEGORY and name not in self.region_to_category:
            return V.HEAD_REGION_CATEGORY[name]
        return self.region_to_category.get(name, V.OTHER_REGION_CATEGORY)

    def chexpert_labels(self, entity: str) -> tuple[str, ...]:
        """CheXpert labels a positive mention of ``entity`` counts towards (may be empty)."""
        return self.entity_to_chexpert.get(normalize_name(entity), ())

    def to_json(self) -> dict[str, Any]:
        return {"regions": list(self.regions), "entities": list(self.entities),
                "region_to_head": dict(sorted(self.region_to_head.items())),
                "region_to_category": dict(sorted(self.region_to_category.items())),
                "entity_to_chexpert": {k: list(v) for k, v in sorted(self.entity_to_chexpert.items())}}

    @classmethod
    def from_dataset(cls, vocabulary) -> "Vocabularies":
        """Freeze a ``cxrbench.data.vocabulary.Vocabulary`` and the data layer's name rules."""
        from cxrbench.data import vocabulary as dv

        return cls(
            regions=tuple(vocabulary.regions), entities=tuple(vocabulary.entities),
            region_to_head={r: dv.head_region(r) for r in vocabulary.regions},
            region_to_category={r: dv.region_category(r) for r in vocabulary.regions},
            entity_to_chexpert={e: dv.entity_chexpert(e, tuple(vocabulary.entity_categories.get(e, ())))
                                for e in vocabulary.entities},
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Vocabularies":
        return cls(regions=tuple(data["regions"]), entities=tuple(data["entities"]),
                   region_to_head=dict(data.get("region_to_head", {})),
                   region_to_category=dict(data.get("region_to_category", {})),
                   entity_to_chexpert=dict(data.get("entity_to_chexpert", {})))
