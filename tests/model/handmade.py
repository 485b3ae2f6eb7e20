"""A small hand-made index directory in the contract's schema (docs/contracts.md section 2).

Independent of the synthetic generator, so the model's unit tests pin down what the model
reads from an index and keep working whatever the generator's look. Images: 96 px, dark
background, two bright lung fields, a heart; an effusion is a bright blob at the base of the
affected lung (patient's left = image right), brighter when more severe.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SIZE = 96
LEFT_LUNG = [52.0, 10.0, 90.0, 80.0]     # patient's left lung: image right
RIGHT_LUNG = [6.0, 10.0, 44.0, 80.0]
HEART = [34.0, 40.0, 66.0, 78.0]
REGIONS = {"left lung": LEFT_LUNG, "right lung": RIGHT_LUNG, "heart": HEART}
BASES = {"left lung": [56.0, 62.0, 86.0, 80.0], "right lung": [10.0, 62.0, 40.0, 80.0]}
SEVERITY = ("none", "mild", "moderate", "severe")
CHEXPERT = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
            "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
            "Pneumothorax", "Support Devices")


def _image(side: str | None, severity: int, rng: np.random.Generator) -> np.ndarray:
    img = rng.normal(20, 4, size=(SIZE, SIZE))
    for box in (LEFT_LUNG, RIGHT_LUNG):
        x1, y1, x2, y2 = map(int, box)
        img[y1:y2, x1:x2] += 40
    x1, y1, x2, y2 = map(int, HEART)
    img[y1:y2, x1:x2] += 90
    if side is not None:
        x1, y1, x2, y2 = map(int, BASES[side])
        img[y1:y2, x1:x2] += 40 + 45 * severity
    return np.clip(img, 0, 255).astype(np.uint8)


def write_index(out: str | Path, n_studies: int = 24, seed: int = 0) -> Path:
    """Write images, the index files and a dataset_info.json under ``out``; return the index dir."""
    from PIL import Image

    out = Path(out)
    jpg, qba, index = out / "mimic-cxr-jpg", out / "mimic-ext-cxr-qba", out / "index"
    for d in (jpg, qba / "metadata", index):
        d.mkdir(parents=True, exist_ok=True)
    (qba / "metadata" / "dataset_info.json").write_text(json.dumps({
        "regions": ["left lung", "right lung", "heart", "left costophrenic angle", "right costophrenic angle"],
        "finding_entities": ["pleural effusion", "cardiomegaly"],
    }))
    rng = np.random.default_rng(seed)
    qa, studies, nodes = [], [], []
    for k in range(n_studies):
        sid, subj = 50000000 + k, 10000000 + k
        split = "train" if k < n_studies * 2 // 3 else ("validate" if k < n_studies * 5 // 6 else "test")
        side = (None, "left lung", "right lung")[k % 3]
        severity = 0 if side is None else 1 + (k // 3) % 3
        image_id = f"img{k:04d}"
        rel = f"files/p{str(subj)[:2]}/p{subj}/s{sid}/{image_id}.jpg"
        (jpg / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_image(side, severity, rng)).save(jpg / rel, quality=95)
        chex = [float("nan")] * 14
        chex[CHEXPERT.index("Pleural Effusion")] = 1.0 if side else 0.0
        chex[CHEXPERT.index("No Finding")] = 0.0 if side else 1.0
        chex[CHEXPERT.index("Atelectasis")] = -1.0
        studies.append({"study_id": sid, "subject_id": subj, "split": split, "study_quality": "A", "n_images": 1,
                        "image_id": image_id, "view": "PA", "image_path": rel, "image_width": SIZE,
                        "image_height": SIZE, "chexpert": chex,
                        "chexpert_gold": chex if split == "test" else None, "n_observations": 1 if side else 0,
                        "region_categories": ["pulmonary"]})
        for name, box in REGIONS.items():
            nodes.append({"study_id": sid, "image_id": image_id, "node_id": name, "node_kind": "region",
                          "bbox": box, "is_fallback": False, "regions": [name], "entities": [], "categories": [],
                          "laterality": name.split()[0] if " " in name else "midline"})
        if side:
            nodes.append({"study_id": sid, "image_id": image_id, "node_id": "O01", "node_kind": "observation",
                          "bbox": BASES[side], "is_fallback": False, "regions": [side.replace("lung", "costophrenic angle")],
                          "entities": ["pleural effusion"], "categories": ["DISEASE"], "laterality": side.split()[0]})
        # an observation without a box: the consumer must fall back to the whole image
        nodes.append({"study_id": sid, "image_id": image_id, "node_id": "O99", "node_kind": "observation",
                      "bbox": None, "is_fallback": True, "regions": ["heart"], "entities": ["cardiomegaly"],
                      "categories": ["DISEASE"], "laterality": "midline"})
        base = {"study_id": sid, "subject_id": subj, "split": split, "question_strategy": "finding", "variables": "{}",
                "obs_ids": ["O01"] if side else [], "quality": "A" if k % 2 else "B", "answer_is_fallback": False,
                "answer_categories": [], "answer_bboxes": [BASES[side]] if side else []}
        pos = "pos" if side else "neg"
        qa += [
            dict(base, question_id=f"q{k}a", question_type="D02_has_finding", question="Is there pleural effusion?",
                 answer=f"{'Yes' if side else 'No'}, {'there is' if side else 'there is no'} pleural effusion.",
                 answer_full="", answer_positiveness=pos, answer_binary=1 if side else 0,
                 answer_regions=[side.replace("lung", "costophrenic angle")] if side else [],
                 answer_entities=["pleural effusion"], answer_severity=None),
            dict(base, question_id=f"q{k}b", question_type="B01_describe_all", question="Describe the study.",
                 answer="There is pleural effusion." if side else "No acute findings.", answer_full="",
                 answer_positiveness=pos, answer_binary=-1, answer_regions=[side] if side else [],
                 answer_entities=["pleural effusion"] if side else [], answer_severity=None),
        ]
        if side:
            qa += [
                dict(base, question_id=f"q{k}c", question_type="D03_where_is_finding",
                     question="Where is the pleural effusion?", answer=f"In the {side}.", answer_full="",
                     answer_positiveness="pos", answer_binary=-1, answer_regions=[side.replace("lung", "costophrenic angle")],
                     answer_entities=["pleural effusion"], answer_severity=None),
                dict(base, question_id=f"q{k}d", question_type="D04_how_severe_is_finding",
                     question="How severe is the pleural effusion?", answer=f"The effusion is {SEVERITY[severity]}.",
                     answer_full="", answer_positiveness="pos", answer_binary=-1, answer_regions=[],
                     answer_entities=["pleural effusion"], answer_severity=SEVERITY[severity]),
            ]
    pd.DataFrame(qa).to_parquet(index / "qa.parquet", index=False)
    pd.DataFrame(studies).to_parquet(index / "studies.parquet", index=False)
    pd.DataFrame(nodes).to_parquet(index / "nodes.parquet", index=False)
    (index / "manifest.json").write_text(json.dumps({
        "roots": {"mimic_cxr_jpg": str(jpg.resolve()), "mimic_ext_cxr_qba": str(qba.resolve())},
        "content_hash": f"handmade-{n_studies}-{seed}"}))
    return index
