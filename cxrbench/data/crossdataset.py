"""VQA-RAD and SLAKE-EN question files, and their answers folded onto the answer heads (seed 16.3).

The zero-shot protocol applies a model trained on MIMIC-Ext-CXR-QBA, with the scene-graph
branch off, to the two public radiology VQA benchmarks. This module reads their published JSON
formats into one frame and normalises each reference answer to the head that can produce it:

- **binary**: the answer is yes/no in any case or punctuation (``"yes"``, ``"Yes"``, ``"No."``):
  ``answer_binary`` 1/0;
- **region**: a positional question (VQA-RAD ``question_type`` containing ``POS``, SLAKE
  ``content_type == "Position"``) about a *chest* image (VQA-RAD ``image_organ == "CHEST"``,
  SLAKE ``location`` in the lung / mediastinum) whose answer names a structure that one of the
  26 region-head classes (``cxrbench.vocab.HEAD_REGIONS``) holds, through the same name rules
  as the MIMIC index (:func:`cxrbench.data.vocabulary.head_region`): ``"Right upper lobe"`` ->
  ``right upper lung lobe``, ``"R hemidiaphragm"`` -> ``right hemidiaphragm``;
- **text**: everything else, compared as normalised text (``answer_norm``).

Decisions a reader should know:

- SLAKE writes a position as ``"<organ>, <image side>"`` (``"Left Lung, Right"``: the
  patient's left lung, on the right of the image). Only the organ part is mapped; a bare side
  (``"Left"``, ``"On the left"``, ``"Upper Right"``) names no structure, is ambiguous between
  patient and image side, and stays text.
- Zones are not lobes: ``"Lower Left Lung"`` is the lower part of the left lung and maps to
  ``left lung``, as ``head_region`` maps ``"left lower zone"`` (a lobe needs the word "lobe").
- Non-chest images never get a region answer: ``"Upper Left Lobe"`` of a brain MRI is a brain
  lobe, not a lung lobe. Whole body parts (``"Chest"``, ``"Abdomen"``: SLAKE's "Which part of
  the body does this image belong to?") are not localisations and stay text.
- ``answer_norm``: lower case, every run of characters other than letters, digits and ``.``
  between digits replaced by one space (``"MR - T2 weighted"`` -> ``"mr t2 weighted"``,
  ``"Transverse  Plane"`` -> ``"transverse plane"``).

Each row keeps the dataset's own stratification fields: ``answer_type`` (OPEN / CLOSED) and
``content_type`` (SLAKE ``content_type``; VQA-RAD ``question_type``, first listed type for
multi-type questions such as ``"POS, PRES"``, the full list in ``content_types``).

The other direction, a predictor's output mapped back onto these reference answers for
scoring, is :mod:`cxrbench.data.crossdataset_answers`, beside this module.

References: Lau et al., "A dataset of clinically generated visual questions and answers about
radiology images", Sci. Data 5, 180251 (2018) (VQA-RAD); Liu et al., "SLAKE: a
semantically-labeled knowledge-enhanced dataset for medical VQA", ISBI 2021.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from cxrbench.data.vocabulary import head_region, normalize_name
from cxrbench.errors import DataError

DATASETS = ("vqa-rad", "slake")
ANSWER_TYPES = ("OPEN", "CLOSED")

# Required fields per format (optional official-file fields are kept when present).
VQA_RAD_SPLIT_FIELDS = ("qid", "image_name", "answer", "answer_type", "question_type", "question")
VQA_RAD_OFFICIAL_FIELDS = ("qid", "image_name", "image_organ", "question", "question_type", "answer",
                           "answer_type", "phrase_type", "qid_linked_id", "evaluation")
SLAKE_FIELDS = ("img_id", "img_name", "question", "answer", "q_lang", "location", "modality",
                "answer_type", "content_type", "qid")

# SLAKE ``location`` values of chest images (region answers only exist for the chest).
SLAKE_CHEST_LOCATIONS = frozenset({"lung", "chest", "chest_mediastinal", "chest_heart", "chest_lung"})

COLUMNS = ("question_id", "dataset", "qid", "image_name", "image_path", "question", "answer", "answer_norm",
           "answer_type", "content_type", "content_types", "organ", "modality", "is_chest", "head",
           "answer_binary", "answer_regions")

_YES_NO = {"yes": 1, "no": 0}
# answers naming the imaged body part, not a structure in it
_BODY_PARTS = frozenset({"chest", "abdomen", "head", "neck", "pelvic cavity", "brain", "thorax", "body"})
_NON_WORD = re.compile(r"(?:(?<!\d)\.|\.(?!\d)|[^\w.])+|_+")
# abbreviations and spellings of a side seen in VQA-RAD answers ("R hemidiaphragm")
_SIDE_ABBREV = re.compile(r"^(r|l|rt|lt)\b\.?\s*", re.IGNORECASE)


# ------------------------------------------------------------------------------- normalisation
def normalize_answer_text(text: Any) -> str:
    """Lower case, runs of non-word characters (``.`` between digits kept) as one space."""
    return _NON_WORD.sub(" ", str(text).lower()).strip()


def answer_binary(text: Any) -> int:
    """1 for a yes answer, 0 for no, -1 for anything else (case and punctuation ignored)."""
    return _YES_NO.get(normalize_answer_text(text), -1)


def answer_region(text: Any) -> str | None:
    """The region-head class a location answer names, or None.

    The organ part before a comma is mapped (SLAKE: ``"Left Lung, Right"`` -> ``left lung``),
    a leading ``R``/``L`` is read as right/left, and the rest goes through
    :func:`cxrbench.data.vocabulary.head_region`. Callers apply it to positional questions
    about chest images only.
    """
    organ = str(text).split(",")[0].strip()
    if normalize_answer_text(organ) in _BODY_PARTS:
        return None
    m = _SIDE_ABBREV.match(organ)
    if m:
        side = "right" if m.group(1).lower().startswith("r") else "left"
        organ = f"{side} {organ[m.end():]}"
    organ = re.sub(r"\b(the|on|in|of|at|sided)\b", " ", normalize_name(organ))
    return head_region(re.sub(r"\s+", " ", organ).strip())


def _route(answer: str, positional: bool, is_chest: bool) -> tuple[str, int, list[str]]:
    binary = answer_binary(answer)
    if binary >= 0:
        return "binary", binary, []
    if positional and is_chest:
        region = answer_region(answer)
        if region is not None:
            return "region", -1, [region]
    return "text", -1, []


# ------------------------------------------------------------------------------------ reading
def _read_records(path: Path) -> list[dict]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, None, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, None, f"not valid JSON: {err}") from None
    if not isinstance(data, list):
        raise DataError(path, None, f"expected a JSON list of question records, got {type(data).__name__}")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DataError(path, f"#{i}", f"expected an object, got {type(rec).__name__}")
    return data


def _record_name(rec: dict, i: int) -> str:
    return f"qid {rec['qid']}" if "qid" in rec else f"#{i}"


def _require(path: Path, rec: dict, i: int, fields: Iterable[str]) -> None:
    missing = [f for f in fields if f not in rec]
    if missing:
        raise DataError(path, _record_name(rec, i), f"missing field(s) {', '.join(missing)}")
    for f in ("question", "answer", "qid"):
        if f in rec and (rec[f] is None or str(rec[f]).strip() == ""):
            raise DataError(path, _record_name(rec, i), f"empty {f!r}")


def _answer_type(path: Path, rec: dict, i: int) -> str:
    value = str(rec["answer_type"]).strip().upper()
    if value not in ANSWER_TYPES:
        raise DataError(path, _record_name(rec, i), f"answer_type {rec['answer_type']!r} is not OPEN or CLOSED")
    return value


def _finish(rows: list[dict], path: Path, images: str | Path | None) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    dup = frame["question_id"].duplicated(keep=False)
    if dup.any():
        raise DataError(path, f"qid {frame.loc[dup, 'qid'].iloc[0]}", "duplicate qid")
    if images is not None:
        frame["image_path"] = [str(Path(images) / name) for name in frame["image_name"]]
    frame["answer_binary"] = frame["answer_binary"].astype("int8")
    frame["is_chest"] = frame["is_chest"].astype(bool)
    return frame.sort_values("question_id", kind="stable").reset_index(drop=True)


def load_vqa_rad(path: str | Path, images: str | Path | None = None) -> pd.DataFrame:
    """Read a VQA-RAD question file: the official ``VQA_RAD Dataset Public.json`` or a split
    file (``trainset.json`` / ``testset.json``: qid, image_name, answer, answer_type,
    question_type, question, phrase_type, image_organ).

    Returns one row per question with the columns of :data:`COLUMNS`; ``image_path`` is
    ``images / image_name`` when ``images`` (the image folder) is given, else the bare name.
    Raises :class:`~cxrbench.errors.DataError` naming the file and the qid of a bad record.
    """
    path = Path(path)
    rows = []
    for i, rec in enumerate(_read_records(path)):
        _require(path, rec, i, VQA_RAD_SPLIT_FIELDS)
        types = [t.strip().upper() for t in str(rec["question_type"]).split(",") if t.strip()]
        if not types:
            raise DataError(path, _record_name(rec, i), "empty question_type")
        organ = str(rec.get("image_organ") or "").strip().upper() or None
        is_chest = organ == "CHEST"
        answer = str(rec["answer"]).strip()
        head, binary, regions = _route(answer, "POS" in types, is_chest)
        rows.append({
            "question_id": f"vqa-rad:{rec['qid']}", "dataset": "vqa-rad", "qid": str(rec["qid"]),
            "image_name": str(rec["image_name"]), "image_path": str(rec["image_name"]),
            "question": str(rec["question"]).strip(), "answer": answer,
            "answer_norm": normalize_answer_text(answer), "answer_type": _answer_type(path, rec, i),
            "content_type": types[0], "content_types": types, "organ": organ, "modality": None,
            "is_chest": is_chest, "head": head, "answer_binary": binary, "answer_regions": regions,
        })
    return _finish(rows, path, images)


def load_slake(path: str | Path, images: str | Path | None = None, language: str = "en") -> pd.DataFrame:
    """Read a SLAKE 1.0 question file (``train.json`` / ``validate.json`` / ``test.json``) and
    keep the rows of ``language`` (``q_lang``; English by default: SLAKE-EN).

    Same columns as :func:`load_vqa_rad`; ``image_path`` is ``images / img_name`` (SLAKE
    names are ``xmlabNNN/source.jpg`` under its ``imgs/`` folder).
    """
    path = Path(path)
    rows = []
    for i, rec in enumerate(_read_records(path)):
        _require(path, rec, i, SLAKE_FIELDS)
        if str(rec["q_lang"]).strip().lower() != language:
            continue
        location = str(rec["location"] or "").strip()
        content = str(rec["content_type"]).strip()
        is_chest = location.lower().replace(" ", "_") in SLAKE_CHEST_LOCATIONS
        answer = str(rec["answer"]).strip()
        head, binary, regions = _route(answer, content.lower() == "position", is_chest)
        rows.append({
            "question_id": f"slake:{rec['qid']}", "dataset": "slake", "qid": str(rec["qid"]),
            "image_name": str(rec["img_name"]), "image_path": str(rec["img_name"]),
            "question": str(rec["question"]).strip(), "answer": answer,
            "answer_norm": normalize_answer_text(answer), "answer_type": _answer_type(path, rec, i),
            "content_type": content, "content_types": [content], "organ": location or None,
            "modality": str(rec["modality"]).strip() or None, "is_chest": is_chest, "head": head,
            "answer_binary": binary, "answer_regions": regions,
        })
    return _finish(rows, path, images)


def load_crossdataset(dataset: str, path: str | Path, images: str | Path | None = None) -> pd.DataFrame:
    """:func:`load_vqa_rad` or :func:`load_slake` by name (``"vqa-rad"`` / ``"slake"``)."""
    if dataset == "vqa-rad":
        return load_vqa_rad(path, images)
    if dataset == "slake":
        return load_slake(path, images)
    raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def check_images(frame: pd.DataFrame, source: str | Path) -> None:
    """Raise a DataError naming the first question whose image file does not exist."""
    for qid, image in zip(frame["question_id"], frame["image_path"]):
        if not Path(image).is_file():
            missing = int((~frame["image_path"].map(lambda p: Path(p).is_file())).sum())
            raise DataError(source, qid, f"image {image} not found ({missing} of {len(frame)} images missing)")
