"""One synthetic study: its true findings, images, observations and scene graph.

``make_study`` samples the findings (carrying persistent ones over from the patient's previous
study), lays out the images (1-3 of PA / AP / LATERAL), renders them, and builds the
observation nodes with their boxes on every image. The release's noise is applied to the
observation boxes only (seed 2.5): ~5.6% displaced, ~0.8% missing (half of them replaced by a
parent region's box, ``is_fallback``); the clean boxes and every change are kept in
``Study.noise_log`` for ``synthetic_truth/``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image

from cxrbench.data.quality import CRITERION_CODES, RATING_CODES
from cxrbench.data.synth import text as T
from cxrbench.data.synth.anatomy import (
    Box,
    FrontalAnatomy,
    LateralAnatomy,
    Modifiers,
    Pose,
    Traits,
    frontal_region_boxes,
    lateral_region_boxes,
    with_ap,
)
from cxrbench.data.synth.findings import DEFAULT_NEGATIVES, OTHER_NEGATIVES, SPEC_BY_ENTITY, SPECS
from cxrbench.data.synth.lexicon import ENTITY_BY_NAME, REGION_BY_NAME
from cxrbench.data.synth.render import Draw, render_frontal, render_lateral

BOX_DISPLACED_RATE = 0.056
BOX_MISSING_RATE = 0.008
ENTITY_PARENTS: dict[str, tuple[str, ...]] = {
    "consolidation": ("lung opacity",), "pneumonia": ("infection", "lung opacity"), "lung opacity": ("opacity",),
    "rib fracture": ("fracture",), "edema": ("fluid overload",), "nodule": ("lesion",), "mass": ("lesion",),
    "pleural effusion": ("pleural fluid",), "atelectasis": ("volume loss",),
    "central venous catheter": ("catheter",), "picc line": ("catheter",),
}
VIEW_COMBOS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("PA", "LATERAL"), 0.42), (("AP",), 0.33), (("PA",), 0.08), (("AP", "LATERAL"), 0.06), (("AP", "AP"), 0.04),
    (("LATERAL",), 0.03), (("PA", "LATERAL", "LATERAL"), 0.02), (("PA", "AP", "LATERAL"), 0.02),
)
VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"}
# commonly mentioned regions: every scene graph holds some of them beside the mentioned ones
COMMON_REGIONS = (
    "lungs", "left lung", "right lung", "heart", "cardiac silhouette", "mediastinum", "trachea", "carina",
    "aortic arch", "left hilar structures", "right hilar structures", "left costophrenic angle",
    "right costophrenic angle", "left hemidiaphragm", "right hemidiaphragm", "spine", "left clavicle",
    "right clavicle", "left upper lung lobe", "left lower lung lobe", "right upper lung lobe",
    "right middle lung lobe", "right lower lung lobe", "left upper lung zone", "left mid lung zone",
    "left lower lung zone", "right upper lung zone", "right mid lung zone", "right lower lung zone",
    "left lung base", "right lung base", "left lung apex", "right lung apex", "upper mediastinum",
    "aorta", "pleura", "abdomen", "neck", "retrocardiac region", "superior vena cava", "esophagus", "stomach",
)


@dataclass
class FindingState:
    entity: str
    side: str | None          # left / right / bilateral / None
    severity: int
    regions: tuple[str, ...]
    probability: str = "positive"
    change: str | None = None


@dataclass
class ImageSpec:
    image_id: str
    view: str
    pose: Pose
    boxes: dict[str, Box]        # normalised, every localisable region
    size: int
    orientation: str

    @property
    def frontal(self) -> bool:
        return self.view in ("PA", "AP")

    def pixel_box(self, region: str) -> list[float] | None:
        b = self.boxes.get(region)
        if b is None:
            return None
        return list(self.pose.box(b, self.size))


@dataclass
class Observation:
    obs_id: str
    entity: str
    positive: bool
    probability: str
    severity: int
    laterality: str
    regions: list[str]
    default_regions: list[str]
    where_specified: str
    name: str
    sentence: str
    report_sentence: str
    modifiers: dict[str, list[str]]
    changes: list[str]
    change_sentence: str | None
    section: str = "FINDINGS"
    child_type: str | None = None
    child_level: int = 0
    parent_id: str | None = None
    children: list["Observation"] = field(default_factory=list)
    localization: dict[str, dict] = field(default_factory=dict)
    quality: dict[str, int] = field(default_factory=dict)
    from_report: bool = True
    entities: list[str] = field(default_factory=list)  # when more than the one ``entity``

    @property
    def obs_entities(self) -> list[str]:
        return self.entities or [self.entity]

    @property
    def grade_cap(self) -> str:
        """The best grade an answer built on this observation can have (localisation rule)."""
        locs = list(self.localization.values())
        if any(loc["is_fallback"] for loc in locs) or (locs and any(loc["missing_localization"] for loc in locs if loc["bboxes"] == [])):
            return "B"
        return "A++"


@dataclass
class Study:
    subject_id: int
    study_id: int
    split: str
    date: int
    time: float
    images: list[ImageSpec]
    findings: list[FindingState]
    observations: list[Observation]          # top level, children inside
    indication: dict | None
    indication_obs: Observation | None
    regions: list[str]
    region_relations: list[dict]
    quality: dict[str, int]
    grade: str
    region_localization: dict[str, dict] = field(default_factory=dict)  # region node -> per-image localisation
    image_bytes: dict[str, bytes] = field(default_factory=dict)
    noise_log: list[dict] = field(default_factory=list)
    sentences: list[dict] = field(default_factory=list)
    obs_sent: list[tuple[str, str]] = field(default_factory=list)

    @property
    def patient_id(self) -> str:
        return f"p{self.subject_id}"

    @property
    def study_key(self) -> str:
        return f"s{self.study_id}"

    def all_observations(self) -> list[Observation]:
        out: list[Observation] = []

        def walk(o: Observation) -> None:
            out.append(o)
            for c in o.children:
                walk(c)

        for o in self.observations:
            walk(o)
        return out


# ----------------------------------------------------------------------------------------------
# findings


def _fmt(region: str, side: str) -> str:
    return region.replace("{s}", side)


def _choose_regions(rng: np.random.Generator, spec, side: str | None, severity: int) -> tuple[str, ...]:
    cands = spec.regions[severity if spec.has_severity else 0]
    tmpl = str(cands[rng.integers(len(cands))])
    if side == "bilateral":
        return (_fmt(tmpl, "right"), _fmt(tmpl, "left"))
    region = _fmt(tmpl, side or "right")
    if region == "left middle lung lobe":
        region = "lingula"
    return (region,)


def sample_findings(rng: np.random.Generator, previous: list[FindingState] | None) -> list[FindingState]:
    prev = {f.entity: f for f in (previous or [])}
    out: list[FindingState] = []
    for spec in SPECS:
        p = prev.get(spec.entity)
        if p is not None and rng.random() < spec.persistence:
            sev, change = p.severity, ("stable" if rng.random() < 0.5 else "unchanged")
            if spec.has_severity and rng.random() < 0.3:
                sev = int(np.clip(sev + rng.choice([-1, 1]), 1, 3))
                change = "increased" if sev > p.severity else ("decreased" if sev < p.severity else change)
            regions = p.regions if sev == p.severity else _choose_regions(rng, spec, p.side, sev)
            out.append(FindingState(spec.entity, p.side, sev, regions, "positive", change))
            continue
        rate = spec.prevalence * (0.7 if previous is not None else 1.0)
        if rng.random() < rate:
            if spec.sided:
                side = "bilateral" if rng.random() < spec.bilateral else str(rng.choice(["left", "right"]))
            else:
                side = None
            sev = int(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2])) if spec.has_severity else 0
            prob = "positive"
            if not spec.device and not spec.technical and rng.random() < 0.08:
                prob = str(rng.choice(["likely", "may"]))
            out.append(FindingState(spec.entity, side, sev, _choose_regions(rng, spec, side, sev), prob,
                                    "new" if previous is not None and rng.random() < 0.7 else None))
    if len(out) > 6:  # keep reports readable: at most six positive findings
        keep = sorted(rng.choice(len(out), 6, replace=False).tolist())
        out = [out[i] for i in keep]
    return out


def anatomy_modifiers(findings: list[FindingState], rng: np.random.Generator, previous: Modifiers | None) -> Modifiers:
    m = Modifiers()
    for f in findings:
        if f.entity == "cardiomegaly":
            m = replace(m, heart_scale={1: 1.2, 2: 1.34, 3: 1.5}[f.severity])
        elif f.entity == "enlarged cardiomediastinum":
            m = replace(m, mediastinum_scale=1.5)
        elif f.entity == "low lung volumes":
            m = replace(m, dome_raise=0.055)
        elif f.entity == "patient rotation":
            m = replace(m, rotation_shift=float(rng.choice([-1, 1]) * rng.uniform(0.02, 0.035)))
        elif f.entity == "rib fracture":
            side, k = f.regions[0].split()[0], int("".join(ch for ch in f.regions[0].split()[1] if ch.isdigit()))
            old = previous.fractures if previous is not None else ()
            pos = next((p for s, kk, p in old if (s, kk) == (side, k)), float(rng.uniform(0.35, 0.75)))
            m = replace(m, fractures=((side, k, pos),))
    return m


def draws_for(findings: list[FindingState]) -> list[tuple[str, str, str | None, int]]:
    """(render kind, region, side, severity) of every drawn finding."""
    out = []
    for f in findings:
        spec = SPEC_BY_ENTITY[f.entity]
        if spec.draw is None:
            continue
        for region in f.regions:
            side = region.split()[0] if region.split()[0] in ("left", "right") else (f.side if f.side in ("left", "right") else None)
            out.append((spec.draw, region, side, f.severity))
    return out


# ----------------------------------------------------------------------------------------------
# images


def _hexid(rng: np.random.Generator) -> str:
    raw = rng.integers(0, 2 ** 32, size=5, dtype=np.uint64)
    return "-".join(f"{int(x):08x}" for x in raw)


def make_images(rng: np.random.Generator, traits: Traits, mods: Modifiers, size: int) -> list[ImageSpec]:
    combos, probs = zip(*VIEW_COMBOS)
    combo = combos[int(rng.choice(len(combos), p=np.array(probs) / sum(probs)))]
    base = FrontalAnatomy(traits, mods)
    pa_boxes = frontal_region_boxes(base)
    images = []
    for view in combo:
        pose = Pose.sample(rng)
        if view == "PA":
            boxes, orient = pa_boxes, "Erect"
        elif view == "AP":
            boxes, orient = frontal_region_boxes(with_ap(base)), str(rng.choice(["Erect", "Recumbent", ""], p=[0.3, 0.5, 0.2]))
        else:
            boxes, orient = lateral_region_boxes(LateralAnatomy(traits, mods), pa_boxes), "Erect"
        images.append(ImageSpec(_hexid(rng), view, pose, boxes, size, orient))
    return images


def render_images(images: list[ImageSpec], traits: Traits, mods: Modifiers, findings: list[FindingState],
                  rng: np.random.Generator, anatomy_seed: int) -> dict[str, bytes]:
    specs = draws_for(findings)
    out = {}
    for im in images:
        anat_rng = np.random.default_rng(anatomy_seed)  # the same lung markings in every image of the patient
        draws = [Draw(kind, im.boxes[region], side, sev) for kind, region, side, sev in specs if region in im.boxes]
        if im.view == "LATERAL":
            pix = render_lateral(LateralAnatomy(traits, mods), im.pose, draws, im.size, rng, anat_rng)
        else:
            anat = FrontalAnatomy(traits, mods)
            pix = render_frontal(with_ap(anat) if im.view == "AP" else anat, im.pose, draws, im.size, rng, anat_rng)
        buf = io.BytesIO()
        Image.fromarray(pix, mode="L").save(buf, format="JPEG", quality=92)
        out[im.image_id] = buf.getvalue()
    return out


# ----------------------------------------------------------------------------------------------
# observations


def _entity_tags(entity: str) -> tuple[list[str], list[str]]:
    e = ENTITY_BY_NAME.get(entity)
    return (list(e.categories), list(e.subcategories)) if e else (["ANATOMICAL_FINDING"], ["GENERAL"])


def _laterality(regions: list[str]) -> str:
    lats = {REGION_BY_NAME[r].laterality if r in REGION_BY_NAME else "midline" for r in regions}
    if lats == {"left"} or lats == {"right"}:
        return lats.pop()
    if "left" in lats and "right" in lats or "bilateral" in lats:
        return "bilateral"
    return "unspecified" if not regions else "midline"


def _obs_quality(rng: np.random.Generator, has_default_regions: bool) -> dict[str, int]:
    q = {
        "region_quality": CRITERION_CODES["region_quality"]["CONTAINS_DEFAULT_REGIONS" if has_default_regions else "RESOLVED_REGIONS_ONLY"],
        "entity_quality": CRITERION_CODES["entity_quality"]["RESOLVED_ENTITIES_ONLY"],
        "sentence_name_quality": CRITERION_CODES["sentence_name_quality"]["NO_ISSUES"],
        "change_quality": CRITERION_CODES["change_quality"]["NO_ISSUES"],
        "issue_level": CRITERION_CODES["issue_level"][str(rng.choice(["NO_ISSUES", "FIXABLE", "IGNORABLE"], p=[0.8, 0.12, 0.08]))],
    }
    return q


def positive_observation(rng: np.random.Generator, f: FindingState, obs_id: str) -> Observation:
    spec = SPEC_BY_ENTITY[f.entity]
    regions = list(f.regions)
    np_ = T.noun_phrase(f.entity, f.side, f.severity, regions)
    sentence = T.positive_sentence(f.entity, np_, f.probability, rng)
    mods: dict[str, list[str]] = {"temporal": [], "severity": [], "texture": [], "spread": []}
    if f.severity:
        mods["severity"] = [T.SEVERITY_WORDS[f.severity - 1]]
    if f.side == "bilateral":
        mods["spread"] = ["bilateral"]
    texture = {"pneumonia": "patchy", "consolidation": "dense", "lung opacity": "hazy", "atelectasis": "linear",
               "edema": "hazy", "nodule": "nodular"}.get(f.entity)
    if texture:
        mods["texture"] = [texture]
    if f.change == "new":
        mods["temporal"] = ["new"]
    changes = [f.change] if f.change else []
    change_sentence = T.change_sentence(np_, f.change) if f.change else None
    default_regions = list(ENTITY_BY_NAME[f.entity].default_regions) if f.entity in ENTITY_BY_NAME else []
    certainty = "certain" if f.probability == "positive" else "uncertain"
    obs = Observation(
        obs_id=obs_id, entity=f.entity, positive=True, probability=f.probability, severity=f.severity,
        laterality=_laterality(regions), regions=regions, default_regions=default_regions, where_specified="direct",
        name=np_, sentence=sentence, report_sentence=change_sentence or sentence, modifiers=mods, changes=changes,
        change_sentence=change_sentence, quality=_obs_quality(rng, False),
    )
    obs.quality["certainty"] = 0 if certainty == "certain" else 1
    # child observations: details the report gives about the finding
    children: list[tuple[str, str, list[str], str, bool]] = []  # entity, sentence, regions, child_type, positive
    if spec.device:
        tip = {"endotracheal tube": ("carina", "The tip of the endotracheal tube is {d} cm above the carina."),
               "nasogastric tube": ("stomach", "The tip of the nasogastric tube is in the stomach."),
               "central venous catheter": ("superior vena cava", "The catheter tip is in the mid superior vena cava."),
               "picc line": ("cavoatrial junction", "The tip of the PICC line is near the cavoatrial junction."),
               "chest tube": (f"{f.side or 'right'} lung apex", "The chest tube tip projects over the {s} lung apex."),
               "pacemaker": ("right ventricle", "Pacemaker leads terminate in the right atrium and right ventricle.")}.get(f.entity)
        if tip:
            region, sent = tip
            sent = sent.format(d=int(rng.integers(3, 7)), s=f.side or "right")
            ent = "pacemaker leads" if f.entity == "pacemaker" else f.entity
            regs = ["right atrium", "right ventricle"] if f.entity == "pacemaker" else [region]
            children.append((ent, sent, regs, "located_at", True))
    elif f.entity == "pleural effusion" and rng.random() < 0.5:
        regs = [f"{s} costophrenic angle" for s in (("right", "left") if f.side == "bilateral" else (f.side,))]
        children.append(("blunting of the costophrenic angle", "There is associated blunting of the costophrenic angle.", regs,
                         "associated_with", True))
    elif f.entity == "pneumothorax" and rng.random() < 0.6:
        children.append(("mediastinal shift", "There is no mediastinal shift.", ["mediastinum"], "associated_with", False))
    elif f.entity == "consolidation" and f.severity >= 2 and rng.random() < 0.6:
        children.append(("air bronchograms", "Air bronchograms are seen within the consolidation.", regions, "described_as", True))
    for k, (ent, sent, regs, ctype, pos) in enumerate(children, start=1):
        c = Observation(
            obs_id=f"{obs_id}.{k:02d}", entity=ent, positive=pos, probability="positive" if pos else "negative",
            severity=0, laterality=_laterality(regs), regions=regs,
            default_regions=list(ENTITY_BY_NAME[ent].default_regions) if ent in ENTITY_BY_NAME else [],
            where_specified="direct", name=sent.rstrip(".").lower(), sentence=sent, report_sentence=sent,
            modifiers={"temporal": [], "severity": [], "texture": [], "spread": []}, changes=[], change_sentence=None,
            child_type=ctype, child_level=1, parent_id=obs_id, quality=_obs_quality(rng, False),
        )
        obs.children.append(c)
    return obs


def negative_observation(rng: np.random.Generator, entity: str, regions: tuple[str, ...], obs_id: str, default: bool) -> Observation:
    sentence = T.negative_sentence(entity, rng)
    mods: dict[str, list[str]] = {"temporal": [], "severity": [], "texture": [], "spread": ["focal"] if entity == "consolidation" else []}
    return Observation(
        obs_id=obs_id, entity=entity, positive=False, probability="negative", severity=0,
        laterality=_laterality(list(regions)), regions=list(regions), default_regions=list(regions),
        where_specified="default" if default else "direct", name=T.negative_name(entity), sentence=sentence,
        report_sentence=sentence, modifiers=mods, changes=[], change_sentence=None,
        quality=_obs_quality(rng, default), from_report=not default or rng.random() < 0.5,
    )


def build_observations(rng: np.random.Generator, findings: list[FindingState]) -> list[Observation]:
    obs: list[Observation] = []
    # report order: devices first, then lungs/pleura/heart as a radiologist reads
    order = sorted(findings, key=lambda f: (not SPEC_BY_ENTITY[f.entity].device, SPEC_BY_ENTITY[f.entity].technical))
    for f in order:
        obs.append(positive_observation(rng, f, f"O{len(obs) + 1:02d}"))
    present = {f.entity for f in findings}
    for entity, regions in DEFAULT_NEGATIVES.items():
        if entity not in present:
            obs.append(negative_observation(rng, entity, regions, f"O{len(obs) + 1:02d}", default=True))
    others = [e for e in OTHER_NEGATIVES if e not in present and e not in DEFAULT_NEGATIVES
              and not (e == "fracture" and "rib fracture" in present)]
    for i in rng.choice(len(others), size=int(rng.integers(1, 4)), replace=False):
        e = others[int(i)]
        obs.append(negative_observation(rng, e, OTHER_NEGATIVES[e], f"O{len(obs) + 1:02d}", default=False))
    return obs


# ----------------------------------------------------------------------------------------------
# localisation with noise


def _displace(rng: np.random.Generator, box: list[float], size: int) -> list[float]:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx, dy = rng.uniform(0.25, 0.6) * w * rng.choice([-1, 1]), rng.uniform(0.25, 0.6) * h * rng.choice([-1, 1])
    nx1 = float(np.clip(x1 + dx, 0, size - w))
    ny1 = float(np.clip(y1 + dy, 0, size - h))
    return [round(nx1, 1), round(ny1, 1), round(nx1 + w, 1), round(ny1 + h, 1)]


def localize(rng: np.random.Generator, study_id: int, obs: Observation, images: list[ImageSpec], log: list[dict],
             noisy: bool = True) -> dict[str, dict]:
    """Per-image localisation of an observation (or a region node when ``noisy`` is False)."""
    out = {}
    for im in images:
        bboxes, refs, missing, fallback = [], [], [], False
        for region in obs.regions:
            clean = im.pixel_box(region)
            if clean is None:
                missing.append(region)
                continue
            box, kind = clean, "none"
            if noisy:
                u = rng.random()
                if u < BOX_MISSING_RATE:
                    parent = REGION_BY_NAME[region].parent if region in REGION_BY_NAME else None
                    pbox = im.pixel_box(parent) if parent else None
                    if pbox is not None and rng.random() < 0.5:
                        box, kind, fallback = pbox, "fallback", True
                    else:
                        box, kind = None, "missing"
                elif u < BOX_MISSING_RATE + BOX_DISPLACED_RATE:
                    box, kind = _displace(rng, clean, im.size), "displaced"
                log.append({"study_id": study_id, "image_id": im.image_id, "obs_id": obs.obs_id, "region": region,
                            "clean_bbox": clean, "bbox": box, "noise": kind})
            if box is None:
                missing.append(region)
                continue
            bboxes.append(box)
            refs.append(region)
        if not bboxes and not missing:
            lq = "NO_LOCALIZATION"
        elif fallback:
            lq = "FALLBACK_LOCALIZATION"
        elif missing and bboxes:
            lq = "INCOMPLETE_LOCALIZATION"
        elif not bboxes:
            lq = "NO_LOCALIZATION"
        else:
            lq = "BBOX_LOCALIZATION"
        out[im.image_id] = {
            "image_id": im.image_id, "localization_reference_ids": refs, "bboxes": bboxes,
            "instance_mask_ids": list(refs), "missing_localization": missing, "is_fallback": fallback,
            "localization_quality": CRITERION_CODES["localization_quality"][lq],
        }
    return out


# ----------------------------------------------------------------------------------------------
# regions and their relations


def study_regions(rng: np.random.Generator, observations: list[Observation]) -> list[str]:
    mentioned: list[str] = []
    for o in observations:
        for c in [o, *o.children]:
            mentioned.extend(c.regions)
    extra = [COMMON_REGIONS[i] for i in sorted(rng.choice(len(COMMON_REGIONS), size=14, replace=False))]
    names = dict.fromkeys([*mentioned, "lungs", "left lung", "right lung", "heart", "mediastinum", *extra])
    # fill the tree: every ancestor of a region is a region node too (release: "fill missing
    # intermediate regions based on the reference data")
    out: dict[str, None] = {}
    for n in names:
        cur: str | None = n
        chain = []
        while cur is not None and cur in REGION_BY_NAME:
            chain.append(cur)
            cur = REGION_BY_NAME[cur].parent
        for c in reversed(chain):
            out.setdefault(c)
        if n not in REGION_BY_NAME:
            out.setdefault(n)
    return list(out)


def region_relations(regions: list[str], boxes: dict[str, Box], k_nearest: int = 3) -> list[dict]:
    """region_region_relations: sub_region (parent -> child) and spatial relations between
    nearby localisable regions, read off the clean frontal boxes. ``relation_type`` says where
    ``related_region`` lies relative to ``region`` (patient's left/right)."""
    rels = []
    rs = set(regions)
    for r in regions:
        p = REGION_BY_NAME[r].parent if r in REGION_BY_NAME else None
        if p in rs:
            rels.append({"region": p, "related_region": r, "relation_type": "sub_region"})
    loc = [r for r in regions if r in boxes]

    def ancestors(r: str) -> set[str]:
        out, cur = set(), REGION_BY_NAME[r].parent if r in REGION_BY_NAME else None
        while cur:
            out.add(cur)
            cur = REGION_BY_NAME[cur].parent if cur in REGION_BY_NAME else None
        return out

    anc = {r: ancestors(r) for r in loc}
    centers = {r: ((boxes[r][0] + boxes[r][2]) / 2, (boxes[r][1] + boxes[r][3]) / 2) for r in loc}
    for a in loc:
        cands = [b for b in loc if b != a and b not in anc[a] and a not in anc[b]]
        cands.sort(key=lambda b: ((centers[a][0] - centers[b][0]) ** 2 + (centers[a][1] - centers[b][1]) ** 2, b))
        for b in cands[:k_nearest]:
            rel = _spatial(boxes[a], boxes[b])
            if rel:
                rels.append({"region": a, "related_region": b, "relation_type": rel})
    return rels


def _spatial(a: Box, b: Box) -> str | None:
    """Where box ``b`` lies relative to box ``a`` (image u grows to the patient's left)."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    hov = max(0.0, min(ax2, bx2) - max(ax1, bx1)) / max(1e-6, min(ax2 - ax1, bx2 - bx1))
    vov = max(0.0, min(ay2, by2) - max(ay1, by1)) / max(1e-6, min(ay2 - ay1, by2 - by1))
    if by2 <= ay1 + 0.01 and hov > 0.3:
        return "above"
    if by1 >= ay2 - 0.01 and hov > 0.3:
        return "below"
    if bx1 >= ax2 - 0.01 and vov > 0.3:
        return "left"
    if bx2 <= ax1 + 0.01 and vov > 0.3:
        return "right"
    gap = max(bx1 - ax2, ax1 - bx2, by1 - ay2, ay1 - by2)
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    if gap < 0.015 and inter / max(union, 1e-9) < 0.3:
        return "adjacent"
    return None


# ----------------------------------------------------------------------------------------------
# indication

COMPLAINTS = (
    ("fever and cough", ("pneumonia", "consolidation")),
    ("shortness of breath", ("edema", "pleural effusion")),
    ("chest pain", ("pneumothorax",)),
    ("hypoxia", ("pneumonia", "edema")),
    ("status post line placement", ("central venous catheter", "pneumothorax")),
    ("intubation", ("endotracheal tube",)),
    ("fall with chest wall pain", ("rib fracture", "pneumothorax")),
    ("congestive heart failure", ("edema", "cardiomegaly")),
    ("tube placement", ("nasogastric tube",)),
    ("follow-up of pleural effusion", ("pleural effusion",)),
)


def make_indication(rng: np.random.Generator, observations: list[Observation], findings: list[FindingState]) -> tuple[dict, Observation]:
    sex = str(rng.choice(["Male", "Female"]))
    age = int(rng.integers(25, 95))
    complaint, targets = COMPLAINTS[int(rng.integers(len(COMPLAINTS)))]
    evaluation = "Evaluate for " + " or ".join(t for t in targets) + "." if "placement" not in complaint else "Assess device position."
    summary = f"{sex} patient, {age} years old, with {complaint}; {evaluation[0].lower()}{evaluation[1:]}"
    assoc = [o for o in observations if o.entity in targets]
    present = [o for o in assoc if o.positive]
    if present:
        name = " and ".join(o.name for o in present)
        sentence = f"Yes, there is {T.article(present[0].name) if present[0].entity not in ('edema', 'consolidation', 'pneumonia', 'cardiomegaly', 'atelectasis') else present[0].name}."
        sentence = sentence if len(present) == 1 else "Yes, there is " + " and ".join(o.name for o in present) + "."
        positive, regions = True, sorted({r for o in present for r in o.regions})
    else:
        name = "no " + " or ".join(targets)
        sentence = f"No, there is no evidence of {' or '.join(targets)}."
        positive, regions = False, sorted({r for o in assoc for r in o.regions})
    ind_obs = Observation(
        obs_id="OIND", entity=targets[0], positive=positive, probability="positive" if positive else "negative", severity=0,
        laterality=_laterality(regions), regions=regions, default_regions=[], where_specified="direct", name=name,
        sentence=sentence, report_sentence=sentence, modifiers={"temporal": [], "severity": [], "texture": [], "spread": []},
        changes=[], change_sentence=None, section="INDICATION", quality=_obs_quality(rng, False),
    )
    ind_obs.entities = list(targets)
    indication = {
        "indication_summary": summary,
        "patient_info": f"{sex}, {age} years old.",
        "indication": complaint[0].upper() + complaint[1:] + ".",
        "evaluation": evaluation,
        "associated_sentence_ids": [],
        "associated_obs_ids": [o.obs_id for o in assoc],
    }
    return indication, ind_obs


# ----------------------------------------------------------------------------------------------
# quality


def sample_study_grade(rng: np.random.Generator) -> str:
    return str(rng.choice(["A++", "A+", "A", "B"], p=[0.5, 0.25, 0.2, 0.05]))


def study_quality_codes(grade: str, observations: list[Observation]) -> dict[str, int]:
    q = {k: max(o.quality.get(k, 0) for o in observations) for k in ("region_quality", "entity_quality",
                                                                         "sentence_name_quality", "change_quality")}
    q["issue_level"] = min(o.quality.get("issue_level", 5) for o in observations)
    q["rating"] = RATING_CODES[grade]
    return q
