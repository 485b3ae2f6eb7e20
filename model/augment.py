"""Augmentation of seed 2.6.2: image, scene graph and question level.

Everything takes an explicit ``numpy.random.Generator`` seeded per (run seed, epoch, item), so
an augmented epoch is the same whether or not training was interrupted and resumed.

* Horizontal flip (image level): mirrors boxes and the image, and swaps "left" and "right"
  in region names, the question and the region labels, so the labels stay true of the
  flipped picture. There is no vertical flip (anatomically invalid). Finding entity names
  are left alone ("left ventricular enlargement" is a finding, not a place).
* Node dropout: drops observation nodes (never the global token nor region nodes).
* Edge perturbation: the node tokens encode the node->region ("located at") edges through
  their region embeddings; an edge is perturbed by re-linking the node to a sibling region
  that folds onto the same head region ("left lower lung zone" -> "left lung base"), the
  spatial softening the seed describes.
* Box jitter: each coordinate moves by up to ``jitter`` times the box's width/height.
* Question synonyms and template variation: a small table of clinical synonyms and
  rephrasings of the release's question templates.
"""

from __future__ import annotations

import re
from typing import Iterable

import numpy as np

_LR = re.compile(r"\b(left|right|Left|Right|LEFT|RIGHT)\b")
_SWAP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "LEFT": "RIGHT", "RIGHT": "LEFT"}


def swap_left_right(text: str) -> str:
    """Swap the words left and right (case kept): the relabelling that goes with a flip."""
    return _LR.sub(lambda m: _SWAP[m.group(0)], text)


def flip_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    """Mirror ``[x1, y1, x2, y2]`` boxes in an image of ``width`` pixels."""
    out = np.array(boxes, dtype=np.float32, copy=True)
    out[:, 0] = width - boxes[:, 2]
    out[:, 2] = width - boxes[:, 0]
    return out


def jitter_boxes(boxes: np.ndarray, fraction: float, width: float, height: float,
                 rng: np.random.Generator) -> np.ndarray:
    if fraction <= 0 or len(boxes) == 0:
        return boxes
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    shifted = boxes + rng.uniform(-fraction, fraction, size=boxes.shape) * size
    shifted[:, [0, 2]] = np.clip(shifted[:, [0, 2]], 0, width)
    shifted[:, [1, 3]] = np.clip(shifted[:, [1, 3]], 0, height)
    # keep at least a pixel of extent after clipping
    shifted[:, 2] = np.maximum(shifted[:, 2], shifted[:, 0] + 1.0)
    shifted[:, 3] = np.maximum(shifted[:, 3], shifted[:, 1] + 1.0)
    return shifted.astype(np.float32)


def sibling_groups(region_to_head: dict[str, str | None]) -> dict[str, list[str]]:
    """Fine regions grouped by the head region they fold onto (the perturbation's choices)."""
    groups: dict[str, list[str]] = {}
    for region, head in sorted(region_to_head.items()):
        if head is not None:
            groups.setdefault(head, []).append(region)
    return {r: groups[h] for r, h in region_to_head.items() if h is not None and len(groups[h]) > 1}


def perturb_regions(regions: list[str], siblings: dict[str, list[str]], p: float,
                    rng: np.random.Generator) -> list[str]:
    out = []
    for region in regions:
        choices = siblings.get(region)
        if choices and rng.random() < p:
            region = choices[int(rng.integers(len(choices)))]
        out.append(region)
    return out


# --- questions -------------------------------------------------------------------------------

# Synonyms that keep the meaning of a chest X-ray question (seed 2.6.2 level 3). Keys are
# matched as whole words, case-insensitively; the first letter's case is kept.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "cardiomegaly": ("an enlarged heart", "heart enlargement"),
    "pleural effusion": ("fluid in the pleural space", "an effusion"),
    "pneumothorax": ("a collapsed lung", "air in the pleural space"),
    "atelectasis": ("lung collapse", "volume loss"),
    "consolidation": ("airspace consolidation",),
    "lung opacity": ("an opacity of the lung", "a pulmonary opacity"),
    "edema": ("fluid overload",),
    "abnormal": ("not normal",),
    "abnormalities": ("anomalies", "pathologic findings"),
    "findings": ("observations",),
    "devices": ("medical devices", "lines and tubes"),
    "study": ("examination", "radiograph"),
    "image": ("radiograph", "x-ray"),
}
_SYN_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, SYNONYMS), key=len, reverse=True)) + r")\b", re.I)

# Template variations: (pattern, rephrasings with {0}, {1}... for the groups).
TEMPLATES: tuple[tuple[re.Pattern, tuple[str, ...]], ...] = (
    (re.compile(r"^Is there (.+?)\?$", re.I), ("Do you see {0}?", "Can you identify {0}?", "Is {0} present?")),
    (re.compile(r"^Are there (.+?)\?$", re.I), ("Do you see {0}?", "Can you identify {0}?")),
    (re.compile(r"^Where is (.+?)\?$", re.I), ("Where can {0} be found?", "In which region is {0}?")),
    (re.compile(r"^Describe (.+?)\.?$", re.I), ("Please describe {0}.", "What can you say about {0}?")),
    (re.compile(r"^How severe is (.+?)\?$", re.I), ("What is the severity of {0}?", "How bad is {0}?")),
)


def _keep_case(original: str, replacement: str) -> str:
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def synonym_replace(question: str, rng: np.random.Generator) -> str:
    def sub(m: re.Match) -> str:
        choices = SYNONYMS[m.group(0).lower()]
        return _keep_case(m.group(0), choices[int(rng.integers(len(choices)))])

    return _SYN_RE.sub(sub, question)


def vary_template(question: str, rng: np.random.Generator) -> str:
    text = question.strip()
    for pattern, variants in TEMPLATES:
        m = pattern.match(text)
        if m:
            variant = variants[int(rng.integers(len(variants)))]
            return variant.format(*m.groups())
    return question


def augment_question(question: str, synonyms_p: float, template_p: float, rng: np.random.Generator) -> str:
    if template_p > 0 and rng.random() < template_p:
        question = vary_template(question, rng)
    if synonyms_p > 0 and rng.random() < synonyms_p:
        question = synonym_replace(question, rng)
    return question


def drop_nodes(kinds: Iterable[str], p: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the tokens kept: observation nodes are dropped with probability ``p``."""
    kinds = list(kinds)
    draws = rng.random(len(kinds))
    return np.array([i for i, k in enumerate(kinds) if not (k == "observation" and draws[i] < p)], dtype=np.int64)
