"""Which QA rows of an index a model can answer: one definition for training and evaluation.

A QA pair is *answerable* when its study has a primary frontal (PA/AP) image
(``studies.parquet`` ``image_id`` not null): the model answers from that image and its scene
graph, so lateral-only studies are skipped by training, threshold tuning and evaluation alike
(evaluation counts them in ``metrics.json`` provenance).
"""

from __future__ import annotations

import numpy as np


def studies_with_frontal_image(studies) -> set:
    """study_ids of ``studies.parquet`` rows with a primary frontal image."""
    return set(studies.loc[studies["image_id"].notna(), "study_id"])


def answerable(qa, studies) -> np.ndarray:
    """Boolean mask over the rows of ``qa``: the study has a primary frontal image."""
    return qa["study_id"].isin(studies_with_frontal_image(studies)).to_numpy(dtype=bool)
