"""`cxrbench score` on a predictions file shaped like the real test split, end to end.

    python benchmarks/full_scale.py                      # everything, about 15-30 minutes on 2 cores
    python benchmarks/full_scale.py --parts score        # only the bootstrap-heavy run and its baseline
    python benchmarks/full_scale.py --rows 30000 --studies 300 --resamples 1000   # a quick look

The file (built here, seeded): 333,022 QA pairs in 3,254 studies, the 27 question types in the
proportions of the MIMIC-Ext-CXR-QBA test split (its published per-type counts), every column
of docs/contracts.md §3 that a model's run dir has: head, labels and scores of the binary and
severity heads, confidences, 1-3 reference boxes per localisation question and 1-3 scored
predicted boxes, region names and categories, questions, answer entities. Answers are what the
release has: templated yes/no, location and severity answers, and report-like sentences
composed from each study's findings (1-5 sentences per describe question); a prediction copies
the reference or says something else about the same study, more often right in easier studies.

What it times, each a fresh ``cxrbench score`` process (the command users run):

1. ``score``: every metric except the two model-based ones (``--skip bertscore_f1
   clinical_term_f1``), ``--resamples`` study-clustered resamples, mAP included, with
   ``--ci-draw shared`` (the default) and, measured in the same run as the baseline,
   ``--ci-draw per-stratum`` (each stratum resampled on its own). ``--old-commit SHA`` also
   times the code of that commit (``git archive`` into a temporary folder; the repository is not
   touched) on the same file: the path before issue 13.
2. ``text``: BERTScore F1 and clinical-term F1 alone, cold (a fresh process: model and index
   loads included), no bootstrap. Baseline, as issue 13 specifies it: plain ``bert_score.score``
   on ``--bertscore-sample`` rows of the same file, scaled linearly to all rows. Plain
   bert-score also embeds each distinct sentence of *one call* once, so a single plain call on
   all rows would cost about our forward passes plus its padded pair loop: the ratio against
   the scaled sample is the one the issue asks for, not the gain over one huge plain call.

Printed: wall and CPU seconds (children), the machine's load average when each step started
(2 cores shared with other jobs: compare ratios within a run), distinct texts and sentences.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Test-split questions per type (MIMIC-Ext-CXR-QBA 1.0.0 description, "Number of questions for
# each question type"): the proportions the generated file follows.
TEST_COUNTS = {
    "A_indication": 3047, "B01_describe_all": 2921, "B02_describe_abnormal": 2921, "B03_is_abnormal": 2921,
    "B04_is_normal": 2921, "B08_describe_subcat": 33928, "B09_describe_abnormal_subcat": 33928,
    "B10_is_abnormal_subcat": 33928, "B11_is_normal_subcat": 23368, "B12_describe_device": 13014,
    "B13_has_devices": 13014, "B14_describe_acquisition": 120, "B15_describe_imaging_artifacts": 2921,
    "B16_has_imaging_artifacts": 2921, "C01_describe_region": 36846, "C02_describe_abnormal_region": 37010,
    "C03_is_abnormal_region": 36976, "C04_is_normal_region": 37058, "C07_describe_region_device": 70203,
    "C08_has_region_device": 70714, "D01_describe_finding": 38273, "D02_has_finding": 38355,
    "D03_where_is_finding": 29618, "D04_how_severe_is_finding": 17602, "D05_describe_device": 5446,
    "D06_has_device": 5374, "D07_where_is_device": 5415,
}
FINDINGS = ("pleural effusion", "pneumothorax", "cardiomegaly", "atelectasis", "consolidation", "pulmonary edema",
            "pneumonia", "nodule", "mass", "opacity", "emphysema", "fibrosis", "hilar enlargement", "fracture",
            "scoliosis", "hiatal hernia", "calcification", "vascular congestion", "interstitial markings",
            "granuloma", "lymphadenopathy", "pleural thickening", "infiltrate", "collapse")
DEVICES = ("endotracheal tube", "nasogastric tube", "central venous catheter", "PICC line", "pacemaker",
           "chest tube", "sternotomy wires", "tracheostomy tube")
REGIONS = {"left lung": "lungs", "right lung": "lungs", "left upper lobe": "lungs", "right upper lobe": "lungs",
           "left lower lobe": "lungs", "right lower lobe": "lungs", "right middle lobe": "lungs",
           "left lung base": "lungs", "right lung base": "lungs", "left apical zone": "lungs",
           "right apical zone": "lungs", "left costophrenic angle": "pleura", "right costophrenic angle": "pleura",
           "left hemithorax": "pleura", "right hemithorax": "pleura", "heart": "cardiac", "cardiac silhouette": "cardiac",
           "mediastinum": "mediastinum", "upper mediastinum": "mediastinum", "left hilar structures": "mediastinum",
           "right hilar structures": "mediastinum", "aortic arch": "mediastinum", "trachea": "mediastinum",
           "spine": "bones", "left clavicle": "bones", "right clavicle": "bones", "abdomen": "abdomen",
           "stomach": "abdomen", "svc": "mediastinum", "carina": "mediastinum"}
REGION_NAMES = tuple(REGIONS)
SEVERITY = ("none", "mild", "moderate", "severe")
SENTENCES = ("There is {a} {sev} {f} in the {r}.", "{Sev} {f} is seen in the {r}.", "{Sev} {f} of the {r}.",
             "The {r} shows {sev} {f}.", "{F} in the {r} is {sev}.", "{Sev} {f} in the {r}, unchanged from prior.",
             "{Sev} {f} in the {r} has slightly improved.", "Findings are consistent with {sev} {f} in the {r}.")
NEGATIVE = ("No {f}.", "There is no {f}.", "No evidence of {f} in the {r}.", "The {r} is clear.",
            "{F} is not seen.", "No {f} is identified.")
DEVICE_SENTENCES = ("The {d} terminates {n} cm above the carina.", "The {d} is in standard position.",
                    "The {d} tip projects over the {r}.", "A {d} is in place.")
IMAGE = (2000.0, 2500.0)


class Study:
    """One study's findings: what its answers are made of."""

    def __init__(self, rng: np.random.Generator):
        self.skill = rng.normal(0, 1)
        k = int(rng.integers(2, 8))
        self.obs = [(FINDINGS[i], REGION_NAMES[int(rng.integers(len(REGION_NAMES)))], int(rng.integers(1, 4)),
                     bool(rng.random() < 0.55)) for i in rng.choice(len(FINDINGS), k, replace=False)]
        self.devices = [(DEVICES[i], REGION_NAMES[int(rng.integers(len(REGION_NAMES)))], int(rng.integers(1, 8)))
                        for i in rng.choice(len(DEVICES), int(rng.integers(0, 3)), replace=False)]
        self.sentences = [self._sentence(o, rng) for o in self.obs]
        self.device_sentences = [DEVICE_SENTENCES[int(rng.integers(len(DEVICE_SENTENCES)))]
                                 .format(d=d, n=n, r=r) for d, r, n in self.devices]
        # where each region is in this study's image
        self.boxes = {}
        for _, r, _, _ in self.obs + [(d, r, 0, True) for d, r, _ in self.devices]:
            x, y = rng.uniform(0, IMAGE[0] * 0.7), rng.uniform(0, IMAGE[1] * 0.7)
            w, h = rng.uniform(150, 600, 2)
            self.boxes[r] = [x, y, min(IMAGE[0], x + w), min(IMAGE[1], y + h)]

    @staticmethod
    def _sentence(o, rng) -> str:
        f, r, sev, positive = o
        s = SEVERITY[sev]
        if positive:
            t = SENTENCES[int(rng.integers(len(SENTENCES)))]
        else:
            t = NEGATIVE[int(rng.integers(len(NEGATIVE)))]
        return t.format(f=f, F=f.capitalize(), r=r, sev=s, Sev=s.capitalize(), a="a" if s[0] not in "aeiou" else "an")


def _boxes(rng, box, right: bool, n: int):
    out = []
    for _ in range(n):
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        sd = 0.06 if right else 0.35
        jit = rng.normal(0, sd, 4) * np.array([w, h, w, h])
        b = np.array([x1, y1, x2, y2]) + jit
        b = [float(np.clip(min(b[0], b[2]), 0, IMAGE[0])), float(np.clip(min(b[1], b[3]), 0, IMAGE[1])),
             float(np.clip(max(b[0], b[2]), 0, IMAGE[0])), float(np.clip(max(b[1], b[3]), 0, IMAGE[1]))]
        out.append(b)
    return out


def build_predictions(n_rows: int, n_studies: int, seed: int = 0):
    """A predictions frame shaped like the test split (see the module docstring)."""
    import pandas as pd

    from cxrbench import questions

    rng = np.random.default_rng(seed)
    types = list(TEST_COUNTS)
    p = np.array([TEST_COUNTS[t] for t in types], dtype=float)
    qtype = np.array(types)[rng.choice(len(types), n_rows, p=p / p.sum())]
    sizes = rng.multinomial(n_rows - n_studies, rng.dirichlet(np.full(n_studies, 8.0))) + 1
    study_of = np.repeat(np.arange(n_studies), sizes)
    ids = np.sort(rng.choice(np.arange(50_000_000, 60_000_000), n_studies, replace=False))
    studies = [Study(rng) for _ in range(n_studies)]
    rows = []
    for i in range(n_rows):
        st = studies[study_of[i]]
        t = qtype[i]
        q = questions.BY_CODE[t]
        right = rng.random() < 1 / (1 + np.exp(-(1.0 + st.skill)))
        o = st.obs[int(rng.integers(len(st.obs)))]
        f, r, sev, positive = o
        row = {"question_id": f"{t}_{int(rng.integers(0, 40)):03d}", "study_id": int(ids[study_of[i]]),
               "question_type": t, "head": q.head, "confidence": float(np.clip(rng.beta(6, 2) if right else
                                                                                rng.beta(3, 3), 0, 1))}
        if q.head == "binary":
            yes = positive if t not in ("B04_is_normal", "B11_is_normal_subcat", "C04_is_normal_region") else \
                not positive
            if t in ("B13_has_devices", "D06_has_device", "C08_has_region_device"):
                yes = bool(st.devices) if t != "C08_has_region_device" else any(dr == r for _, dr, _ in st.devices)
            pred_yes = yes if right else not yes
            say = {True: f"Yes, there is {f} in the {r}.", False: f"No, there is no {f} in the {r}."}
            if t.startswith("C0"):
                say = {True: f"Yes, the {r} is abnormal.", False: f"No, the {r} is normal."}
            row.update(answer=say[yes], prediction=say[pred_yes], label_true=int(yes), label_pred=int(pred_yes),
                       score=float(np.clip((0.7 if pred_yes else 0.3) + rng.normal(0, 0.15), 0, 1)),
                       question=f"Is there {f} in the {r}?")
        elif q.head == "region":
            name = f if t == "D03_where_is_finding" or not st.devices else st.devices[0][0]
            true_region = r if t == "D03_where_is_finding" or not st.devices else st.devices[0][1]
            pred_region = true_region if right else REGION_NAMES[int(rng.integers(len(REGION_NAMES)))]
            box = st.boxes[true_region]
            bt = _boxes(rng, box, True, int(rng.integers(1, 4)))
            bp = _boxes(rng, box, right, int(rng.integers(1, 4)))
            row.update(answer=f"The {name} is located in the {true_region}.",
                       prediction=f"The {name} is located in the {pred_region}.",
                       boxes_true=bt, boxes_pred=bp,
                       box_scores=[float(np.clip(rng.beta(5, 2) if right else rng.beta(2, 4), 0, 1)) for _ in bp],
                       regions_true=[true_region], regions_pred=[pred_region], image_width=IMAGE[0],
                       image_height=IMAGE[1], region_category=REGIONS[true_region], question=f"Where is the {name}?")
        elif q.head == "severity":
            p_sev = sev if right else int(rng.integers(0, 4))
            row.update(answer=f"The {f} is {SEVERITY[sev]}.", prediction=f"The {f} is {SEVERITY[p_sev]}.",
                       label_true=sev, label_pred=p_sev, question=f"How severe is the {f}?")
        else:
            answer, entities = _describe(t, st, o, rng)
            if right:
                prediction = answer
            elif rng.random() < 0.5 and len(st.sentences) > 1:   # another finding of the same study
                prediction = " ".join(rng.choice(st.sentences, min(2, len(st.sentences)), replace=False))
            else:                                                # the same finding, misdescribed
                g = (f, REGION_NAMES[int(rng.integers(len(REGION_NAMES)))], int(rng.integers(1, 4)), not positive)
                prediction = Study._sentence(g, rng)
            row.update(answer=answer, prediction=prediction, answer_entities=entities,
                       question=f"Describe the {r}." if t.startswith("C") else f"Describe the {f}.")
        rows.append(row)
    frame = pd.DataFrame.from_records(rows)
    # the QA-pair key is (study_id, question_id): make the template ids unique within a study
    frame["question_id"] = frame["question_id"] + "_" + frame.groupby(["study_id", "question_id"]).cumcount().astype(str)
    return frame


def _describe(t: str, st: Study, o, rng) -> tuple[str, list[str]]:
    f, r, _, _ = o
    if t in ("B01_describe_all", "B02_describe_abnormal", "B08_describe_subcat", "B09_describe_abnormal_subcat"):
        k = min(len(st.sentences), int(rng.integers(2, 6)))
        pick = sorted(rng.choice(len(st.sentences), k, replace=False))
        return " ".join(st.sentences[j] for j in pick), [st.obs[j][0] for j in pick]
    if t in ("B12_describe_device", "C07_describe_region_device", "D05_describe_device"):
        if st.device_sentences:
            return " ".join(st.device_sentences), [d for d, _, _ in st.devices]
        return "No support devices are seen.", []
    if t == "A_indication":
        return f"Evaluate for {f}.", [f]
    if t == "B14_describe_acquisition":
        return "Portable AP view of the chest.", []
    if t == "B15_describe_imaging_artifacts":
        return "No imaging artifacts.", []
    if t.startswith("C0"):   # describe (abnormal) region: the findings of that region
        here = [s for s, ob in zip(st.sentences, st.obs) if ob[1] == r]
        return " ".join(here) or f"The {r} is unremarkable.", [ob[0] for ob in st.obs if ob[1] == r]
    return st.sentences[st.obs.index(o)], [f]   # D01 describe finding


# ----------------------------------------------------------------------------------- timing
def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_cli(args: list[str], label: str, env: dict | None = None, cwd: Path | None = None) -> float:
    load = os.getloadavg()[0]
    cpu, t = _children_cpu(), time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd)
    wall, cpu = time.perf_counter() - t, _children_cpu() - cpu
    if out.returncode != 0:
        raise SystemExit(f"{label} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    print(f"  {label:<58s} {wall:8.1f} s wall {cpu:8.1f} s CPU   (load {load:.1f})", flush=True)
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=333_022)
    ap.add_argument("--studies", type=int, default=3_254)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--parts", nargs="*", default=["score", "text"], choices=["score", "text"])
    ap.add_argument("--old-commit", default="", help="also time `cxrbench score` of this commit on the same file")
    ap.add_argument("--bertscore-sample", type=int, default=2000,
                    help="rows for the plain bert_score.score baseline (scaled linearly to all rows)")
    ap.add_argument("--work", default=None, help="folder for the file and run dirs (default: a temporary one)")
    args = ap.parse_args()

    import pandas as pd

    from cxrbench.metrics import registry

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cxrbench-full-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    path = work / "predictions.parquet"
    t = time.perf_counter()
    frame = build_predictions(args.rows, args.studies, args.seed)
    frame.to_parquet(path)
    texts = pd.unique(pd.concat([frame["answer"], frame["prediction"]]))
    from cxrbench.metrics.clinical_terms import sentences

    n_sent = len({s for x in texts for _, s in sentences(x)})
    n_loc = int(frame["boxes_true"].notna().sum())
    n_det = int(frame["boxes_pred"].dropna().map(len).sum())
    print(f"{len(frame):,} rows in {frame['study_id'].nunique():,} studies, {frame['question_type'].nunique()} "
          f"question types; {len(texts):,} distinct answer/prediction texts ({n_sent:,} distinct sentences); "
          f"{n_loc:,} localisation items with {n_det:,} predicted boxes; built in {time.perf_counter() - t:.0f} s "
          f"({path}); {os.cpu_count()} CPUs", flush=True)
    cli = [sys.executable, "-m", "cxrbench", "score", str(path), "--no-progress", "--overwrite"]
    env = {**os.environ, "PYTHONHASHSEED": "0"}

    if "score" in args.parts:
        skip = ["--skip", "bertscore_f1", "clinical_term_f1"]
        boot = ["--n-resamples", str(args.resamples)]
        print(f"cxrbench score, every metric but bertscore_f1 and clinical_term_f1, {args.resamples:,} "
              "study-clustered resamples:", flush=True)
        shared = run_cli(cli + ["--out", str(work / "shared")] + skip + boot + ["--ci-draw", "shared"],
                         "--ci-draw shared (the default)", env)
        own = run_cli(cli + ["--out", str(work / "per_stratum")] + skip + boot + ["--ci-draw", "per-stratum"],
                      "--ci-draw per-stratum (each stratum on its own)", env)
        run_cli(cli + ["--out", str(work / "no_ci")] + skip + ["--n-resamples", "0"], "no CIs (--n-resamples 0)", env)
        print(f"  shared draw vs per-stratum: {own / shared:.1f}x faster", flush=True)
        if args.old_commit:
            old = Path(tempfile.mkdtemp(prefix="cxrbench-old-"))
            try:
                archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.old_commit], capture_output=True,
                                         check=True).stdout
                subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
                old_env = {**env, "PYTHONPATH": str(old)}
                before = run_cli([sys.executable, "-m", "cxrbench", "score", str(path), "--no-progress",
                                  "--out", str(work / "old")] + skip + boot, f"commit {args.old_commit[:10]}",
                                 old_env, cwd=old)
                print(f"  shared draw vs commit {args.old_commit[:10]}: {before / shared:.1f}x faster", flush=True)
            finally:
                shutil.rmtree(old, ignore_errors=True)

    if "text" in args.parts:
        others = [m for m in registry.METRICS if m not in ("bertscore_f1", "clinical_term_f1")]
        print("BERTScore F1 + clinical-term F1, cold (fresh process, model and index loaded), no bootstrap:",
              flush=True)
        ours = run_cli(cli + ["--out", str(work / "text"), "--n-resamples", "0", "--skip", *others],
                       "cxrbench score --skip <all others>", env)
        plain = _plain_bertscore(frame, args.bertscore_sample)
        scaled = plain * len(frame) / args.bertscore_sample
        print(f"  plain bert_score.score on {args.bertscore_sample:,} rows {plain:8.1f} s, scaled to "
              f"{len(frame):,} rows: {scaled:8.0f} s -> {scaled / ours:.1f}x (BERTScore and clinical terms "
              "together against plain BERTScore alone)", flush=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


def _plain_bertscore(frame, n: int) -> float:
    import bert_score
    import torch

    from cxrbench.metrics.bertscore import DEFAULT_LAYERS, default_model_path

    torch.set_num_threads(os.cpu_count() or 1)
    sample = frame.sample(n=min(n, len(frame)), random_state=0)
    cands, refs = sample["prediction"].tolist(), sample["answer"].tolist()
    t = time.perf_counter()
    bert_score.score(cands, refs, model_type=default_model_path(), num_layers=DEFAULT_LAYERS, device="cpu")
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
