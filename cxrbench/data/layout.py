"""File names, columns and folder layout of the two releases, and where to find them on disk.

One place for every name the generator writes and the readers look for (docs/contracts.md §1,
``/work/shared/reference``). :func:`resolve_roots` finds the MIMIC-CXR-JPG and
MIMIC-Ext-CXR-QBA folders under a dataset root (the synthetic layout, PhysioNet's
``physionet.org/files/<name>/<version>/`` layout, or either release folder itself), or takes
them separately.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from cxrbench.errors import DataError

JPG_DIR = "mimic-cxr-jpg"
QBA_DIR = "mimic-ext-cxr-qba"
TRUTH_DIR = "synthetic_truth"

# MIMIC-CXR-JPG 2.1.0
METADATA_CSV = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT_CSV = "mimic-cxr-2.0.0-split.csv.gz"
CHEXPERT_CSV = "mimic-cxr-2.0.0-chexpert.csv.gz"
NEGBIO_CSV = "mimic-cxr-2.0.0-negbio.csv.gz"
GOLD_CSV = "mimic-cxr-2.1.0-test-set-labeled.csv"
IMAGE_FILENAMES = "IMAGE_FILENAMES"
METADATA_COLUMNS = (
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows", "Columns",
    "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")

# MIMIC-Ext-CXR-QBA 1.0.0
METADATA_DIR = "metadata"
DATASET_INFO = "dataset_info.json"
SCENE_ZIP = "scene_data.zip"
QA_ZIP = "qa.zip"
QUALITY_MAPPINGS = "quality_mappings.csv"
EXPORTS_DIR = "exports"
QBA_TABLES = ("patient", "study", "image", "question", "question_image", "answer", "answer_image")
# the columns the generator's legacy spelling writes (index columns first, as plain columns)
QBA_COLUMNS: dict[str, tuple[str, ...]] = {
    "patient": ("patient_id", "split", "total_studies", "total_study_timespan"),
    "study": ("patient_id", "study_id", "split", "quality", "num_observations", "num_images", "procedure",
              "timestamp_since_first", "timespan_since_prev"),
    "image": ("patient_id", "study_id", "image_id", "view_position", "patient_orientation", "width", "height",
              "localization_quality"),
    "question": ("patient_id", "study_id", "question_id", "quality", "question_type", "question_strategy",
                 "contains_report_answers", "contains_template_answers", "num_answers"),
    "question_image": ("patient_id", "study_id", "question_id", "image_id", "localization_quality"),
    "answer": ("patient_id", "study_id", "question_id", "answer_id", "quality", "answer_type", "answer_level", "from_report"),
    "answer_image": ("patient_id", "study_id", "question_id", "answer_id", "image_id", "num_regions", "localization_quality"),
}
# the index columns of each table (in the release's parquet files: the pandas index)
QBA_ID_COLUMNS: dict[str, tuple[str, ...]] = {
    "patient": ("patient_id",), "study": ("patient_id", "study_id"), "image": ("patient_id", "study_id", "image_id"),
    "question": ("patient_id", "study_id", "question_id"),
    "question_image": ("patient_id", "study_id", "question_id", "image_id"),
    "answer": ("patient_id", "study_id", "question_id", "answer_id"),
    "answer_image": ("patient_id", "study_id", "question_id", "answer_id", "image_id"),
}
# the meaning of every metadata column we know (see column_meaning); quality.<criterion> columns
# (study.quality.region_extract_quality, answer_img.quality.localization_quality, ...) are known too
QBA_KNOWN: dict[str, frozenset[str]] = {t: frozenset(ids) | extra for t, ids, extra in (
    ("patient", QBA_ID_COLUMNS["patient"], {"split", "total_studies", "total_study_timespan"}),
    ("study", QBA_ID_COLUMNS["study"], {"split", "quality", "num_observations", "num_images", "procedure",
                                        "timestamp_since_first", "timespan_since_prev"}),
    ("image", QBA_ID_COLUMNS["image"], {"split", "view_position", "patient_orientation", "width", "height", "size"}),
    ("question", QBA_ID_COLUMNS["question"], {"split", "quality", "question_type", "question_strategy",
                                              "contains_report_answers", "contains_template_answers", "num_answers"}),
    ("question_image", QBA_ID_COLUMNS["question_image"], {"split"}),
    ("answer", QBA_ID_COLUMNS["answer"], {"split", "quality", "answer_type", "answer_level", "from_report", "positiveness"}),
    ("answer_image", QBA_ID_COLUMNS["answer_image"], {"split", "num_regions", "is_localization_missing", "has_bboxes",
                                                      "has_masks"}),
)}
# leading name parts that only say which table a column belongs to (``study.quality.extraction_rating``)
TABLE_PREFIXES = frozenset({"patient", "study", "img", "image", "question", "question_img", "question_image",
                            "answer", "answer_img", "answer_image"})
# other names of the same thing (MIMIC-CXR-JPG's spellings)
_SYNONYMS = {"subject_id": "patient_id", "dicom_id": "image_id", "viewposition": "view_position",
             "strategy": "question_strategy"}
PANDAS_INDEX_PREFIX = "__index_level_"


def column_meaning(name: str) -> str:
    """What a QBA metadata column holds, whatever its spelling: the table prefix and the nesting
    dots are dropped and quality columns are named by what they rate.

    ``study.quality.extraction_rating``, ``question.quality.rating``, ``quality`` -> ``quality`` (the
    overall rating); ``answer_img.quality.localization_quality``, ``localization_quality`` ->
    ``quality.localization_quality``; ``study.quality.region_extract_quality`` ->
    ``quality.region_quality``; ``img.view_position``, ``ViewPosition`` -> ``view_position``;
    ``subject_id`` -> ``patient_id``; anything else -> its lower-cased dotted name without prefix.
    """
    from cxrbench.data.quality import RATING_KEYS, criterion_name

    parts = [p.strip() for p in str(name).split(".") if p.strip()]
    if len(parts) > 1 and parts[0].lower() in TABLE_PREFIXES:
        parts = parts[1:]
    parts = [p.lower() for p in parts] or [""]
    head = _SYNONYMS.get(parts[0], parts[0])
    if head == "quality" or (head.endswith("_quality") and criterion_name(head) is None):
        if len(parts) == 1 or parts[-1] in RATING_KEYS:
            return "quality"
        crit = criterion_name(parts[-1])
        return f"quality.{crit}" if crit else "quality." + ".".join(parts[1:])
    if len(parts) == 1 and head in RATING_KEYS:
        return "quality"
    if len(parts) == 1 and criterion_name(head) is not None:
        return f"quality.{criterion_name(head)}"
    return ".".join([head, *parts[1:]])


def is_known_column(table: str, meaning: str) -> bool:
    from cxrbench.data.quality import CRITERIA

    return (meaning in QBA_KNOWN[table] or meaning.startswith(PANDAS_INDEX_PREFIX)
            or (meaning.startswith("quality.") and meaning[len("quality."):] in CRITERIA))


# view positions: MIMIC-CXR-JPG writes PA / AP / LATERAL / LL / ...; QBA's image metadata frontal / lateral
FRONTAL_RANK = {"PA": 0, "AP": 1, "FRONTAL": 2}   # primary image: PA before AP before an unspecified frontal view
LATERAL_VIEWS = frozenset({"LATERAL", "LL", "RL", "LAT", "LEFT LATERAL", "RIGHT LATERAL"})


def view_kind(view: object) -> str | None:
    """"frontal" / "lateral" / "other" for a view position in either spelling, None when empty."""
    if view is None or (isinstance(view, float) and view != view):
        return None
    v = str(view).strip().upper()
    if not v:
        return None
    if v in FRONTAL_RANK:
        return "frontal"
    return "lateral" if v in LATERAL_VIEWS else "other"


# the keys of the release's JSON objects (project page, real-release-evidence.md); cxrbench check
# reports any other key it meets (the readers ignore them)
JSON_KEYS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "scene graph": "patient_id study_id sentences top_level_obs_ids observations indication regions located_at_relations "
                   "obs_relations obs_sent_relations region_region_relations study_quality study_img_localization_quality",
    "observation": "obs_id name summary_sentence child_type child_level regions non_resolved_regions laterality "
                   "default_regions obs_entities obs_entities_parents non_resolved_obs_entities obs_categories "
                   "obs_subcategories probability certainty positiveness modifiers changes change_sentence from_report "
                   "obs_quality localization",
    "region node": "region laterality localization region_localization_quality",
    "indication": "indication_summary patient_info indication evaluation associated_sentence_ids associated_obs_ids "
                  "answer_for_indication",
    "localization": "image_id localization_reference_ids bboxes instance_mask_ids missing_localization is_fallback "
                    "localization_quality",
    "qa": "patient_id study_id questions",
    "question": "question_id question_type question_strategy variables obs_ids contains_report_answers "
                "contains_template_answers extraction_quality question_img_localization_quality question answers "
                "question_quality",
    "answer": "answer_id answer_type answer_level text name_tag laterality regions obs_entities obs_entities_parents "
              "obs_categories obs_subcategories certainty positiveness modifiers localization sub_answers from_report "
              "extraction_quality answer_quality",
}.items()}
EXPORTS = {"A_frontal": "A", "B_frontal": "B"}              # export -> minimum grade
EXPORT_SUBSETS = {"A_frontal": {"Ap": "A+", "App": "A++"}}  # metadata-only subfolders

STUDY_RE = re.compile(r"(?:^|/)p(\d{2})/p(\d+)/s(\d+)\.(scene_graph|metadata|qa)\.json$")


def study_member(subject_id: int, study_id: int, kind: str) -> str:
    """Path of a study's JSON inside scene_data.zip / qa.zip: ``p10/p10000032/s50414267.qa.json``."""
    s = str(subject_id)
    return f"p{s[:2]}/p{s}/s{study_id}.{kind}.json"


def image_relpath(subject_id: int, study_id: int, dicom_id: str) -> str:
    """Image path relative to the MIMIC-CXR-JPG root: ``files/p10/p10000032/s50414267/<dicom>.jpg``."""
    s = str(subject_id)
    return f"files/p{s[:2]}/p{s}/s{study_id}/{dicom_id}.jpg"


def strip_id(value: object, prefix: str, file: str = "", record: str | None = None) -> int:
    """``"p10000032"`` / ``"s50414267"`` / ``10000032`` -> int64 id (readers strip the prefix)."""
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return int(value)
    s = str(value).strip()
    if s[:1] == prefix:
        s = s[1:]
    try:
        return int(float(s)) if "." in s else int(s)
    except ValueError:
        raise DataError(file, record, f"bad identifier {value!r} (expected {prefix}<digits>)") from None


@dataclass(frozen=True)
class Roots:
    jpg: Path
    qba: Path

    @property
    def dataset_info(self) -> Path:
        return self.qba / METADATA_DIR / DATASET_INFO

    @property
    def quality_mappings(self) -> Path:
        return self.qba / QUALITY_MAPPINGS

    def as_dict(self, relative_to: str | Path | None = None) -> dict[str, str]:
        """The two roots; relative to ``relative_to`` when given (an index manifest stores them
        relative to the index folder, so that it carries no absolute path and moves with the data)."""
        if relative_to is None:
            return {"mimic_cxr_jpg": str(self.jpg), "mimic_ext_cxr_qba": str(self.qba)}
        base = Path(relative_to).resolve()
        return {"mimic_cxr_jpg": os.path.relpath(self.jpg, base), "mimic_ext_cxr_qba": os.path.relpath(self.qba, base)}


def _is_jpg_root(p: Path) -> bool:
    return (p / SPLIT_CSV).exists() or (p / METADATA_CSV).exists()


def _is_qba_root(p: Path) -> bool:
    return (p / METADATA_DIR).is_dir() and any((p / n).exists() for n in (QA_ZIP, "qa", SCENE_ZIP, "scene_data"))


def _find(root: Path, name: str, test) -> Path | None:
    cands = [root, root / name, *sorted((root / name).glob("*")),
             *sorted((root / "physionet.org" / "files" / name).glob("*")), *sorted((root / "files" / name).glob("*"))]
    for c in cands:
        if c.is_dir() and test(c):
            return c
    return None


def resolve_roots(root: str | Path | None = None, jpg: str | Path | None = None, qba: str | Path | None = None) -> Roots:
    """Locate both release folders. ``jpg`` / ``qba`` given explicitly win over the search in ``root``."""
    base = Path(root).resolve() if root is not None else None
    j = Path(jpg).resolve() if jpg is not None else (_find(base, JPG_DIR, _is_jpg_root) if base else None)
    q = Path(qba).resolve() if qba is not None else (_find(base, QBA_DIR, _is_qba_root) if base else None)
    if j is None or not _is_jpg_root(j):
        raise DataError(str(jpg or base), None, f"no MIMIC-CXR-JPG release found (looked for {SPLIT_CSV} in the root, "
                        f"{JPG_DIR}/, {JPG_DIR}/<version>/ and physionet.org/files/{JPG_DIR}/<version>/)")
    if q is None or not _is_qba_root(q):
        raise DataError(str(qba or base), None, f"no MIMIC-Ext-CXR-QBA release found (looked for {METADATA_DIR}/ and "
                        f"{QA_ZIP} in the root, {QBA_DIR}/, {QBA_DIR}/<version>/ and physionet.org/files/{QBA_DIR}/<version>/)")
    return Roots(j, q)
