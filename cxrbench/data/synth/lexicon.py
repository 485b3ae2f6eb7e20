"""The synthetic release's vocabularies: region names (with their tree) and finding entities.

Built systematically where the anatomy is systematic (ribs, vertebrae, lobes, segments, zones,
sides) and spelt as MIMIC-Ext-CXR-QBA spells them: lower case with spaces ("left costophrenic
angle", "right lower lung lobe"). The release has 310 regions (257 localisable, 53 not) and 237
finding entities; these lists have the same shape and about the same sizes. They are written to
``metadata/dataset_info.json`` by the generator; the readers never import this module (a real
release brings its own ``dataset_info.json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIDES = ("left", "right")
ORDINALS = ("1st", "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th", "11th", "12th")


@dataclass(frozen=True)
class Region:
    name: str
    parent: str | None
    laterality: str          # left / right / bilateral / midline
    localized: bool = True   # False: a non-localisable structure (no boxes in the release either)


@dataclass(frozen=True)
class Entity:
    name: str
    categories: tuple[str, ...]
    subcategories: tuple[str, ...]
    # default regions (release: derived from the entity when a report names none)
    default_regions: tuple[str, ...] = field(default=())


def _regions() -> list[Region]:
    out: list[Region] = []

    def add(name: str, parent: str | None, lat: str = "midline", localized: bool = True) -> None:
        out.append(Region(name, parent, lat, localized))

    # lungs, lobes, segments, zones
    add("lungs", None, "bilateral")
    add("lung apices", "lungs", "bilateral")
    add("lung bases", "lungs", "bilateral")
    for s in SIDES:
        add(f"{s} lung", "lungs", s)
        add(f"{s} upper lung lobe", f"{s} lung", s)
        add(f"{s} lower lung lobe", f"{s} lung", s)
        for z in ("upper", "mid", "lower"):
            add(f"{s} {z} lung zone", f"{s} lung", s)
        add(f"{s} lung apex", f"{s} upper lung zone", s)
        add(f"{s} lung base", f"{s} lower lung zone", s)
        add(f"{s} perihilar region", f"{s} mid lung zone", s)
        add(f"{s} infrahilar region", f"{s} lung", s)
        add(f"{s} suprahilar region", f"{s} lung", s)
        add(f"{s} major fissure", f"{s} lung", s)
    add("right middle lung lobe", "right lung", "right")
    add("lingula", "left upper lung lobe", "left")
    add("retrocardiac region", "left lower lung zone", "left")
    add("minor fissure", "right lung", "right")
    segments = {
        "right upper lung lobe": ("apical", "posterior", "anterior"),
        "right middle lung lobe": ("lateral", "medial"),
        "right lower lung lobe": ("superior", "medial basal", "anterior basal", "lateral basal", "posterior basal"),
        "left upper lung lobe": ("apicoposterior", "anterior", "superior lingular", "inferior lingular"),
        "left lower lung lobe": ("superior", "anteromedial basal", "lateral basal", "posterior basal"),
    }
    for lobe, segs in segments.items():
        side = lobe.split()[0]
        short = lobe.replace(" lung lobe", " lobe")
        for seg in segs:
            add(f"{short} {seg} segment", lobe, side)

    # pleura, hemithoraces, diaphragm
    add("pleura", None, "bilateral")
    add("diaphragm", None, "bilateral")
    for s in SIDES:
        add(f"{s} hemithorax", None, s)
        add(f"{s} upper hemithorax", f"{s} hemithorax", s)
        add(f"{s} lower hemithorax", f"{s} hemithorax", s)
        add(f"{s} pleura", "pleura", s)
        add(f"{s} pleural space", f"{s} pleura", s)
        add(f"{s} apical pleura", f"{s} pleura", s)
        add(f"{s} lateral pleura", f"{s} pleura", s)
        add(f"{s} costophrenic angle", f"{s} pleura", s)
        add(f"{s} cardiophrenic angle", f"{s} pleura", s)
        add(f"{s} hemidiaphragm", "diaphragm", s)
        add(f"{s} subdiaphragmatic region", f"{s} hemidiaphragm", s)

    # heart and mediastinum
    add("cardiomediastinal silhouette", None)
    add("cardiac silhouette", "cardiomediastinal silhouette")
    add("heart", "cardiac silhouette")
    for s in SIDES:
        add(f"{s} ventricle", "heart", s)
        add(f"{s} atrium", "heart", s)
        add(f"{s} heart border", "heart", s)
    add("cardiac apex", "heart", "left")
    add("pericardium", "heart")
    add("mediastinum", "cardiomediastinal silhouette")
    for part in ("upper", "anterior", "middle", "posterior"):
        add(f"{part} mediastinum", "mediastinum")
    add("aortopulmonary window", "mediastinum", "left")
    add("thoracic inlet", "mediastinum")
    add("trachea", "mediastinum")
    add("carina", "trachea")
    add("esophagus", "mediastinum")
    add("gastroesophageal junction", "esophagus", "left")
    add("aorta", "mediastinum", "left")
    add("aortic arch", "aorta", "left")
    add("aortic knob", "aortic arch", "left")
    add("ascending aorta", "aorta", "right")
    add("descending aorta", "aorta", "left")
    add("superior vena cava", "mediastinum", "right")
    add("cavoatrial junction", "superior vena cava", "right")
    add("azygos vein", "mediastinum", "right")
    add("pulmonary arteries", "mediastinum", "bilateral")
    add("main pulmonary artery", "pulmonary arteries")
    for s in SIDES:
        add(f"{s} paratracheal region", "upper mediastinum", s)
        add(f"{s} main bronchus", "carina", s)
        add(f"{s} hilar structures", "mediastinum", s)
        add(f"{s} pulmonary artery", "pulmonary arteries", s)
        add(f"{s} brachiocephalic vein", "upper mediastinum", s)
        add(f"{s} subclavian vein", f"{s} brachiocephalic vein", s)
        add(f"{s} internal jugular vein", f"{s} brachiocephalic vein", s)

    # bones
    add("osseous structures", None)
    add("ribs", "osseous structures", "bilateral")
    add("spine", "osseous structures")
    add("cervical spine", "spine")
    add("thoracic spine", "spine")
    add("lumbar spine", "spine")
    add("sternum", "osseous structures")
    for v in ("C6", "C7"):
        add(f"{v} vertebra", "cervical spine")
    for i in range(1, 13):
        add(f"T{i} vertebra", "thoracic spine")
    for i in range(1, 4):
        add(f"L{i} vertebra", "lumbar spine")
    for s in SIDES:
        add(f"{s} ribs", "ribs", s)
        for i, o in enumerate(ORDINALS):
            add(f"{s} {o} rib", f"{s} ribs", s)
            add(f"{s} {o} posterior rib", f"{s} {o} rib", s)
            if i < 6:
                add(f"{s} {o} anterior rib", f"{s} {o} rib", s)
        for i in range(1, 11):
            add(f"{s} {ORDINALS[i - 1]} intercostal space", f"{s} ribs", s)
        add(f"{s} clavicle", "osseous structures", s)
        add(f"{s} scapula", "osseous structures", s)
        add(f"{s} shoulder", None, s)
        add(f"{s} humerus", f"{s} shoulder", s)
        add(f"{s} acromioclavicular joint", f"{s} shoulder", s)
        add(f"{s} glenohumeral joint", f"{s} shoulder", s)
        add(f"{s} sternoclavicular joint", "sternum", s)

    # soft tissues, neck, abdomen
    add("soft tissues", None)
    add("neck", None)
    add("abdomen", None)
    add("upper abdomen", "abdomen")
    add("stomach", "upper abdomen", "left")
    add("liver", "upper abdomen", "right")
    add("spleen", "upper abdomen", "left")
    for s in SIDES:
        add(f"{s} chest wall", "soft tissues", s)
        add(f"{s} breast", f"{s} chest wall", s)
        add(f"{s} axilla", f"{s} chest wall", s)
        add(f"{s} supraclavicular region", "neck", s)
        add(f"{s} upper abdomen", "upper abdomen", s)

    # structures the release names but cannot localise (no boxes: missing_localization)
    nonloc = (
        "interstitium", "pulmonary vasculature", "lung parenchyma", "lung periphery", "airways",
        "central airways", "peripheral airways", "bronchi", "bronchioles", "alveoli",
        "lymph nodes", "hilar lymph nodes", "mediastinal lymph nodes", "paratracheal lymph nodes",
        "subcarinal lymph nodes", "axillary lymph nodes", "pleural surfaces", "pericardial space",
        "skin", "subcutaneous tissue", "musculature", "thyroid", "thymus", "great vessels",
        "pulmonary veins", "coronary arteries", "aortic valve", "mitral valve", "tricuspid valve",
        "pulmonary valve", "cardiac valves", "mediastinal fat", "epicardial fat", "chest", "thorax",
        "thoracic cavity", "bones", "joints", "vertebral bodies", "intervertebral discs",
        "spinal canal", "costal cartilages", "upper extremities", "bowel", "colon", "kidneys",
        "gallbladder", "pancreas", "duodenum", "small bowel", "retroperitoneum", "breasts",
        "lung fields",
    )
    for n in nonloc:
        add(n, None, "midline", localized=False)
    return out


REGIONS: tuple[Region, ...] = tuple(_regions())
REGION_BY_NAME: dict[str, Region] = {r.name: r for r in REGIONS}
assert len(REGION_BY_NAME) == len(REGIONS), "duplicate region names"


def _E(name: str, cats: str, subs: str, regions: tuple[str, ...] = ()) -> Entity:
    return Entity(name, tuple(cats.split()), tuple(subs.split()), regions)


_LUNG = ("lungs",)
_HEART = ("heart",)
_MED = ("mediastinum",)
_PLEURA = ("pleura",)
_BONE = ("osseous structures",)

# name, categories, subcategories, default regions. Categories and subcategories follow the
# release's style (upper-case tags, several per entity).
ENTITIES: tuple[Entity, ...] = (
    # lung parenchyma
    _E("lung opacity", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("consolidation", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("pneumonia", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES INFECTION", _LUNG),
    _E("aspiration", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES INFECTION", ("lung bases",)),
    _E("infiltrate", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("airspace disease", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("ground glass opacity", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("reticular opacities", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("linear opacities", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("nodular opacities", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("atelectasis", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD PULMONARY_DISEASES", ("lung bases",)),
    _E("plate-like atelectasis", "ANATOMICAL_FINDING", "LUNG_FIELD", ("lung bases",)),
    _E("subsegmental atelectasis", "ANATOMICAL_FINDING", "LUNG_FIELD", ("lung bases",)),
    _E("lobar collapse", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("volume loss", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("edema", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD CARDIOVASCULAR_DISEASES", _LUNG),
    _E("interstitial edema", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD CARDIOVASCULAR_DISEASES", _LUNG),
    _E("alveolar edema", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD CARDIOVASCULAR_DISEASES", _LUNG),
    _E("vascular congestion", "ANATOMICAL_FINDING", "LUNG_FIELD CARDIOVASCULAR_DISEASES", _LUNG),
    _E("vascular redistribution", "ANATOMICAL_FINDING", "LUNG_FIELD CARDIOVASCULAR_DISEASES", _LUNG),
    _E("kerley b lines", "ANATOMICAL_FINDING", "LUNG_FIELD CARDIOVASCULAR_DISEASES", ("lung bases",)),
    _E("peribronchial cuffing", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("bronchial wall thickening", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("air bronchograms", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("mucus plugging", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("emphysema", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("copd", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("hyperinflation", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("bulla", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("bleb", "ANATOMICAL_FINDING", "LUNG_FIELD", ("lung apices",)),
    _E("bronchiectasis", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("fibrosis", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("interstitial lung disease", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("interstitial abnormality", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("scarring", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("apical scarring", "ANATOMICAL_FINDING", "LUNG_FIELD", ("lung apices",)),
    _E("granuloma", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("calcified granuloma", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("nodule", "ANATOMICAL_FINDING", "LUNG_FIELD NEOPLASMS", _LUNG),
    _E("multiple nodules", "ANATOMICAL_FINDING", "LUNG_FIELD NEOPLASMS", _LUNG),
    _E("mass", "ANATOMICAL_FINDING DISEASE", "LUNG_FIELD NEOPLASMS", _LUNG),
    _E("lung cancer", "DISEASE", "LUNG_FIELD NEOPLASMS", _LUNG),
    _E("metastasis", "DISEASE", "NEOPLASMS", _LUNG),
    _E("lymphangitic carcinomatosis", "DISEASE", "LUNG_FIELD NEOPLASMS", _LUNG),
    _E("cavitation", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("lung abscess", "DISEASE", "LUNG_FIELD INFECTION", _LUNG),
    _E("cyst", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("tuberculosis", "DISEASE", "LUNG_FIELD INFECTION", ("lung apices",)),
    _E("fungal infection", "DISEASE", "LUNG_FIELD INFECTION", _LUNG),
    _E("septic emboli", "DISEASE", "LUNG_FIELD INFECTION", _LUNG),
    _E("pulmonary embolism", "DISEASE", "CARDIOVASCULAR_DISEASES", _LUNG),
    _E("pulmonary infarction", "DISEASE", "LUNG_FIELD CARDIOVASCULAR_DISEASES", _LUNG),
    _E("pulmonary hemorrhage", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("ards", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("pneumonitis", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("bronchitis", "DISEASE", "PULMONARY_DISEASES INFECTION", _LUNG),
    _E("bronchiolitis", "DISEASE", "PULMONARY_DISEASES INFECTION", _LUNG),
    _E("sarcoidosis", "DISEASE", "PULMONARY_DISEASES", _LUNG),
    _E("pulmonary hypertension", "DISEASE", "CARDIOVASCULAR_DISEASES", ("pulmonary arteries",)),
    _E("lung injury", "DISEASE", "LUNG_FIELD TRAUMA", _LUNG),
    _E("pulmonary contusion", "DISEASE", "LUNG_FIELD TRAUMA", _LUNG),
    _E("lung laceration", "DISEASE", "LUNG_FIELD TRAUMA", _LUNG),
    _E("post-surgical changes of the lung", "ANATOMICAL_FINDING", "LUNG_FIELD POSTOPERATIVE", _LUNG),
    _E("lobectomy", "ANATOMICAL_FINDING", "LUNG_FIELD POSTOPERATIVE", _LUNG),
    _E("pneumonectomy", "ANATOMICAL_FINDING", "LUNG_FIELD POSTOPERATIVE", _LUNG),
    _E("radiation changes", "ANATOMICAL_FINDING", "LUNG_FIELD POSTOPERATIVE", _LUNG),
    _E("calcification", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    # pleura
    _E("pleural effusion", "ANATOMICAL_FINDING DISEASE", "PLEURA", ("pleura",)),
    _E("loculated pleural effusion", "ANATOMICAL_FINDING DISEASE", "PLEURA", _PLEURA),
    _E("subpulmonic effusion", "ANATOMICAL_FINDING DISEASE", "PLEURA", _PLEURA),
    _E("fissural fluid", "ANATOMICAL_FINDING", "PLEURA", ("minor fissure",)),
    _E("hemothorax", "DISEASE", "PLEURA TRAUMA", _PLEURA),
    _E("empyema", "DISEASE", "PLEURA INFECTION", _PLEURA),
    _E("chylothorax", "DISEASE", "PLEURA", _PLEURA),
    _E("pneumothorax", "ANATOMICAL_FINDING DISEASE", "PLEURA", ("pleura",)),
    _E("tension pneumothorax", "ANATOMICAL_FINDING DISEASE", "PLEURA", _PLEURA),
    _E("hydropneumothorax", "ANATOMICAL_FINDING DISEASE", "PLEURA", _PLEURA),
    _E("pleural thickening", "ANATOMICAL_FINDING", "PLEURA", _PLEURA),
    _E("pleural plaque", "ANATOMICAL_FINDING", "PLEURA", _PLEURA),
    _E("pleural calcification", "ANATOMICAL_FINDING", "PLEURA", _PLEURA),
    _E("pleural abnormality", "ANATOMICAL_FINDING", "PLEURA", _PLEURA),
    _E("pleural mass", "ANATOMICAL_FINDING", "PLEURA NEOPLASMS", _PLEURA),
    _E("blunting of the costophrenic angle", "ANATOMICAL_FINDING", "PLEURA", ("left costophrenic angle", "right costophrenic angle")),
    # heart and vessels
    _E("cardiomegaly", "ANATOMICAL_FINDING DISEASE", "CARDIAC CARDIOVASCULAR_DISEASES", _HEART),
    _E("enlarged cardiac silhouette", "ANATOMICAL_FINDING", "CARDIAC", ("cardiac silhouette",)),
    _E("enlarged cardiomediastinum", "ANATOMICAL_FINDING", "CARDIAC MEDIASTINUM", ("cardiomediastinal silhouette",)),
    _E("left ventricular enlargement", "ANATOMICAL_FINDING", "CARDIAC", ("left ventricle",)),
    _E("right ventricular enlargement", "ANATOMICAL_FINDING", "CARDIAC", ("right ventricle",)),
    _E("left atrial enlargement", "ANATOMICAL_FINDING", "CARDIAC", ("left atrium",)),
    _E("right atrial enlargement", "ANATOMICAL_FINDING", "CARDIAC", ("right atrium",)),
    _E("pericardial effusion", "ANATOMICAL_FINDING DISEASE", "CARDIAC", ("pericardium",)),
    _E("heart failure", "DISEASE", "CARDIAC CARDIOVASCULAR_DISEASES", _HEART),
    _E("fluid overload", "DISEASE", "CARDIOVASCULAR_DISEASES", _LUNG),
    _E("valve calcification", "ANATOMICAL_FINDING", "CARDIAC", ("cardiac valves",)),
    _E("coronary artery calcification", "ANATOMICAL_FINDING", "CARDIAC CARDIOVASCULAR_DISEASES", ("coronary arteries",)),
    _E("aortic calcification", "ANATOMICAL_FINDING", "MEDIASTINUM CARDIOVASCULAR_DISEASES", ("aorta",)),
    _E("tortuous aorta", "ANATOMICAL_FINDING", "MEDIASTINUM CARDIOVASCULAR_DISEASES", ("aorta",)),
    _E("aortic aneurysm", "DISEASE", "MEDIASTINUM CARDIOVASCULAR_DISEASES", ("aorta",)),
    _E("aortic dilation", "ANATOMICAL_FINDING", "MEDIASTINUM CARDIOVASCULAR_DISEASES", ("aorta",)),
    _E("aortic dissection", "DISEASE", "MEDIASTINUM CARDIOVASCULAR_DISEASES", ("aorta",)),
    _E("enlarged pulmonary arteries", "ANATOMICAL_FINDING", "MEDIASTINUM CARDIOVASCULAR_DISEASES", ("pulmonary arteries",)),
    _E("engorged azygos vein", "ANATOMICAL_FINDING", "MEDIASTINUM", ("azygos vein",)),
    _E("post-surgical changes of the heart", "ANATOMICAL_FINDING", "CARDIAC POSTOPERATIVE", _HEART),
    # mediastinum and hila
    _E("mediastinal widening", "ANATOMICAL_FINDING", "MEDIASTINUM", _MED),
    _E("mediastinal mass", "ANATOMICAL_FINDING", "MEDIASTINUM NEOPLASMS", _MED),
    _E("mediastinal shift", "ANATOMICAL_FINDING", "MEDIASTINUM", _MED),
    _E("pneumomediastinum", "ANATOMICAL_FINDING DISEASE", "MEDIASTINUM", _MED),
    _E("lymphadenopathy", "ANATOMICAL_FINDING", "MEDIASTINUM", ("lymph nodes",)),
    _E("hilar lymphadenopathy", "ANATOMICAL_FINDING", "MEDIASTINUM", ("hilar lymph nodes",)),
    _E("mediastinal lymphadenopathy", "ANATOMICAL_FINDING", "MEDIASTINUM", ("mediastinal lymph nodes",)),
    _E("hilar enlargement", "ANATOMICAL_FINDING", "MEDIASTINUM", ("left hilar structures", "right hilar structures")),
    _E("hilar congestion", "ANATOMICAL_FINDING", "MEDIASTINUM CARDIOVASCULAR_DISEASES", ("left hilar structures", "right hilar structures")),
    _E("tracheal deviation", "ANATOMICAL_FINDING", "MEDIASTINUM", ("trachea",)),
    _E("tracheal narrowing", "ANATOMICAL_FINDING", "MEDIASTINUM", ("trachea",)),
    _E("thyroid enlargement", "ANATOMICAL_FINDING", "MEDIASTINUM", ("thyroid",)),
    _E("hiatal hernia", "ANATOMICAL_FINDING", "MEDIASTINUM ABDOMEN", ("retrocardiac region",)),
    _E("esophageal dilation", "ANATOMICAL_FINDING", "MEDIASTINUM", ("esophagus",)),
    # diaphragm, abdomen
    _E("elevated hemidiaphragm", "ANATOMICAL_FINDING", "DIAPHRAGM", ("diaphragm",)),
    _E("diaphragmatic eventration", "ANATOMICAL_FINDING", "DIAPHRAGM", ("diaphragm",)),
    _E("flattened diaphragm", "ANATOMICAL_FINDING", "DIAPHRAGM", ("diaphragm",)),
    _E("diaphragmatic hernia", "ANATOMICAL_FINDING", "DIAPHRAGM", ("diaphragm",)),
    _E("pneumoperitoneum", "ANATOMICAL_FINDING DISEASE", "ABDOMEN", ("upper abdomen",)),
    _E("free intraperitoneal air", "ANATOMICAL_FINDING", "ABDOMEN", ("upper abdomen",)),
    _E("dilated bowel", "ANATOMICAL_FINDING", "ABDOMEN", ("bowel",)),
    _E("gastric distension", "ANATOMICAL_FINDING", "ABDOMEN", ("stomach",)),
    _E("cholecystectomy clips", "DEVICE", "ABDOMEN SURGICAL_MATERIAL", ("upper abdomen",)),
    _E("ascites", "DISEASE", "ABDOMEN", ("abdomen",)),
    # bones and soft tissue
    _E("fracture", "ANATOMICAL_FINDING DISEASE", "BONES TRAUMA", _BONE),
    _E("rib fracture", "ANATOMICAL_FINDING DISEASE", "BONES TRAUMA", ("ribs",)),
    _E("healed rib fracture", "ANATOMICAL_FINDING", "BONES TRAUMA", ("ribs",)),
    _E("clavicle fracture", "ANATOMICAL_FINDING DISEASE", "BONES TRAUMA", ("left clavicle", "right clavicle")),
    _E("compression fracture", "ANATOMICAL_FINDING DISEASE", "BONES TRAUMA", ("thoracic spine",)),
    _E("vertebral fracture", "ANATOMICAL_FINDING DISEASE", "BONES TRAUMA", ("spine",)),
    _E("humeral fracture", "ANATOMICAL_FINDING DISEASE", "BONES TRAUMA", ("left humerus", "right humerus")),
    _E("dislocation", "ANATOMICAL_FINDING", "BONES TRAUMA", ("left shoulder", "right shoulder")),
    _E("degenerative changes", "ANATOMICAL_FINDING", "BONES", ("spine",)),
    _E("osteoarthritis", "DISEASE", "BONES", ("joints",)),
    _E("osteopenia", "ANATOMICAL_FINDING", "BONES", _BONE),
    _E("osteophytes", "ANATOMICAL_FINDING", "BONES", ("thoracic spine",)),
    _E("scoliosis", "ANATOMICAL_FINDING", "BONES", ("thoracic spine",)),
    _E("kyphosis", "ANATOMICAL_FINDING", "BONES", ("thoracic spine",)),
    _E("lytic lesion", "ANATOMICAL_FINDING", "BONES NEOPLASMS", _BONE),
    _E("sclerotic lesion", "ANATOMICAL_FINDING", "BONES NEOPLASMS", _BONE),
    _E("bone metastasis", "DISEASE", "BONES NEOPLASMS", _BONE),
    _E("bone island", "ANATOMICAL_FINDING", "BONES", _BONE),
    _E("rib deformity", "ANATOMICAL_FINDING", "BONES", ("ribs",)),
    _E("pectus excavatum", "ANATOMICAL_FINDING", "BONES", ("sternum",)),
    _E("subcutaneous emphysema", "ANATOMICAL_FINDING", "SOFT_TISSUE TRAUMA", ("soft tissues",)),
    _E("soft tissue swelling", "ANATOMICAL_FINDING", "SOFT_TISSUE", ("soft tissues",)),
    _E("soft tissue mass", "ANATOMICAL_FINDING", "SOFT_TISSUE NEOPLASMS", ("soft tissues",)),
    _E("mastectomy", "ANATOMICAL_FINDING", "SOFT_TISSUE POSTOPERATIVE", ("left breast", "right breast")),
    _E("skin fold", "TECHNICAL_ASSESSMENT", "IMAGING_ARTIFACTS", ("soft tissues",)),
    # tubes
    _E("endotracheal tube", "DEVICE TUBES_LINES", "TUBES", ("trachea",)),
    _E("tracheostomy tube", "DEVICE TUBES_LINES", "TUBES", ("trachea",)),
    _E("nasogastric tube", "DEVICE TUBES_LINES", "TUBES", ("esophagus", "stomach")),
    _E("orogastric tube", "DEVICE TUBES_LINES", "TUBES", ("esophagus", "stomach")),
    _E("feeding tube", "DEVICE TUBES_LINES", "TUBES", ("esophagus", "stomach")),
    _E("enteric tube", "DEVICE TUBES_LINES", "TUBES", ("esophagus", "stomach")),
    _E("chest tube", "DEVICE TUBES_LINES", "TUBES", ("pleura",)),
    _E("pigtail catheter", "DEVICE TUBES_LINES", "TUBES", ("pleura",)),
    _E("mediastinal drain", "DEVICE TUBES_LINES", "TUBES", _MED),
    _E("esophageal stent", "DEVICE", "TUBES SURGICAL_MATERIAL", ("esophagus",)),
    _E("airway stent", "DEVICE", "TUBES SURGICAL_MATERIAL", ("trachea",)),
    # lines
    _E("central venous catheter", "DEVICE TUBES_LINES", "LINES", ("superior vena cava",)),
    _E("picc line", "DEVICE TUBES_LINES", "LINES", ("superior vena cava",)),
    _E("internal jugular catheter", "DEVICE TUBES_LINES", "LINES", ("superior vena cava",)),
    _E("subclavian catheter", "DEVICE TUBES_LINES", "LINES", ("superior vena cava",)),
    _E("swan-ganz catheter", "DEVICE TUBES_LINES", "LINES", ("pulmonary arteries",)),
    _E("dialysis catheter", "DEVICE TUBES_LINES", "LINES", ("right atrium",)),
    _E("port-a-cath", "DEVICE TUBES_LINES", "LINES", ("superior vena cava",)),
    _E("venous access port", "DEVICE TUBES_LINES", "LINES", ("superior vena cava",)),
    _E("arterial line", "DEVICE TUBES_LINES", "LINES", ("aorta",)),
    # cardiac devices and surgical material
    _E("pacemaker", "DEVICE", "CARDIAC_DEVICES", ("left chest wall",)),
    _E("pacemaker leads", "DEVICE", "CARDIAC_DEVICES", ("right ventricle",)),
    _E("icd", "DEVICE", "CARDIAC_DEVICES", ("left chest wall",)),
    _E("loop recorder", "DEVICE", "CARDIAC_DEVICES", ("left chest wall",)),
    _E("prosthetic valve", "DEVICE", "CARDIAC_DEVICES", _HEART),
    _E("annuloplasty ring", "DEVICE", "CARDIAC_DEVICES", _HEART),
    _E("lvad", "DEVICE", "CARDIAC_DEVICES", _HEART),
    _E("intra-aortic balloon pump", "DEVICE TUBES_LINES", "CARDIAC_DEVICES", ("descending aorta",)),
    _E("epicardial pacing wires", "DEVICE", "CARDIAC_DEVICES", _HEART),
    _E("sternotomy wires", "DEVICE", "SURGICAL_MATERIAL", ("sternum",)),
    _E("surgical clips", "DEVICE", "SURGICAL_MATERIAL", _MED),
    _E("surgical staples", "DEVICE", "SURGICAL_MATERIAL", ("soft tissues",)),
    _E("cabg grafts", "DEVICE", "SURGICAL_MATERIAL CARDIAC_DEVICES", _HEART),
    _E("vascular stent", "DEVICE", "SURGICAL_MATERIAL", ("aorta",)),
    _E("embolization coils", "DEVICE", "SURGICAL_MATERIAL", _LUNG),
    _E("spinal fusion hardware", "DEVICE", "SURGICAL_MATERIAL", ("spine",)),
    _E("orthopedic hardware", "DEVICE", "SURGICAL_MATERIAL", _BONE),
    _E("shoulder prosthesis", "DEVICE", "SURGICAL_MATERIAL", ("left shoulder", "right shoulder")),
    _E("breast implant", "DEVICE", "SURGICAL_MATERIAL", ("left breast", "right breast")),
    _E("foreign body", "DEVICE", "FOREIGN_OBJECTS", ("soft tissues",)),
    _E("bullet fragment", "DEVICE", "FOREIGN_OBJECTS", ("soft tissues",)),
    _E("ecg leads", "DEVICE TECHNICAL_ASSESSMENT", "EXTERNAL_DEVICES IMAGING_ARTIFACTS", ("chest",)),
    _E("external pacing pads", "DEVICE", "EXTERNAL_DEVICES", ("chest",)),
    _E("monitoring device", "DEVICE", "EXTERNAL_DEVICES", ("chest",)),
    # technical assessment
    _E("low lung volumes", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY LUNG_FIELD", _LUNG),
    _E("poor inspiration", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY", _LUNG),
    _E("patient rotation", "TECHNICAL_ASSESSMENT", "PATIENT_POSITIONING", ("chest",)),
    _E("lordotic projection", "TECHNICAL_ASSESSMENT", "PATIENT_POSITIONING", ("chest",)),
    _E("underexposure", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY IMAGING_ARTIFACTS", ("chest",)),
    _E("overexposure", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY IMAGING_ARTIFACTS", ("chest",)),
    _E("motion artifact", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY IMAGING_ARTIFACTS", ("chest",)),
    _E("limited field of view", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY", ("chest",)),
    _E("incompletely imaged", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY", ("chest",)),
    _E("overlying soft tissue", "TECHNICAL_ASSESSMENT", "IMAGE_QUALITY IMAGING_ARTIFACTS", ("soft tissues",)),
    _E("overlying external object", "TECHNICAL_ASSESSMENT", "IMAGING_ARTIFACTS", ("chest",)),
    _E("portable technique", "TECHNICAL_ASSESSMENT", "ACQUISITION", ("chest",)),
    _E("semi-upright position", "TECHNICAL_ASSESSMENT", "ACQUISITION PATIENT_POSITIONING", ("chest",)),
    _E("supine position", "TECHNICAL_ASSESSMENT", "ACQUISITION PATIENT_POSITIONING", ("chest",)),
    _E("lateral view limited", "TECHNICAL_ASSESSMENT", "ACQUISITION IMAGE_QUALITY", ("chest",)),
    # general
    _E("abnormality", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("lesion", "ANATOMICAL_FINDING", "GENERAL NEOPLASMS", ("chest",)),
    _E("opacity", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("lucency", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("density", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("air-fluid level", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("widening", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("thickening", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("enlargement", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("infection", "DISEASE", "INFECTION", ("chest",)),
    _E("inflammation", "DISEASE", "GENERAL", ("chest",)),
    _E("malignancy", "DISEASE", "NEOPLASMS", ("chest",)),
    _E("trauma", "DISEASE", "TRAUMA", ("chest",)),
    _E("post-operative changes", "ANATOMICAL_FINDING", "POSTOPERATIVE", ("chest",)),
    _E("chronic changes", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("acute cardiopulmonary process", "DISEASE", "GENERAL PULMONARY_DISEASES CARDIOVASCULAR_DISEASES", ("chest",)),
    _E("cardiopulmonary abnormality", "ANATOMICAL_FINDING", "GENERAL", ("chest",)),
    _E("intrathoracic process", "DISEASE", "GENERAL", ("chest",)),
    _E("atherosclerosis", "DISEASE", "CARDIOVASCULAR_DISEASES", ("aorta",)),
    _E("granulomatous disease", "DISEASE", "LUNG_FIELD INFECTION", _LUNG),
    _E("azygos fissure", "ANATOMICAL_FINDING", "LUNG_FIELD", ("right upper lung lobe",)),
    _E("cervical rib", "ANATOMICAL_FINDING", "BONES", ("cervical spine",)),
    _E("hyperlucency", "ANATOMICAL_FINDING", "LUNG_FIELD", _LUNG),
    _E("pulmonary fibrosis", "DISEASE", "LUNG_FIELD PULMONARY_DISEASES", _LUNG),
    _E("pleural fluid", "ANATOMICAL_FINDING", "PLEURA", _PLEURA),
    _E("vascular plethora", "ANATOMICAL_FINDING", "LUNG_FIELD CARDIOVASCULAR_DISEASES", _LUNG),
)
ENTITY_BY_NAME: dict[str, Entity] = {e.name: e for e in ENTITIES}
assert len(ENTITY_BY_NAME) == len(ENTITIES), "duplicate entity names"

CATEGORIES: tuple[str, ...] = tuple(sorted({c for e in ENTITIES for c in e.categories}))
SUBCATEGORIES: tuple[str, ...] = tuple(sorted({c for e in ENTITIES for c in e.subcategories}))

ANSWER_TYPES = ("main_answer", "details", "related_information")
PROBABILITIES = ("positive", "likely", "may", "unlikely", "negative")
CERTAINTIES = ("certain", "uncertain")
POSITIVENESS = ("pos", "neg")
MODIFIER_VALUES: dict[str, tuple[str, ...]] = {
    "temporal": ("acute", "subacute", "chronic", "new", "old"),
    "severity": ("mild", "moderate", "severe"),
    "texture": ("patchy", "hazy", "streaky", "nodular", "reticular", "linear", "dense", "calcified"),
    "spread": ("focal", "multifocal", "diffuse", "bilateral", "small", "large", "trace", "minimal"),
}
CHANGES = ("new", "no new", "unchanged", "stable", "increased", "decreased", "improved", "worsened", "resolved")
CHILD_TYPES = ("associated_with", "located_at", "described_as", "caused_by")
REGION_RELATION_TYPES = ("sub_region", "left", "right", "above", "below", "adjacent")
