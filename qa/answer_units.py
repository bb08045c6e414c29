"""Text → answer units: the smallest verbatim spans that can be read as an answer.

A unit is one sentence, or a sentence joined with its neighbour when it cannot stand alone:
it starts with a pronoun ("He asserted, ..."; "This meeting ..."), it introduces a list or a
quote that the next sentence gives ("... the following members:"). Headings, setext/RST
underlines, bullets and link lists are never units of their own; a heading glued to the
sentence after it (a single line break) is trimmed off that sentence. Every unit is a span
``text[start:end]`` of the text it came from, so it can be cited with exact offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from qa.chunking import split_sentences

# Words that point back to the previous sentence when they open one.
_BACK_REFERENCES = frozenset(
    "he she it they this these that those his her its their him them such there here".split()  # noqa: SIM905
)
_UNDERLINE = re.compile(r"^\s*([=\-~^*#+`'\".:_])\1{2,}\s*$")
_MARKDOWN_HEADING = re.compile(r"^\s*#{1,6}\s")
_BULLET = re.compile(r"^\s*(?:[-*+•·▪◦‣]|\d{1,3}[.)]|[a-z][.)])\s+")
_LINK = re.compile(r"\[[^\]]*\]\([^)]*\)|https?://\S+|<[^>]+>")
_SENTENCE_END = re.compile(r"[.!?。！？…]['\"”’)\]]*$")
_INTRODUCES = re.compile(r"(?::|\b(?:said|says|stated|stating|asserted|added|wrote|noted|declared),?)$", re.I)
_OPENING_QUOTE = re.compile(r"^[\"“'‘«]")
MAX_HEADING_WORDS = 12
MAX_UNIT_SENTENCES = 3


@dataclass(frozen=True)
class Unit:
    """A candidate answer: ``text[start:end]`` of the text it was built from.

    ``first``/``last`` are the indices of its sentences among the text's sentences, so a
    scorer can look at the neighbours; ``joined`` says why it spans more than one."""

    start: int
    end: int
    text: str
    first: int
    last: int
    joined: str = ""  # "", "back-reference" or "introduces"


def _words(line: str) -> list[str]:
    return re.findall(r"\w+", line)


def is_non_prose(line: str) -> bool:
    """A heading, underline, bullet, link list or other line that is not a sentence."""
    stripped = line.strip()
    if not stripped or _UNDERLINE.match(stripped) or _MARKDOWN_HEADING.match(stripped):
        return True
    if _BULLET.match(stripped):
        return True
    without_links = _LINK.sub(" ", stripped)
    if len(_words(without_links)) < 0.5 * len(_words(stripped)):
        return True  # mostly links
    if not _SENTENCE_END.search(stripped) and not stripped.endswith(":"):
        # No sentence punctuation: a heading, caption or byline when short.
        return len(_words(stripped)) <= MAX_HEADING_WORDS
    return False


def _trim_leading_non_prose(text: str, start: int, end: int) -> int:
    """Move ``start`` past whole lines at the top of a sentence that are headings etc."""
    while True:
        newline = text.find("\n", start, end)
        if newline < 0 or not is_non_prose(text[start:newline]):
            return start
        start = newline + 1
        while start < end and text[start].isspace():
            start += 1


def _prose_sentences(text: str, start: int, end: int | None) -> list[tuple[int, int] | None]:
    """Sentence spans with leading heading lines trimmed; ``None`` where nothing is prose."""
    spans: list[tuple[int, int] | None] = []
    for s, e in split_sentences(text, start, end):
        s = _trim_leading_non_prose(text, s, e)
        lines = text[s:e].splitlines()
        spans.append(None if s >= e or all(is_non_prose(line) for line in lines) else (s, e))
    return spans


def refers_back(sentence: str) -> bool:
    """Whether ``sentence`` opens with a word that points at the sentence before it."""
    first = _words(sentence[:40])
    return bool(first) and first[0].lower() in _BACK_REFERENCES


def _joins_previous(text: str, prose: list[tuple[int, int] | None], i: int) -> bool:
    """Sentence ``i`` refers back to sentence ``i - 1`` of the same paragraph, which ends
    like a sentence and introduces nothing."""
    span, previous = prose[i], prose[i - 1] if i > 0 else None
    if span is None or previous is None:
        return False
    before = text[previous[0] : previous[1]]
    return (
        refers_back(text[span[0] : span[1]])
        and bool(_SENTENCE_END.search(before))
        and not _introduces(before)
        and "\n\n" not in text[previous[1] : span[0]]  # a new paragraph starts afresh
    )


def _is_fragment(sentence: str) -> bool:
    """A piece of a sentence, not one: it starts in lower case or with punctuation (the
    rest of a sentence split at an abbreviation, ".python-version file with ..."), or it
    has no sentence punctuation at the end (a caption, a byline, a title run into a line)."""
    first = sentence.lstrip("\"“‘'([")[:1]
    if first and (first.islower() or first in ".,;:)-–—/"):
        return True
    return not _SENTENCE_END.search(sentence) and not _introduces(sentence) and not sentence.endswith(",")


def _introduces(sentence: str) -> bool:
    return bool(_INTRODUCES.search(sentence.rstrip()))


def build_units(text: str, start: int = 0, end: int | None = None) -> list[Unit]:
    """The answer units of ``text[start:end]`` in reading order, each span once.

    Each prose sentence that is not a fragment gives one unit: itself, or itself with the
    sentences before it that it refers back to (at most ``MAX_UNIT_SENTENCES`` in all)
    and/or the block after it (when it introduces a list or a quote; the block may be
    bullets, which are never units on their own).
    """
    raw = split_sentences(text, start, end)
    prose = _prose_sentences(text, start, end)
    units: dict[tuple[int, int], Unit] = {}
    for i, span in enumerate(prose):
        if span is None:
            continue
        sentence = text[span[0] : span[1]]
        if _is_fragment(sentence):
            continue
        first = last = i
        reasons = []
        # Reach back while the unit's first sentence refers to the one before it.
        while last - first < MAX_UNIT_SENTENCES - 1 and _joins_previous(text, prose, first):
            first -= 1
        if first < i:
            reasons.append("back-reference")
        following = text[raw[i + 1][0] : raw[i + 1][1]] if i + 1 < len(raw) else ""
        if following and (
            _introduces(sentence) or (sentence.endswith(",") and _OPENING_QUOTE.match(following))
        ):
            last = i + 1
            # A list given as bullets runs on to the end of the block of bullets.
            while last + 1 < len(raw) and all(
                _BULLET.match(line) for line in text[raw[last + 1][0] : raw[last + 1][1]].splitlines()
            ):
                last += 1
            reasons.append("introduces")
        unit_start = span[0] if first == i else prose[first][0]  # type: ignore[index]
        unit_end = span[1] if last == i else raw[last][1]
        key = (unit_start, unit_end)
        if key not in units:
            units[key] = Unit(unit_start, unit_end, text[unit_start:unit_end], first, last, "+".join(reasons))
    return sorted(units.values(), key=lambda u: (u.start, u.end))
