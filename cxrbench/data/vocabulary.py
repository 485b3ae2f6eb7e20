"""Vocabularies of a dataset root and the name rules that fold fine names onto the fixed label spaces.

A release's fine vocabularies (about 310 region names, 237 finding entities, categories,
answer types, modifiers) come from its ``metadata/dataset_info.json``; :func:`load_vocabulary`
reads that file, tolerating the key spellings we know of and unknown extra keys. The model
embeds regions and entities by index, with one explicit *unknown* index per vocabulary (seed
4.4: ``nn.Embedding(n + 1, d)``); names outside the vocabulary map to it and are counted by the
caller (:class:`UnknownCounter`), never dropped silently.

The fixed label spaces live in :mod:`cxrbench.vocab`. Three name-based rules map onto them and
work on real release names as well as on the synthetic ones:

- :func:`head_region`: any fine region name -> one of the 26 ``vocab.HEAD_REGIONS`` (or None);
- :func:`region_category`: -> one of ``vocab.REGION_CATEGORIES`` or ``vocab.OTHER_REGION_CATEGORY``;
- :func:`entity_chexpert`: finding entity -> the CheXpert labels it counts towards.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import orjson

from cxrbench import vocab
from cxrbench.errors import DataError, reading

DATASET_INFO = "dataset_info.json"

# ----------------------------------------------------------------------------------------------
# name normalisation and the head-region rules


@lru_cache(maxsize=65536)
def normalize_name(name: str) -> str:
    """THE name normalisation of regions and entities: the release's spelling, lower case with
    single spaces (``"Left_Lung"``, ``" left  lung"`` -> ``"left lung"``).

    Every lookup of a region or entity name goes through it: the vocabulary's indices (here),
    the name rules (:func:`head_region`, :func:`region_category`, :func:`entity_chexpert`), the
    index's checks, the cross-dataset loaders, and the model's embedding vocabularies, so that a
    name spelled with underscores and capitals embeds the same everywhere.
    """
    return re.sub(r"\s+", " ", str(name).replace("_", " ").strip().lower())


_SIDE_RE = re.compile(r"\b(left|right)\b")


def _side(name: str) -> str | None:
    sides = set(_SIDE_RE.findall(name))
    return sides.pop() if len(sides) == 1 else None


def _has(name: str, *words: str) -> bool:
    return any(re.search(rf"\b{w}", name) for w in words)


@lru_cache(maxsize=8192)
def head_region(name: str) -> str | None:
    """Map a fine region name to one of the 26 region-head classes (``vocab.HEAD_REGIONS``).

    Name-based rules, applied in order from the most specific structure to the least, so that
    they also fold names the synthetic vocabulary does not have (``"left lower lobe superior
    segment"`` -> ``"left lower lung lobe"``, ``"svc"`` -> ``"mediastinum"``). Returns None
    when no head class fits: structures outside the head's label space (ribs, shoulders,
    chest wall), side-less paired structures (``"diaphragm"``, ``"costophrenic angles"``:
    the head has no bilateral class) and unknown names.

    Patient side, not image side: ``"left"`` is the patient's left, as in the release.
    """
    n = normalize_name(name)
    if n in vocab.HEAD_REGION_CATEGORY:
        return n
    side = _side(n)
    # lung lobes and their segments, the lingula (left upper lobe), the retrocardiac lung
    if _has(n, "lingul", "apicoposterior"):
        return "left upper lung lobe"
    if re.search(r"\bmiddle (lung )?lobe\b", n):
        return "right middle lung lobe"
    for level in ("upper", "lower"):
        if re.search(rf"\b{level} (lung )?lobe\b", n) and side:
            return f"{side} {level} lung lobe"
    if _has(n, "retrocardiac"):
        return "left lower lung lobe"
    # named mediastinal structures before the generic words they contain
    if _has(n, "carina", "main bronch", "tracheal bifurcation"):
        return "carina"
    if _has(n, "paratracheal"):
        return "mediastinum"
    if _has(n, "trachea"):
        return "trachea"
    if _has(n, "aortic arch", "aortic knob", "arch of the aorta"):
        return "aortic arch"
    if _has(n, "aortopulmonary"):
        return "mediastinum"
    if _has(n, "aorta", "aortic"):
        return "aorta"
    if _has(n, "hilar structures", "hilum", "hila\\b", "hilar region"):
        return f"{side} hilar structures" if side else None
    if _has(n, "cardiophrenic"):
        return "pleura"
    if _has(n, "cardiac silhouette", "cardiomediastinal", "cardiac contour", "heart size"):
        return "cardiac silhouette"
    if _has(n, "heart", "cardiac", "ventric", "atrium", "atria\\b", "atrial", "pericard"):
        return "heart"
    if _has(n, "mediastin", "vena cava", "svc", "azygos", "cavoatrial", "subclavian", "pulmonary arter", "esophag",
            "thymus", "brachiocephalic", "thoracic inlet", "lymph node", "great vessel"):
        return "abdomen" if _has(n, "gastroesophageal") else "mediastinum"
    # bones with a head class
    if _has(n, "clavic", "sternoclavicular", "acromioclavicular"):
        return f"{side} clavicle" if side else None
    if _has(n, "spine", "spinal", "vertebra", "intervertebral") or re.fullmatch(r"[ctl]\d{1,2}( vertebra)?", n):
        return "spine"
    # diaphragm and pleura
    if _has(n, "subdiaphragm", "hemidiaphragm", "diaphragm"):
        return f"{side} hemidiaphragm" if side else None
    if _has(n, "costophrenic"):
        return f"{side} costophrenic angle" if side else "pleura"
    if _has(n, "pleura", "fissure"):
        return "pleura"
    # abdomen and neck
    if _has(n, "abdom", "stomach", "gastr", "liver", "hepat", "spleen", "splen", "bowel",
            "colon", "kidney", "renal", "gallbladder", "pancrea", "duoden", "retroperiton"):
        return "abdomen"
    if _has(n, "neck", "supraclavicular", "thyroid", "jugular", "cervical"):
        return "neck"
    # the rest of the lungs: whole lungs, zones, apices, bases, perihilar regions, hemithoraces
    if _has(n, "lung", "zone", "apex", "apical", "apices", "base", "basal", "basilar",
            "perihilar", "infrahilar", "suprahilar", "hemithorax", "parenchym", "lobe"):
        return f"{side} lung" if side else None
    return None


_OSSEOUS_RE = re.compile(r"\b(rib|ribs|intercostal|scapul|humer|shoulder|glenohumeral|stern|bone|"
                         r"osseous|joint|costal cartilage|skelet)")
_PULMONARY_RE = re.compile(r"\b(interstiti|airway|bronch|alveol|pulmonary vascul|pulmonary vein|lung)")
_CARDIAC_RE = re.compile(r"\b(valve|coronary|epicardial|cardiac|heart)")
_MEDIASTINAL_RE = re.compile(r"\b(lymph node|great vessel|mediastin|thym)")


@lru_cache(maxsize=8192)
def region_category(name: str) -> str:
    """Anatomical category of a fine region name (seed 2.6.1 dimension 2, seed 13.5).

    One of ``vocab.REGION_CATEGORIES`` (cardiac, pulmonary, pleural, mediastinal, osseous) or
    ``vocab.OTHER_REGION_CATEGORY`` (abdomen, neck, soft tissues, whole chest, unknown names).
    Uses the head class when there is one (so the two rules never disagree), then name rules
    for the structures the head cannot represent (ribs -> osseous, interstitium -> pulmonary).
    """
    head = head_region(name)
    if head is not None:
        return vocab.HEAD_REGION_CATEGORY[head]
    n = normalize_name(name)
    if _has(n, "diaphragm", "costophrenic"):
        return "pleural"
    if _OSSEOUS_RE.search(n):
        return "osseous"
    if _PULMONARY_RE.search(n):
        return "pulmonary"
    if _CARDIAC_RE.search(n):
        return "cardiac"
    if _MEDIASTINAL_RE.search(n):
        return "mediastinal"
    return vocab.OTHER_REGION_CATEGORY


# ----------------------------------------------------------------------------------------------
# entity -> CheXpert labels

_DEVICE_WORDS = re.compile(
    r"\b(tube|tubes|catheter|line|lines|picc|pacemaker|pacer|icd|leads|stent|port|port-a-cath|"
    r"pump|drain|wires|hardware|clips|staples|coils|device|pads|prosthesis|implant|lvad|"
    r"recorder|annuloplasty|prosthetic valve|cannula|grafts)\b")
_NOT_DEVICE = re.compile(r"\b(kerley|linear|ecg|monitoring|foreign|bullet)\b")
_MASS_NOT_LUNG = re.compile(r"\b(mediastinal|soft tissue|pleural|breast|thyroid)\b")


@lru_cache(maxsize=8192)
def entity_chexpert(name: str, categories: tuple[str, ...] = ()) -> tuple[str, ...]:
    """CheXpert labels (``vocab.CHEXPERT_LABELS``) that a positive mention of ``name`` counts towards.

    The rules mirror the CheXpert labeler's mention phrases (Irvin et al., AAAI 2019,
    github.com/stanfordmlgroup/chexpert-labeler ``phrases/mention``) on the release's entity
    names. Decisions, so that a derived study label means what the labeler's would:

    - labels are *not* propagated up the CheXpert hierarchy (the labeler does not do it either),
      with one exception: pneumonia and consolidation are airspace opacities by definition and
      also count towards "Lung Opacity";
    - "Edema" includes heart failure, vascular congestion, fluid overload and Kerley B lines;
    - "Lung Lesion" is nodules, lung masses, cancer, metastases and cavities, not mediastinal,
      pleural or soft-tissue masses; "Pleural Other" is pleural thickening, plaques, calcification;
    - "Pleural Effusion" includes hemothorax, empyema, fissural fluid and costophrenic blunting;
      hydropneumothorax counts towards both effusion and pneumothorax;
    - devices (tubes, lines, catheters, pacemakers, valves, stents, drains, surgical hardware)
      count towards "Support Devices", also when ``categories`` contain DEVICE or TUBES_LINES;
      external ECG leads, monitoring devices and foreign bodies do not;
    - "No Finding" is never returned: it is a study-level absence, see
      :func:`cxrbench.data.chexpert.labels_from_entities`.
    """
    n = normalize_name(name)
    labels: list[str] = []

    def add(*names: str) -> None:
        labels.extend(x for x in names if x not in labels)

    if _has(n, "atelecta", "collapse", "volume loss"):
        add("Atelectasis")
    if _has(n, "cardiomegaly", "enlarged cardiac silhouette", "enlarged heart") or (
            _has(n, "enlargement") and _has(n, "ventric", "atrial", "cardiac", "heart")):
        add("Cardiomegaly")
    if _has(n, "consolidat"):
        add("Consolidation", "Lung Opacity")
    if _has(n, "edema", "heart failure", "vascular congestion", "pulmonary congestion",
            "fluid overload", "kerley", "hilar congestion"):
        add("Edema")
    if _has(n, "cardiomediastin", "mediastinal widening", "widened mediastinum"):
        add("Enlarged Cardiomediastinum")
    if _has(n, "fracture"):
        add("Fracture")
    if (_has(n, "nodul", "cancer", "carcinoma", "tumor", "neoplasm", "cavit", "metastas")
            or (_has(n, "mass") and not _MASS_NOT_LUNG.search(n))
            or n == "lesion") and not _has(n, "bone", "lytic", "sclerotic"):
        add("Lung Lesion")
    if _has(n, "opacit", "infiltrat", "airspace", "ground glass", "density"):
        add("Lung Opacity")
    if (_has(n, "pleural effusion", "effusion", "hemothorax", "empyema", "pleural fluid",
             "fissural fluid", "hydropneumothorax", "blunting", "chylothorax")
            and not _has(n, "pericardial")):
        add("Pleural Effusion")
    if _has(n, "pleural thickening", "pleural plaque", "pleural calcification", "fibrothorax",
            "pleural abnormality", "pleural mass"):
        add("Pleural Other")
    if _has(n, "pneumonia", "aspiration", "lung abscess") or n == "infection":
        add("Pneumonia", "Lung Opacity")
    if "pneumothora" in n:
        add("Pneumothorax")
    is_device = bool(_DEVICE_WORDS.search(n)) or bool({"DEVICE", "TUBES_LINES"} & set(categories))
    if is_device and not _NOT_DEVICE.search(n):
        add("Support Devices")
    order = {label: i for i, label in enumerate(vocab.CHEXPERT_LABELS)}
    return tuple(sorted(labels, key=order.__getitem__))


# ----------------------------------------------------------------------------------------------
# the vocabulary of a dataset root


@dataclass(frozen=True)
class Vocabulary:
    """Fine vocabularies of one release, from its ``dataset_info.json``.

    Index ``i < len(regions)`` is a known region; ``unknown_region_index == len(regions)`` is
    the explicit unknown slot, so an embedding table has ``n_region_embeddings`` rows (the same
    for entities).
    """

    regions: tuple[str, ...]
    entities: tuple[str, ...]
    categories: tuple[str, ...] = ()
    subcategories: tuple[str, ...] = ()
    answer_types: tuple[str, ...] = ()
    modifier_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    region_parent: Mapping[str, str | None] = field(default_factory=dict)
    region_laterality: Mapping[str, str] = field(default_factory=dict)
    localized_regions: frozenset[str] = frozenset()
    entity_categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    entity_subcategories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_region_idx", {r: i for i, r in enumerate(self.regions)})
        object.__setattr__(self, "_entity_idx", {e: i for i, e in enumerate(self.entities)})

    @property
    def unknown_region_index(self) -> int:
        return len(self.regions)

    @property
    def unknown_entity_index(self) -> int:
        return len(self.entities)

    @property
    def n_region_embeddings(self) -> int:
        return len(self.regions) + 1

    @property
    def n_entity_embeddings(self) -> int:
        return len(self.entities) + 1

    def region_index(self, name: str, unknown: "UnknownCounter | None" = None) -> int:
        idx = self._region_idx.get(name)  # type: ignore[attr-defined]
        if idx is None:
            idx = self._region_idx.get(normalize_name(name))  # type: ignore[attr-defined]
        if idx is None:
            if unknown is not None:
                unknown.regions[name] += 1
            return self.unknown_region_index
        return idx

    def entity_index(self, name: str, unknown: "UnknownCounter | None" = None) -> int:
        idx = self._entity_idx.get(name)  # type: ignore[attr-defined]
        if idx is None:
            idx = self._entity_idx.get(normalize_name(name))  # type: ignore[attr-defined]
        if idx is None:
            if unknown is not None:
                unknown.entities[name] += 1
            return self.unknown_entity_index
        return idx

    def has_region(self, name: str) -> bool:
        return normalize_name(name) in self._region_idx  # type: ignore[attr-defined]

    def has_entity(self, name: str) -> bool:
        return normalize_name(name) in self._entity_idx  # type: ignore[attr-defined]

    def region_ancestors(self, name: str) -> list[str]:
        """Parents of ``name`` from the nearest up (empty when the release gives no tree)."""
        out: list[str] = []
        cur = self.region_parent.get(normalize_name(name))
        while cur is not None and cur not in out:
            out.append(cur)
            cur = self.region_parent.get(cur)
        return out


@dataclass
class UnknownCounter:
    """Counts of names met outside the vocabulary (reported in the index manifest)."""

    regions: Counter = field(default_factory=Counter)
    entities: Counter = field(default_factory=Counter)

    def update(self, other: "UnknownCounter") -> None:
        self.regions.update(other.regions)
        self.entities.update(other.entities)

    def as_dict(self, top: int = 20) -> dict[str, Any]:
        return {
            "unknown_regions": {"count": sum(self.regions.values()), "distinct": len(self.regions),
                                "top": dict(sorted(self.regions.items(), key=lambda kv: (-kv[1], kv[0]))[:top])},
            "unknown_entities": {"count": sum(self.entities.values()), "distinct": len(self.entities),
                                 "top": dict(sorted(self.entities.items(), key=lambda kv: (-kv[1], kv[0]))[:top])},
        }


# key spellings we accept for each vocabulary (first found wins); unknown extra keys are ignored
_REGION_KEYS = ("regions", "region_names", "anatomical_regions", "all_regions")
_ENTITY_KEYS = ("finding_entities", "entities", "obs_entities", "findings", "finding_names")
_CATEGORY_KEYS = ("categories", "obs_categories", "finding_categories")
_SUBCATEGORY_KEYS = ("subcategories", "obs_subcategories", "finding_subcategories")
_ANSWER_TYPE_KEYS = ("answer_types",)
_MODIFIER_KEYS = ("modifier_types", "modifiers")


def _first(info: Mapping[str, Any], keys: Iterable[str]) -> Any:
    for k in keys:
        if k in info:
            return info[k]
    return None


def _names(value: Any, file: str, key: str) -> tuple[list[str], dict[str, dict]]:
    """A vocabulary given as a list of names, a list of records, or a name -> record mapping."""
    if value is None:
        return [], {}
    if isinstance(value, Mapping):
        items = list(value.items())
        return [normalize_name(k) for k, _ in items], {normalize_name(k): (v if isinstance(v, dict) else {}) for k, v in items}
    if isinstance(value, list):
        names, info = [], {}
        for i, item in enumerate(value):
            if isinstance(item, str):
                names.append(normalize_name(item))
            elif isinstance(item, Mapping):
                nm = item.get("name") or item.get("region") or item.get("entity")
                if not isinstance(nm, str):
                    raise DataError(file, f"{key}[{i}]", "vocabulary record without a 'name'")
                names.append(normalize_name(nm))
                info[normalize_name(nm)] = dict(item)
            else:
                raise DataError(file, f"{key}[{i}]", f"expected a name or a record, got {type(item).__name__}")
        return names, info
    raise DataError(file, key, f"expected a list or a mapping, got {type(value).__name__}")


def parse_dataset_info(info: Mapping[str, Any], file: str = DATASET_INFO) -> Vocabulary:
    """Build a :class:`Vocabulary` from the parsed ``dataset_info.json`` (tolerant of key variants)."""
    if not isinstance(info, Mapping):
        raise DataError(file, None, "dataset_info must be a JSON object")
    rkey = next((k for k in _REGION_KEYS if k in info), None)
    ekey = next((k for k in _ENTITY_KEYS if k in info), None)
    if rkey is None:
        raise DataError(file, None, f"no region vocabulary (looked for {', '.join(_REGION_KEYS)})")
    if ekey is None:
        raise DataError(file, None, f"no entity vocabulary (looked for {', '.join(_ENTITY_KEYS)})")
    regions, rinfo = _names(info[rkey], file, rkey)
    entities, einfo = _names(info[ekey], file, ekey)
    rinfo.update({normalize_name(k): v for k, v in (info.get("region_info") or {}).items()})
    einfo.update({normalize_name(k): v for k, v in (info.get("entity_info") or {}).items()})
    mods = _first(info, _MODIFIER_KEYS) or {}
    if isinstance(mods, list):
        mods = {str(m): () for m in mods}
    localized = frozenset(r for r in regions if rinfo.get(r, {}).get("localized", True))
    return Vocabulary(
        regions=tuple(dict.fromkeys(regions)),
        entities=tuple(dict.fromkeys(entities)),
        categories=tuple(_first(info, _CATEGORY_KEYS) or ()),
        subcategories=tuple(_first(info, _SUBCATEGORY_KEYS) or ()),
        answer_types=tuple(_first(info, _ANSWER_TYPE_KEYS) or ()),
        modifier_types={str(k): tuple(v or ()) for k, v in mods.items()},
        region_parent={r: (normalize_name(v["parent"]) if v.get("parent") else None) for r, v in rinfo.items()},
        region_laterality={r: v["laterality"] for r, v in rinfo.items() if v.get("laterality")},
        localized_regions=localized,
        entity_categories={e: tuple(v.get("categories", ())) for e, v in einfo.items()},
        entity_subcategories={e: tuple(v.get("subcategories", ())) for e, v in einfo.items()},
        source=str(file),
    )


def load_vocabulary(path: str | Path) -> Vocabulary:
    """Load the vocabularies of a dataset: ``path`` is a ``dataset_info.json``, a QBA release
    folder (``metadata/dataset_info.json`` under it) or a dataset root holding both releases."""
    p = Path(path)
    if p.is_dir():
        from cxrbench.data.layout import resolve_roots

        p = resolve_roots(p).dataset_info
    if not p.exists():
        raise DataError(str(p), None, "dataset_info.json not found")
    with reading(p, what="JSON file"):
        data = p.read_bytes()
    try:
        info = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise DataError(str(p), f"char {err.pos}", f"malformed JSON: {err.msg}") from None
    return parse_dataset_info(info, str(p))
