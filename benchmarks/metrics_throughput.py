"""Seconds per metric family on synthetic predictions, and the BERTScore cache speed-up.

    python benchmarks/metrics_throughput.py [--rows 300000] [--bertscore-pairs 2000] [--threads 2]

Part 1 scores ``--rows`` synthetic MIMIC-shaped predictions (templated answers, every head;
tests/score/synthetic.py) family by family, timing each (cold caches: a fresh process).
Part 2 compares, on ``--bertscore-pairs`` templated (candidate, reference) pairs, plain
``bert_score.score`` with cxrbench's cached scorer (fresh scorer, cold cache, model load
excluded from both), measured in the same run; it also checks the two agree.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(label, fn, results):
    t = time.perf_counter()
    out = fn()
    results.append((label, time.perf_counter() - t))
    print(f"  {label:<44s} {results[-1][1]:8.2f} s", flush=True)
    return out


def part1(rows: int, describe_sentences: int) -> None:
    from cxrbench import score
    from cxrbench.metrics import bertscore, calibration, classification, clinical_terms, relational, semantic_type, \
        spatial, text
    from tests.score.synthetic import make_predictions

    print(f"generating {rows:,} synthetic rows ...", flush=True)
    f = make_predictions(rows, seed=0, describe_sentences=describe_sentences)
    refs, preds = f["answer"].tolist(), f["prediction"].tolist()
    print(f"{f['answer'].nunique():,} distinct references, {f['prediction'].nunique():,} distinct predictions")
    res: list[tuple[str, float]] = []
    print(f"metric family timings on {rows:,} rows:")
    timed("text: exact match + token F1", lambda: (text.exact_match_items(refs, preds), text.token_f1_items(refs, preds)), res)
    timed("text: BLEU-4 segment statistics + corpus score", lambda: text.bleu4_stats(refs, preds).value(), res)
    timed("text: ROUGE-L", lambda: text.rouge_l_items(refs, preds), res)
    ex = timed("clinical terms: QuickUMLS index + matcher load", lambda: clinical_terms.get_extractor(), res)
    timed("clinical terms: F1 (QuickUMLS + NegEx)", lambda: clinical_terms.clinical_term_f1_items(refs, preds, ex), res)
    timed("semantic type accuracy (cached concepts)", lambda: semantic_type.semantic_type_items(refs, preds, ex), res)
    scorer = timed("bertscore: model load", lambda: bertscore.get_scorer(), res)
    timed("bertscore: F1, cold cache", lambda: scorer.score(preds, refs), res)
    timed("bertscore: F1, warm cache", lambda: scorer.score(preds, refs), res)
    loc = f[f["question_type"] == "D03_where_is_finding"]
    bt, bp, bs = loc["boxes_true"].tolist(), loc["boxes_pred"].tolist(), loc["box_scores"].tolist()
    timed(f"spatial: IoU + pointing ({len(loc):,} items)", lambda: spatial.pointing_items(bt, bp), res)
    timed("spatial: mAP@[.5,.75] (match + AP)", lambda: spatial.map_stats(bt, bp, bs, (0.5, 0.75)).value(), res)
    binary = f[f["head"] == "binary"]
    yt, yp, sc = binary["label_true"].to_numpy(), binary["label_pred"].to_numpy(), binary["score"].to_numpy()
    timed(f"classification: 8 confusion metrics ({len(binary):,})",
          lambda: [classification.confusion_stats(m, yt, yp, [0, 1], metric=m if m in ("accuracy", "mcc", "kappa")
                                                  else m, average="binary").value()
                   for m in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "mcc", "kappa")], res)
    timed("classification: AUROC (100 quantile bins)", lambda: classification.auroc(yt, sc), res)
    timed("calibration: ECE (15 bins)", lambda: calibration.ece(yt == yp, binary["confidence"].to_numpy()), res)
    timed("relational: spaCy parse of questions", lambda: relational.question_flags(f["question"].tolist()), res)
    print(f"  {'sum of the families':<44s} {sum(t for _, t in res):8.2f} s")

    print(f"end to end: score_frame on {rows:,} rows, 1,000 study-level bootstrap resamples (caches warm):")
    t = time.perf_counter()
    score.score_frame(f, score.ScoreOptions(n_resamples=1000, progress=False))
    print(f"  {'cxrbench score (all metrics, all strata)':<44s} {time.perf_counter() - t:8.2f} s", flush=True)


def part2(n_pairs: int, describe_sentences: int) -> None:
    import bert_score

    from cxrbench.metrics import bertscore
    from tests.score.synthetic import make_predictions

    f = make_predictions(n_pairs, seed=1, describe_sentences=describe_sentences)
    cands, refs = f["prediction"].tolist(), f["answer"].tolist()
    print(f"BERTScore on {n_pairs:,} templated pairs ({len(set(cands) | set(refs)):,} distinct sentences, "
          f"{len(set(zip(cands, refs))):,} distinct pairs):")
    path = bertscore.default_model_path()
    from bert_score.utils import get_model, get_tokenizer

    get_model(path, 6), get_tokenizer(path)  # warm the file cache for both
    t = time.perf_counter()
    get_model(path, 6), get_tokenizer(path)  # what bert_score.score spends loading, measured alone
    load = time.perf_counter() - t
    t = time.perf_counter()
    bert_score.score(cands, refs, model_type=path, num_layers=6, device="cpu")
    plain = time.perf_counter() - t
    scorer = bertscore.BertScorer(path, 6)  # model load outside the timing (plain includes its own)
    t = time.perf_counter()
    F = scorer.score(cands, refs)[2]
    cached = time.perf_counter() - t
    t = time.perf_counter()
    scorer.score(cands, refs)
    warm = time.perf_counter() - t
    F1 = bert_score.score(cands[:200], refs[:200], model_type=path, num_layers=6, device="cpu", batch_size=1)[2]
    print(f"  plain bert_score.score (incl. its model load) {plain:8.2f} s  ({n_pairs / plain:8.0f} pairs/s)")
    print(f"  cxrbench cached scorer, cold cache            {cached:8.2f} s  ({n_pairs / cached:8.0f} pairs/s)")
    print(f"  cxrbench cached scorer, warm cache            {warm:8.2f} s")
    print(f"  of which bert-score's model load (measured alone) {load:6.2f} s")
    print(f"  speed-up, cold: {plain / cached:.1f}x ({(plain - load) / cached:.1f}x without the model load); "
          f"warm: {plain / warm:.0f}x")
    print(f"  max |F1 - bert_score(batch_size=1)| on 200 pairs: {np.abs(F[:200] - F1.numpy()).max():.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=300_000, help="0: skip part 1")
    ap.add_argument("--bertscore-pairs", type=int, default=2000, help="0: skip part 2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--describe-sentences", type=int, default=2,
                    help="sentences per free-text answer (2: ~2%% of answers distinct, like report-derived text)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.bertscore_pairs:
        part2(args.bertscore_pairs, args.describe_sentences)
    if args.rows:
        part1(args.rows, args.describe_sentences)


if __name__ == "__main__":
    main()
