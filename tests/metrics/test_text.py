import numpy as np
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from torchmetrics.functional.text import squad

from cxrbench.metrics import text

WORDS = ["the", "a", "an", "Left", "left", "lung", "pleural", "effusion", "is", "small", "no", "Yes", "yes",
         "cardiomegaly", "heart", "enlarged", "there", "of", "in", "the", ",", ".", "mild", "moderate"]
sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)


def test_normalize_answer_follows_squad():
    assert text.normalize_answer("The  Left, lung.") == "left lung"
    assert text.normalize_answer("An effusion (small)!") == "effusion small"
    assert text.normalize_answer("theory of a cat") == "theory of cat"  # only whole-word articles


def test_token_f1_hand_worked():
    # pred tokens {left, pleural, effusion}, ref {small, left, effusion}: 2 shared -> P = R = 2/3
    assert text.token_f1(["small left effusion"], ["the left pleural effusion"]) == pytest.approx(2 / 3)
    # multiset: "no no effusion" vs "no effusion": common 2, P = 2/3, R = 1 -> F1 = 0.8
    assert text.token_f1(["no effusion"], ["no no effusion"]) == pytest.approx(0.8)
    assert text.exact_match(["Yes."], ["yes"]) == 1.0
    assert text.exact_match(["Yes."], ["no"]) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(sentence, min_size=1, max_size=3), sentence), min_size=1, max_size=15))
def test_exact_match_and_token_f1_equal_torchmetrics_squad(items):
    refs = [r for r, _ in items]
    preds = [p for _, p in items]
    tm_preds = [{"prediction_text": p, "id": str(i)} for i, p in enumerate(preds)]
    tm_target = [{"answers": {"answer_start": [0] * len(r), "text": r}, "id": str(i)} for i, r in enumerate(refs)]
    ref = squad(tm_preds, tm_target)
    assert text.exact_match(refs, preds) == pytest.approx(float(ref["exact_match"]) / 100, abs=1e-6)
    assert text.token_f1(refs, preds) == pytest.approx(float(ref["f1"]) / 100, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sentence, sentence), min_size=1, max_size=25))
def test_bleu4_equals_sacrebleu_corpus_bleu(pairs):
    refs = [r for r, _ in pairs]
    hyps = [h for _, h in pairs]
    assert text.bleu4(refs, hyps) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score / 100, abs=1e-12)


def test_bleu4_multi_reference_and_signature():
    rng = np.random.default_rng(0)
    words = np.array(WORDS)
    refs = [[" ".join(rng.choice(words, 8)) for _ in range(2)] for _ in range(40)]
    hyps = [" ".join(rng.choice(words, 7)) for _ in range(40)]
    expected = sacrebleu.corpus_bleu(hyps, [[r[0] for r in refs], [r[1] for r in refs]])
    assert text.bleu4(refs, hyps) == pytest.approx(expected.score / 100, abs=1e-12)
    bleu = sacrebleu.metrics.BLEU()
    bleu.corpus_score(hyps, [[r[0] for r in refs]])
    assert text.bleu4_stats([r[0] for r in refs], hyps).signature == str(bleu.get_signature())


def test_bleu4_segment_statistics_equal_sacrebleus_row_by_row():
    from sacrebleu.metrics import BLEU

    bleu = BLEU()
    rng = np.random.default_rng(1)
    words = np.array(WORDS + ["Effusion.", "(small)", "left-sided"])
    refs = [[" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(rng.integers(1, 3))] for _ in range(80)]
    hyps = [" ".join(rng.choice(words, rng.integers(0, 12))) for _ in range(80)]
    refs, hyps = refs + refs[:20], hyps + hyps[:20][::-1]    # repeated predictions with other references
    got = text.bleu4_segment_stats(refs, hyps)
    for row, r, h in zip(got, refs, hyps):
        info = bleu._extract_reference_info([bleu._preprocess_segment(x) for x in r])
        assert row.tolist() == bleu._compute_segment_statistics(bleu._preprocess_segment(h), info)


def test_bleu4_hand_worked_and_vectorised_reduce():
    assert text.bleu4(["the heart is enlarged ."], ["the heart is enlarged ."]) == pytest.approx(1.0)
    assert text.bleu4(["no effusion"], ["cardiomegaly"]) == 0.0
    st_ = text.bleu4_stats(["a b c d e", "x y z"], ["a b c d f", "x y"])
    rows = st_.stats
    batched = text.bleu_from_stats(np.stack([rows.sum(0), rows[0], rows[1]]))
    assert batched[0] == pytest.approx(st_.value())
    assert batched[1] == pytest.approx(sacrebleu.corpus_bleu(["a b c d f"], [["a b c d e"]]).score / 100)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(sentence, sentence), min_size=1, max_size=20))
def test_rouge_l_equals_rouge_score(pairs):
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    refs = [r for r, _ in pairs]
    preds = [p for _, p in pairs]
    expected = np.mean([scorer.score(r, p)["rougeL"].fmeasure for r, p in pairs])
    assert text.rouge_l(refs, preds) == pytest.approx(expected, abs=1e-12)


def test_rouge_l_per_item_equals_rouge_score_on_long_and_odd_texts():
    """Per item and to the bit, past 64 tokens (the bit-parallel LCS uses big integers), with
    punctuation, digits, non-ASCII letters and several references."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = np.random.default_rng(4)
    vocab = WORDS + ["Pleural-effusion", "1.5cm", "T4/T5", "Élevé", "naïve", "x-ray", "", "  ", "3", "right,"]
    refs, preds = [], []
    for _ in range(150):
        refs.append([" ".join(rng.choice(vocab, rng.integers(0, 140))) for _ in range(rng.integers(1, 3))])
        preds.append(" ".join(rng.choice(vocab, rng.integers(0, 140))))
    got = text.rouge_l_items(refs, preds)
    expected = [max(scorer.score(r, p)["rougeL"].fmeasure for r in rs) for rs, p in zip(refs, preds)]
    np.testing.assert_array_equal(got, expected)


def test_rouge_l_hand_worked():
    # LCS("left pleural effusion", "small left effusion") = "left effusion" = 2; P = R = 2/3
    assert text.rouge_l(["small left effusion"], ["left pleural effusion"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize("answer,label", [
    ("Yes.", 1), ("yes, there is an effusion", 1), ("TRUE", 1), ("No, there is no effusion.", 0),
    ("false", 0), ("There is an effusion.", -1), ("", -1), (None, -1), ("maybe", -1), ("Nothing", -1),
])
def test_answer_to_binary(answer, label):
    assert text.answer_to_binary(answer) == label


def test_lengths_must_match():
    with pytest.raises(ValueError):
        text.exact_match(["a", "b"], ["a"])


def test_truncate_texts_cuts_at_the_cap_and_says_which():
    from cxrbench.metrics.text import MAX_TEXT_CHARS, truncate_texts

    texts = ["short", "x" * (MAX_TEXT_CHARS + 5), "y" * MAX_TEXT_CHARS]
    out, cut = truncate_texts(texts)
    assert cut.tolist() == [False, True, False]
    assert out == ["short", "x" * MAX_TEXT_CHARS, "y" * MAX_TEXT_CHARS]
    short, cut = truncate_texts(["abcdef"], 3)
    assert short == ["abc"] and cut.tolist() == [True]
    with pytest.raises(ValueError):
        truncate_texts(["a"], 0)
