"""Fixed label spaces shared by the data layer, the model heads and the metrics.

The fine vocabularies of a dataset (its ~310 region names and ~237 finding entities) are not
fixed here: they come from the release's ``metadata/dataset_info.json`` (see
``cxrbench.data``). What is fixed is what the answer heads predict (seed 5.2-5.4) and how
regions are grouped for stratified evaluation (seed 13.5).
"""

from __future__ import annotations

# The 14 CheXpert labels, in the column order of mimic-cxr-2.0.0-{chexpert,negbio}.csv.gz.
CHEXPERT_LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)

# mimic-cxr-2.1.0-test-set-labeled.csv names one column differently from the automatic labels.
GOLD_COLUMN_ALIASES: dict[str, str] = {"Airspace Opacity": "Lung Opacity"}

# Region head classes (seed 4.3 / 5.4: 26 major anatomical regions), in release spelling
# (lower case, spaces). Fine regions of the dataset map onto these (cxrbench.data.vocabulary).
HEAD_REGIONS: tuple[str, ...] = (
    "left lung",
    "right lung",
    "heart",
    "aorta",
    "trachea",
    "mediastinum",
    "left clavicle",
    "right clavicle",
    "spine",
    "left hemidiaphragm",
    "right hemidiaphragm",
    "left costophrenic angle",
    "right costophrenic angle",
    "left hilar structures",
    "right hilar structures",
    "carina",
    "cardiac silhouette",
    "aortic arch",
    "left upper lung lobe",
    "left lower lung lobe",
    "right upper lung lobe",
    "right middle lung lobe",
    "right lower lung lobe",
    "pleura",
    "abdomen",
    "neck",
)

# Anatomical region categories for stratification (seed 2.6.1 dimension 2, seed 13.5).
REGION_CATEGORIES: tuple[str, ...] = ("cardiac", "pulmonary", "pleural", "mediastinal", "osseous")
OTHER_REGION_CATEGORY = "other"

HEAD_REGION_CATEGORY: dict[str, str] = {
    "left lung": "pulmonary",
    "right lung": "pulmonary",
    "heart": "cardiac",
    "aorta": "mediastinal",
    "trachea": "mediastinal",
    "mediastinum": "mediastinal",
    "left clavicle": "osseous",
    "right clavicle": "osseous",
    "spine": "osseous",
    "left hemidiaphragm": "pleural",
    "right hemidiaphragm": "pleural",
    "left costophrenic angle": "pleural",
    "right costophrenic angle": "pleural",
    "left hilar structures": "mediastinal",
    "right hilar structures": "mediastinal",
    "carina": "mediastinal",
    "cardiac silhouette": "cardiac",
    "aortic arch": "mediastinal",
    "left upper lung lobe": "pulmonary",
    "left lower lung lobe": "pulmonary",
    "right upper lung lobe": "pulmonary",
    "right middle lung lobe": "pulmonary",
    "right lower lung lobe": "pulmonary",
    "pleura": "pleural",
    "abdomen": OTHER_REGION_CATEGORY,
    "neck": OTHER_REGION_CATEGORY,
}

# Severity head classes (seed 5.4), ordinal.
SEVERITY_LEVELS: tuple[str, ...] = ("none", "mild", "moderate", "severe")

# Quality grades of MIMIC-Ext-CXR-QBA, best first. The overall grade of a QA pair is the minimum
# over the scene graph and all of its answers; "unrated" ranks below every grade.
QUALITY_GRADES: tuple[str, ...] = ("A++", "A+", "A", "B", "C", "D", "unrated")
QUALITY_RANK: dict[str, int] = {g: len(QUALITY_GRADES) - 1 - i for i, g in enumerate(QUALITY_GRADES)}

VIEW_POSITIONS_FRONTAL: tuple[str, ...] = ("PA", "AP")
SPLITS: tuple[str, ...] = ("train", "validate", "test")

assert len(CHEXPERT_LABELS) == 14 and len(HEAD_REGIONS) == 26
assert set(HEAD_REGION_CATEGORY) == set(HEAD_REGIONS)
