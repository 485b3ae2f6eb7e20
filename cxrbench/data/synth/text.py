"""Report-style wording of the synthetic observations (names, summary sentences, changes)."""

from __future__ import annotations

import numpy as np

from cxrbench.data.synth.findings import NEGATIVE_PHRASES, SPEC_BY_ENTITY

SEVERITY_WORDS = ("mild", "moderate", "severe")


def article(np_: str) -> str:
    return ("an " if np_[:1] in "aeiou" else "a ") + np_


def _where(regions: list[str]) -> str:
    if len(regions) == 1:
        return f"the {regions[0]}"
    return "the " + " and the ".join(regions)


def noun_phrase(entity: str, side: str | None, severity: int, regions: list[str]) -> str:
    """'moderate left pleural effusion', 'consolidation in the left lower lung zone', ..."""
    spec = SPEC_BY_ENTITY.get(entity)
    size = spec.sizes[severity - 1] if (spec and severity) else ""
    sev = SEVERITY_WORDS[severity - 1] if severity else ""
    if entity == "pleural effusion":
        if side == "bilateral":
            return f"{size} bilateral pleural effusions".strip()
        return f"{size} {side} pleural effusion".strip()
    if entity == "pneumothorax":
        apical = " apical" if regions and "apex" in regions[0] else ""
        return f"{size} {side}{apical} pneumothorax".strip()
    if entity == "atelectasis" and side == "bilateral":
        return f"{sev} bibasilar atelectasis".strip()
    if entity == "edema":
        return f"{sev} pulmonary edema".strip()
    if entity == "cardiomegaly":
        return f"{sev} cardiomegaly".strip()
    if entity == "enlarged cardiomediastinum":
        return "enlarged cardiomediastinal silhouette"
    if entity == "rib fracture":
        return f"fracture of the {regions[0]}"
    if entity == "pleural thickening":
        return f"{side} pleural thickening"
    if entity in ("low lung volumes", "ecg leads", "patient rotation"):
        return {"low lung volumes": "low lung volumes", "ecg leads": "overlying ecg leads",
                "patient rotation": "rotation of the patient"}[entity]
    if spec is not None and spec.device:
        sided = f"{side}-sided " if side in ("left", "right") and entity not in ("pacemaker",) else ""
        return f"{sided}{entity}"
    return f"{sev} {entity} in {_where(regions)}".strip()


def positive_sentence(entity: str, np_: str, probability: str, rng: np.random.Generator) -> str:
    spec = SPEC_BY_ENTITY.get(entity)
    countable = spec.countable if spec else True
    obj = article(np_) if countable and not np_.endswith("effusions") else np_
    if probability == "likely":
        return f"There is likely {obj}."
    if probability == "may":
        return rng.choice([f"There may be {obj}.", f"{obj[0].upper()}{obj[1:]} cannot be excluded."])
    if spec is not None and spec.device:
        return rng.choice([f"{obj[0].upper()}{obj[1:]} is in place.", f"There is {obj}.", f"{obj[0].upper()}{obj[1:]} is noted."])
    if entity == "cardiomegaly":
        return rng.choice([f"There is {np_}.", f"The heart is {np_.split()[0]}ly enlarged." if np_.split()[0] != "cardiomegaly" else "The heart is enlarged."])
    if entity in ("low lung volumes",):
        return "Lung volumes are low."
    if entity == "patient rotation":
        return "The patient is slightly rotated."
    if entity == "ecg leads":
        return "Overlying ECG leads are noted."
    return rng.choice([f"There is {obj}.", f"{obj[0].upper()}{obj[1:]} is seen.", f"{obj[0].upper()}{obj[1:]} is present."])


def negative_name(entity: str) -> str:
    return {"cardiomegaly": "normal heart size", "consolidation": "no focal consolidation"}.get(entity, f"no {entity}")


def negative_sentence(entity: str, rng: np.random.Generator) -> str:
    if entity in NEGATIVE_PHRASES:
        return str(rng.choice(NEGATIVE_PHRASES[entity]))
    return str(rng.choice([f"There is no {entity}.", f"No {entity} is seen.", f"No evidence of {entity}."]))


def change_sentence(np_: str, change: str) -> str:
    cap = np_[0].upper() + np_[1:]
    return {
        "new": f"There is a new {np_}." if not np_.endswith("s") else f"There are new {np_}.",
        "unchanged": f"{cap} is unchanged from the prior study.",
        "stable": f"{cap} is stable compared to the prior exam.",
        "increased": f"{cap} has increased since the prior study.",
        "decreased": f"{cap} has decreased since the prior study.",
        "improved": f"{cap} has improved.",
        "worsened": f"{cap} has worsened.",
    }[change]


def capitalize(s: str) -> str:
    return s[:1].upper() + s[1:]
