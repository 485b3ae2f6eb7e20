"""Bootstrap CI speed at test-split scale: cxrbench.stats against scipy.stats.bootstrap.

Data: synthetic, shaped like the MIMIC-Ext-CXR-QBA test split (333K QA pairs in 3,254 studies,
27 question types, correctness correlated within a study). Resampling unit: the study.

For exact match, token F1, MCC, AUROC and ECE it times a 10,000-resample percentile CI:
- cxrbench: ``bootstrap_ci`` (unit counts × per-study sufficient statistics);
- scipy, naive: ``scipy.stats.bootstrap`` over study indices, each resample expanded to its
  QA pairs and the metric recomputed from the raw items (numpy; scikit-learn for MCC and AUROC,
  the reference implementations). Run with ``--scipy-resamples`` resamples and scaled linearly
  to 10,000 (the cost is linear in the resamples), which the output says;
- scipy, sums: ``scipy.stats.bootstrap`` given the same per-study sufficient statistics with a
  vectorised statistic and ``batch`` (what our engine does, driven by scipy), scaled the same way.
Then all five from one shared set of resamples (``bootstrap_many``); the four COCO mAPs of
the localisation questions (one box per reference, 1-3 scored predictions) through the weighted
path (``WeightedStatistic``: a block of resamples at once) against the generic path (the same
metric re-sorted one resample at a time, what mAP cost before; run with ``--scipy-resamples`` and
scaled); and the whole per-question-type table, 28 strata (overall + 27 types) × 11 metrics
(``bootstrap_table``), with the shared draw (``score``'s default: one draw of all studies for
every stratum) against the per-stratum draw (each stratum resampled on its own), same run.

    python benchmarks/bootstrap_speed.py                 # full size, a few minutes
    python benchmarks/bootstrap_speed.py --items 30000 --clusters 300 --resamples 2000   # quick
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import stats as ss
from sklearn.metrics import matthews_corrcoef, roc_auc_score

from cxrbench import questions
from cxrbench.metrics.base import GenericStatistic, mean_stats
from cxrbench.metrics.calibration import ece_stats
from cxrbench.metrics.classification import accuracy_stats, auroc_stats, kappa_stats, mcc_stats
from cxrbench.stats.bootstrap import bootstrap_ci, bootstrap_many, bootstrap_table
from cxrbench.stats.resampling import Units


def make_data(n_items: int, n_clusters: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.multinomial(n_items - n_clusters, rng.dirichlet(np.full(n_clusters, 5.0))) + 1
    study = np.repeat(rng.choice(np.arange(50_000_000, 60_000_000), n_clusters, replace=False), sizes)
    skill = np.repeat(rng.normal(0, 1, n_clusters), sizes)  # study-level difficulty: correlated pairs
    codes = [q.code for q in questions.QUESTION_TYPES]
    qtype = np.array(codes)[rng.integers(0, len(codes), n_items)]
    y = rng.random(n_items) < 0.4
    score = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + skill + rng.normal(0, 1.2, n_items))))
    pred = score > 0.5
    correct = (pred == y)
    confidence = np.maximum(score, 1 - score)
    f1 = np.clip(correct * 0.8 + rng.random(n_items) * 0.4 - 0.1, 0, 1)
    rouge = np.clip(f1 + rng.normal(0, 0.05, n_items), 0, 1)
    bert = np.clip(0.6 + 0.3 * f1 + rng.normal(0, 0.03, n_items), 0, 1)
    iou = np.clip(rng.beta(2, 2, n_items) + 0.2 * correct, 0, 1)
    return dict(study=study, qtype=qtype, y=y.astype(int), pred=pred.astype(int), score=score,
                correct=correct.astype(float), confidence=confidence, f1=f1, rouge=rouge, bert=bert, iou=iou)


def statistics(d) -> dict:
    return {
        "exact_match": mean_stats("exact_match", d["correct"]),
        "token_f1": mean_stats("token_f1", d["f1"]),
        "mcc": mcc_stats(d["y"], d["pred"]),
        "auroc": auroc_stats(d["y"], d["score"]),
        "ece": ece_stats(d["correct"], d["confidence"]),
    }


def more_statistics(d) -> dict:
    return {**statistics(d),
            "rouge_l": mean_stats("rouge_l", d["rouge"]),
            "bertscore_f1": mean_stats("bertscore_f1", d["bert"]),
            "iou": mean_stats("iou", d["iou"]),
            "pointing_accuracy": mean_stats("pointing_accuracy", (d["iou"] > 0.5).astype(float)),
            "accuracy": accuracy_stats(d["y"], d["pred"]),
            "kappa": kappa_stats(d["y"], d["pred"])}


def naive_metric(name: str, d):
    """The metric recomputed from raw items (what a scipy user writes)."""
    if name == "exact_match":
        return lambda i: d["correct"][i].mean()
    if name == "token_f1":
        return lambda i: d["f1"][i].mean()
    if name == "mcc":
        return lambda i: matthews_corrcoef(d["y"][i], d["pred"][i])
    if name == "auroc":
        return lambda i: roc_auc_score(d["y"][i], d["score"][i])
    if name == "ece":
        def ece(i, n_bins=15):
            conf, acc = d["confidence"][i], d["correct"][i]
            b = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
            cnt = np.bincount(b, minlength=n_bins)
            gap = np.abs(np.bincount(b, acc, n_bins) - np.bincount(b, conf, n_bins))
            return gap.sum() / cnt.sum()
        return ece
    raise KeyError(name)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=333_000)
    ap.add_argument("--clusters", type=int, default=3_254)
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--scipy-resamples", type=int, default=100,
                    help="resamples actually run for the scipy baselines (scaled linearly to --resamples)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-table", action="store_true")
    args = ap.parse_args()
    B, Bs = args.resamples, args.scipy_resamples
    scale = B / Bs

    d = make_data(args.items, args.clusters, args.seed)
    stats = statistics(d)
    units = Units.from_labels(args.items, d["study"])
    members = [units.order[units.starts[c]:units.starts[c + 1]] for c in range(units.n_units)]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"{args.items} QA pairs in {units.n_units} studies; {B} resamples, study-level percentile 95% CI; "
          f"scipy baselines run with {Bs} resamples and scaled ×{scale:g}")
    print(f"{'metric':<12} {'k':>4} {'cxrbench s':>11} {'scipy naive s':>14} {'ratio':>8} "
          f"{'scipy sums s':>13} {'ratio':>7}   cxrbench CI / scipy naive CI ({Bs} resamples)")
    total_ours = 0.0
    for name, stat in stats.items():
        ours, t_ours = timed(lambda stat=stat: bootstrap_ci(stat, d["study"], n_resamples=B, seed=args.seed))
        total_ours += t_ours
        f = naive_metric(name, d)
        naive, t_naive = timed(lambda f=f: ss.bootstrap(
            (np.arange(units.n_units),), lambda c: f(np.concatenate([members[j] for j in c])), vectorized=False,
            n_resamples=Bs, method="percentile", rng=np.random.default_rng(args.seed)))
        sums = units.unit_sums(stat.stats)
        batch = max(1, (1 << 24) // (units.n_units * sums.shape[1]))
        _, t_sums = timed(lambda stat=stat, sums=sums, batch=batch: ss.bootstrap(
            (np.arange(units.n_units),), lambda c, axis=-1: stat.reduce(sums[c].sum(axis=-2)),
            n_resamples=Bs, batch=batch, method="percentile", rng=np.random.default_rng(args.seed)))
        ci = naive.confidence_interval
        print(f"{name:<12} {stat.stats.shape[1]:>4} {t_ours:>11.2f} {t_naive * scale:>14.1f} "
              f"{t_naive * scale / t_ours:>7.0f}x {t_sums * scale:>13.1f} {t_sums * scale / t_ours:>6.1f}x"
              f"   [{ours.ci_low:.4f}, {ours.ci_high:.4f}] / [{ci.low:.4f}, {ci.high:.4f}]")
    _, t_many = timed(lambda: bootstrap_many(stats, d["study"], n_resamples=B, seed=args.seed))
    print(f"all five, one shared set of resamples (bootstrap_many): {t_many:.2f} s "
          f"(separately: {total_ours:.2f} s)")

    map_speed(d, B, Bs, args.seed)
    if args.skip_table:
        return
    more = more_statistics(d)
    strata = {"overall": np.ones(args.items, bool), **{q: d["qtype"] == q for q in np.unique(d["qtype"])}}
    cols = sum(s.stats.shape[1] for s in more.values())
    times = {}
    for draw in ("shared", "per_stratum"):
        load, cpu = os.getloadavg()[0], time.process_time()
        _, wall = timed(lambda draw=draw: bootstrap_table(more, strata, d["study"], n_resamples=B, seed=args.seed,
                                                          progress=False, draw=draw))
        times[draw] = wall
        print(f"per-question-type CI table, draw={draw}: {len(strata)} strata × {len(more)} metrics "
              f"({cols} sufficient-statistic columns per stratum), {B} resamples: {wall:.1f} s wall, "
              f"{time.process_time() - cpu:.1f} s CPU (all threads); load average {load:.1f} when it started")
    print(f"shared draw against per-stratum draw: {times['per_stratum'] / times['shared']:.1f}x faster")


def map_speed(d, B: int, Bs: int, seed: int) -> None:
    """The four COCO mAPs on the localisation items, weighted path against generic path."""
    from cxrbench.metrics.spatial import map_family_stats

    rng = np.random.default_rng(seed)
    loc = np.flatnonzero(d["qtype"] == "D03_where_is_finding")
    n = len(d["qtype"])
    boxes_true, boxes_pred, scores = [[] for _ in range(n)], [[] for _ in range(n)], [None] * n
    for i in loc:
        x, y = rng.uniform(0, 1500, 2)
        w, h = rng.uniform(100, 500, 2)
        boxes_true[i] = [[x, y, x + w, y + h]]
        k = int(rng.integers(1, 4))
        jit = rng.normal(0, 0.1 if d["correct"][i] else 0.5, (k, 4)) * [w, h, w, h]
        boxes_pred[i] = [[min(x + a, x + w + c), min(y + b, y + h + e), max(x + a, x + w + c), max(y + b, y + h + e)]
                         for a, b, c, e in jit]
        scores[i] = rng.uniform(0.2, 1.0, k).round(3).tolist()
    t = time.perf_counter()
    fam = map_family_stats(boxes_true, boxes_pred, scores)
    t_match = time.perf_counter() - t
    fast, t_fast = timed(lambda: bootstrap_many(fam, d["study"], n_resamples=B, seed=seed))
    generic = {k: GenericStatistic(k, n, s.compute) for k, s in fam.items()}
    _, t_generic = timed(lambda: bootstrap_many(generic, d["study"], n_resamples=Bs, seed=seed))
    print(f"COCO mAP (map_50, map_75, map_50_75, map_coco) on {len(loc):,} localisation items "
          f"({sum(map(len, boxes_pred)):,} predicted boxes; matching once: {t_match:.1f} s): weighted path "
          f"{t_fast:.2f} s for {B} resamples; generic path {t_generic * B / Bs:.0f} s (run with {Bs}, scaled): "
          f"{t_generic * B / Bs / t_fast:.0f}x; map_coco {fast['map_coco'].format()}")


if __name__ == "__main__":
    main()
