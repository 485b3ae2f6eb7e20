"""File names, columns and folder layout of the two releases, and where to find them on disk.

One place for every name the generator writes and the readers look for (docs/contracts.md §1,
``/work/shared/reference``). :func:`resolve_roots` finds the MIMIC-CXR-JPG and
MIMIC-Ext-CXR-QBA folders under a dataset root (the synthetic layout, PhysioNet's
``physionet.org/files/<name>/<version>/`` layout, or either release folder itself), or takes
them separately.
"""

from __future__ import annotations

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
# columns this project writes (index columns first); readers accept aliases, see QBA_ALIASES
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
# other spellings of the same columns (e.g. dotted names of flattened JSON) accepted by readers
QBA_ALIASES: dict[str, tuple[str, ...]] = {
    "patient_id": ("patient_id", "subject_id", "patient"),
    "study_id": ("study_id", "study"),
    "question_id": ("question_id",),
    "image_id": ("image_id", "dicom_id"),
    "quality": ("quality", "quality.rating", "question.quality.rating", "question_quality.rating", "rating",
                "study.quality.rating", "question_quality"),
    "question_type": ("question_type", "question.question_type"),
    "question_strategy": ("question_strategy", "question.question_strategy", "strategy"),
    "view_position": ("view_position", "img.view_position", "ViewPosition"),
}
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

    def as_dict(self) -> dict[str, str]:
        return {"mimic_cxr_jpg": str(self.jpg), "mimic_ext_cxr_qba": str(self.qba)}


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
