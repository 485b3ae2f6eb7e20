"""Generate one patient: all studies, rendered and serialised, ready for the release writer.

A :class:`PatientJob` carries everything decided centrally (ids, split, seed), so patients can
be generated in any order and in parallel with identical results: every random draw comes from
generators seeded by ``(seed, patient index, purpose)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import orjson

from cxrbench import vocab
from cxrbench.data import layout as L
from cxrbench.data.chexpert import labels_from_entities
from cxrbench.data.quality import RATING_CODES, at_least
from cxrbench.data.synth import encoding
from cxrbench.data.synth import study as S
from cxrbench.data.synth.anatomy import Traits
from cxrbench.data.synth.encoding import StudyIds
from cxrbench.data.synth.lexicon import ENTITY_BY_NAME
from cxrbench.data.synth.qa import generate_qa
from cxrbench.data.synth.study import Observation, Study
from cxrbench.data.vocabulary import entity_chexpert


@dataclass(frozen=True)
class PatientJob:
    seed: int
    index: int
    subject_id: int
    study_ids: tuple[int, ...]
    split: str
    image_size: int
    encoding: str = "legacy"   # how the files spell the data (cxrbench.data.synth.encoding)


@dataclass
class StudyRecord:
    subject_id: int
    study_id: int
    split: str
    image_files: list[tuple[str, bytes]]                 # (relative path in the JPG tree, JPEG bytes)
    scene_graph: bytes
    study_metadata_json: bytes
    qa: bytes
    rows: dict[str, list[dict]]                          # release tables (JPG csvs and QBA metadata)
    exports: dict[str, dict]                             # export name -> {"qa": bytes, "rows": {...}} (absent: study dropped)
    chexpert_graph: list[float | None]
    chexpert_gold: list[float | None]
    truth: dict[str, list[dict]] = field(default_factory=dict)
    ids: StudyIds | None = None                          # the encoding's question / answer ids (real spelling)


def _rng(job: PatientJob, purpose: int) -> np.random.Generator:
    return np.random.default_rng([job.seed, job.index, purpose])


def generate_patient(job: PatientJob) -> list[StudyRecord]:
    rng = _rng(job, 1)
    traits = Traits.sample(rng)
    anatomy_seed = int(_rng(job, 2).integers(2 ** 62))
    first = dt.date(2110, 1, 1) + dt.timedelta(days=int(rng.integers(0, 80 * 365)))
    date = first
    previous, prev_mods, prev_date = None, None, None
    out = []
    for k, study_id in enumerate(job.study_ids):
        srng = np.random.default_rng([job.seed, job.index, 100 + k])
        if k:
            date = date + dt.timedelta(days=int(srng.integers(1, 400)))
        findings = S.sample_findings(srng, previous)
        mods = S.anatomy_modifiers(findings, srng, prev_mods)
        images = S.make_images(srng, traits, mods, job.image_size)
        st = _build_study(srng, job, study_id, date, images, findings, traits, mods)
        st.image_bytes = S.render_images(images, traits, mods, findings, np.random.default_rng([job.seed, job.index, 200 + k]), anatomy_seed)
        out.append(_serialise(st, srng, first, prev_date, encoding.get(job.encoding)))
        previous, prev_mods, prev_date = findings, mods, date
    return out


def _build_study(rng: np.random.Generator, job: PatientJob, study_id: int, date: dt.date, images, findings,
                 traits: Traits, mods) -> Study:
    observations = S.build_observations(rng, findings)
    indication, ind_obs = (S.make_indication(rng, observations, findings) if rng.random() < 0.95 else (None, None))
    noise: list[dict] = []
    for o in observations:
        o.localization = S.localize(rng, study_id, o, images, noise)
        for c in o.children:
            c.localization = S.localize(rng, study_id, c, images, noise)
    if ind_obs is not None:
        ind_obs.localization = S.localize(rng, study_id, ind_obs, images, noise, noisy=False)
    regions = S.study_regions(rng, observations)
    pa = next((im for im in images if im.view == "PA"), None) or next((im for im in images if im.frontal), images[0])
    # relations are read off the patient's frontal anatomy (lateral-only studies too)
    frontal_boxes = pa.boxes if pa.frontal else S.frontal_region_boxes(S.FrontalAnatomy(traits, mods))
    relations = S.region_relations(regions, frontal_boxes)
    grade = S.sample_study_grade(rng)
    st = Study(job.subject_id, study_id, job.split, int(date.strftime("%Y%m%d")), float(f"{rng.integers(0, 24):02d}{rng.integers(0, 60):02d}{rng.integers(0, 60):02d}.{rng.integers(0, 1000):03d}"),
               images, findings, observations, indication, ind_obs, regions, relations,
               S.study_quality_codes(grade, observations), grade, noise_log=noise)
    for r in regions:
        node = Observation(obs_id=r, entity="", positive=False, probability="", severity=0, laterality="",
                           regions=[r], default_regions=[], where_specified="", name=r, sentence="", report_sentence="",
                           modifiers={}, changes=[], change_sentence=None)
        st.region_localization[r] = S.localize(rng, study_id, node, images, noise, noisy=False)
    # sentences: one per top-level observation (children share their own), IMPRESSION repeats the key positives
    sid = 0
    for o in st.all_observations():
        sid += 1
        st.sentences.append({"sent_id": f"S{sid:02d}", "section": "FINDINGS", "section_type": "FINDINGS", "sentence": o.report_sentence})
        st.obs_sent.append((o.obs_id, f"S{sid:02d}"))
    key = [o for o in observations if o.positive][:2]
    if key:
        sid += 1
        text = " ".join(o.sentence for o in key)
        st.sentences.append({"sent_id": f"S{sid:02d}", "section": "IMPRESSION", "section_type": "IMPRESSION", "sentence": text})
        st.obs_sent.extend((o.obs_id, f"S{sid:02d}") for o in key)
    if indication is not None:
        sid += 1
        st.sentences.append({"sent_id": f"S{sid:02d}", "section": "INDICATION", "section_type": "INDICATION",
                             "sentence": indication["indication_summary"]})
        indication["associated_sentence_ids"] = [s for o, s in st.obs_sent if o in indication["associated_obs_ids"]]
    return st


# ----------------------------------------------------------------------------------------------
# serialisation


def _obs_json(o: Observation) -> dict:
    ents = o.obs_entities
    cats = list(dict.fromkeys(c for e in ents for c in S._entity_tags(e)[0]))
    subs = list(dict.fromkeys(c for e in ents for c in S._entity_tags(e)[1]))
    certainty = "certain" if o.probability in ("positive", "negative") else "uncertain"
    loc_q = min((loc["localization_quality"] for loc in o.localization.values()), default=0)
    return {
        "obs_id": o.obs_id, "name": o.name, "summary_sentence": o.sentence, "child_type": o.child_type,
        "child_level": o.child_level, "regions": [{"region": r, "distances": []} for r in o.regions],
        "non_resolved_regions": [], "laterality": o.laterality, "default_regions": o.default_regions,
        "obs_entities": ents, "obs_entities_parents": list(dict.fromkeys(p for e in ents for p in S.ENTITY_PARENTS.get(e, ()))),
        "non_resolved_obs_entities": [], "obs_categories": cats, "obs_subcategories": subs,
        "probability": o.probability, "certainty": certainty, "positiveness": "pos" if o.positive else "neg",
        "modifiers": o.modifiers, "changes": o.changes, "change_sentence": o.change_sentence, "from_report": o.from_report,
        "obs_quality": {**o.quality, "localization_quality": loc_q, "rating": RATING_CODES[o.grade_cap if o.grade_cap == "B" else "A++"]},
        "localization": o.localization,
    }


def scene_graph_json(st: Study) -> dict:
    observations = {}
    for o in st.all_observations():
        observations[o.obs_id] = _obs_json(o)
    from cxrbench.data.synth.lexicon import REGION_BY_NAME

    regions = {}
    for r in st.regions:
        loc = st.region_localization[r]
        regions[r] = {"region": r, "laterality": REGION_BY_NAME[r].laterality if r in REGION_BY_NAME else "midline",
                      "localization": loc,
                      "region_localization_quality": min((v["localization_quality"] for v in loc.values()), default=0)}
    located = []
    for o in st.all_observations():
        for r in o.regions:
            located.append({"region": r, "observation_id": o.obs_id, "distances": [], "where_specified": o.where_specified})
    obs_rel = [{"parent_observation_id": o.obs_id, "child_observation_id": c.obs_id, "child_type": c.child_type}
               for o in st.observations for c in o.children]
    indication = None
    if st.indication is not None and st.indication_obs is not None:
        indication = {**st.indication, "answer_for_indication": _obs_json(st.indication_obs)}
    return {
        "patient_id": st.patient_id, "study_id": st.study_key,
        "sentences": {s["sent_id"]: s for s in st.sentences},
        "top_level_obs_ids": [o.obs_id for o in st.observations],
        "observations": observations,
        "indication": indication,
        "regions": regions,
        "located_at_relations": located,
        "obs_relations": obs_rel,
        "obs_sent_relations": [{"observation_id": o, "sentence_id": s} for o, s in st.obs_sent],
        "region_region_relations": st.region_relations,
        "study_quality": st.quality,
        "study_img_localization_quality": {
            im.image_id: min((o.localization[im.image_id]["localization_quality"] for o in st.all_observations()), default=0)
            for im in st.images},
    }


def chexpert_from_observations(observations: list[Observation]) -> list[float | None]:
    """Study-level CheXpert labels read off a scene graph (1 / 0 / -1 / None = blank)."""
    groups: dict[str, list[tuple[str, tuple[str, ...]]]] = {"pos": [], "neg": [], "unc": []}
    for o in observations:
        key = ("pos" if o.probability in ("positive", "likely") else "unc") if o.positive else "neg"
        for e in o.obs_entities:
            groups[key].append((e, tuple(ENTITY_BY_NAME[e].categories) if e in ENTITY_BY_NAME else ()))
    vals = labels_from_entities(groups["pos"], groups["neg"], groups["unc"])
    return [None if v != v else float(v) for v in vals]


def _serialise(st: Study, rng: np.random.Generator, first: dt.date, prev_date: dt.date | None,
               enc: encoding.Encoding) -> StudyRecord:
    qrng = np.random.default_rng(rng.integers(2 ** 63))
    questions, grades = generate_qa(st, qrng)
    sg = scene_graph_json(st)
    ids = enc.study_ids(questions)
    pid, skey = st.patient_id, st.study_key
    views = [im.view for im in st.images]
    procedure = ("CHEST (PORTABLE AP)" if views and all(v == "AP" for v in views)
                 else "CHEST (PA AND LAT)" if "LATERAL" in views and len(views) > 1 else f"CHEST ({views[0]})")
    date = dt.datetime.strptime(str(st.date), "%Y%m%d").date()
    study_row = {
        "patient_id": pid, "study_id": skey, "split": st.split, "quality": RATING_CODES[st.grade],
        "num_observations": len(st.all_observations()), "num_images": len(st.images), "procedure": procedure,
        "timestamp_since_first": float((date - first).days), "timespan_since_prev": float((date - prev_date).days) if prev_date else None,
    }
    rows: dict[str, list[dict]] = {t: [] for t in (*L.QBA_TABLES, "jpg_metadata", "jpg_split")}
    rows["study"].append(study_row)
    image_files = []
    for im in st.images:
        rel = L.image_relpath(st.subject_id, st.study_id, im.image_id)
        image_files.append((rel, st.image_bytes[im.image_id]))
        rows["jpg_metadata"].append({
            "dicom_id": im.image_id, "subject_id": st.subject_id, "study_id": st.study_id,
            "PerformedProcedureStepDescription": procedure, "ViewPosition": im.view, "Rows": im.size, "Columns": im.size,
            "StudyDate": st.date, "StudyTime": st.time, "ProcedureCodeSequence_CodeMeaning": procedure,
            "ViewCodeSequence_CodeMeaning": S.VIEW_MEANING[im.view],
            "PatientOrientationCodeSequence_CodeMeaning": im.orientation or None,
        })
        rows["jpg_split"].append({"dicom_id": im.image_id, "study_id": st.study_id, "subject_id": st.subject_id, "split": st.split})
        rows["image"].append({"patient_id": pid, "study_id": skey, "image_id": im.image_id, "view_position": im.view,
                              "patient_orientation": im.orientation or None, "width": im.size, "height": im.size,
                              "localization_quality": sg["study_img_localization_quality"][im.image_id]})
    for q, g in zip(questions, grades):
        _question_rows(rows, pid, skey, q, g)
    qa_doc = enc.qa_doc({"patient_id": pid, "study_id": skey, "questions": questions}, ids)
    exports = {}
    frontal_ids = {im.image_id for im in st.images if im.frontal}
    for name, threshold in L.EXPORTS.items():
        if not frontal_ids:
            continue
        keep = [(q, g) for q, g in zip(questions, grades) if g != "unrated" and at_least(g, threshold)]
        if not keep:
            continue
        eq = [_only_images(q, frontal_ids) for q, _ in keep]
        erows: dict[str, list[dict]] = {t: [] for t in L.QBA_TABLES}
        erows["study"] = [dict(study_row)]
        erows["image"] = [r for r in rows["image"] if r["image_id"] in frontal_ids]
        for q, (_, g) in zip(eq, keep):
            _question_rows(erows, pid, skey, q, g)
        exports[name] = {"qa": orjson.dumps(enc.qa_doc({"patient_id": pid, "study_id": skey, "questions": eq}, ids)),
                         "rows": erows}
    truth = {
        "findings": [{"study_id": st.study_id, "subject_id": st.subject_id, "entity": f.entity, "side": f.side,
                      "severity": f.severity, "regions": list(f.regions), "probability": f.probability, "change": f.change,
                      "drawn": S.SPEC_BY_ENTITY[f.entity].draw or "anatomy"} for f in st.findings],
        "boxes": st.noise_log,
    }
    gold = _gold_labels(st)
    study_meta = enc.rows("study", [study_row], {skey: ids})[0]
    return StudyRecord(st.subject_id, st.study_id, st.split, image_files, orjson.dumps(enc.scene_graph(sg)),
                       orjson.dumps(study_meta), orjson.dumps(qa_doc), rows, exports,
                       chexpert_from_observations(st.all_observations()), gold, truth, ids)


def _gold_labels(st: Study) -> list[float | None]:
    """Radiologist-style labels from the *true* findings (uncertain wording does not matter to
    the truth), negatives where the report negates a finding, blank otherwise."""
    clean = [o for o in st.all_observations()]
    labels = chexpert_from_observations(clean)
    true_pos = {label for f in st.findings for label in entity_chexpert(f.entity, tuple(ENTITY_BY_NAME[f.entity].categories))}
    return [1.0 if label in true_pos else (v if v != -1.0 else None) for label, v in zip(vocab.CHEXPERT_LABELS, labels)]


def _only_images(q: dict, keep: set[str]) -> dict:
    def strip(a: dict) -> dict:
        return {**a, "localization": {k: v for k, v in a["localization"].items() if k in keep},
                "sub_answers": [strip(s) for s in a["sub_answers"]]}

    return {**q, "question_img_localization_quality": {k: v for k, v in q["question_img_localization_quality"].items() if k in keep},
            "answers": [strip(a) for a in q["answers"]]}


def _question_rows(rows: dict[str, list[dict]], pid: str, skey: str, q: dict, grade: str) -> None:
    flat = []

    def walk(a: dict) -> None:
        flat.append(a)
        for s in a["sub_answers"]:
            walk(s)

    for a in q["answers"]:
        walk(a)
    rows["question"].append({
        "patient_id": pid, "study_id": skey, "question_id": q["question_id"], "quality": RATING_CODES[grade],
        "question_type": q["question_type"], "question_strategy": q["question_strategy"],
        "contains_report_answers": q["contains_report_answers"], "contains_template_answers": q["contains_template_answers"],
        "num_answers": len(flat),
    })
    for iid, lq in q["question_img_localization_quality"].items():
        rows["question_image"].append({"patient_id": pid, "study_id": skey, "question_id": q["question_id"], "image_id": iid,
                                       "localization_quality": lq})
    for a in flat:
        rows["answer"].append({"patient_id": pid, "study_id": skey, "question_id": q["question_id"], "answer_id": a["answer_id"],
                               "quality": a["answer_quality"]["rating"], "answer_type": a["answer_type"],
                               "answer_level": a["answer_level"], "from_report": a["from_report"],
                               "_positiveness": a["positiveness"]})
        for iid, loc in a["localization"].items():
            rows["answer_image"].append({"patient_id": pid, "study_id": skey, "question_id": q["question_id"],
                                         "answer_id": a["answer_id"], "image_id": iid, "num_regions": len(loc["localization_reference_ids"]),
                                         "localization_quality": loc["localization_quality"],
                                         "_is_localization_missing": bool(loc["missing_localization"]),
                                         "_has_bboxes": bool(loc["bboxes"]), "_has_masks": bool(loc["instance_mask_ids"])})
