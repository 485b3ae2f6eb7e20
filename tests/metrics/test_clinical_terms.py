import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from sklearn.metrics import f1_score
from sklearn.preprocessing import MultiLabelBinarizer

from cxrbench.metrics import clinical_terms as ct


@pytest.fixture(scope="module")
def ex():
    return ct.get_extractor()



def test_negation_no_pneumothorax_does_not_match_pneumothorax(ex):
    neg, pos = ex.concept_set("No pneumothorax."), ex.concept_set("Pneumothorax.")
    assert len(neg) == 1 and len(pos) == 1
    (cui_n, negated_n), (cui_p, negated_p) = next(iter(neg)), next(iter(pos))
    assert cui_n == cui_p and negated_n and not negated_p
    assert ct.clinical_term_f1(["Pneumothorax."], ["No pneumothorax."], ex) == 0.0
    assert ct.clinical_term_f1(["There is no pneumothorax."], ["No pneumothorax."], ex) == 1.0


@pytest.mark.parametrize("text,negated", [
    ("No evidence of pleural effusion.", True),
    ("The pleural effusion has resolved.", True),
    ("Pleural effusion is not seen.", True),
    ("Without pleural effusion.", True),
    ("There is a small pleural effusion.", False),
    ("No pneumothorax, but there is a pleural effusion.", False),  # "but" ends the negation scope
    ("Negative for pneumonia; there is a pleural effusion.", False),
])
def test_negex_scope(ex, text, negated):
    effusion = [c for c in ex.concepts(text) if c.text.lower() in ("pleural effusion", "effusion")]
    assert effusion and effusion[0].negated is negated


def test_synonyms_share_a_concept(ex):
    for a, b in (("cardiomegaly", "enlarged heart"), ("pneumothorax", "collapsed lung"),
                 ("pleural effusion", "effusion")):
        assert ex.concept_set(f"There is {a}.") == ex.concept_set(f"There is {b}."), (a, b)
    assert ex.concept_set("left lung") != ex.concept_set("right lung")


def test_concepts_are_quickumls_best_matches(ex):
    text = "Moderate cardiomegaly with a small left pleural effusion and a PICC line in the superior vena cava."
    raw = ex.matcher.match(text, best_match=True, ignore_syntax=False)
    assert sorted((m[0]["cui"], m[0]["start"]) for m in raw) == sorted((c.cui, c.start) for c in ex.concepts(text))
    assert len(raw) >= 5


def test_clinical_term_f1_hand_worked(ex):
    ref = "There is moderate cardiomegaly and no pneumothorax."   # {cardiomegaly+, moderate+, pneumothorax-}
    pred = "There is cardiomegaly and a pneumothorax."            # {cardiomegaly+, pneumothorax+}
    assert ct.clinical_term_f1([ref], [pred], ex) == pytest.approx(2 * 1 / (3 + 2))
    # neither side names a concept: undefined, left out of the mean
    assert np.isnan(ct.clinical_term_f1_items(["Yes."], ["No."], ex)[0])
    assert ct.clinical_term_f1(["Yes.", ref], ["No.", ref], ex) == 1.0
    # several references: the best
    assert ct.clinical_term_f1([["Pneumothorax.", "No pneumothorax."]], ["No pneumothorax."], ex) == 1.0


def test_set_f1_equals_sklearn_samples_f1(ex):
    rng = np.random.default_rng(0)
    texts = ["No pneumothorax.", "Pneumothorax.", "Mild cardiomegaly.", "Small left pleural effusion.",
             "Enlarged heart and effusion.", "Atelectasis at the right lung base.", "No effusion or edema."]
    refs = list(rng.choice(texts, 50))
    preds = list(rng.choice(texts, 50))
    T = [sorted(map(str, ex.concept_set(t))) for t in refs]
    P = [sorted(map(str, ex.concept_set(p))) for p in preds]
    mlb = MultiLabelBinarizer()
    mlb.fit(T + P)
    expected = f1_score(mlb.transform(T), mlb.transform(P), average="samples", zero_division=np.nan)
    assert ct.clinical_term_f1(refs, preds, ex) == pytest.approx(expected)


def test_index_builds_and_matches_offline(tmp_path):
    """A fresh cache, no NLTK data, no spaCy model, no network: the index builds and matches."""
    code = textwrap.dedent("""
        import socket, spacy, nltk
        def no_network(*a, **k):
            raise RuntimeError("network access attempted")
        socket.socket.connect = no_network
        nltk.download = no_network
        spacy.load = no_network
        from cxrbench.metrics import clinical_terms as ct
        ex = ct.ConceptExtractor()
        print(sorted(neg for _, neg in ex.concept_set("No pneumothorax. Cardiomegaly.")))
    """)
    env = {**os.environ, "CXRBENCH_CACHE": str(tmp_path / "cache"), "NLTK_DATA": str(tmp_path / "none"),
           "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[False, True]"
    assert any((tmp_path / "cache" / "quickumls").iterdir())


def test_user_index_directory_is_used_and_named_in_the_signature(ex):
    user = ct.ConceptExtractor(ex.index_dir)  # any QuickUMLS index directory, e.g. a full UMLS one
    assert user.signature.split("|")[1] == f"index:user:{ex.index_dir.name}"
    assert user.concept_set("No pneumothorax.") == ex.concept_set("No pneumothorax.")
    with pytest.raises(FileNotFoundError):
        ct.ConceptExtractor(ex.index_dir / "missing")


def test_sentence_by_sentence_matching_equals_quickumls_on_the_whole_text(ex):
    """Concepts are matched per distinct sentence and shifted into place: on report-like texts
    the result is QuickUMLS's own best matches on the whole text, polarity included."""
    rng = np.random.default_rng(3)
    parts = ["No pneumothorax.", "There is a small left pleural effusion.", "Moderate cardiomegaly;",
             "the PICC line ends in the superior vena cava.", "Atelectasis at the right lung base has resolved.",
             "Is there edema?", "No.", "Heart size is normal: no focal consolidation!"]
    for _ in range(40):
        text = " ".join(rng.choice(parts, rng.integers(1, 6)))
        raw = ex.matcher.match(text, best_match=True, ignore_syntax=False)
        whole = sorted((m[0]["cui"], m[0]["start"], m[0]["end"], ct.is_negated(text, m[0]["start"], m[0]["end"]))
                       for m in raw)
        assert whole == sorted((c.cui, c.start, c.end, c.negated) for c in ex.concepts(text)), text


def test_a_megabyte_prediction_does_not_stall_extraction(ex):
    """Issue 12: one 1 MB prediction took concept extraction past ten minutes (and past spaCy's
    1,000,000-character limit, an exception). It is matched on its first MAX_TEXT_CHARS
    characters (a guard against the pathological case, generously bounded, not a speed test)."""
    import time

    from cxrbench.metrics.text import MAX_TEXT_CHARS

    unit = "There is a small left pleural effusion and no pneumothorax "
    huge = unit * (2**20 // len(unit) + 1)
    start = time.perf_counter()
    got = ct.clinical_term_f1_items(["Small left pleural effusion."], [huge], ex)
    assert time.perf_counter() - start < 120
    assert got[0] == ct.clinical_term_f1_items(["Small left pleural effusion."], [huge[:MAX_TEXT_CHARS]], ex)[0]
    assert max(c.end for c in ex.concepts(huge)) <= MAX_TEXT_CHARS


def test_memoised_matcher_equals_quickumls_match(ex):
    """The extractor's QuickUMLS (candidates memoised per n-gram, n-grams from token attributes)
    returns exactly QuickUMLS.match's result, match for match, on varied texts."""
    import spacy
    from quickumls import QuickUMLS

    plain = QuickUMLS(str(ex.index_dir), threshold=ct.THRESHOLD, window=ct.WINDOW, similarity_name=ct.SIMILARITY,
                      accepted_semtypes=set(ct.ACCEPTED_SEMTYPES), spacy_component=True)
    plain.nlp = spacy.blank("en")
    rng = np.random.default_rng(5)
    words = ("no", "there", "is", "a", "small", "left", "right", "pleural", "effusion", "pneumothorax", "the", "of",
             "heart", "enlarged", "cardiomegaly", "PICC", "line", "tube", "1.5", "cm", ",", ".", ";", "(", ")",
             "mild", "moderate", "lung", "base", "atelectasis", "and", "with", "without", "ET", "SVC", "—", "non")
    texts = [" ".join(rng.choice(words, rng.integers(1, 25))) for _ in range(150)]
    texts += ["Moderate cardiomegaly with a small left pleural effusion and a PICC line in the superior vena cava.",
              "No evidence of pneumothorax; the endotracheal tube terminates 4 cm above the carina.", "", "   ."]
    for text in texts:
        assert ex.matcher.match(text, best_match=True, ignore_syntax=False) == \
            plain.match(text, best_match=True, ignore_syntax=False), text
