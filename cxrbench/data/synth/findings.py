"""The findings the generator can put into a study, and how each is drawn and described.

Only findings with a visual pattern are ever *positive* (the answer must be in the pixels):
each :class:`FindingSpec` names its pattern (a :data:`render.DRAW_KINDS` entry, or an anatomy
modifier such as a wider heart), where it may sit for each severity (the region whose box the
pattern is drawn in), its prevalence per study and how likely it persists to the patient's
next study. Negative findings come from :data:`DEFAULT_NEGATIVES` (the release adds
pre-defined negative default observations when nothing contradicts them) and
:data:`OTHER_NEGATIVES`.
"""

from __future__ import annotations

from dataclasses import dataclass

LUNG_ZONES = ("{s} upper lung zone", "{s} mid lung zone", "{s} lower lung zone")
LOBES_RIGHT = ("right upper lung lobe", "right middle lung lobe", "right lower lung lobe")
LOBES_LEFT = ("left upper lung lobe", "lingula", "left lower lung lobe")


@dataclass(frozen=True)
class FindingSpec:
    entity: str
    draw: str | None                       # render kind, or None for anatomy-level findings
    regions: dict[int, tuple[str, ...]]    # severity (0 = none) -> candidate regions ("{s}" = side)
    sided: bool = True
    has_severity: bool = True
    prevalence: float = 0.1                # P(positive) in a patient's first study
    persistence: float = 0.5               # P(still positive in the next study)
    bilateral: float = 0.0                 # P(both sides) when sided
    device: bool = False
    technical: bool = False
    # words for text: adjectives per severity, and whether the finding takes an article
    sizes: tuple[str, str, str] = ("mild", "moderate", "severe")
    countable: bool = True


def _sev(*per: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    return {i + 1: p for i, p in enumerate(per)}


SPECS: tuple[FindingSpec, ...] = (
    FindingSpec("pleural effusion", "effusion",
                _sev(("{s} costophrenic angle",), ("{s} lung base", "{s} costophrenic angle"), ("{s} lower lung zone",)),
                prevalence=0.2, persistence=0.6, bilateral=0.25, sizes=("small", "moderate", "large")),
    FindingSpec("pneumothorax", "pneumothorax",
                _sev(("{s} lung apex",), ("{s} upper lung zone",), ("{s} lung",)),
                prevalence=0.07, persistence=0.4, sizes=("small", "moderate", "large")),
    FindingSpec("consolidation", "consolidation",
                _sev(LUNG_ZONES, LUNG_ZONES + ("{s} lower lung lobe",), ("{s} lower lung lobe", "{s} upper lung lobe")),
                prevalence=0.11, persistence=0.4, countable=False),
    FindingSpec("pneumonia", "pneumonia",
                _sev(LUNG_ZONES, ("{s} lower lung lobe", "{s} mid lung zone"), ("{s} lower lung lobe", "{s} upper lung lobe")),
                prevalence=0.09, persistence=0.35, countable=False),
    FindingSpec("lung opacity", "opacity",
                _sev(LUNG_ZONES + ("{s} lung base",), LUNG_ZONES, LUNG_ZONES),
                prevalence=0.11, persistence=0.4),
    FindingSpec("atelectasis", "atelectasis",
                _sev(("{s} lung base", "{s} lower lung zone"), ("{s} lung base", "{s} lower lung zone"), ("{s} lower lung zone",)),
                prevalence=0.15, persistence=0.4, bilateral=0.3, countable=False),
    FindingSpec("edema", "edema", _sev(("lungs",), ("lungs",), ("lungs",)), sided=False,
                prevalence=0.11, persistence=0.5, countable=False),
    FindingSpec("cardiomegaly", None, _sev(("heart",), ("heart", "cardiac silhouette"), ("heart", "cardiac silhouette")),
                sided=False, prevalence=0.17, persistence=0.92, countable=False),
    FindingSpec("enlarged cardiomediastinum", None, {0: ("mediastinum", "upper mediastinum")}, sided=False,
                has_severity=False, prevalence=0.04, persistence=0.8, countable=False),
    FindingSpec("nodule", "nodule", {0: LUNG_ZONES}, has_severity=False, prevalence=0.06, persistence=0.9),
    FindingSpec("mass", "mass", {0: LUNG_ZONES + ("{s} upper lung lobe",)}, has_severity=False,
                prevalence=0.03, persistence=0.9),
    FindingSpec("rib fracture", None, {0: tuple(f"{{s}} {o} posterior rib" for o in ("4th", "5th", "6th", "7th", "8th"))},
                has_severity=False, prevalence=0.04, persistence=0.7),
    FindingSpec("pleural thickening", "pleural_thickening", {0: ("{s} lateral pleura", "{s} apical pleura")},
                has_severity=False, prevalence=0.03, persistence=0.95, countable=False),
    # devices
    FindingSpec("endotracheal tube", "ett", {0: ("trachea",)}, sided=False, has_severity=False,
                prevalence=0.11, persistence=0.5, device=True),
    FindingSpec("nasogastric tube", "ngt", {0: ("esophagus",)}, sided=False, has_severity=False,
                prevalence=0.09, persistence=0.5, device=True),
    FindingSpec("central venous catheter", "cvc", {0: ("superior vena cava",)}, has_severity=False,
                prevalence=0.13, persistence=0.6, device=True),
    FindingSpec("picc line", "picc", {0: ("superior vena cava",)}, has_severity=False,
                prevalence=0.06, persistence=0.7, device=True),
    FindingSpec("chest tube", "chest_tube", {0: ("{s} hemithorax",)}, has_severity=False,
                prevalence=0.05, persistence=0.5, device=True),
    FindingSpec("pacemaker", "pacemaker", {0: ("left chest wall",)}, sided=False, has_severity=False,
                prevalence=0.07, persistence=0.98, device=True),
    FindingSpec("sternotomy wires", "sternotomy", {0: ("sternum",)}, sided=False, has_severity=False,
                prevalence=0.06, persistence=1.0, device=True, countable=False),
    # technical assessment (imaging artifacts, acquisition)
    FindingSpec("low lung volumes", None, {0: ("lungs",)}, sided=False, has_severity=False,
                prevalence=0.08, persistence=0.3, technical=True, countable=False),
    FindingSpec("ecg leads", "ecg_leads", {0: ("chest",)}, sided=False, has_severity=False,
                prevalence=0.08, persistence=0.3, technical=True, device=False, countable=False),
    FindingSpec("patient rotation", None, {0: ("chest",)}, sided=False, has_severity=False,
                prevalence=0.05, persistence=0.1, technical=True, countable=False),
)
SPEC_BY_ENTITY: dict[str, FindingSpec] = {s.entity: s for s in SPECS}

# default negative observations (release: added when no observation contradicts them)
DEFAULT_NEGATIVES: dict[str, tuple[str, ...]] = {
    "pneumothorax": ("left lung", "right lung"),
    "pleural effusion": ("left costophrenic angle", "right costophrenic angle"),
    "consolidation": ("lungs",),
    "edema": ("lungs",),
    "cardiomegaly": ("heart",),
}
# other findings a report may negate (a few per study)
OTHER_NEGATIVES: dict[str, tuple[str, ...]] = {
    "nodule": ("lungs",),
    "mass": ("lungs",),
    "rib fracture": ("ribs",),
    "fracture": ("osseous structures",),
    "pneumomediastinum": ("mediastinum",),
    "lymphadenopathy": ("hilar lymph nodes",),
    "pneumoperitoneum": ("upper abdomen",),
    "pleural thickening": ("pleura",),
    "enlarged cardiomediastinum": ("mediastinum",),
    "pneumonia": ("lungs",),
    "atelectasis": ("lung bases",),
    "lung opacity": ("lungs",),
    "interstitial abnormality": ("interstitium",),
    "subcutaneous emphysema": ("soft tissues",),
    "hilar enlargement": ("left hilar structures", "right hilar structures"),
    "mediastinal widening": ("mediastinum",),
    "aspiration": ("lung bases",),
    "tortuous aorta": ("aorta",),
}

# sentences: how a negative is usually phrased
NEGATIVE_PHRASES: dict[str, tuple[str, ...]] = {
    "pneumothorax": ("There is no pneumothorax.", "No pneumothorax is seen.", "No evidence of pneumothorax."),
    "pleural effusion": ("There is no pleural effusion.", "No pleural effusions are seen.", "The costophrenic angles are sharp, without effusion."),
    "consolidation": ("There is no focal consolidation.", "No focal consolidation is seen.", "The lungs are clear without consolidation."),
    "edema": ("There is no pulmonary edema.", "No evidence of edema.", "There is no pulmonary vascular congestion or edema."),
    "cardiomegaly": ("The heart size is normal.", "There is no cardiomegaly.", "The cardiac silhouette is not enlarged."),
}
