"""The detector's classes (design analysis 4.3) and which scene-graph node becomes which class.

52 classes in the release's spelling (lower case, spaces), in this order (the class id is the
position): the 26 anatomical regions of the region head (``cxrbench.vocab.HEAD_REGIONS``,
the design's list in the same order: ``left_diaphragm`` is the release's "left
hemidiaphragm", ``left_hilum`` "left hilar structures", ``abdomen_visible`` "abdomen"), the
17 findings and the 9 devices of 4.3.

Which boxes become labels (one rule, :func:`node_classes`):

- a *region node* whose name is a region class: each of its boxes on the image. Only the
  exact region: a finer region (``"left lung base"``) is not its head class's box;
- a *positive observation* (``positiveness == "pos"``, any probability): each of its boxes,
  for every entity that is a class, else for the first ``obs_entities_parents`` entry that is
  (``"rib fracture"`` -> fracture). Negative observations ("no pneumothorax") carry the boxes
  of the regions they were checked in, not of a finding, and never become labels;
- a child observation (``O02.01``) adds only classes its ancestors do not already have: the
  children of a device are its tip position, whose box is not the device's;
- fallback boxes (``is_fallback``: the parent region's box released in place of a missing
  one) are not the finding's box and are skipped (counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from cxrbench import vocab
from cxrbench.data.vocabulary import normalize_name

REGION_CLASSES: tuple[str, ...] = vocab.HEAD_REGIONS
FINDING_CLASSES: tuple[str, ...] = (
    "atelectasis", "cardiomegaly", "consolidation", "edema", "enlarged cardiomediastinum", "fracture",
    "lung lesion", "lung opacity", "pleural effusion", "pneumonia", "pneumothorax", "pleural thickening",
    "mass", "nodule", "infiltrate", "fibrosis", "emphysema",
)
DEVICE_CLASSES: tuple[str, ...] = (
    "endotracheal tube", "central venous catheter", "chest tube", "pacemaker", "picc line",
    "nasogastric tube", "tracheostomy", "surgical clips", "port catheter",
)
CLASS_NAMES: tuple[str, ...] = REGION_CLASSES + FINDING_CLASSES + DEVICE_CLASSES
CLASS_ID: dict[str, int] = {n: i for i, n in enumerate(CLASS_NAMES)}
KINDS = ("region", "finding", "device")
CLASS_KIND: dict[str, str] = {
    **{n: "region" for n in REGION_CLASSES}, **{n: "finding" for n in FINDING_CLASSES},
    **{n: "device" for n in DEVICE_CLASSES},
}

# Laterality of the region classes as the release writes it on region nodes (patient's side;
# the aorta and its arch lie left of the midline).
REGION_LATERALITY: dict[str, str] = {
    n: ("left" if n.startswith("left ") else "right" if n.startswith("right ") else "midline") for n in REGION_CLASSES
}
REGION_LATERALITY.update({"aorta": "left", "aortic arch": "left", "pleura": "bilateral"})

# Observation categories of the finding and device classes (the release's obs_categories).
CLASS_CATEGORIES: dict[str, list[str]] = {
    **{n: ["ANATOMICAL_FINDING", "DISEASE"] for n in FINDING_CLASSES},
    **{n: ["DEVICE"] for n in DEVICE_CLASSES},
    "fracture": ["ANATOMICAL_FINDING"], "cardiomegaly": ["ANATOMICAL_FINDING"],
    "enlarged cardiomediastinum": ["ANATOMICAL_FINDING"],
}

# The indication's answer node: its boxes are those of the findings it summarises.
INDICATION_OBS_ID = "OIND"

assert len(REGION_CLASSES) == 26 and len(FINDING_CLASSES) == 17 and len(DEVICE_CLASSES) == 9
assert len(CLASS_ID) == len(CLASS_NAMES) == 52


@dataclass(frozen=True)
class NodeLabel:
    """One class of one scene-graph node with the node's boxes on one image."""

    class_id: int
    boxes: tuple[tuple[float, float, float, float], ...]
    node_id: str


def observation_classes(obs: Mapping[str, Any]) -> list[int]:
    """Class ids of a positive observation's entities (entity itself, else its first class
    parent); [] for negative observations and entities outside the classes."""
    if obs.get("positiveness") != "pos":
        return []
    own = [CLASS_ID[e] for e in map(normalize_name, obs.get("obs_entities") or []) if e in CLASS_ID]
    if own:
        return list(dict.fromkeys(own))
    for p in map(normalize_name, obs.get("obs_entities_parents") or []):
        if p in CLASS_ID and CLASS_KIND[p] != "region":
            return [CLASS_ID[p]]
    return []


def region_class(name: str) -> int | None:
    """The class id of a region node (exact region classes only), else None."""
    n = normalize_name(name)
    return CLASS_ID[n] if CLASS_KIND.get(n) == "region" else None


def _parent_obs(oid: str) -> str | None:
    return oid.rsplit(".", 1)[0] if "." in oid else None


def node_labels(scene_graph: Mapping[str, Any], image_id: str) -> tuple[list[NodeLabel], dict[str, int]]:
    """The labels of one image of a scene graph (rules in the module docstring) and the counts
    of what was left out (``fallback_boxes``, ``negative_observations``, ...)."""
    skipped = {"fallback_boxes": 0, "negative_observations": 0, "unmapped_positive_observations": 0,
               "child_duplicates": 0}
    out: list[NodeLabel] = []
    observations = scene_graph.get("observations") or {}
    classes_of: dict[str, list[int]] = {}
    # parents before children, so that a child sees its ancestors' classes
    for oid in sorted(observations, key=lambda s: (str(s).count("."), str(s))):
        o = observations[oid]
        if oid == INDICATION_OBS_ID:
            continue
        cls = observation_classes(o)
        if o.get("positiveness") != "pos":
            skipped["negative_observations"] += 1
        elif not cls:
            skipped["unmapped_positive_observations"] += 1
        inherited: set[int] = set()
        p = _parent_obs(str(oid))
        while p is not None:
            inherited.update(classes_of.get(p, []))
            p = _parent_obs(p)
        classes_of[str(oid)] = cls
        new = [c for c in cls if c not in inherited]
        skipped["child_duplicates"] += len(cls) - len(new)
        if new:
            boxes = _boxes(o.get("localization"), image_id, skipped)
            out.extend(NodeLabel(c, boxes, str(oid)) for c in new if boxes)
    for name, r in (scene_graph.get("regions") or {}).items():
        c = region_class(name)
        if c is None or type(r) is not dict:
            continue
        boxes = _boxes(r.get("localization"), image_id, skipped)
        if boxes:
            out.append(NodeLabel(c, boxes, str(name)))
    return out, skipped


def _boxes(loc: Any, image_id: str, skipped: dict[str, int]) -> tuple[tuple[float, float, float, float], ...]:
    item = loc.get(image_id) if type(loc) is dict else None
    if not item:
        return ()
    boxes = tuple(tuple(float(v) for v in b) for b in item.get("bboxes") or [])
    if boxes and item.get("is_fallback"):
        skipped["fallback_boxes"] += len(boxes)
        return ()
    return boxes  # type: ignore[return-value]
