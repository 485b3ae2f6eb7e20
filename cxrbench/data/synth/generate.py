"""``generate(out, patients, seed)``: plan the cohort, generate patients (in parallel), write the tree.

Everything random that must be globally consistent (unique subject and study ids, the patient
split) is drawn here from ``default_rng([seed, 0])``; each patient is then generated from its
own seeded generators (:mod:`.patient`), so the tree does not depend on the number of workers.
The folder is claimed with :class:`cxrbench.outputs.OutputDir`; the tree is written into its
staging folder and committed when complete (a kill leaves the previous tree or none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cxrbench import vocab
from cxrbench.data.parallel import ordered_map
from cxrbench.data.synth import study as S
from cxrbench.data.synth.patient import PatientJob, StudyRecord, generate_patient
from cxrbench.data import layout as L
from cxrbench.data.synth import encoding as E
from cxrbench.data.synth.release import ReleaseWriter
from cxrbench.errors import CxrbenchError
from cxrbench.outputs import MARKER, OutputDir

GENERATOR_VERSION = 1  # bump when the same seed no longer gives the same tree
COMMAND = "cxrbench synth"
# the spelling of the files (cxrbench.data.synth.encoding): the real release's, so that the embedded
# default exercises the real path every day ("legacy" writes the project's earlier spelling, for tests)
DEFAULT_ENCODING = "real"
SPLIT_FRACTIONS = {"train": 0.7, "validate": 0.1, "test": 0.2}  # synthetic only; the release has 98/0.8/1.4% of studies
MISSING_LABEL_STUDIES = 0.01  # studies the labelers could not label (no row in the label CSVs)


def plan(patients: int, seed: int, image_size: int, encoding: str = "legacy") -> list[PatientJob]:
    if patients < 1:
        raise CxrbenchError("--patients must be at least 1")
    rng = np.random.default_rng([seed, 0])
    subjects = np.sort(rng.choice(10_000_000, size=patients, replace=False)) + 10_000_000
    n_studies = np.minimum(rng.geometric(1 / 3.5, size=patients), 12)
    study_ids = rng.choice(10_000_000, size=int(n_studies.sum()), replace=False) + 50_000_000
    order = rng.permutation(patients)
    n_val = max(1, round(SPLIT_FRACTIONS["validate"] * patients)) if patients >= 3 else 0
    n_test = max(1, round(SPLIT_FRACTIONS["test"] * patients)) if patients >= 3 else 0
    split = np.array(["train"] * patients, dtype=object)
    split[order[:n_test]] = "test"
    split[order[n_test:n_test + n_val]] = "validate"
    jobs, start = [], 0
    for i in range(patients):
        ids = tuple(int(x) for x in np.sort(study_ids[start:start + n_studies[i]]))
        start += int(n_studies[i])
        jobs.append(PatientJob(seed, i, int(subjects[i]), ids, str(split[i]), image_size, encoding))
    return jobs


# labeler noise: P(released value | value read off the scene graph), and the reason logged
_NOISE = {
    1.0: ((1.0, 0.90, None), (-1.0, 0.04, "uncertain_phrase"), (None, 0.03, "labeler_miss"), (0.0, 0.03, "negation_error")),
    0.0: ((0.0, 0.92, None), (None, 0.06, "labeler_miss"), (1.0, 0.02, "negation_error")),
    -1.0: ((-1.0, 0.85, None), (1.0, 0.10, "uncertain_phrase"), (None, 0.05, "labeler_miss")),
    None: ((None, 0.96, None), (0.0, 0.03, "spurious_mention"), (1.0, 0.01, "spurious_mention")),
}


def _labeler(graph: list[float | None], rng: np.random.Generator) -> tuple[list[float | None], list[str | None]]:
    out, why = [], []
    for label, g in zip(vocab.CHEXPERT_LABELS, graph):
        if label == "No Finding":
            out.append(None)
            why.append(None)
            continue
        opts = _NOISE[g]
        k = int(rng.choice(len(opts), p=[o[1] for o in opts]))
        out.append(opts[k][0])
        why.append(opts[k][2])
    # "No Finding" follows the released labels, as the labeler computes it
    i = vocab.CHEXPERT_LABELS.index("No Finding")
    patho = [v for label, v in zip(vocab.CHEXPERT_LABELS, out) if label not in ("No Finding", "Support Devices")]
    out[i] = 1.0 if not any(v in (1.0, -1.0) for v in patho) else None
    why[i] = None if out[i] == graph[i] else "derived"
    return out, why


def generate(out: Path, patients: int, seed: int = 0, image_size: int = 512, workers: int = 1,
             force: bool = False, progress: bool = True, encoding: str = DEFAULT_ENCODING) -> dict[str, Any]:
    """Write a synthetic dataset root into ``out`` (claimed for ``cxrbench synth``: a new or empty
    folder, or an earlier synthetic root; ``force`` replaces an earlier root made with other
    settings, or writes into a folder this command did not make, replacing only its own entries).

    The same settings give a byte-identical tree; a root already made with them is left as it is."""
    out = Path(out)
    if image_size < 64:
        raise CxrbenchError("--image-size must be at least 64 pixels")
    enc = E.get(encoding)
    settings = {"seed": seed, "patients": patients, "image_size": image_size, "version": GENERATOR_VERSION,
                "encoding": enc.name}
    done = out / L.TRUTH_DIR / "generator.json"
    if done.is_file() and (out / MARKER).is_file():
        info = json.loads(done.read_text())
        if {k: info.get(k, "legacy" if k == "encoding" else None) for k in settings} == settings:
            info["up_to_date"] = True
            return info  # the same tree is already there (generation is deterministic)
        if not force:
            raise CxrbenchError(f"{out} holds a synthetic root made with other settings "
                                f"({', '.join(f'{k} {info.get(k)}' for k in settings)}); use --overwrite to replace it")
    folder = OutputDir.claim(out, COMMAND, overwrite=force)
    jobs = plan(patients, seed, image_size, enc.name)
    writer = ReleaseWriter(folder.staging(), enc)
    chexpert, negbio, gold, truth_labels = [], [], [], []
    stats = {"studies": 0, "images": 0, "questions": 0, "boxes": 0, "displaced": 0, "missing": 0, "fallback": 0}

    def consume(records: list[StudyRecord]) -> None:
        for rec in records:
            writer.add(rec)
            stats["studies"] += 1
            stats["images"] += len(rec.image_files)
            stats["questions"] += len(rec.rows["question"])
            for b in rec.truth["boxes"]:
                stats["boxes"] += 1
                if b["noise"] != "none":
                    stats[b["noise"]] += 1
            rng = np.random.default_rng([seed, 3, rec.study_id])
            if rng.random() >= MISSING_LABEL_STUDIES:
                cx, why_c = _labeler(rec.chexpert_graph, rng)
                nb, why_n = _labeler(rec.chexpert_graph, rng)
                chexpert.append([rec.subject_id, rec.study_id, *cx])
                negbio.append([rec.subject_id, rec.study_id, *nb])
                for label, g, c, n, wc, wn in zip(vocab.CHEXPERT_LABELS, rec.chexpert_graph, cx, nb, why_c, why_n):
                    if wc or wn:
                        truth_labels.append({"study_id": rec.study_id, "label": label, "graph": g, "chexpert": c, "negbio": n,
                                             "reason_chexpert": wc, "reason_negbio": wn})
            else:
                truth_labels.append({"study_id": rec.study_id, "label": "*", "graph": None, "chexpert": None, "negbio": None,
                                     "reason_chexpert": "not_labelled", "reason_negbio": "not_labelled"})
            if rec.split == "test":
                gold.append([rec.study_id, *rec.chexpert_gold])

    bar = tqdm(total=len(jobs), desc="synth patients", unit="patient", disable=not progress)
    try:
        for records in ordered_map(generate_patient, jobs, workers):
            consume(records)
            bar.update()
    except BaseException:
        folder.discard()
        raise
    finally:
        bar.close()
    realised = {k: (stats[k] / stats["boxes"] if stats["boxes"] else 0.0) for k in ("displaced", "missing", "fallback")}
    info = {
        "generator": COMMAND, **settings, "split_fractions": SPLIT_FRACTIONS, "counts": stats,
        "box_noise": {"displaced_rate": S.BOX_DISPLACED_RATE, "missing_rate": S.BOX_MISSING_RATE, "realised": realised},
        "missing_label_studies": MISSING_LABEL_STUDIES,
    }
    writer.close(chexpert, negbio, gold, truth_labels, info)
    folder.commit()
    return info
