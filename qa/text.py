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
