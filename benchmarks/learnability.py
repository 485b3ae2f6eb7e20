"""Is the synthetic data learnable? The tiny full model against late fusion and majority answers.

Generates (or reuses) a synthetic dataset and its index, trains the ``tiny`` config under the
chosen conditions for the same number of optimizer steps through the real ``cxrbench train``
path (DeepSpeed, ZeRO-2, fp32 on CPU), answers the synthetic *test* split with each checkpoint
and prints per-head accuracy next to two majority baselines measured on the same rows:

* ``majority/head``: every question answered with its head's most frequent training label;
* ``majority/type``: every question answered with its question type's most frequent training
  label (the stronger one: "No" is the usual answer of a has_finding question).

Accuracy definitions are ``model.evaluation`` (binary/severity: label; region: the top region
is one of the true ones; text: exact finding set). The measurement quoted in docs/model.md
(about 35 minutes on 2 CPU cores: full ~20, late fusion ~8, data and answers the rest)::

    python benchmarks/learnability.py --workdir runs/learn4500 --patients 120 --steps 4500

It writes ``WORKDIR/learnability.json`` and prints a table. For the spatial questions (the
region head's D03_where_is_finding and D07_where_is_device, whose answers are locations the
scene graph holds) it also prints each condition's accuracy, the scene-graph oracle (the
answer read off the graph) and where the first condition's [CLS] attends, and the paired
differences on them. ``--spatial-probe STEPS`` instead trains each condition on the spatial
questions alone (:func:`spatial_probe`) and writes ``WORKDIR/spatial_probe*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SPATIAL = ("D03_where_is_finding", "D07_where_is_device")   # the region head's questions: answers are locations
sys.path.insert(0, str(REPO))


def run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=REPO)


def majority_frames(truth, train_frame, train_targets):
    """Predictions frames of the two majority baselines (same rows and truth as ``truth``)."""
    from model.vocabularies import HEAD_NAMES
    from model.vocabularies import FINDING_CLASSES, REGION_CLASSES

    t = train_targets
    labels = []
    for i in range(len(t.head)):
        head = HEAD_NAMES[t.head[i]]
        if head == "binary":
            lab = int(t.binary[i]) if t.binary[i] >= 0 else None
        elif head == "severity":
            lab = int(t.severity[i]) if t.severity[i] >= 0 else None
        elif head == "region":
            lab = REGION_CLASSES[t.region_first[i]] if t.region_first[i] >= 0 else None
        else:
            lab = "|".join(FINDING_CLASSES[k] for k in np.flatnonzero(t.findings[i]))
        labels.append((head, str(train_frame["question_type"].iat[i]), lab))
    by_head: dict[str, Counter] = {}
    by_type: dict[tuple[str, str], Counter] = {}
    for head, qt, lab in labels:
        if lab is None:
            continue
        by_head.setdefault(head, Counter())[lab] += 1
        by_type.setdefault((head, qt), Counter())[lab] += 1

    def frame_for(choose):
        out = truth.copy()
        preds, regions, findings = [], [], []
        for row in truth.itertuples(index=False):
            lab = choose(row.head, row.question_type)
            preds.append(lab if row.head in ("binary", "severity") else None)
            regions.append([lab] if row.head == "region" else [])
            findings.append(lab.split("|") if row.head == "text" else [])
        out["label_pred"], out["regions_pred"], out["findings_pred"] = preds, regions, findings
        return out

    def top(counter):
        return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0]

    head_major = {h: top(c) for h, c in by_head.items()}
    type_major = {k: top(c) for k, c in by_type.items()}
    return (frame_for(lambda h, qt: head_major[h]),
            frame_for(lambda h, qt: type_major.get((h, qt), head_major[h])))


def paired_differences(frames: dict, first: str) -> dict:
    """Accuracy of ``first`` minus each other condition, with a study-level paired bootstrap,
    overall, per head and on has_finding questions (where a finding's own box matters most)."""
    import pandas as pd

    from cxrbench.metrics.base import mean_stats
    from cxrbench.stats.bootstrap import paired_bootstrap
    from model.evaluation import item_hits

    a = frames[first]
    hits_a, clusters = item_hits(a), pd.factorize(a["study_id"])[0]
    qt = a["question_type"].to_numpy()
    subsets = {"overall": np.ones(len(a), dtype=bool), **{f"head {h}": (a["head"] == h).to_numpy() for h in
               ("binary", "region", "severity", "text")}, "has_finding": qt == "D02_has_finding",
               "spatial (D03+D07)": np.isin(qt, SPATIAL), **{t: qt == t for t in SPATIAL}}
    out = {}
    for other, b in frames.items():
        if other == first:
            continue
        assert (b["question_id"].to_numpy() == a["question_id"].to_numpy()).all()
        hits_b = item_hits(b)
        out[other] = {}
        for name, sel in subsets.items():
            ok = sel & ~np.isnan(hits_a) & ~np.isnan(hits_b)
            if not ok.any():
                continue
            r = paired_bootstrap(mean_stats("accuracy", np.where(ok, hits_b, np.nan)),
                                 mean_stats("accuracy", np.where(ok, hits_a, np.nan)), clusters,
                                 n_resamples=10_000, seed=0)
            out[other][name] = {"diff": r.diff, "ci": [r.ci_low, r.ci_high], "p": r.p_value, "n": int(ok.sum())}
    return out


def finding_prior(truth, train_frame, train_targets) -> dict:
    """Spatial accuracy of the question's words alone: each spatial question answered with the
    region most often given in training to its question type and finding (the first answer
    entity; spatial questions with a location name the finding they ask about)."""
    from collections import Counter

    from model.vocabularies import REGION_CLASSES

    t, counts, overall = train_targets, {}, Counter()
    for i, row in enumerate(train_frame.itertuples(index=False)):
        if row.question_type in SPATIAL and t.region_first[i] >= 0:
            key = (row.question_type, str(next(iter(row.answer_entities), "")))
            counts.setdefault(key, Counter())[t.region_first[i]] += 1
            overall[t.region_first[i]] += 1
    out = {}
    for qt in SPATIAL:
        hits = []
        for row in truth[(truth["question_type"] == qt).to_numpy()].itertuples(index=False):
            if not len(row.regions_true):
                continue
            c = counts.get((qt, str(next(iter(row.answer_entities), ""))), overall)
            hits.append(REGION_CLASSES[c.most_common(1)[0][0]] in set(row.regions_true))
        out[qt] = float(np.mean(hits)) if hits else float("nan")
    return out


def spatial_accuracy(frame, question_type: str) -> float:
    from model.evaluation import item_hits

    hits = item_hits(frame)
    sel = (frame["question_type"] == question_type).to_numpy() & ~np.isnan(hits)
    return float(hits[sel].mean()) if sel.any() else float("nan")


def scene_graph_oracle(frame, index_dir: Path) -> dict:
    """What the scene graph alone tells on the spatial questions, and where the model looks.

    ``oracle``: the answer read off the graph (the first observation node of the primary image
    whose entities include the answer's finding; its first region that folds onto a head
    class), scored as the region head is (one of the true regions). ``pointing``: the share of
    those questions whose [CLS] attends most to a node holding that finding (the ``full``
    model's attention of its last layer), against ``pointing_chance`` (the share of the tokens
    that are such nodes, averaged over the questions)."""
    import pandas as pd

    from cxrbench.data.vocabulary import load_vocabulary
    from model.data import IndexData, build_graphs
    from model.vocabularies import Vocabularies

    idx = IndexData.load(index_dir)
    vocabs = Vocabularies.from_dataset(load_vocabulary(idx.dataset_info))
    graphs, _ = build_graphs(idx.studies, idx.nodes, 48)
    qa = idx.qa.set_index("question_id")
    oracle, pointing, chance = [], [], []
    for row in frame.itertuples(index=False):
        if row.question_type not in SPATIAL or not len(row.regions_true):
            continue
        g = graphs[int(row.study_id)]
        src = qa.loc[row.question_id]
        if isinstance(src, pd.DataFrame):        # question ids recur across studies (real release)
            src = src[src["study_id"] == row.study_id].iloc[0]
        wanted = set(src["answer_entities"])
        nodes = [k for k in range(g.n) if g.kinds[k] == "observation" and set(g.entities[k]) & wanted]
        heads = [h for k in nodes[:1] for h in map(vocabs.head_region, g.regions[k]) if h]
        oracle.append(float(bool(heads) and heads[0] in set(row.regions_true)))
        if row.attn_text_visual is not None and len(row.attn_text_visual) == g.n and nodes:
            pointing.append(float(int(np.argmax(row.attn_text_visual)) in nodes))
            chance.append(len(nodes) / g.n)
    return {"n": len(oracle), "oracle": float(np.mean(oracle)) if oracle else None,
            "pointing": float(np.mean(pointing)) if pointing else None,
            "pointing_chance": float(np.mean(chance)) if chance else None}


def spatial_probe(index_dir: Path, work: Path, condition: str, steps: int, overrides: list[str]) -> dict:
    """Train on the spatial questions alone and answer the test split's: can the model read a
    location off the scene graph at all, apart from the multi-task budget?

    The ``tiny`` config of ``condition`` (plus ``overrides``), the region head's questions of the
    train split only (D03/D07 with a region label), ``steps`` AdamW steps of 32 at the config's
    learning rate on cached features, the model's loss (region term + auxiliary CheXpert);
    then accuracy and [CLS] pointing on the test split's spatial questions (as the main table)."""
    import pandas as pd
    import torch

    from cxrbench.data.vocabulary import load_vocabulary
    from model.answers import AnswerBank
    from model.backbone import backbone_fingerprint
    from model.checkpoint import CheckpointBundle
    from model.config import load_config
    from model.data import DatasetSettings, ImageStore, IndexData, QADataset, build_graphs, collate
    from model.feature_cache import FeatureCache
    from model.inference import Predictor
    from model.losses import VQALoss
    from model.network import build_model
    from model.targets import derive_targets
    from model.tokenizer import build_tokenizer
    from model.trainer import output_priors
    from model.vocabularies import Vocabularies

    cfg = load_config("tiny", condition=condition, overrides=overrides)
    m = cfg.model
    idx = IndexData.load(index_dir)
    vocabs = Vocabularies.from_dataset(load_vocabulary(idx.dataset_info))
    tok = build_tokenizer(m.tokenizer.vocab, m.tokenizer.lowercase)
    graphs, _ = build_graphs(idx.studies, idx.nodes, m.tokens.max_nodes, m.tokens.scene_graph)

    def spatial(split: str):
        qa = idx.answerable(split)
        qa = qa[qa["question_type"].isin(SPATIAL)]
        return qa[derive_targets(qa, vocabs, idx.studies).region_valid]

    train, test = spatial("train"), spatial("test")
    model = build_model(m, vocabs, tok, seed=cfg.seed)
    ds = QADataset(train, graphs, vocabs, DatasetSettings(m.encoder.max_question_tokens, m.backbone.image_size,
                                                          m.tokens.scene_graph, "cache", seed=cfg.seed),
                   studies=idx.studies, train=True)
    if m.heads.prior_init:
        model.set_output_priors(**output_priors(ds, train, idx.studies))
    images = ImageStore(idx.image_root, m.backbone.image_size)
    cache = work / f"probe_features_{m.backbone.name}.h5"
    studies = sorted(set(train["study_id"].astype("int64")))
    FeatureCache.build(cache, model.backbone, backbone_fingerprint(model.backbone), [graphs[k] for k in studies],
                       images, progress=False)
    features = FeatureCache(cache)
    settings = ds.settings
    criterion = VQALoss(m.heads)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.train.lr)
    rng = np.random.default_rng(cfg.seed)
    model.train()
    for step in range(steps):
        items = [ds.item(int(i), step) for i in rng.choice(len(ds), size=min(32, len(ds)), replace=False)]
        batch = collate(items, tok, settings, features=features)
        loss, _ = criterion(model(batch), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    features.close()
    model.eval()
    bundle = CheckpointBundle(model, m, tok, vocabs, AnswerBank(), {}, work)
    frame = Predictor(bundle, index_dir).predict(test)
    from model.evaluation import item_hits

    return {"condition": condition, "steps": steps, "overrides": overrides, "n_train": len(train),
            "n_test": len(test), "accuracy": float(np.nanmean(item_hits(frame))),
            "pointing": scene_graph_oracle(frame, index_dir)["pointing"],
            "predicted_classes": int(pd.Series([r[0] for r in frame["regions_pred"]]).nunique())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="runs/learnability")
    parser.add_argument("--patients", type=int, default=120)
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=4500, help="optimizer steps per condition")
    parser.add_argument("--conditions", nargs="+", default=["full", "late_fusion"])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override for every run")
    parser.add_argument("--spatial-probe", type=int, metavar="STEPS",
                        help="only the spatial probe (spatial_probe): STEPS steps per condition on the spatial questions")
    args = parser.parse_args()

    work = Path(args.workdir).resolve()
    data, index = work / "data", work / "index"
    env = dict(os.environ)
    env.setdefault("TORCH_EXTENSIONS_DIR", str(REPO / ".cache" / "torch_extensions"))
    env.setdefault("OMP_NUM_THREADS", "1")
    cx = [sys.executable, "-m", "cxrbench"]
    if not (data / "mimic-ext-cxr-qba").exists():
        run(cx + ["synth", str(data), "--patients", str(args.patients), "--image-size", str(args.image_size),
                  "--seed", str(args.data_seed), "--quiet"], env)
    if not (index / "manifest.json").exists():
        run(cx + ["index", str(data), "--out", str(index)], env)
    if args.spatial_probe:
        import torch

        torch.set_num_threads(1)
        probes = []
        for cond in args.conditions:
            t0 = time.time()
            probes.append({**spatial_probe(index, work, cond, args.spatial_probe, args.overrides),
                           "seconds": round(time.time() - t0)})
            print(json.dumps(probes[-1]), flush=True)
        name = "spatial_probe" + "".join(f"_{o}" for o in args.overrides).replace("/", "-") + ".json"
        (work / name).write_text(json.dumps(probes, indent=2) + "\n")
        return 0
    timings = {}
    for cond in args.conditions:
        out = work / f"run_{cond}"
        meta = out / "checkpoint" / "training_metadata.json"
        if meta.exists() and json.loads(meta.read_text())["step"] == args.steps:
            continue
        t0 = time.time()
        extra = [x for o in args.overrides for x in ("--set", o)]
        run(cx + ["train", "--config", "tiny", "--index", str(index), "--out", str(out), "--condition", cond,
                  "--max-steps", str(args.steps), "--set", "train.eval_every_epoch=false", "--quiet",
                  *(["--resume"] if (out / "deepspeed" / "latest").exists() else []), *extra], env)
        timings[cond] = time.time() - t0

    import torch

    torch.set_num_threads(1)
    from model.checkpoint import load_checkpoint
    from model.data import IndexData
    from model.evaluation import head_accuracy
    from model.inference import Predictor
    from model.targets import derive_targets

    idx = IndexData.load(index)
    test = idx.answerable("test")   # no frontal image: no answer
    results, truth, frames = {}, None, {}
    for cond in args.conditions:
        bundle = load_checkpoint(work / f"run_{cond}" / "checkpoint")
        frame = Predictor(bundle, index).predict(test)
        results[cond] = head_accuracy(frame)
        frames[cond] = frame
        truth = frame if truth is None else truth
    train = idx.qa[idx.qa["split"] == "train"]
    bundle = load_checkpoint(work / f"run_{args.conditions[0]}" / "checkpoint")
    train_targets = derive_targets(train, bundle.vocabularies, idx.studies)
    by_head, by_type = majority_frames(truth, train, train_targets)
    results["majority/head"] = head_accuracy(by_head)
    results["majority/type"] = head_accuracy(by_type)

    cols = ["overall", "binary", "region", "severity", "text"]
    print(f"\nsynthetic test split: {len(test)} QA rows; {args.steps} optimizer steps per condition (tiny config)")
    print(f"{'':16s}" + "".join(f"{c:>10s}" for c in cols) + f"{'F1 text':>10s}")
    for name, r in results.items():
        vals = [r.get(f"accuracy/{c}") for c in cols] + [r.get("f1/text")]
        print(f"{name:16s}" + "".join(f"{v:10.3f}" if v is not None else f"{'-':>10s}" for v in vals))
    print("rows per head:", {c: results[args.conditions[0]].get(f"n/{c}") for c in cols})
    oracle = scene_graph_oracle(frames[args.conditions[0]], index)
    print(f"\nspatial questions with a region label: {oracle['n']}; scene-graph oracle accuracy {oracle['oracle']:.3f}; "
          f"{args.conditions[0]}'s [CLS] attends most to the finding's node in "
          + (f"{oracle['pointing']:.3f} of them (chance {oracle['pointing_chance']:.3f})"
             if oracle["pointing"] is not None else "- (no scene-graph tokens)"))
    spatial = {name: {t: spatial_accuracy(f, t) for t in SPATIAL}
               for name, f in {**frames, "majority/head": by_head, "majority/type": by_type}.items()}
    spatial["finding prior"] = finding_prior(truth.assign(answer_entities=test["answer_entities"].to_numpy()), train,
                                             train_targets)
    for name, acc in spatial.items():
        print(f"  {name:16s} " + "  ".join(f"{t} {v:.3f}" for t, v in acc.items()))
    paired = paired_differences(frames, args.conditions[0])
    for other, rows in paired.items():
        print(f"\n{args.conditions[0]} - {other}, study-level paired bootstrap (10,000 resamples):")
        for name, r in rows.items():
            print(f"  {name:18s} {r['diff']:+.3f} [95% CI {r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]  p = {r['p']:.4f}  n = {r['n']}")
    report = {"steps": args.steps, "patients": args.patients, "image_size": args.image_size,
              "n_test_rows": len(test), "index_hash": idx.index_hash(), "train_seconds": timings, "results": results,
              "paired": paired, "scene_graph_oracle": oracle, "overrides": args.overrides,
              "spatial_accuracy": spatial}
    (work / "learnability.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"wrote {work / 'learnability.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
