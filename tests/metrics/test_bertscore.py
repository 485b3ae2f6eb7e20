import numpy as np
import pytest

torch = pytest.importorskip("torch")
import bert_score  # noqa: E402

from cxrbench.metrics import bertscore  # noqa: E402

FINDINGS = ["pleural effusion", "pneumothorax", "cardiomegaly", "atelectasis", "edema"]
TEMPLATES = ["There is {s} {f} in the {r}.", "No {f} is seen.", "Yes, there is {s} {f}.", "The {f} is {s}.",
             "Heart size is normal and the lungs are clear without {f}.", "Yes", "no"]


def _templated(n, seed):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        t = TEMPLATES[rng.integers(len(TEMPLATES))]
        out.append(t.format(s=["mild", "moderate", "severe", "small"][rng.integers(4)],
                            f=FINDINGS[rng.integers(len(FINDINGS))], r=["left lung", "right lung", "heart"][rng.integers(3)]))
    return out


@pytest.fixture(scope="module")
def scorer():
    torch.set_num_threads(2)
    return bertscore.get_scorer()


def test_equals_bert_score_package(scorer):
    cands, refs = _templated(60, 0), _templated(60, 1)
    P, R, F = scorer.score(cands, refs)
    # batch_size=1: bert-score without padding (see the module docstring for why)
    P2, R2, F2 = bert_score.score(cands, refs, model_type=scorer.model_path, num_layers=scorer.num_layers,
                                  device="cpu", batch_size=1)
    assert np.allclose(F, F2.numpy(), atol=2e-6)
    assert np.allclose(P, P2.numpy(), atol=2e-6)
    assert np.allclose(R, R2.numpy(), atol=2e-6)
    assert bertscore.bertscore_f1(refs, cands, scorer) == pytest.approx(float(F2.mean()), abs=2e-6)


def test_idf_and_multiple_references_equal_bert_score(scorer):
    cands = _templated(20, 2)
    refs = [[a, b] for a, b in zip(_templated(20, 3), _templated(20, 4))]
    idf_scorer = bertscore.BertScorer(scorer.model_path, scorer.num_layers, idf=True)
    for sc, idf in ((scorer, False), (idf_scorer, True)):
        F = sc.score(cands, refs)[2]
        F2 = bert_score.score(cands, refs, model_type=scorer.model_path, num_layers=scorer.num_layers, device="cpu",
                              batch_size=1, idf=idf, nthreads=0)[2]
        assert np.allclose(F, F2.numpy(), atol=2e-6)


def test_cache_embeds_each_sentence_once(scorer):
    cands, refs = _templated(200, 5), _templated(200, 6)
    scorer.score(cands, refs)
    n_emb = len(scorer._emb)
    assert n_emb <= len(set(cands) | set(refs)) + 1000  # only distinct sentences
    before = dict(scorer._emb)
    again = scorer.score(cands[::-1], refs[::-1])[2]
    assert len(scorer._emb) == n_emb and all(scorer._emb[k] is v for k, v in before.items())
    assert np.allclose(again[::-1], scorer.score(cands, refs)[2])


def test_bounded_cache_scores_in_blocks_with_the_same_result(scorer):
    cands, refs = _templated(300, 7), _templated(300, 8)
    expected = scorer.score(cands, refs)[2]
    saved = scorer.max_cache_bytes
    try:
        scorer._pairs.clear()
        scorer.max_cache_bytes = 200_000  # a few sentences: forces blocks and eviction
        got = scorer.score(cands, refs)[2]
        assert scorer._cache_bytes <= scorer.max_cache_bytes
        assert np.allclose(got, expected, atol=1e-6)
    finally:
        scorer.max_cache_bytes = saved


def test_empty_candidate_scores_zero_and_signature_names_model(scorer):
    F = scorer.score(["", "No pneumothorax."], ["No pneumothorax.", "No pneumothorax."])[2]
    assert F[0] == 0.0 and F[1] == pytest.approx(1.0, abs=1e-5)
    assert "all-MiniLM-L6-v2" in scorer.signature and "_L6_no-idf" in scorer.signature


def test_missing_model_directory_is_an_error():
    with pytest.raises(FileNotFoundError):
        bertscore.BertScorer("/nonexistent/model")


_DIGEST = """
import hashlib, sys
import torch
torch.set_num_threads(2)
from cxrbench.metrics import bertscore
sys.path.insert(0, {root!r})
from tests.metrics.test_bertscore import _templated
F = bertscore.BertScorer().score(_templated(80, 11), _templated(80, 12))[2]
print(hashlib.sha256(F.tobytes()).hexdigest())
"""


def test_scores_are_byte_identical_whatever_else_is_scored_and_in_fresh_processes(scorer):
    """Issue 12: reruns differed by ~1e-7. A pair's score no longer depends on the other
    sentences of the call, the cache, the order or the string-hash seed of the process."""
    import hashlib
    import os
    import subprocess
    import sys
    from pathlib import Path

    cands, refs = _templated(80, 11), _templated(80, 12)
    warm = scorer.score(cands, refs)[2]          # the module's scorer: its cache holds other sentences
    fresh = bertscore.BertScorer(scorer.model_path, scorer.num_layers)
    company = fresh.score(_templated(50, 13) + cands[::-1], _templated(50, 14) + refs[::-1])[2][50:][::-1]
    assert warm.tobytes() == company.tobytes()
    root = str(Path(__file__).resolve().parents[2])
    digests = set()
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", _DIGEST.format(root=root)], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "2"}, check=True)
        digests.add(out.stdout.strip().splitlines()[-1])
    assert digests == {hashlib.sha256(warm.tobytes()).hexdigest()}
