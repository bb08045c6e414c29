"""Words, stopwords, stems, script detection and citation markers, defined once.

Retrieval (the lexical query), composition (sentence scores) and the doors (markers in an
answer's text) all read text through these.
"""

from __future__ import annotations

import re
import unicodedata

STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does for from had has have how
    i if in into is it its of on or s such that the their them then there these they this to
    was were what when where which who whom whose why will with would you your about after
    also any between during over under up than so not no nor our we he she his her""".split()  # noqa: SIM905
)
_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of ``text``, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word)
    return list(seen)


# Hangul syllables. Korean glues particles and endings to the word (서울에서, 서울의), so a
# whole space-separated word rarely matches another form of it; overlapping two-syllable
# pieces do (서울, 울에, 에서 share 서울 with 서울의). On KorQuAD (964 paragraphs, every
# 10th question) the gold paragraph is the first lexical hit for 91% of the questions
# with them, 76% with whole words; the trigram tokenizer (72%) and the kiwipiepy
# morphological analyser (92%, 30x slower to index, an 88 MB model) were measured too
# (benchmarks/RESULTS.md, "Korean lexical search").
_HANGUL_WORD = re.compile(r"[\uac00-\ud7a3]+")


def hangul_bigrams(word: str) -> list[str]:
    """A Hangul word as its overlapping two-syllable pieces (itself when one syllable)."""
    return [word] if len(word) < 2 else [word[i : i + 2] for i in range(len(word) - 1)]


def lexical_form(text: str) -> str:
    """``text`` as the lexical index stores it: each run of Hangul replaced by its
    two-syllable pieces, set apart from digits or letters glued to it (2월에 -> 2 월에);
    every other character unchanged (FTS5 tokenises and stems it)."""
    return _HANGUL_WORD.sub(lambda match: f" {' '.join(hangul_bigrams(match.group()))} ", text)


def lexical_terms(terms: list[str]) -> list[str]:
    """Query terms as searched in an index stored in ``lexical_form``, without repeats."""
    expanded: dict[str, None] = {}
    for term in terms:
        for piece in lexical_form(term).split():
            expanded.setdefault(piece)
    return list(expanded)


def stem(word: str) -> str:
    """A light English stem: a plural or verb ending off a word of four letters or more."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> list[str]:
    """The stems of ``text``'s content words, in order."""
    return [stem(term) for term in query_terms(text)]


def is_non_latin(text: str) -> bool:
    """True when most letters are outside the Latin script (Korean, Chinese, Cyrillic...)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    latin = sum(1 for c in letters if unicodedata.name(c, "").startswith("LATIN"))
    return latin < 0.5 * len(letters)


# --- citation markers: ``[n]`` points at the answer's n-th citation (1-based) ---------------

CITATION_MARKER = re.compile(r"\[(\d+)\]")


def marker(number: int) -> str:
    """The inline marker of citation ``number``."""
    return f"[{number}]"


def markers(text: str) -> list[int]:
    """The citation numbers in ``text`` in order of appearance."""
    return [int(m) for m in CITATION_MARKER.findall(text)]
