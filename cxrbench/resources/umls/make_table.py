"""Regenerate MRCONSO.RRF and MRSTY.RRF, the chest-radiography concept table shipped with
cxrbench for clinical-term F1 and semantic-type accuracy (``python -m
cxrbench.resources.umls.make_table``).

UMLS itself is licensed, so this is a small stand-in in UMLS Rich Release Format that
QuickUMLS indexes like the real thing. Concepts: the 14 CheXpert labels, the finding entities
and anatomical regions of the MIMIC-Ext-CXR-QBA vocabulary (as the synthetic release spells
them), severity and size qualifiers, with the common synonyms of radiology reports merged into
one concept ("cardiomegaly" = "enlarged heart", "pneumothorax" = "collapsed lung").

Identifiers are local (``CXB00001``…, source ``CXRBENCH``), not UMLS CUIs; semantic types are
real UMLS TUIs. Both sides of a comparison go through the same table, so F1 over these
identifiers is well defined; with ``--umls-index`` a full UMLS index replaces it.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

# UMLS semantic types used here (TUI -> name, tree number)
SEMTYPES = {
    "T023": ("Body Part, Organ, or Organ Component", "A1.2.3.1"),
    "T029": ("Body Location or Region", "A2.1.5.2"),
    "T030": ("Body Space or Junction", "A1.2.3.4"),
    "T033": ("Finding", "A2.2"),
    "T047": ("Disease or Syndrome", "B2.2.1.2.1"),
    "T046": ("Pathologic Function", "B2.2.1.2"),
    "T037": ("Injury or Poisoning", "B2.3"),
    "T190": ("Anatomical Abnormality", "A1.2.2"),
    "T191": ("Neoplastic Process", "B2.2.1.2.1.2"),
    "T061": ("Therapeutic or Preventive Procedure", "B1.3.1.3"),
    "T074": ("Medical Device", "A1.3.1"),
    "T080": ("Qualitative Concept", "A2.1.2"),
    "T081": ("Quantitative Concept", "A2.1.3"),
    "T082": ("Spatial Concept", "A2.1.5"),
}

# Synonym groups: preferred name first. A finding entity or CheXpert label whose name appears
# in a group joins that concept instead of getting its own.
SYNONYMS: list[tuple[str, tuple[str, ...], str]] = [
    ("cardiomegaly", ("enlarged heart", "heart enlargement", "cardiac enlargement", "enlarged cardiac silhouette",
                      "enlargement of the cardiac silhouette", "enlarged heart size"), "T047"),
    ("pneumothorax", ("collapsed lung", "ptx"), "T047"),
    ("pleural effusion", ("effusion", "pleural fluid", "pleural effusions", "effusions", "hydrothorax"), "T047"),
    ("atelectasis", ("atelectatic change", "atelectatic changes", "collapse"), "T047"),
    ("consolidation", ("airspace consolidation", "consolidative opacity", "lung consolidation"), "T033"),
    ("edema", ("pulmonary edema", "oedema", "pulmonary oedema", "fluid in the lungs"), "T046"),
    ("pneumonia", ("lung infection", "pneumonic infiltrate", "infectious process"), "T047"),
    ("lung opacity", ("opacity", "opacification", "airspace opacity", "opacities", "airspace opacities"), "T033"),
    ("lung lesion", ("pulmonary lesion",), "T033"),
    ("enlarged cardiomediastinum", ("widened cardiomediastinal silhouette", "enlarged cardiomediastinal silhouette"),
     "T033"),
    ("fracture", ("fractures", "broken bone"), "T037"),
    ("pleural other", (), "T033"),
    ("support devices", ("support device",), "T074"),
    ("no finding", ("no acute cardiopulmonary process", "normal study", "no acute findings"), "T033"),
    ("nodule", ("lung nodule", "pulmonary nodule", "nodules"), "T033"),
    ("mass", ("lung mass", "pulmonary mass"), "T191"),
    ("emphysema", ("copd", "chronic obstructive pulmonary disease", "hyperinflation"), "T047"),
    ("pulmonary fibrosis", ("fibrosis", "fibrotic changes"), "T047"),
    ("vascular congestion", ("pulmonary vascular congestion", "pulmonary congestion", "vascular engorgement"), "T046"),
    ("heart failure", ("congestive heart failure", "chf", "cardiac failure"), "T047"),
    ("granuloma", ("calcified granuloma", "granulomas"), "T047"),
    ("scarring", ("scar", "apical scarring", "scarring changes"), "T046"),
    ("hiatal hernia", ("hiatus hernia",), "T190"),
    ("endotracheal tube", ("et tube", "ett", "breathing tube", "endotracheal intubation tube"), "T074"),
    ("nasogastric tube", ("ng tube", "ngt"), "T074"),
    ("orogastric tube", ("og tube",), "T074"),
    ("central venous catheter", ("central line", "cvc", "central venous line"), "T074"),
    ("picc line", ("picc", "peripherally inserted central catheter"), "T074"),
    ("pacemaker", ("pacer", "cardiac pacemaker", "pacing device"), "T074"),
    ("icd", ("implantable cardioverter defibrillator", "defibrillator"), "T074"),
    ("chest tube", ("thoracostomy tube", "pleural drain", "pleural catheter"), "T074"),
    ("sternotomy wires", ("median sternotomy wires", "sternal wires", "sternotomy"), "T074"),
    ("tracheostomy tube", ("tracheostomy", "trach tube"), "T074"),
    ("swan-ganz catheter", ("pulmonary artery catheter", "swan ganz catheter"), "T074"),
    ("subcutaneous emphysema", ("subcutaneous air", "soft tissue emphysema"), "T046"),
    ("pneumomediastinum", ("mediastinal emphysema",), "T046"),
    ("lymphadenopathy", ("enlarged lymph nodes", "adenopathy"), "T047"),
    ("degenerative changes", ("degenerative change", "degenerative disease"), "T046"),
    ("elevated hemidiaphragm", ("raised hemidiaphragm", "elevation of the hemidiaphragm"), "T033"),
    ("blunting of the costophrenic angle", ("costophrenic angle blunting", "costophrenic blunting"), "T033"),
    ("low lung volumes", ("low lung volume", "hypoinflation"), "T033"),
    ("tortuous aorta", ("aortic tortuosity", "tortuosity of the aorta"), "T033"),
]

# Severity and size qualifiers (measurement / severity category)
QUALIFIERS: list[tuple[str, tuple[str, ...], str]] = [
    ("mild", ("slight", "minimal", "minor"), "T080"),
    ("moderate", ("moderately",), "T080"),
    ("severe", ("marked", "extensive", "severely", "massive"), "T080"),
    ("small", ("tiny", "trace", "little"), "T081"),
    ("large", ("big", "sizeable", "huge"), "T081"),
    ("mild to moderate", (), "T080"),
    ("moderate to severe", (), "T080"),
    ("increased", ("worsened", "enlarging", "increasing"), "T080"),
    ("decreased", ("improved", "decreasing", "diminished"), "T080"),
    ("unchanged", ("stable", "no change"), "T080"),
]

# Anatomy synonyms (region name -> extra strings)
REGION_SYNONYMS = {
    "lungs": ("both lungs", "lung fields", "bilateral lungs", "lung"),
    "heart": ("cardiac",),
    "left hemithorax": ("left chest",),
    "right hemithorax": ("right chest",),
    "cardiac silhouette": ("heart silhouette", "cardiac contour"),
    "mediastinum": ("mediastinal",),
    "superior vena cava": ("svc",),
    "lingula": ("lingular",),
}

CHEXPERT = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
            "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
            "Pneumothorax", "Support Devices")


def _entity_semtype(categories: tuple[str, ...], name: str) -> str:
    if {"DEVICE", "TUBES_LINES"} & set(categories):
        return "T074"
    if "fracture" in name or "dislocation" in name or "contusion" in name or "laceration" in name:
        return "T037"
    if "DISEASE" in categories:
        return "T047"
    return "T033"


def concepts() -> list[tuple[str, list[str], str]]:
    """(preferred name, synonyms, TUI) for every concept, in a fixed order."""
    from cxrbench.data.synth import lexicon

    out: list[tuple[str, list[str], str]] = []
    index: dict[str, int] = {}

    def add(name: str, syns, tui: str) -> None:
        name = name.lower()
        if name in index:
            entry = out[index[name]]
            entry[1].extend(s for s in syns if s not in entry[1] and s != entry[0])
            return
        out.append((name, [s for s in syns if s != name], tui))
        for s in [name, *syns]:
            index.setdefault(s, len(out) - 1)

    for name, syns, tui in SYNONYMS + QUALIFIERS:
        add(name, list(syns), tui)
    for label in CHEXPERT:
        add(label.lower(), [], "T033")
    for e in lexicon.ENTITIES:
        add(e.name, [], _entity_semtype(e.categories, e.name))
    for r in lexicon.REGIONS:
        tui = "T023" if any(w in r.name for w in ("lung", "heart", "aorta", "trachea", "rib", "vertebra", "clavicle",
                                                   "bronch", "vein", "artery", "valve", "liver", "spleen",
                                                   "stomach", "esophagus", "sternum", "scapula", "humerus")) else "T029"
        add(r.name, list(REGION_SYNONYMS.get(r.name, ())), tui)
    for side in ("left", "right", "bilateral", "upper", "lower", "mid", "basilar", "apical", "perihilar"):
        add(side, [], "T082")
    return out


def write(dest: Path = HERE) -> tuple[Path, Path]:
    rows_conso, rows_sty = [], []
    for i, (name, syns, tui) in enumerate(concepts(), start=1):
        cui = f"CXB{i:05d}"
        for j, s in enumerate([name, *syns]):
            pref = "Y" if j == 0 else "N"
            ts = "P" if j == 0 else "S"
            aui = f"CXA{i:05d}{j:02d}"
            rows_conso.append("|".join([cui, "ENG", ts, f"L{i:05d}{j:02d}", "PF", f"S{i:05d}{j:02d}", pref, aui,
                                        "", "", "", "CXRBENCH", "PT" if j == 0 else "SY", cui, s, "0", "N", ""]) + "|")
        sty_name, stn = SEMTYPES[tui]
        rows_sty.append("|".join([cui, tui, stn, sty_name, f"AT{i:05d}", ""]) + "|")
    conso, sty = dest / "MRCONSO.RRF", dest / "MRSTY.RRF"
    conso.write_text("\n".join(rows_conso) + "\n", encoding="utf-8")
    sty.write_text("\n".join(rows_sty) + "\n", encoding="utf-8")
    return conso, sty


if __name__ == "__main__":
    for path in write():
        print(path, sum(1 for _ in open(path, encoding="utf-8")), "rows")
