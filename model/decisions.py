"""Decision rules of the set-valued heads: from probabilities to the answer's regions or findings.

Both heads give independent sigmoid probabilities, and an answer can name several classes:

* region: the top region always, plus every other region at or above
  ``heads.region_threshold``;
* text: every finding at or above its threshold (``heads.finding_thresholds``, tuned on the
  validation split at the end of training by :mod:`model.thresholds`, else
  ``heads.finding_threshold`` for all 14), "No Finding" when none is.

Inference (:mod:`model.inference`) and threshold tuning (:mod:`model.thresholds`) both apply
these functions, so the thresholds are tuned on exactly the rule evaluation uses.
"""

from __future__ import annotations

import numpy as np

from model.vocabularies import FINDING_CLASSES

NO_FINDING = FINDING_CLASSES.index("No Finding")


def finding_thresholds(heads_cfg) -> np.ndarray:
    """(14,) thresholds of a head config: the tuned ones, else ``finding_threshold`` for all."""
    if heads_cfg.finding_thresholds:
        return np.asarray(heads_cfg.finding_thresholds, dtype=np.float64)
    return np.full(len(FINDING_CLASSES), float(heads_cfg.finding_threshold))


def decide_findings(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(n, 14) bool answer sets: findings at or above their threshold, "No Finding" when none is."""
    chosen = np.asarray(probs) >= np.asarray(thresholds)[None, :]
    chosen[~chosen.any(axis=1), NO_FINDING] = True
    return chosen


def decide_regions(probs: np.ndarray, threshold: float) -> list[int]:
    """Region classes of one answer, most probable first: the top one, then every other at or
    above ``threshold`` (ties keep class order)."""
    p = np.asarray(probs)
    top = int(np.argmax(p))
    return [int(k) for k in np.argsort(-p, kind="stable") if k == top or p[k] >= threshold]
