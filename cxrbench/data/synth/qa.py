"""Question-answer pairs of one synthetic study, generated from its scene graph.

Follows the release's four strategies (indication, abnormal, region, finding) and its 27
question types, each with several phrasings. Description questions answer with the
observations themselves (main answers; children as details); yes/no, location and severity
questions get a template main answer ("Yes, ..." / "No, ...") with the observations as details
(release, section 2). Every answer carries the observation's tags and its boxes on every image.
About 10% of region questions name the region through a region-region relation of the graph
("the region below the left hilar structures"; a third of those through two relations), so that
relational and multi-hop evaluation have data.

Quality: every question gets an overall grade drawn from a fixed distribution, capped by the
study's grade and by the localisation of the observations it uses (fallback boxes cap at B, as
in the release); the question's and answers' own ratings are set so that the overall grade is
exactly their minimum (release rule).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from cxrbench.data.quality import CRITERIA, CRITERION_CODES, RATING_CODES, min_grade
from cxrbench.data.synth import text as T
from cxrbench.data.synth.findings import DEFAULT_NEGATIVES, SPEC_BY_ENTITY, SPECS
from cxrbench.data.synth.lexicon import ENTITY_BY_NAME, REGION_BY_NAME
from cxrbench.data.synth.study import ENTITY_PARENTS, Observation, Study, _entity_tags
from cxrbench.vocab import QUALITY_GRADES, QUALITY_RANK

# overall grade distribution of the synthetic QA pairs (the release's is far lower: 18% are A or
# better; here the fine-tuning grade keeps about half the data so small trees stay usable)
GRADE_DIST: dict[str, float] = {"A++": 0.10, "A+": 0.10, "A": 0.30, "B": 0.35, "C": 0.04, "D": 0.03, "unrated": 0.08}

SUBCATEGORY_PHRASES: dict[str, tuple[str, str]] = {
    "LUNG_FIELD": ("lungs", "are"), "PLEURA": ("pleura", "is"), "CARDIAC": ("heart", "is"),
    "MEDIASTINUM": ("mediastinum", "is"), "BONES": ("bones", "are"),
}
DEVICE_GROUPS: dict[str, tuple[str, str]] = {
    "DEVICES": ("devices", "any devices"), "TUBES": ("tubes", "any tubes"), "LINES": ("lines", "any lines or catheters"),
    "CARDIAC_DEVICES": ("cardiac devices", "any cardiac devices"),
}
REL_PHRASE = {"above": "above", "below": "below", "left": "to the left of", "right": "to the right of", "adjacent": "adjacent to"}

Q = {  # phrasings per question type ({x} = the template variable)
    "describe_all": ("Describe the given study.", "What are the findings in this chest X-ray?", "Please describe this radiograph.",
                     "What do you see in this image?"),
    "describe_abnormal": ("Describe any abnormal findings.", "What abnormalities are seen in this study?",
                          "Which abnormal findings does this chest X-ray show?"),
    "is_abnormal": ("Is there any abnormality in this study?", "Are there any abnormal findings?",
                    "Does this chest X-ray show any abnormality?"),
    "is_normal": ("Is this study normal?", "Is the chest X-ray normal?", "Does this radiograph look normal?"),
    "describe_subcat": ("Describe the {x}.", "What can be said about the {x}?", "How do the findings of the {x} look?"),
    "describe_abnormal_subcat": ("Describe any abnormal findings of the {x}.", "What abnormalities of the {x} are seen?"),
    "is_abnormal_subcat": ("Are there any abnormal findings of the {x}?", "Is there any abnormality of the {x}?"),
    "is_normal_subcat": ("{Verb} the {x} normal?", "Do the {x} look normal?"),
    "describe_device": ("Describe the {x}.", "Which {x} are present?", "What {x} can be seen?"),
    "has_devices": ("Are there {y}?", "Can you see {y} in this image?", "Are {y} present?"),
    "describe_acquisition": ("How was this study acquired?", "Describe the image acquisition.", "Which views were obtained?"),
    "describe_imaging_artifacts": ("Describe any imaging artifacts.", "Are there technical limitations in this study? Describe them.",
                                   "What imaging artifacts are present?"),
    "has_imaging_artifacts": ("Are there any imaging artifacts?", "Is the image quality limited by artifacts?",
                              "Do you see any imaging artifacts?"),
    "describe_region": ("Describe {x}.", "What can be said about {x}?", "How does {x} look?", "What is seen in {x}?"),
    "describe_abnormal_region": ("Describe any abnormal findings in {x}.", "What abnormalities are seen in {x}?"),
    "is_abnormal_region": ("Is there any abnormality in {x}?", "Are there abnormal findings in {x}?", "Does {x} look abnormal?"),
    "is_normal_region": ("{Verb} {x} normal?", "Does {x} appear normal?"),
    "describe_region_device": ("Describe any devices in {x}.", "Which devices are seen in {x}?"),
    "has_region_device": ("Is there any device in {x}?", "Are there any tubes, lines or devices in {x}?"),
    "describe_finding": ("Describe the {x}.", "What can be said about {x}?", "Please describe any {x}."),
    "has_finding": ("Is there {a}?", "Is {x} present?", "Do you see any {x}?", "Can you identify {x} in this image?",
                    "Is there evidence of {x}?"),
    "where_is_finding": ("Where is the {x}?", "Where is the {x} located?", "In which region is the {x}?"),
    "how_severe_is_finding": ("How severe is the {x}?", "What is the severity of the {x}?", "How pronounced is the {x}?"),
    "describe_device_finding": ("Describe the {x}.", "What can be said about the {x}?"),
    "has_device": ("Is there {a}?", "Is {a} present?", "Do you see {a}?"),
    "where_is_device": ("Where is the {x}?", "Where is the {x} positioned?", "Where does the {x} project?"),
}


def _id(*parts: object) -> str:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=6).hexdigest()


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _verb(name: str) -> str:
    return "are" if name.endswith("s") and not name.endswith("us") else "is"


class QABuilder:
    def __init__(self, study: Study, rng: np.random.Generator):
        self.s = study
        self.rng = rng
        self.questions: list[dict] = []
        self.obs = study.all_observations()
        self.top = study.observations
        self.image_ids = [im.image_id for im in study.images]
        self.region_nodes = set(study.regions)
        self._anc: dict[str, set[str]] = {}
        self.grade_rng = np.random.default_rng(rng.integers(2 ** 63))
        rels: dict[tuple[str, str], list[str]] = {}
        for r in study.region_relations:
            if r["relation_type"] in REL_PHRASE:
                rels.setdefault((r["region"], r["relation_type"]), []).append(r["related_region"])
        self.rel_index = rels
        self.rel_into: dict[str, list[tuple[str, str]]] = {}
        for (anchor, rel), targets in sorted(rels.items()):
            if len(targets) == 1:
                self.rel_into.setdefault(targets[0], []).append((anchor, rel))

    # ---- helpers over the graph
    def ancestors(self, r: str) -> set[str]:
        if r not in self._anc:
            out, cur = set(), REGION_BY_NAME[r].parent if r in REGION_BY_NAME else None
            while cur:
                out.add(cur)
                cur = REGION_BY_NAME[cur].parent if cur in REGION_BY_NAME else None
            self._anc[r] = out
        return self._anc[r]

    def in_region(self, o: Observation, region: str) -> bool:
        for r in o.regions:
            if r == region or region in self.ancestors(r):
                return True
            # diffuse findings named on a larger structure also concern its parts
            if o.entity in ("edema", "low lung volumes") and r in self.ancestors(region):
                return True
        return False

    @staticmethod
    def abnormal(o: Observation) -> bool:
        spec = SPEC_BY_ENTITY.get(o.entity)
        cats, _ = _entity_tags(o.entity)
        return o.positive and not (spec and (spec.device or spec.technical)) and "DEVICE" not in cats and "TECHNICAL_ASSESSMENT" not in cats

    @staticmethod
    def is_device(o: Observation) -> bool:
        cats, _ = _entity_tags(o.entity)
        return "DEVICE" in cats or "TUBES_LINES" in cats

    @staticmethod
    def matches(o: Observation, entity: str) -> bool:
        return entity in o.obs_entities or entity in ENTITY_PARENTS.get(o.entity, ())

    # ---- answers
    def _loc_union(self, obs: list[Observation]) -> dict[str, dict]:
        out = {}
        for iid in self.image_ids:
            locs = [o.localization[iid] for o in obs if iid in o.localization]
            out[iid] = {
                "image_id": iid,
                "localization_reference_ids": [r for loc in locs for r in loc["localization_reference_ids"]],
                "bboxes": [b for loc in locs for b in loc["bboxes"]],
                "instance_mask_ids": [r for loc in locs for r in loc["instance_mask_ids"]],
                "missing_localization": [r for loc in locs for r in loc["missing_localization"]],
                "is_fallback": any(loc["is_fallback"] for loc in locs),
                "localization_quality": min((loc["localization_quality"] for loc in locs),
                                            default=CRITERION_CODES["localization_quality"]["NO_LOCALIZATION"]),
            }
        return out

    def _tags(self, obs: list[Observation]) -> dict[str, Any]:
        ents = list(dict.fromkeys(e for o in obs for e in o.obs_entities))
        cats = list(dict.fromkeys(c for e in ents for c in _entity_tags(e)[0]))
        subs = list(dict.fromkeys(c for e in ents for c in _entity_tags(e)[1]))
        parents = list(dict.fromkeys(p for e in ents for p in ENTITY_PARENTS.get(e, ())))
        return {"obs_entities": ents, "obs_entities_parents": parents, "obs_categories": cats, "obs_subcategories": subs}

    def obs_answer(self, o: Observation, qid: str, answer_type: str, level: int, counter: list[int]) -> dict:
        counter[0] += 1
        aid = _id(qid, counter[0])
        a = {
            "answer_id": aid, "answer_type": answer_type, "answer_level": level, "text": o.sentence,
            "name_tag": _cap(o.name), "laterality": o.laterality, "regions": list(o.regions),
            **self._tags([o]),
            "certainty": "certain" if o.probability in ("positive", "negative") else "uncertain",
            "positiveness": "pos" if o.positive else "neg",
            "modifiers": [[k, v] for k, vs in o.modifiers.items() for v in vs],
            "localization": o.localization,
            "sub_answers": [self.obs_answer(c, qid, "details", level + 1, counter) for c in o.children],
            "from_report": o.from_report,
            "extraction_quality": dict(o.quality),
            "_cap": o.grade_cap,
        }
        return a

    def template_answer(self, text: str, obs: list[Observation], positive: bool, qid: str, counter: list[int],
                        regions: list[str] | None = None, modifiers: list[list[str]] | None = None,
                        loc_obs: list[Observation] | None = None, region_loc: str | None = None) -> dict:
        counter[0] += 1
        lo = obs if loc_obs is None else loc_obs
        regs = list(dict.fromkeys(regions if regions is not None else [r for o in lo for r in o.regions]))
        if region_loc is not None:
            loc = self.s.region_localization[region_loc]
        else:
            loc = self._loc_union(lo)
        lats = {o.laterality for o in lo} - {"midline", "unspecified"}
        return {
            "answer_id": _id(qid, counter[0]), "answer_type": "main_answer", "answer_level": 0, "text": text,
            "name_tag": text.rstrip(".").split(", ", 1)[-1][:80], "laterality": lats.pop() if len(lats) == 1 else ("bilateral" if lats else "unspecified"),
            "regions": regs, **self._tags(obs),
            "certainty": "certain", "positiveness": "pos" if positive else "neg",
            "modifiers": modifiers or [], "localization": loc, "sub_answers": [], "from_report": False,
            "extraction_quality": {}, "_cap": min_grade([o.grade_cap for o in lo]) if lo else "A++",
        }

    def describe(self, obs: list[Observation], empty_text: str, qid: str, counter: list[int], **template: Any) -> list[dict]:
        """Main answers of a description question: the observations, or a negative template
        answer (``empty_text``) when there are none."""
        if obs:
            return [self.obs_answer(o, qid, "main_answer", 0, counter) for o in obs]
        return [self.template_answer(empty_text, [], False, qid, counter, **template)]

    # ---- questions
    def add(self, short: str, strategy: str, question: str, variables: dict, mains: list[dict],
            details: list[Observation], related: list[Observation], counter: list[int], qid: str,
            obs_ids: list[str]) -> None:
        answers = list(mains)
        for o in details:
            answers.append(self.obs_answer(o, qid, "details", 0, counter))
        for o in related:
            answers.append(self.obs_answer(o, qid, "related_information", 0, counter))
        self._grade(answers)
        q = {
            "question_id": qid, "question_type": short, "question_strategy": strategy, "variables": variables,
            "obs_ids": obs_ids,
            "contains_report_answers": any(_walk_any(a, lambda x: x["from_report"]) for a in answers),
            "contains_template_answers": any(not a["from_report"] for a in answers),
            "extraction_quality": {"rating": RATING_CODES[self.s.grade]},
            "question_img_localization_quality": {
                iid: min((a["localization"][iid]["localization_quality"] for a in answers if iid in a["localization"]),
                         default=CRITERION_CODES["localization_quality"]["NO_LOCALIZATION"]) for iid in self.image_ids},
            "question": question, "answers": answers, "question_quality": self._qq,
        }
        self.questions.append(q)

    def _grade(self, answers: list[dict]) -> None:
        """Sample the overall grade and set question/answer ratings whose minimum equals it."""
        rng = self.grade_rng
        target = _GRADES[int(np.searchsorted(_GRADE_CUM, rng.random(), side="right"))]
        flat = [a for top in answers for a in _walk(top)]
        caps = [a.pop("_cap") for a in flat]
        if target == "unrated":
            self._qq = {"rating": RATING_CODES["unrated"]}
            for a in flat:
                a["answer_quality"] = _criteria_for("answer", "A++", rng)
            self._overall = "unrated"
            return
        overall = min_grade([target, self.s.grade, *caps])
        # ratings: every component at least `overall`, one of them exactly `overall`
        comp_grades = []
        n = len(flat) + 1
        exact = int(rng.integers(n))
        for i in range(n):
            if i == exact:
                g = overall
            else:
                better = _AT_LEAST[overall]
                g = better[int(rng.integers(len(better)))]
            if i > 0:  # an answer can be no better than its observations' localisation allows
                g = min_grade([g, caps[i - 1]])
            comp_grades.append(g)
        self._qq = _criteria_for("question", comp_grades[0], rng)
        for a, g in zip(flat, comp_grades[1:]):
            a["answer_quality"] = _criteria_for("answer", g, rng)
        self._overall = overall

    def next_qid(self) -> tuple[str, list[int]]:
        return _id(self.s.study_id, "q", len(self.questions)), [0]

    def pick(self, options: tuple[str, ...], **kw: str) -> str:
        t = str(options[int(self.rng.integers(len(options)))])
        return t.format(**kw)


def _walk(a: dict):
    yield a
    for s in a["sub_answers"]:
        yield from _walk(s)


def _walk_any(a: dict, pred) -> bool:
    return any(pred(x) for x in _walk(a))


_GRADES = list(GRADE_DIST)
_GRADE_CUM = np.cumsum(list(GRADE_DIST.values()))[:-1]
_AT_LEAST = {g: [h for h in QUALITY_GRADES[:-1] if QUALITY_RANK[h] >= QUALITY_RANK[g]] for g in QUALITY_GRADES}
_FIELDS = {"question": ("completeness", "question_clarity"), "answer": ("entailment", "relevance", "answer_clarity")}
_BEST = {f: max(range(len(o)), key=lambda i: (QUALITY_RANK[o[i][1]], i)) for f, o in CRITERIA.items()}
_EXACT = {(f, g): [i for i, (_, gg) in enumerate(o) if gg == g] for f, o in CRITERIA.items() for g in QUALITY_GRADES}


def _criteria_for(kind: str, grade: str, rng: np.random.Generator) -> dict[str, int]:
    """Criterion codes whose allowed grades are all >= ``grade``, one of them == ``grade`` when
    an option allows exactly it, plus the ``rating`` code."""
    fields = _FIELDS[kind]
    out: dict[str, int] = {f: _BEST[f] for f in fields}
    start = int(rng.integers(len(fields)))
    for k in range(len(fields)):
        f = fields[(start + k) % len(fields)]
        exact = _EXACT[(f, grade)]
        if exact:
            out[f] = exact[int(rng.integers(len(exact)))]
            break
    out["rating"] = RATING_CODES[grade]
    return out


# ----------------------------------------------------------------------------------------------


def generate_qa(study: Study, rng: np.random.Generator) -> tuple[list[dict], list[str]]:
    """The study's questions (qa.json ``questions``) and the overall grade of each."""
    b = QABuilder(study, rng)
    grades: list[str] = []

    def emit(short, strategy, question, variables, mains, details=(), related=(), obs_used=(), counter=None, qid=""):
        obs_ids = list(dict.fromkeys([o.obs_id for o in (*obs_used, *details, *related)]))
        b.add(short, strategy, question, variables, mains, list(details), list(related), counter, qid, obs_ids)
        grades.append(b._overall)

    top = study.observations
    abnormal = [o for o in top if b.abnormal(o)]
    devices = [o for o in top if o.positive and b.is_device(o)]
    technical = [o for o in top if o.positive and "TECHNICAL_ASSESSMENT" in _entity_tags(o.entity)[0] and not b.is_device(o)]

    # A: indication
    if study.indication_obs is not None:
        qid, c = b.next_qid()
        ind = study.indication_obs
        main = b.obs_answer(ind, qid, "main_answer", 0, c)
        assoc = [o for o in top if o.obs_id in study.indication["associated_obs_ids"]]
        emit("indication", "indication", study.indication["indication_summary"], {"indication": study.indication["indication"]},
             [main], details=assoc, obs_used=[ind], counter=c, qid=qid)

    # B: abnormal strategy
    qid, c = b.next_qid()
    emit("describe_all", "abnormal", b.pick(Q["describe_all"]), {}, [b.obs_answer(o, qid, "main_answer", 0, c) for o in top],
         obs_used=top, counter=c, qid=qid)
    qid, c = b.next_qid()
    mains = b.describe(abnormal, "No abnormalities are seen.", qid, c)
    emit("describe_abnormal", "abnormal", b.pick(Q["describe_abnormal"]), {}, mains, obs_used=abnormal, counter=c, qid=qid)
    defaults = [o for o in top if not o.positive and o.entity in DEFAULT_NEGATIVES]
    for short, yes_text, no_text in (
            ("is_abnormal", "Yes, there are abnormal findings.", "No, there are no abnormal findings."),
            ("is_normal", "No, the study is not normal.", "Yes, the study is normal.")):
        qid, c = b.next_qid()
        main = b.template_answer(yes_text if abnormal else no_text, abnormal, bool(abnormal), qid, c)
        emit(short, "abnormal", b.pick(Q[short]), {}, [main], details=abnormal,
             related=[] if abnormal else defaults[:3], counter=c, qid=qid)

    subcats = list(SUBCATEGORY_PHRASES)
    with_pos = [sc for sc in subcats if any(sc in _entity_tags(o.entity)[1] for o in abnormal)]
    chosen = list(dict.fromkeys(with_pos[:2] + [subcats[i] for i in rng.permutation(len(subcats))]))[:3]
    for sc in chosen:
        phrase, verb = SUBCATEGORY_PHRASES[sc]
        in_sc = [o for o in top if sc in _entity_tags(o.entity)[1]]
        pos_sc = [o for o in in_sc if b.abnormal(o)]
        var = {"subcategory": sc}
        qid, c = b.next_qid()
        mains = b.describe(in_sc, f"No findings of the {phrase} are reported.", qid, c)
        emit("describe_subcat", "abnormal", b.pick(Q["describe_subcat"], x=phrase), var, mains, obs_used=in_sc, counter=c, qid=qid)
        qid, c = b.next_qid()
        mains = b.describe(pos_sc, f"There are no abnormal findings of the {phrase}.", qid, c)
        emit("describe_abnormal_subcat", "abnormal", b.pick(Q["describe_abnormal_subcat"], x=phrase), var, mains,
             obs_used=pos_sc, counter=c, qid=qid)
        qid, c = b.next_qid()
        text = f"Yes, there are abnormal findings of the {phrase}." if pos_sc else f"No, there are no abnormal findings of the {phrase}."
        emit("is_abnormal_subcat", "abnormal", b.pick(Q["is_abnormal_subcat"], x=phrase), var,
             [b.template_answer(text, pos_sc, bool(pos_sc), qid, c)], details=pos_sc, counter=c, qid=qid)
        if rng.random() < 0.7:
            qid, c = b.next_qid()
            text = f"No, the {phrase} {verb} not normal." if pos_sc else f"Yes, the {phrase} {verb} normal."
            emit("is_normal_subcat", "abnormal", b.pick(Q["is_normal_subcat"], x=phrase, Verb=_cap(verb)), var,
                 [b.template_answer(text, pos_sc, bool(pos_sc), qid, c)], details=pos_sc, counter=c, qid=qid)

    group = list(DEVICE_GROUPS)[int(rng.integers(len(DEVICE_GROUPS)))]
    phrase, any_phrase = DEVICE_GROUPS[group]
    in_group = [o for o in devices if group == "DEVICES" or group in _entity_tags(o.entity)[1]]
    var = {"device_group": group}
    qid, c = b.next_qid()
    mains = b.describe(in_group, f"There are no {phrase}.", qid, c)
    emit("describe_device", "abnormal", b.pick(Q["describe_device"], x=phrase), var, mains, obs_used=in_group, counter=c, qid=qid)
    qid, c = b.next_qid()
    text = f"Yes, there are {phrase}." if in_group else f"No, there are no {phrase}."
    emit("has_devices", "abnormal", b.pick(Q["has_devices"], y=any_phrase), var,
         [b.template_answer(text, in_group, bool(in_group), qid, c)], details=in_group, counter=c, qid=qid)

    if rng.random() < 0.05:
        views = [im.view for im in study.images]
        if views == ["AP"]:
            text = "A portable AP view of the chest was obtained."
        elif "LATERAL" in views and len(views) > 1:
            text = f"{'PA' if 'PA' in views else 'AP'} and lateral views of the chest were obtained."
        else:
            text = f"{'Single ' if len(views) == 1 else ''}{views[0]} view{'s' if len(views) > 1 else ''} of the chest {'was' if len(views) == 1 else 'were'} obtained."
        qid, c = b.next_qid()
        emit("describe_acquisition", "abnormal", b.pick(Q["describe_acquisition"]), {},
             [b.template_answer(text, technical, False, qid, c)], details=technical, counter=c, qid=qid)
    qid, c = b.next_qid()
    mains = b.describe(technical, "There are no imaging artifacts.", qid, c)
    emit("describe_imaging_artifacts", "abnormal", b.pick(Q["describe_imaging_artifacts"]), {}, mains, obs_used=technical,
         counter=c, qid=qid)
    qid, c = b.next_qid()
    text = "Yes, there are imaging artifacts." if technical else "No, there are no imaging artifacts."
    emit("has_imaging_artifacts", "abnormal", b.pick(Q["has_imaging_artifacts"]), {},
         [b.template_answer(text, technical, bool(technical), qid, c)], details=technical, counter=c, qid=qid)

    # C: region strategy
    loc_regions = [r for r in study.regions if r in study.region_localization]
    pos_regions = list(dict.fromkeys(r for o in abnormal for r in o.regions if r in study.region_localization))
    picks: list[str] = []
    for r in pos_regions[:2]:
        picks.append(r)
    while len(picks) < 3:
        r = _pick_region_by_category([r for r in loc_regions if r not in picks], rng)
        if r is None:
            break
        picks.append(r)
    for region in picks:
        for short in ("describe_region", "describe_abnormal_region", "is_abnormal_region", "is_normal_region"):
            the_region, variables = _region_reference(b, region, rng)
            in_r = [o for o in top if b.in_region(o, region)]
            pos_r = [o for o in in_r if b.abnormal(o)]
            verb = _verb(region)
            qid, c = b.next_qid()
            if short == "describe_region":
                mains = b.describe(in_r, f"The {region} {verb} unremarkable.", qid, c, regions=[region], region_loc=region)
                emit(short, "region_abnormal", b.pick(Q[short], x=the_region), variables, mains, obs_used=in_r, counter=c, qid=qid)
            elif short == "describe_abnormal_region":
                mains = b.describe(pos_r, f"There are no abnormal findings in the {region}.", qid, c,
                                   regions=[region], region_loc=region)
                emit(short, "region_abnormal", b.pick(Q[short], x=the_region), variables, mains, obs_used=pos_r, counter=c, qid=qid)
            else:
                if short == "is_abnormal_region":
                    text = f"Yes, there are abnormal findings in the {region}." if pos_r else f"No, there are no abnormal findings in the {region}."
                    qtext = b.pick(Q[short], x=the_region)
                else:
                    text = f"No, the {region} {verb} not normal." if pos_r else f"Yes, the {region} {verb} normal."
                    qtext = b.pick(Q[short], x=the_region, Verb=_cap(_verb(region)))
                main = b.template_answer(text, pos_r, bool(pos_r), qid, c, regions=[region],
                                         region_loc=None if pos_r else region)
                emit(short, "region_abnormal", qtext, variables, [main], details=pos_r, counter=c, qid=qid)

    dev_regions = list(dict.fromkeys(r for o in devices for r in o.regions if r in study.region_localization))
    picks = dev_regions[:1]
    others = [r for r in loc_regions if r not in picks]
    picks += [others[int(i)] for i in rng.permutation(len(others))[: 2 - len(picks)]]
    for region in picks:
        in_r = [o for o in devices if b.in_region(o, region)]
        for short in ("describe_region_device", "has_region_device"):
            the_region, variables = _region_reference(b, region, rng)
            qid, c = b.next_qid()
            if short == "describe_region_device":
                mains = b.describe(in_r, f"There are no devices in the {region}.", qid, c, regions=[region], region_loc=region)
                emit(short, "region_abnormal", b.pick(Q[short], x=the_region), variables, mains, obs_used=in_r, counter=c, qid=qid)
            else:
                text = f"Yes, there is {T.article(in_r[0].entity)} in the {region}." if in_r else f"No, there are no devices in the {region}."
                emit(short, "region_abnormal", b.pick(Q[short], x=the_region), variables,
                     [b.template_answer(text, in_r, bool(in_r), qid, c, regions=[region], region_loc=None if in_r else region)],
                     details=in_r, counter=c, qid=qid)

    # D: finding strategy
    finding_specs = [s for s in SPECS if not s.device and not s.technical]
    present = list(dict.fromkeys(o.entity for o in abnormal))
    parents = [p for e in present for p in ENTITY_PARENTS.get(e, ()) if p in ENTITY_BY_NAME]
    absent = [s.entity for s in finding_specs if s.entity not in present]
    n_pos = min(len(present), 2)
    chosen = [present[i] for i in sorted(rng.permutation(len(present))[:n_pos])]
    if parents and rng.random() < 0.3:
        chosen.append(parents[int(rng.integers(len(parents)))])
    n_neg = max(1, 4 - len(chosen))
    chosen += [absent[i] for i in rng.permutation(len(absent))[:n_neg]]
    for entity in chosen:
        matched = [o for o in top if b.matches(o, entity)]
        pos = [o for o in matched if o.positive]
        neg = [o for o in matched if not o.positive]
        spec = SPEC_BY_ENTITY.get(entity)
        var = {"finding": entity}
        qid, c = b.next_qid()
        mains = b.describe(matched, f"There is no {entity}.", qid, c)
        emit("describe_finding", "finding", b.pick(Q["describe_finding"], x=entity), var, mains, obs_used=matched, counter=c, qid=qid)
        qid, c = b.next_qid()
        a_ent = T.article(entity) if (spec is None or spec.countable) else entity
        text = f"Yes, there is {a_ent}." if pos else f"No, there is no {entity}."
        emit("has_finding", "finding", b.pick(Q["has_finding"], x=entity, a=a_ent), var,
             [b.template_answer(text, pos or neg, bool(pos), qid, c, loc_obs=pos or neg)], details=pos or neg, counter=c, qid=qid)
        if pos or rng.random() < 0.3:
            qid, c = b.next_qid()
            regions = list(dict.fromkeys(r for o in pos for r in o.regions))
            text = (f"The {entity} is located in the " + " and the ".join(regions) + ".") if pos else f"There is no {entity}."
            emit("where_is_finding", "finding", b.pick(Q["where_is_finding"], x=entity), var,
                 [b.template_answer(text, pos, bool(pos), qid, c, regions=regions)], details=pos, counter=c, qid=qid)
        sev_pos = [o for o in pos if o.severity]
        if sev_pos or (not pos and spec is not None and spec.has_severity and rng.random() < 0.25):
            qid, c = b.next_qid()
            if sev_pos:
                words = list(dict.fromkeys(T.SEVERITY_WORDS[o.severity - 1] for o in sev_pos))
                text = f"The {entity} is {' and '.join(words)}."
                mods = [["severity", w] for w in words]
            else:
                text, mods = f"There is no {entity}.", []
            emit("how_severe_is_finding", "finding", b.pick(Q["how_severe_is_finding"], x=entity), var,
                 [b.template_answer(text, sev_pos, bool(sev_pos), qid, c, modifiers=mods)], details=sev_pos, counter=c, qid=qid)

    device_specs = [s.entity for s in SPECS if s.device]
    present_dev = list(dict.fromkeys(o.entity for o in devices))
    chosen = present_dev[:1] + [d for d in [device_specs[i] for i in rng.permutation(len(device_specs))] if d not in present_dev][:1]
    for entity in chosen:
        matched = [o for o in devices if b.matches(o, entity)]
        var = {"device": entity}
        a_ent = T.article(entity) if SPEC_BY_ENTITY[entity].countable else entity
        qid, c = b.next_qid()
        mains = b.describe(matched, f"There is no {entity}.", qid, c)
        emit("describe_device", "finding", b.pick(Q["describe_device_finding"], x=entity), var, mains, obs_used=matched, counter=c, qid=qid)
        qid, c = b.next_qid()
        text = f"Yes, there is {a_ent}." if matched else f"No, there is no {entity}."
        emit("has_device", "finding", b.pick(Q["has_device"], a=a_ent), var,
             [b.template_answer(text, matched, bool(matched), qid, c)], details=matched, counter=c, qid=qid)
        if matched or rng.random() < 0.3:
            qid, c = b.next_qid()
            regions = list(dict.fromkeys(r for o in matched for r in o.regions))
            text = (f"The {entity} is located in the " + " and the ".join(regions) + ".") if matched else f"There is no {entity}."
            emit("where_is_device", "finding", b.pick(Q["where_is_device"], x=entity), var,
                 [b.template_answer(text, matched, bool(matched), qid, c, regions=regions)], details=matched, counter=c, qid=qid)
    return b.questions, grades


# the seed's expected coverage of region categories (2.6.1), used to choose the regions asked about
CATEGORY_WEIGHTS = {"cardiac": 0.3, "pulmonary": 0.25, "pleural": 0.2, "mediastinal": 0.15, "osseous": 0.1}


def _pick_region_by_category(regions: list[str], rng: np.random.Generator) -> str | None:
    """A region of the graph, its category drawn by ``CATEGORY_WEIGHTS`` among those present."""
    from cxrbench.data.vocabulary import region_category

    by_cat: dict[str, list[str]] = {}
    for r in regions:
        by_cat.setdefault(region_category(r), []).append(r)
    cats = [c for c in CATEGORY_WEIGHTS if c in by_cat]
    if not cats:
        return regions[int(rng.integers(len(regions)))] if regions else None
    w = np.array([CATEGORY_WEIGHTS[c] for c in cats])
    cat = cats[int(rng.choice(len(cats), p=w / w.sum()))]
    return by_cat[cat][int(rng.integers(len(by_cat[cat])))]


def _region_reference(b: QABuilder, region: str, rng: np.random.Generator) -> tuple[str, dict]:
    """How a question names its region: directly ("the left lung"), or in ~10% of questions
    through one or two unique region-region relations of the graph."""
    hops = b.rel_into.get(region, [])
    # only regions with a uniquely identifying relation qualify (~40%): 0.25 of those gives ~10% overall
    if hops and rng.random() < 0.25:
        anchor, rel = hops[int(rng.integers(len(hops)))]
        noun = str(rng.choice(["region", "structure", "area"]))
        ref = [{"relation": rel, "anchor": anchor}]
        anchor_phrase = f"the {anchor}"
        second = [(a2, r2) for a2, r2 in b.rel_into.get(anchor, []) if a2 != region]
        if second and rng.random() < 0.5:
            a2, r2 = second[int(rng.integers(len(second)))]
            anchor_phrase = f"the structure {REL_PHRASE[r2]} the {a2}"
            ref.append({"relation": r2, "anchor": a2})
        return f"the {noun} {REL_PHRASE[rel]} {anchor_phrase}", {"region": region, "region_reference": ref}
    return f"the {region}", {"region": region}
