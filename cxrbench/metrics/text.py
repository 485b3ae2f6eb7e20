"""Answer-text metrics: exact match, token F1, corpus BLEU-4, ROUGE-L, and yes/no labels.

Every metric compares a predicted answer string with one or several reference strings per
item. ``y_true`` is a sequence of strings, or a sequence of sequences of strings where a
question has several acceptable answers (the score of an item is then the best over its
references, as in the SQuAD evaluation script).

Reference implementations each function agrees with (tests/metrics/test_text.py):

- ``exact_match``, ``token_f1``: the SQuAD v1.1 evaluation script as ported by torchmetrics
  (``torchmetrics.functional.squad``), divided by 100.
- ``bleu4``: ``sacrebleu.corpus_bleu(predictions, [references]).score / 100`` with sacrebleu's
  defaults (13a tokenizer, mixed case, exponential smoothing, no effective order).
- ``rouge_l``: mean of ``rouge_score.rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)``
  F-measures.

Templated answers repeat a lot, so the per-pair work is done once per distinct
(prediction, references) pair, and exact match / token F1 are computed from each distinct text's
normalisation once.

Length cap: :data:`MAX_TEXT_CHARS` characters. The longest answers of MIMIC-Ext-CXR-QBA (a whole
study described, B01) are a few hundred words, and a BERTScore model reads 512 word pieces at
most, so 4,096 characters cut no real answer; a runaway prediction (a model repeating itself for
a megabyte) would otherwise stall the metrics whose cost grows with the length (concept
extraction, ROUGE-L's LCS, tokenisation). :func:`truncate_texts` applies the cap and says which
texts it cut; ``cxrbench score`` calls it before every text metric and counts a warning.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from typing import Callable, Hashable, Iterable, Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats, mean_stats

References = Sequence[str] | Sequence[Sequence[str]]

_DROP_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1 answer normalisation: lower-case, drop ASCII punctuation, drop the articles
    *a*, *an*, *the*, and fold white space to single spaces (in that order, as the official
    ``evaluate-v1.1.py``)."""
    return " ".join(_ARTICLES.sub(" ", str(text).lower().translate(_DROP_PUNCTUATION)).split())


@lru_cache(maxsize=200_000)
def normalized(text: str) -> str:
    """:func:`normalize_answer`, remembered per distinct text (answers repeat)."""
    return normalize_answer(text)


def as_reference_lists(y_true: References) -> list[tuple[str, ...]]:
    """Each item's references as a tuple of strings (one string -> a 1-tuple)."""
    out = []
    for refs in y_true:
        if isinstance(refs, str):
            out.append((refs,))
        else:
            refs = tuple(str(r) for r in refs)
            if not refs:
                raise ValueError("an item has an empty list of references")
            out.append(refs)
    return out


MAX_TEXT_CHARS = 4096


def truncate_texts(texts: Iterable[str], max_chars: int = MAX_TEXT_CHARS) -> tuple[list[str], np.ndarray]:
    """The texts cut to their first ``max_chars`` characters, and a bool mask of those cut."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    out = [str(t) for t in texts]
    cut = np.fromiter((len(t) > max_chars for t in out), dtype=bool, count=len(out))
    for i in np.flatnonzero(cut):
        out[i] = out[i][:max_chars]
    return out, cut


def _check_lengths(y_true: Sequence, y_pred: Sequence) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}")


def per_pair(fn: Callable[[str, tuple[str, ...]], float], y_true: References,
             y_pred: Sequence[str]) -> np.ndarray:
    """``fn(prediction, references)`` for every item, computed once per distinct pair."""
    _check_lengths(y_true, y_pred)
    refs = as_reference_lists(y_true)
    cache: dict[Hashable, float] = {}
    out = np.empty(len(refs), dtype=np.float64)
    for i, (pred, ref) in enumerate(zip(y_pred, refs)):
        key = (pred, ref)
        value = cache.get(key)
        if value is None:
            value = cache[key] = float(fn(str(pred), ref))
        out[i] = value
    return out


# ---------------------------------------------------------------------------- exact match
def _exact_match_pair(pred: str, refs: tuple[str, ...]) -> float:
    p = normalized(pred)
    return float(any(p == normalized(r) for r in refs))


def exact_match_items(y_true: References, y_pred: Sequence[str]) -> np.ndarray:
    """Per-item exact match (1.0 / 0.0) after :func:`normalize_answer`."""
    return per_pair(_exact_match_pair, y_true, y_pred)


def exact_match_stats(y_true: References, y_pred: Sequence[str]) -> SufficientStats:
    return mean_stats("exact_match", exact_match_items(y_true, y_pred), signature="squad-v1.1-normalisation")


def exact_match(y_true: References, y_pred: Sequence[str]) -> float:
    """Fraction of items whose normalised prediction equals a normalised reference.

    ``EM = (1/n) Σ_i max_r [norm(pred_i) == norm(ref_ir)]`` with ``norm`` = :func:`normalize_answer`.
    Agrees with ``torchmetrics.functional.squad(...)["exact_match"] / 100`` (the SQuAD v1.1
    evaluation script).
    """
    return exact_match_stats(y_true, y_pred).value()


# ---------------------------------------------------------------------------- token F1
@lru_cache(maxsize=200_000)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(normalized(text).split()) if text else ()


def _token_f1_one(pred_tokens: tuple[str, ...], ref_tokens: tuple[str, ...]) -> float:
    if not pred_tokens or not ref_tokens:
        # either side has no token: 1 if both are empty, else 0 (SQuAD script, torchmetrics)
        return float(pred_tokens == ref_tokens)
    same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def _token_f1_pair(pred: str, refs: tuple[str, ...]) -> float:
    p = _tokens(pred)
    return max(_token_f1_one(p, _tokens(r)) for r in refs)


def token_f1_items(y_true: References, y_pred: Sequence[str]) -> np.ndarray:
    """Per-item token F1 (best over references)."""
    return per_pair(_token_f1_pair, y_true, y_pred)


def token_f1_stats(y_true: References, y_pred: Sequence[str]) -> SufficientStats:
    return mean_stats("token_f1", token_f1_items(y_true, y_pred), signature="squad-v1.1-normalisation")


def token_f1(y_true: References, y_pred: Sequence[str]) -> float:
    """Mean token-level F1 over items, SQuAD v1.1 style.

    Tokens are ``normalize_answer(s).split()``; with ``c`` the size of the multiset
    intersection, ``P = c/|pred|``, ``R = c/|ref|``, ``F1 = 2PR/(P+R)`` (0 when ``c = 0``;
    1 when both token lists are empty, 0 when only one is). An item's score is the maximum
    over its references. Agrees with ``torchmetrics.functional.squad(...)["f1"] / 100``.
    """
    return token_f1_stats(y_true, y_pred).value()


# ---------------------------------------------------------------------------- BLEU-4
_BLEU_ORDER = 4


def _bleu():
    from sacrebleu.metrics import BLEU

    return BLEU()  # sacrebleu defaults: tokenize="13a", lowercase=False, smooth_method="exp"


def bleu_signature(n_refs: int = 1) -> str:
    """sacrebleu's signature string for the settings :func:`bleu4` uses."""
    import sacrebleu

    return (f"nrefs:{n_refs}|case:mixed|eff:no|tok:13a|smooth:exp|version:{sacrebleu.__version__}")


def bleu_from_stats(t: np.ndarray) -> np.ndarray:
    """Corpus BLEU (in [0, 1]) from summed sacrebleu segment statistics, vectorised over rows.

    Columns of ``t``: ``sys_len, ref_len, correct_1..4, total_1..4``. This is
    ``sacrebleu.BLEU.compute_bleu(..., smooth_method="exp")`` (mteval-v13a "method 3"
    smoothing): an order with no match gets precision ``1 / (2^k · total_n)`` where ``k``
    counts the orders without a match so far; an order with ``total_n = 0`` or a corpus with
    no match at all scores 0; brevity penalty ``exp(1 - ref_len/sys_len)`` when shorter.
    """
    t = np.asarray(t, dtype=np.float64)
    sys_len, ref_len = t[..., 0], t[..., 1]
    correct = t[..., 2:2 + _BLEU_ORDER]
    total = t[..., 2 + _BLEU_ORDER:2 + 2 * _BLEU_ORDER]
    zero = correct == 0
    smooth = np.power(2.0, np.cumsum(zero, axis=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(zero, 1.0 / (smooth * total), correct / total)
        log_mean = np.log(prec).mean(axis=-1)
        bp = np.where(sys_len < ref_len, np.exp(1.0 - ref_len / np.where(sys_len > 0, sys_len, 1.0)), 1.0)
        bp = np.where(sys_len > 0, bp, 0.0)
        score = bp * np.exp(log_mean)
    undefined = (total == 0).any(axis=-1) | (correct.sum(axis=-1) == 0)
    return np.where(undefined, 0.0, score)


def bleu4_segment_stats(y_true: References, y_pred: Sequence[str]) -> np.ndarray:
    """sacrebleu's per-segment sufficient statistics, shape ``(n, 10)``
    (``sys_len, ref_len, correct_1..4, total_1..4``), computed once per distinct pair.

    ``sacrebleu.BLEU._compute_segment_statistics`` with its parts computed once: a reference
    set's n-grams and lengths (sacrebleu's ``_extract_reference_info``) once per distinct
    reference set, a prediction's n-grams, length and totals once per distinct prediction (they
    do not depend on the reference), so a pair costs only the clipped matches."""
    from sacrebleu.metrics.helpers import extract_all_word_ngrams

    _check_lengths(y_true, y_pred)
    refs = as_reference_lists(y_true)
    bleu = _bleu()
    cache: dict[Hashable, int] = {}          # distinct pair -> its row of `rows`
    rows: list[list[int]] = []
    ref_cache: dict[tuple[str, ...], dict] = {}
    hyp_cache: dict[str, tuple] = {}
    which = np.empty(len(refs), dtype=np.int64)
    for i, (pred, ref) in enumerate(zip(y_pred, refs)):
        key = (pred, ref)
        row = cache.get(key)
        if row is None:
            info = ref_cache.get(ref)
            if info is None:
                info = ref_cache[ref] = bleu._extract_reference_info([bleu._preprocess_segment(r) for r in ref])
            hyp = hyp_cache.get(pred)
            if hyp is None:
                ngrams, hyp_len = extract_all_word_ngrams(bleu._preprocess_segment(str(pred)), 1, _BLEU_ORDER)
                total = [0] * _BLEU_ORDER
                for ngram, count in ngrams.items():
                    total[len(ngram) - 1] += count
                hyp = hyp_cache[pred] = (tuple(ngrams.items()), hyp_len, total)
            ngrams, hyp_len, total = hyp
            ref_ngrams = info["ref_ngrams"]
            correct = [0] * _BLEU_ORDER
            for ngram, count in ngrams:
                if ngram in ref_ngrams:
                    correct[len(ngram) - 1] += min(count, ref_ngrams[ngram])
            row = cache[key] = len(rows)
            rows.append([hyp_len, bleu._get_closest_ref_len(hyp_len, info["ref_lens"])] + correct + total)
        which[i] = row
    table = np.asarray(rows, dtype=np.float64).reshape(len(rows), 2 + 2 * _BLEU_ORDER)
    return table[which]


def bleu4_stats(y_true: References, y_pred: Sequence[str]) -> SufficientStats:
    refs = as_reference_lists(y_true)
    n_refs = max((len(r) for r in refs), default=1)
    return SufficientStats("bleu4", bleu4_segment_stats(refs, y_pred), bleu_from_stats,
                           signature=bleu_signature(n_refs))


def bleu4(y_true: References, y_pred: Sequence[str]) -> float:
    """Corpus BLEU-4 in [0, 1]: ``sacrebleu.corpus_bleu(y_pred, [y_true]).score / 100``.

    ``BLEU = BP · exp(¼ Σ_n log p_n)`` over the corpus-summed clipped n-gram counts
    (n = 1..4), sacrebleu defaults (13a tokenisation, case-sensitive, ``exp`` smoothing);
    signature ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:…``. A corpus metric:
    the per-item rows are sacrebleu's segment statistics, summed before the score.
    """
    return bleu4_stats(y_true, y_pred).value()


# ---------------------------------------------------------------------------- ROUGE-L
_NON_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=200_000)
def _rouge_tokens(text: str) -> tuple[str, ...]:
    """rouge-score's tokens without stemming (``rouge_score.tokenize.tokenize``): lower-case,
    every run of characters other than ``a-z0-9`` a separator."""
    return tuple(_NON_ALPHANUMERIC.sub(" ", text.lower()).split())


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences, bit-parallel: one
    big-integer step per token of ``b`` over a bit vector of ``a``'s positions (Allison & Dix
    1986; Hyyrö 2004), the same number rouge-score's dynamic-programming table ends with."""
    if not a or not b:
        return 0
    positions: dict[str, int] = {}
    for i, tok in enumerate(a):
        positions[tok] = positions.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & positions.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def _rouge_l_one(ref: str, pred: str) -> float:
    t, p = _rouge_tokens(ref), _rouge_tokens(pred)
    if not t or not p:
        return 0.0
    lcs = lcs_length(t, p)
    precision, recall = lcs / len(p), lcs / len(t)   # rouge_score._score_lcs and scoring.fmeasure
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _rouge_l_pair(pred: str, refs: tuple[str, ...]) -> float:
    return max(_rouge_l_one(r, pred) for r in refs)


def rouge_l_items(y_true: References, y_pred: Sequence[str]) -> np.ndarray:
    return per_pair(_rouge_l_pair, y_true, y_pred)


def rouge_l_stats(y_true: References, y_pred: Sequence[str]) -> SufficientStats:
    import importlib.metadata as md

    return mean_stats("rouge_l", rouge_l_items(y_true, y_pred),
                      signature=f"rougeL|fmeasure|stemmer:no|rouge-score:{md.version('rouge-score')}")


def rouge_l(y_true: References, y_pred: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure: ``F = 2·P·R/(P+R)`` with ``P = LCS/|pred|``, ``R = LCS/|ref|``
    over rouge-score's tokens (lower-cased, non-alphanumerics removed, no stemming). Equal to
    the mean of ``RougeScorer(["rougeL"], use_stemmer=False).score(ref, pred)["rougeL"].fmeasure``
    (maximum over an item's references)."""
    return rouge_l_stats(y_true, y_pred).value()


# ---------------------------------------------------------------------------- yes / no
YES_TOKENS = frozenset({"yes", "true"})
NO_TOKENS = frozenset({"no", "false"})


def answer_to_binary(text: str | None) -> int:
    """Map a yes/no answer to a binary label: 1 = yes, 0 = no, -1 = not a yes/no answer.

    The label is read from the first token of :func:`normalize_answer` (so "Yes.", "yes, there
    is…", "TRUE" are 1 and "No, there is no effusion." is 0). Only ``yes``/``true`` and
    ``no``/``false`` count; anything else ("maybe", "There is an effusion", "") is -1, which
    the classification metrics treat as a wrong answer for the true class (see
    ``binary_labels``).
    """
    if text is None:
        return -1
    words = normalize_answer(text).split(maxsplit=1)
    if not words:
        return -1
    if words[0] in YES_TOKENS:
        return 1
    if words[0] in NO_TOKENS:
        return 0
    return -1


def binary_labels(texts: Iterable[str | None]) -> np.ndarray:
    """:func:`answer_to_binary` over a sequence (int8 array), computed once per distinct text."""
    cache: dict[str | None, int] = {}
    out = []
    for t in texts:
        v = cache.get(t)
        if v is None:
            v = cache[t] = answer_to_binary(t)
        out.append(v)
    return np.asarray(out, dtype=np.int8)
