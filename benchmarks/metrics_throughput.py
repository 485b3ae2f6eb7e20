"""Seconds per metric family on a test-split-shaped predictions file, with the library baselines.

    python benchmarks/metrics_throughput.py [--rows 333022] [--studies 3254] [--bertscore-pairs 2000]

Part 1 scores the predictions of ``benchmarks/full_scale.py`` (same generator, same shape) family
by family, in one fresh process (cold caches), timing each. Where cxrbench computes a metric
with its own code rather than the library's, the library runs in the same process on a sample of
the same distinct inputs and is scaled to all of them:

- ROUGE-L: ``rouge_score.RougeScorer(["rougeL"]).score`` on a sample of the distinct (prediction,
  reference) pairs against cxrbench's bit-parallel LCS over cached tokens;
- clinical-term concepts: plain ``QuickUMLS.match`` + NegEx on a sample of the distinct texts
  (what cxrbench did before) against matching each distinct sentence once with memoised
  candidates.

Part 2 compares, on ``--bertscore-pairs`` pairs of the same file, plain ``bert_score.score`` with
cxrbench's scorer (fresh scorer, cold cache, model load excluded from both), measured in the
same run, and checks that the two agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def timed(label, fn, results):
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    results.append((label, time.perf_counter() - t))
    print(f"  {label:<52s} {results[-1][1]:8.2f} s wall {time.process_time() - c:8.2f} s CPU", flush=True)
    return out


def part1(frame, sample: int) -> None:
    import pandas as pd

    from cxrbench.metrics import calibration, classification, clinical_terms, relational, semantic_type, spatial, text

    refs, preds = frame["answer"].tolist(), frame["prediction"].tolist()
    pairs = list(dict.fromkeys(zip(preds, refs)))
    texts = list(pd.unique(pd.concat([frame["answer"], frame["prediction"]])))
    print(f"{len(frame):,} rows: {len(texts):,} distinct texts, {len(pairs):,} distinct (prediction, reference) "
          f"pairs; load average {os.getloadavg()[0]:.1f}")
    res: list[tuple[str, float]] = []
    timed("text: exact match + token F1", lambda: (text.exact_match_items(refs, preds), text.token_f1_items(refs, preds)),
          res)
    timed("text: BLEU-4 segment statistics + corpus score", lambda: text.bleu4_stats(refs, preds).value(), res)
    timed("text: ROUGE-L (bit-parallel LCS)", lambda: text.rouge_l_items(refs, preds), res)
    ex = timed("clinical terms: QuickUMLS index + matcher load", lambda: clinical_terms.get_extractor(), res)
    timed("clinical terms: F1 (per distinct sentence, memoised)",
          lambda: clinical_terms.clinical_term_f1_items(refs, preds, ex), res)
    timed("semantic type accuracy (cached concepts)", lambda: semantic_type.semantic_type_items(refs, preds, ex), res)
    loc = frame[frame["boxes_true"].notna()]
    bt, bp, bs = loc["boxes_true"].tolist(), loc["boxes_pred"].tolist(), loc["box_scores"].tolist()
    timed(f"spatial: IoU + pointing ({len(loc):,} items)", lambda: spatial.pointing_items(bt, bp), res)
    timed("spatial: 4 COCO mAPs (matching at 10 IoUs + AP)", lambda: spatial.map_family_stats(bt, bp, bs)["map_coco"]
          .value(), res)
    binary = frame[frame["head"] == "binary"]
    yt, yp, sc = binary["label_true"].to_numpy(int), binary["label_pred"].to_numpy(int), binary["score"].to_numpy()
    timed(f"classification: 8 confusion metrics ({len(binary):,})",
          lambda: [classification.confusion_stats(m, yt, yp, [0, 1], metric=m if m in ("accuracy", "mcc", "kappa")
                                                  else m, average="binary").value()
                   for m in ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "mcc", "kappa")], res)
    timed("classification: AUROC (100 quantile bins)", lambda: classification.auroc(yt, sc), res)
    timed("calibration: ECE (15 bins)", lambda: calibration.ece(yt == yp, binary["confidence"].to_numpy()), res)
    timed("relational: spaCy parse of questions", lambda: relational.question_flags(frame["question"].tolist()), res)
    print(f"  {'sum of the families':<52s} {sum(t for _, t in res):8.2f} s")

    print(f"library baselines on a sample of {sample:,}, scaled to all distinct inputs:")
    from rouge_score import rouge_scorer

    rng = np.random.default_rng(0)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    pick = [pairs[i] for i in rng.choice(len(pairs), min(sample, len(pairs)), replace=False)]
    t = time.perf_counter()
    ref_f = [scorer.score(r, p)["rougeL"].fmeasure for p, r in pick]
    plain = (time.perf_counter() - t) * len(pairs) / len(pick)
    text._rouge_tokens.cache_clear()
    t = time.perf_counter()
    ours_f = text.rouge_l_items([r for _, r in pick], [p for p, _ in pick])
    ours = (time.perf_counter() - t) * len(pairs) / len(pick)
    assert np.array_equal(ours_f, ref_f)
    print(f"  ROUGE-L: rouge_score {plain:7.1f} s, cxrbench {ours:6.2f} s: {plain / ours:5.1f}x (equal on the sample)")
    _quickumls_baseline(ex, texts, sample, rng)


def _quickumls_baseline(ex, texts, sample: int, rng) -> None:
    from cxrbench.metrics import clinical_terms

    pick = [texts[i] for i in rng.choice(len(texts), min(sample, len(texts)), replace=False)]
    from quickumls import QuickUMLS

    import spacy

    plain = QuickUMLS(str(ex.index_dir), threshold=clinical_terms.THRESHOLD, window=clinical_terms.WINDOW,
                      similarity_name=clinical_terms.SIMILARITY, accepted_semtypes=set(clinical_terms.ACCEPTED_SEMTYPES),
                      spacy_component=True)
    plain.nlp = spacy.blank("en")
    t = time.perf_counter()
    for x in pick:  # what ConceptExtractor did before: QuickUMLS on the whole text, NegEx per concept
        for g in plain.match(x, best_match=True, ignore_syntax=False):
            clinical_terms.is_negated(x, g[0]["start"], g[0]["end"])
    before = (time.perf_counter() - t) * len(texts) / len(pick)
    fresh = clinical_terms.ConceptExtractor()
    t = time.perf_counter()
    for x in texts:
        fresh.concepts(x)
    now = time.perf_counter() - t
    print(f"  concepts of all {len(texts):,} distinct texts: whole-text QuickUMLS {before:7.1f} s (scaled), "
          f"cxrbench {now:6.1f} s ({len(fresh._sentences):,} distinct sentences): {before / now:5.1f}x")


def part2(frame, n_pairs: int) -> None:
    import bert_score
    from bert_score.utils import get_model, get_tokenizer

    from cxrbench.metrics import bertscore

    sample = frame.sample(n=min(n_pairs, len(frame)), random_state=1)
    cands, refs = sample["prediction"].tolist(), sample["answer"].tolist()
    print(f"BERTScore on {len(cands):,} pairs of the file ({len(set(cands) | set(refs)):,} distinct sentences, "
          f"{len(set(zip(cands, refs))):,} distinct pairs); load average {os.getloadavg()[0]:.1f}:")
    path = bertscore.default_model_path()
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
    print(f"  plain bert_score.score (incl. its model load) {plain:8.2f} s  ({len(cands) / plain:8.0f} pairs/s)")
    print(f"  cxrbench scorer, cold cache                   {cached:8.2f} s  ({len(cands) / cached:8.0f} pairs/s)")
    print(f"  cxrbench scorer, warm cache                   {warm:8.2f} s")
    print(f"  of which bert-score's model load (measured alone) {load:6.2f} s")
    print(f"  speed-up, cold: {plain / cached:.1f}x ({(plain - load) / cached:.1f}x without the model load); "
          f"warm: {plain / warm:.0f}x")
    print(f"  max |F1 - bert_score(batch_size=1)| on 200 pairs: {np.abs(F[:200] - F1.numpy()).max():.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=333_022, help="0: skip part 1")
    ap.add_argument("--studies", type=int, default=3_254)
    ap.add_argument("--sample", type=int, default=2000, help="inputs the library baselines run on (then scaled)")
    ap.add_argument("--bertscore-pairs", type=int, default=2000, help="0: skip part 2")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from full_scale import build_predictions

    torch.set_num_threads(args.threads)
    print(f"generating {max(args.rows, args.bertscore_pairs):,} rows ...", flush=True)
    frame = build_predictions(max(args.rows, args.bertscore_pairs), max(args.studies, 1))
    if args.bertscore_pairs:
        part2(frame, args.bertscore_pairs)
    if args.rows:
        part1(frame, args.sample)


if __name__ == "__main__":
    main()
