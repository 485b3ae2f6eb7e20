from pathlib import Path

import pytest

from model.tokenizer import (build_tokenizer, clinical_terms, extend_vocab, generic_vocab_path, load_tokenizer,
                             read_vocab, save_tokenizer, vocab_path)


@pytest.mark.parametrize("spec", ["clinical", "generic"])
def test_known_words_get_their_vocabulary_ids_not_unk(spec):
    tok = build_tokenizer(spec)
    vocab = read_vocab(vocab_path(spec))
    ids = tok("Is there fluid in the left lung?", add_special_tokens=False)["input_ids"]
    expected = [vocab[w] for w in ("is", "there", "fluid", "in", "the", "left", "lung", "?")]
    assert ids == expected
    assert tok.unk_token_id not in ids
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id) == (vocab["[CLS]"], vocab["[SEP]"], vocab["[PAD]"])


def test_clinical_vocab_keeps_clinical_terms_whole_where_generic_splits_them():
    clinical, generic = build_tokenizer("clinical"), build_tokenizer("generic")
    for word in ("cardiomegaly", "pneumothorax", "atelectasis", "costophrenic", "hemidiaphragm"):
        assert clinical.tokenize(word) == [word]
        assert len(generic.tokenize(word)) > 1
    # the stand-in only fills [unusedN] slots: every generic word keeps its id
    g, c = read_vocab(generic_vocab_path()), read_vocab(vocab_path("clinical"))
    assert len(g) == len(c) == 30522
    assert all(c[w] == i for w, i in g.items() if not w.startswith("[unused"))


def test_shipped_clinical_vocab_is_reproducible_from_the_term_list():
    base = generic_vocab_path().read_text(encoding="utf-8").splitlines()
    words, added = extend_vocab(base, clinical_terms())
    shipped = vocab_path("clinical").read_text(encoding="utf-8").splitlines()
    assert words == shipped and len(added) > 200


def test_save_and_load_round_trip(tmp_path):
    tok = build_tokenizer("clinical")
    save_tokenizer(tok, tmp_path)
    assert {"vocab.txt", "tokenizer_config.json"} <= {p.name for p in Path(tmp_path).iterdir()}
    again = load_tokenizer(tmp_path)
    text = "How severe is the right pleural effusion?"
    assert again(text)["input_ids"] == tok(text)["input_ids"]


def test_extend_vocab_refuses_more_terms_than_free_slots():
    with pytest.raises(Exception, match="slots"):
        extend_vocab(["[PAD]", "[unused0]", "a"], ["x", "y"])
