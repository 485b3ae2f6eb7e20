"""Clinical-term F1: QuickUMLS concepts with polarity, prediction vs reference (seed 13.1).

Concept extraction is QuickUMLS 1.4.2 (Soldaini & Goharian 2016: approximate dictionary
matching, Jaccard over character trigrams >= 0.7, longest/best non-overlapping matches) over
a UMLS-format index. By default the index is built, at first use, from the small chest
radiography table shipped in ``cxrbench/resources/umls`` (MRCONSO/MRSTY rows; see
``make_table.py`` there) into ``$CXRBENCH_CACHE/quickumls/<hash>`` (``~/.cache/cxrbench``);
``index_dir=`` / ``--umls-index`` takes a user's full QuickUMLS index instead.

Each concept carries a polarity from a NegEx-style rule (Chapman et al. 2001): a negation
trigger ("no", "without", "negative for", "no evidence of", …) at most ``NEG_WINDOW`` tokens
before the concept, with no termination term ("but", "however", …, or a sentence break) in
between, or a post-trigger ("is not seen", "has resolved", …) right after it, makes it
negated. So "no pneumothorax" yields ``(pneumothorax, negated)`` and does not match
"pneumothorax".

Concepts are found sentence by sentence: a text is cut after each ``.``, ``;``, ``:``, ``?`` or
``!`` followed by white space (where NegEx scopes end anyway), each distinct sentence is matched
once and its concepts shifted to their place in the text. So a concept never spans two sentences
(QuickUMLS's windows would otherwise cross a full stop), and report-like answers, which share
most of their sentences, cost one match per distinct sentence. Texts longer than
``text.MAX_TEXT_CHARS`` are matched on their first ``MAX_TEXT_CHARS`` characters (QuickUMLS's
overlap resolution is quadratic in the matches: one megabyte took more than ten minutes).

Offline: QuickUMLS would ``spacy.load("en_core_web_sm")`` and ``nltk.download("stopwords")``
at run time. Here it gets a blank English spaCy pipeline (its matcher only needs the
tokenizer; without a tagger its part-of-speech filters are inert) and an NLTK stopword file
written under the cache directory, so nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from typing import Iterable, Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats, mean_stats
from cxrbench.metrics.text import MAX_TEXT_CHARS, References, as_reference_lists

RESOURCE_DIR = Path(__file__).resolve().parent.parent / "resources" / "umls"
THRESHOLD = 0.7
WINDOW = 5
SIMILARITY = "jaccard"
NEG_WINDOW = 6

# the semantic types that matter for chest radiography answers (anatomy, findings, devices,
# qualifiers); with a full UMLS index, concepts of other types are ignored
ACCEPTED_SEMTYPES = frozenset({"T017", "T023", "T029", "T030", "T033", "T037", "T046", "T047", "T061", "T074",
                               "T080", "T081", "T082", "T184", "T190", "T191", "T020"})

# NLTK's English stopword list (nltk_data corpora/stopwords/english), which QuickUMLS expects
_NLTK_ENGLISH_STOPWORDS = """i me my myself we our ours ourselves you you're you've you'll you'd your yours
yourself yourselves he him his himself she she's her hers herself it it's its itself they them their theirs
themselves what which who whom this that that'll these those am is are was were be been being have has had
having do does did doing a an the and but if or because as until while of at by for with about against between
into through during before after above below to from up down in out on off over under again further then once
here there when where why how all any both each few more most other some such no nor not only own same so than
too very s t can will just don don't should should've now d ll m o re ve y ain aren aren't couldn couldn't
didn didn't doesn doesn't hadn hadn't hasn hasn't haven haven't isn isn't ma mightn mightn't mustn mustn't
needn needn't shan shan't shouldn shouldn't wasn wasn't weren weren't won won't wouldn wouldn't""".split()

# NegEx-style triggers, as token sequences
PRE_NEGATION = tuple(tuple(t.split()) for t in (
    "no", "not", "without", "negative for", "no evidence of", "no signs of", "no sign of", "absence of",
    "absent", "free of", "neither", "nor", "never", "resolution of", "resolved", "cannot see", "denies",
    "no new", "no longer", "rather than", "ruled out", "rules out",
))
POST_NEGATION = tuple(tuple(t.split()) for t in (
    "is not seen", "are not seen", "not seen", "is not present", "are not present", "not present",
    "is not identified", "are not identified", "not identified", "is not visualized", "not visualized",
    "is absent", "are absent", "absent", "has resolved", "have resolved", "resolved", "is ruled out",
    "has been ruled out", "ruled out", "is not", "are not", "no longer", "is gone",
))
TERMINATION = frozenset({"but", "however", "although", "though", "except", "aside", "apart", "yet", "still",
                         "which", "whereas", "while", ".", ";", ":", "?", "!"})
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[.;:?!]")
_SENTENCE_END = re.compile(r"(?<=[.;:?!])\s+")
_PRE = {n: {t for t in PRE_NEGATION if len(t) == n} for n in {len(t) for t in PRE_NEGATION}}
_POST = {n: {t for t in POST_NEGATION if len(t) == n} for n in {len(t) for t in POST_NEGATION}}


def cache_root() -> Path:
    return Path(os.environ.get("CXRBENCH_CACHE") or Path.home() / ".cache" / "cxrbench")


def _table_hash(resource_dir: Path) -> str:
    import importlib.metadata as md

    h = hashlib.sha256(md.version("quickumls").encode())
    for name in ("MRCONSO.RRF", "MRSTY.RRF"):
        h.update((resource_dir / name).read_bytes())
    return h.hexdigest()[:16]


def _ensure_nltk_stopwords() -> None:
    """Write NLTK's English stopword list where ``nltk.corpus.stopwords`` will find it first,
    so QuickUMLS never calls ``nltk.download``."""
    import nltk

    root = cache_root() / "nltk_data"
    target = root / "corpora" / "stopwords" / "english"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(_NLTK_ENGLISH_STOPWORDS) + "\n")
        os.replace(tmp, target)
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))


def build_index(resource_dir: Path = RESOURCE_DIR, dest: Path | None = None) -> Path:
    """Build (once) the QuickUMLS index of an MRCONSO/MRSTY pair and return its directory.

    Built in a temporary directory and renamed into place, so concurrent first uses (test
    workers) never see a half-built index. Lower-cased, unqlite backend, English.
    """
    from quickumls import install

    resource_dir = Path(resource_dir)
    dest = Path(dest) if dest is not None else cache_root() / "quickumls" / _table_hash(resource_dir)
    if (dest / "database_backend.flag").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    try:
        opts = SimpleNamespace(language="ENG", lowercase=True, normalize_unicode=False)
        (tmp / "lowercase.flag").touch()
        (tmp / "language.flag").write_text("ENG")
        (tmp / "database_backend.flag").write_text("unqlite")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # QuickUMLS prints progress
            terms = install.extract_from_mrconso(str(resource_dir / "MRCONSO.RRF"), str(resource_dir / "MRSTY.RRF"),
                                                 opts)
            install.parse_and_encode_ngrams(terms, str(tmp / "umls-simstring.db"), str(tmp / "cui-semtypes.db"),
                                            database_backend="unqlite")
        try:
            os.rename(tmp, dest)
        except OSError:  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


@dataclass(frozen=True)
class Concept:
    cui: str
    negated: bool
    semtypes: tuple[str, ...]
    start: int
    end: int
    text: str


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in _TOKEN_RE.finditer(text.lower())]


def _has_trigger(seq: list[str], triggers: dict[int, set], start_limit: int | None = None) -> bool:
    """Whether a trigger occurs as a run of ``seq`` (starting before ``start_limit`` if given)."""
    for n, group in triggers.items():
        last = len(seq) - n + 1 if start_limit is None else min(start_limit, len(seq) - n + 1)
        if any(tuple(seq[i:i + n]) in group for i in range(max(0, last))):
            return True
    return False


def is_negated(text: str, start: int, end: int, window: int = NEG_WINDOW,
               tokens: list[tuple[str, int, int]] | None = None) -> bool:
    """NegEx-style polarity of the span ``text[start:end]`` (see the module docstring);
    ``tokens``: ``_tokens(text)`` when the caller has them (one tokenisation per text)."""
    toks = _tokens(text) if tokens is None else tokens
    before = [t for t, s, e in toks if e <= start]
    after = [t for t, s, e in toks if s >= end]
    # pre-negation: scan back at most `window` tokens, stopping at a termination term
    scope: list[str] = []
    for tok in reversed(before):
        if tok in TERMINATION or len(scope) >= window:
            break
        scope.insert(0, tok)
    if _has_trigger(scope, _PRE):
        return True
    # post-negation: a trigger starting within the next 3 tokens, before any termination
    head: list[str] = []
    for tok in after:
        if tok in TERMINATION or len(head) >= 6:
            break
        head.append(tok)
    return _has_trigger(head, _POST, start_limit=3)


def sentences(text: str) -> list[tuple[int, str]]:
    """``(offset, sentence)`` pieces of ``text``, cut after ``.;:?!`` followed by white space."""
    out, pos = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append((pos, text[pos:m.start()]))
        pos = m.end()
    out.append((pos, text[pos:]))
    return [(o, piece) for o, piece in out if piece.strip()]


@lru_cache(maxsize=1)
def _memo_quickumls():
    """QuickUMLS with the same matches, faster on many short texts (``tests/metrics/
    test_clinical_terms.py`` checks equality with ``QuickUMLS.match``): the candidates of an
    n-gram (two database lookups and a similarity per candidate, pure functions of the n-gram
    string) are computed once per distinct n-gram, and n-grams are made from token attributes
    read once per text instead of spaCy ``Token`` objects built again in every inner loop."""
    from quickumls import QuickUMLS, toolbox

    class MemoQuickUMLS(QuickUMLS):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._candidates: dict[str, list[tuple]] = {}

        def _make_ngrams(self, sent):
            # QuickUMLS._make_ngrams, unchanged in effect. Its check "sent[j - 1] in
            # invalid_mid_tokens" compares a Token with ints and is never true, so it is left out.
            # Without a tagger (a blank pipeline) pos_ and lemma_ are "", as its tests see them.
            toks = list(sent)
            n = len(toks)
            text = [t.text for t in toks]
            ws = [t.text_with_ws for t in toks]
            start = [t.idx for t in toks]
            end = [t.idx + len(t) for t in toks]
            pos = [t.pos_ for t in toks]
            bad_pos = [p in ("ADP", "DET", "CONJ") for p in pos]
            det = [p == "DET" for p in pos]
            punct_space = [t.is_punct or t.is_space for t in toks]
            stop = [x in self._stopwords for x in text]
            valid = [not (ps or bp) for ps, bp in zip(punct_space, bad_pos)]
            valid_start = [not (t.like_num or (st and t.lemma_ not in self.negations) or bp)
                           for t, st, bp in zip(toks, stop, bad_pos)]
            valid_end = [not (ps or st or bp) for ps, st, bp in zip(punct_space, stop, bad_pos)]
            for i in range(n):
                if not valid[i]:
                    continue
                compensate = not valid_start[i]
                span_end = min(n, i + self.window) + 1
                if i + 1 == n and valid_end[i] and end[i] - start[i] >= self.min_match_length:
                    yield (start[i], end[i], text[i])
                for j in range(i + 1, span_end):
                    if compensate:
                        compensate = False
                        continue
                    if not valid_end[j - 1]:
                        continue
                    if end[j - 1] - start[i] < self.min_match_length:
                        continue
                    yield (start[i], end[j - 1], "".join(ws[k] for k in range(i, j) if not det[k]).strip())

        def _candidates_of(self, normalized: str) -> list[tuple]:
            # QuickUMLS._get_all_matches for one n-gram, without its position: (term, cui,
            # similarity, semtypes, preferred) in QuickUMLS's order, keeping its de-duplication
            out: list[tuple] = []
            prev_cui = None
            for match in self.ss_db.get(normalized):
                cuisem_match = sorted(self.cuisem_db.get(match))
                similarity = toolbox.get_similarity(x=normalized, y=match, n=self.ngram_length,
                                                    similarity_name=self.similarity_name)
                if similarity == 0:
                    continue
                for cui, semtypes, preferred in cuisem_match:
                    if not self._is_ok_semtype(semtypes):
                        continue
                    if prev_cui is not None and prev_cui == cui:
                        if similarity > out[-1][2]:
                            out.pop(-1)
                        else:
                            continue
                    prev_cui = cui
                    out.append((toolbox.safe_unicode(match), cui, similarity, semtypes, preferred))
            return out

        def _get_all_matches(self, ngrams):
            from unidecode import unidecode

            matches = []
            for start, end, ngram in ngrams:
                normalized = unidecode(ngram) if self.normalize_unicode_flag else ngram
                if self.to_lowercase_flag:
                    normalized = normalized.lower()
                if not self.to_lowercase_flag and normalized.isupper() and not self.keep_uppercase:
                    normalized = normalized.lower()
                found = self._candidates.get(normalized)
                if found is None:
                    found = self._candidates[normalized] = self._candidates_of(normalized)
                if found:
                    matches.append(sorted(({"start": start, "end": end, "ngram": ngram, "term": term, "cui": cui,
                                            "similarity": sim, "semtypes": semtypes, "preferred": preferred}
                                           for term, cui, sim, semtypes, preferred in found),
                                          key=lambda m: m["similarity"] + m["preferred"], reverse=True))
            return matches

    return MemoQuickUMLS


class ConceptExtractor:
    """QuickUMLS concept matcher with NegEx polarity, offline, one match per text cached.

    ``index_dir`` None: the shipped chest radiography table (built on first use).
    """

    def __init__(self, index_dir: str | os.PathLike | None = None, threshold: float = THRESHOLD,
                 window: int = WINDOW):
        import spacy

        _ensure_nltk_stopwords()
        self.custom_index = index_dir is not None
        self.index_dir = Path(index_dir) if index_dir is not None else build_index()
        if not (self.index_dir / "umls-simstring.db").exists():
            raise FileNotFoundError(f"{self.index_dir} is not a QuickUMLS index (no umls-simstring.db)")
        self.threshold, self.window = threshold, window
        # spacy_component=True skips QuickUMLS's spacy.load("en_core_web_sm"); we give it a
        # blank English tokenizer instead
        self.matcher = _memo_quickumls()(str(self.index_dir), threshold=threshold, window=window,
                                 similarity_name=SIMILARITY, accepted_semtypes=set(ACCEPTED_SEMTYPES),
                                 spacy_component=True)
        self.matcher.nlp = spacy.blank("en")
        self._cache: dict[str, tuple[Concept, ...]] = {}
        self._sentences: dict[str, tuple[Concept, ...]] = {}

    @property
    def signature(self) -> str:
        import importlib.metadata as md

        index = f"user:{self.index_dir.name}" if self.custom_index else f"cxrbench-cxr:{self.index_dir.name}"
        return (f"quickumls:{md.version('quickumls')}|index:{index}|sim:{SIMILARITY}|threshold:{self.threshold}"
                f"|window:{self.window}|negation:negex-window{NEG_WINDOW}|per-sentence|max-chars:{MAX_TEXT_CHARS}"
                "|f1:(cui,polarity)")

    def concepts(self, text: str) -> tuple[Concept, ...]:
        """Concepts in ``text`` (best match per span, sentence by sentence), with polarity."""
        text = "" if text is None else str(text)
        hit = self._cache.get(text)
        if hit is not None:
            return hit
        out = []
        for offset, sentence in sentences(text[:MAX_TEXT_CHARS]):   # the cap of truncate_texts
            out += [Concept(c.cui, c.negated, c.semtypes, c.start + offset, c.end + offset, c.text)
                    for c in self._sentence_concepts(sentence)]
        result = tuple(sorted(out, key=lambda c: c.start))
        self._cache[text] = result
        return result

    def _sentence_concepts(self, sentence: str) -> tuple[Concept, ...]:
        hit = self._sentences.get(sentence)
        if hit is None:
            tokens = _tokens(sentence)
            hit = tuple(Concept(m["cui"], is_negated(sentence, m["start"], m["end"], tokens=tokens),
                                tuple(sorted(m["semtypes"])), m["start"], m["end"], m["ngram"])
                        for m in (g[0] for g in self.matcher.match(sentence, best_match=True, ignore_syntax=False)))
            self._sentences[sentence] = hit
        return hit

    def concept_set(self, text: str) -> frozenset[tuple[str, bool]]:
        """The set of ``(CUI, negated)`` pairs of a text."""
        return frozenset((c.cui, c.negated) for c in self.concepts(text))


@lru_cache(maxsize=4)
def get_extractor(index_dir: str | None = None) -> ConceptExtractor:
    """One extractor per index per process (building the matcher costs ~0.1 s)."""
    return ConceptExtractor(index_dir)


def concept_f1(true: frozenset, pred: frozenset) -> float:
    """F1 of two concept sets: ``2|T∩P| / (|T| + |P|)``; NaN when both are empty (neither
    answer has clinical content to compare), 0 when only one is."""
    if not true and not pred:
        return float("nan")
    return 2 * len(true & pred) / (len(true) + len(pred))


def clinical_term_f1_items(y_true: References, y_pred: Sequence[str], extractor: ConceptExtractor | None = None,
                           progress: bool = False) -> np.ndarray:
    """Per-item clinical-term F1 (best over references; NaN where undefined)."""
    extractor = extractor or get_extractor()
    refs = as_reference_lists(y_true)
    if len(refs) != len(y_pred):
        raise ValueError(f"y_true has {len(refs)} items but y_pred has {len(y_pred)}")
    texts: Iterable[str] = dict.fromkeys([str(p) for p in y_pred] + [r for rs in refs for r in rs])
    if progress:
        from tqdm import tqdm

        texts = tqdm(list(texts), desc="clinical terms", unit="text", leave=False)
    for t in texts:
        extractor.concept_set(t)
    out = np.empty(len(refs))
    for i, (pred, rs) in enumerate(zip(y_pred, refs)):
        p = extractor.concept_set(str(pred))
        scores = [concept_f1(extractor.concept_set(r), p) for r in rs]
        defined = [s for s in scores if not np.isnan(s)]
        out[i] = max(defined) if defined else np.nan
    return out


def clinical_term_f1_stats(y_true: References, y_pred: Sequence[str],
                           extractor: ConceptExtractor | None = None, progress: bool = False) -> SufficientStats:
    extractor = extractor or get_extractor()
    return mean_stats("clinical_term_f1", clinical_term_f1_items(y_true, y_pred, extractor, progress),
                      signature=extractor.signature)


def clinical_term_f1(y_true: References, y_pred: Sequence[str], extractor: ConceptExtractor | None = None) -> float:
    """Mean clinical-term F1 over items (seed 13.1).

    Per item, ``T`` and ``P`` are the sets of ``(CUI, negated)`` pairs QuickUMLS finds in the
    reference and the prediction (:class:`ConceptExtractor`), and
    ``F1 = 2|T ∩ P| / (|T| + |P|)`` (precision ``|T∩P|/|P|``, recall ``|T∩P|/|T|``). Items
    where neither side names a concept are undefined and left out of the mean (their count
    is the difference between ``n`` and the number of items). No reference implementation
    exists for the whole metric; the parts agree with QuickUMLS's own matches and with
    ``sklearn.metrics.f1_score`` on the binarised sets (tests/metrics/test_clinical_terms.py).
    """
    return clinical_term_f1_stats(y_true, y_pred, extractor).value()
