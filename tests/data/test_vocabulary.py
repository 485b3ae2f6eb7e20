"""Vocabulary loading and the name rules (head regions, region categories, CheXpert labels)."""

from __future__ import annotations

import json

import pytest

from cxrbench import vocab
from cxrbench.data.synth import lexicon
from cxrbench.data.vocabulary import (
    UnknownCounter,
    entity_chexpert,
    head_region,
    load_vocabulary,
    parse_dataset_info,
    region_category,
)
from cxrbench.errors import DataError


def test_every_head_region_maps_to_itself_and_fine_names_fold_onto_heads():
    for h in vocab.HEAD_REGIONS:
        assert head_region(h) == h
    cases = {
        "right lower lobe posterior basal segment": "right lower lung lobe", "lingula": "left upper lung lobe",
        "left upper lobe apicoposterior segment": "left upper lung lobe", "retrocardiac region": "left lower lung lobe",
        "right middle lobe": "right middle lung lobe", "Left_Costophrenic_Angle": "left costophrenic angle",
        "left main bronchus": "carina", "svc": "mediastinum", "aortic knob": "aortic arch", "descending aorta": "aorta",
        "right hilum": "right hilar structures", "T7 vertebra": "spine", "left sternoclavicular joint": "left clavicle",
        "right subdiaphragmatic region": "right hemidiaphragm", "left ventricle": "heart",
        "cardiomediastinal silhouette": "cardiac silhouette", "right apical zone": "right lung", "stomach": "abdomen",
        "right supraclavicular region": "neck", "minor fissure": "pleura", "left cardiophrenic angle": "pleura",
    }
    for name, want in cases.items():
        assert head_region(name) == want, name
    for name in ("left 5th posterior rib", "right scapula", "left chest wall", "diaphragm", "lungs", "unicorn"):
        assert head_region(name) is None, name


def test_rules_cover_the_synthetic_vocabulary():
    heads = [head_region(r.name) for r in lexicon.REGIONS if r.localized]
    assert sum(h is not None for h in heads) / len(heads) > 0.45
    cats = {region_category(r.name) for r in lexicon.REGIONS}
    assert cats == {*vocab.REGION_CATEGORIES, vocab.OTHER_REGION_CATEGORY}
    for r in lexicon.REGIONS:
        h = head_region(r.name)
        if h is not None:  # the two rules never disagree
            assert region_category(r.name) == vocab.HEAD_REGION_CATEGORY[h]
    assert region_category("right 5th posterior rib") == "osseous"
    assert region_category("interstitium") == "pulmonary"
    assert region_category("left chest wall") == vocab.OTHER_REGION_CATEGORY


def test_entity_chexpert_decisions():
    assert entity_chexpert("pneumonia") == ("Lung Opacity", "Pneumonia")
    assert entity_chexpert("consolidation") == ("Consolidation", "Lung Opacity")
    assert entity_chexpert("hydropneumothorax") == ("Pleural Effusion", "Pneumothorax")
    assert entity_chexpert("pericardial effusion") == ()
    assert entity_chexpert("mediastinal mass") == ()
    assert entity_chexpert("nodule") == ("Lung Lesion",)
    assert entity_chexpert("kerley b lines") == ("Edema",)
    assert entity_chexpert("linear opacities") == ("Lung Opacity",)
    assert entity_chexpert("endotracheal tube") == ("Support Devices",)
    assert entity_chexpert("ecg leads") == ()
    assert entity_chexpert("Pleural_Effusion") == ("Pleural Effusion",)
    assert entity_chexpert("some new device", ("DEVICE",)) == ("Support Devices",)
    for e in lexicon.ENTITIES:
        assert set(entity_chexpert(e.name, e.categories)) <= set(vocab.CHEXPERT_LABELS) - {"No Finding"}


def test_vocabulary_of_the_synthetic_root_has_an_explicit_unknown_index(synth_root):
    v = load_vocabulary(synth_root)
    assert len(v.regions) == len(lexicon.REGIONS) and len(v.entities) == len(lexicon.ENTITIES)
    assert v.n_region_embeddings == len(v.regions) + 1 and v.unknown_region_index == len(v.regions)
    unknown = UnknownCounter()
    assert v.region_index("left lung", unknown) == v.regions.index("left lung")
    assert v.region_index("Left_Lung", unknown) == v.regions.index("left lung")
    assert v.region_index("left elbow", unknown) == v.unknown_region_index
    assert v.entity_index("unicorn sign", unknown) == v.unknown_entity_index
    assert unknown.as_dict()["unknown_regions"] == {"count": 1, "distinct": 1, "top": {"left elbow": 1}}
    assert v.region_parent["left lower lung zone"] == "left lung"
    assert v.region_ancestors("left lung apex") == ["left upper lung zone", "left lung", "lungs"]
    assert "interstitium" not in v.localized_regions and "left lung" in v.localized_regions


def test_dataset_info_variants_and_errors(tmp_path):
    v = parse_dataset_info({"region_names": [{"name": "Left Lung", "parent": None}, "right lung"],
                            "entities": {"pleural effusion": {"categories": ["DISEASE"]}}, "some_future_key": 1})
    assert v.regions == ("left lung", "right lung") and v.entity_categories["pleural effusion"] == ("DISEASE",)
    with pytest.raises(DataError, match="no region vocabulary"):
        parse_dataset_info({"finding_entities": []}, "x.json")
    p = tmp_path / "dataset_info.json"
    p.write_text('{"regions": [1, ')
    with pytest.raises(DataError) as err:
        load_vocabulary(p)
    assert str(p) in str(err.value) and "malformed JSON" in str(err.value)
    p.write_text(json.dumps({"regions": [3], "finding_entities": []}))
    with pytest.raises(DataError, match=r"regions\[0\]"):
        load_vocabulary(p)


def test_normalize_name_is_the_one_rule_for_every_name_lookup(synth_root):
    from cxrbench.data.vocabulary import normalize_name

    v = load_vocabulary(synth_root)
    for spelled in ("Left_Lung", "  LEFT   lung ", "left_lung"):
        assert normalize_name(spelled) == "left lung"
        assert v.region_index(spelled) == v.region_index("left lung") != v.unknown_region_index
        assert v.has_region(spelled) and head_region(spelled) == "left lung" and region_category(spelled) == "pulmonary"
    assert v.entity_index("Pleural_Effusion") == v.entity_index("pleural effusion") != v.unknown_entity_index
    assert v.has_entity("Pleural_Effusion")
    assert v.region_ancestors("Left_Lung_Apex") == v.region_ancestors("left lung apex") != []
