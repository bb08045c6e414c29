"""What a question asks for (a person, a time, a place, a quantity...) and the values of that
type a sentence holds. English and Korean question words."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class AnswerType:
    """A kind of thing a question asks for, and how such a thing looks in a sentence (the
    ``value`` group is the thing itself; ``None`` when it has no recognisable shape)."""

    name: str
    asks: re.Pattern[str]
    value: re.Pattern[str] | None = None


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_NUMBER_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|thousand"
_YEAR = r"(?:1[0-9]|20)\d\d"

# Checked in this order; the first whose ``asks`` matches is the question's type.
ANSWER_TYPES = (
    AnswerType(
        "time",
        re.compile(
            r"^\s*(?:in |at |by |since |until )?when\b|\bwhat (?:year|date|month|day|time|century|decade|period|era)\b"
            r"|\b(?:which|what) (?:year|date)\b|\bhow long ago\b|언제|몇 년|몇년|연도",
            re.I,
        ),
        re.compile(
            rf"(?P<value>\b{_MONTH} \d{{1,2}}(?!\d)(?:[-–]\d{{1,2}})?(?:, {_YEAR})?|\b\d{{1,2}} {_MONTH}(?: {_YEAR})?"
            rf"|\b{_MONTH} {_YEAR}|\b{_YEAR}s?\b|\b\d{{1,2}}(?:st|nd|rd|th) century\b|\d{{4}}년)"
        ),
    ),
    AnswerType(
        "quantity",
        re.compile(
            r"^\s*how (?:many|much|long|old|far|large|big|high|tall|often)\b|\bwhat (?:percentage|number|amount)\b|몇|얼마",
            re.I,
        ),
        re.compile(
            rf"(?P<value>(?:[$€£¥]\s?)?\b(?:\d[\d,.]*|{_NUMBER_WORDS})(?: (?:million|billion|thousand|hundred|percent|per cent))?"
            r"(?:%| [a-z]{3,})?)\b|(?P<ko>\d[\d,.]*\s?[가-힣]{1,2})",
            re.I,
        ),
    ),
    AnswerType(
        "place",
        re.compile(
            r"^\s*(?:in |from |to )?where\b|\b(?:what|which) (?:city|country|place|region|state|town|river|continent)\b|어디|어느 곳|어느 나라",
            re.I,
        ),
        re.compile(
            r"\b(?:in|at|near|from|to) (?:the )?(?P<value>[A-Z][\w'’.-]+(?: (?:of )?[A-Z][\w'’.-]+)*)"
        ),
    ),
    AnswerType(
        "person",
        re.compile(r"^\s*(?:by |to |for |with )?who(?:m|se)?\b|누구|누가", re.I),
        re.compile(
            r"(?P<value>\b[A-Z][a-z]+(?:[ -](?:(?:de|van|von|der|al|bin) )?[A-Z][a-z]+)+|\b[A-Z][a-z]{2,}\b)"
        ),
    ),
    AnswerType("reason", re.compile(r"^\s*why\b|\bwhat (?:caused|causes|led to)\b|왜|이유", re.I)),
    AnswerType("manner", re.compile(r"^\s*how\b|어떻게", re.I)),
    AnswerType(
        "entity", re.compile(r"\b(?:which|what) [a-z]+|\bname (?:a|the|one)\b|무엇|무슨|어떤|어느", re.I)
    ),
    AnswerType("definition", re.compile(r"^\s*what\b|\bwhat (?:is|are|was|were|does|do|did)\b|뭐", re.I)),
)
TYPE_NAMES = tuple(kind.name for kind in ANSWER_TYPES)


def answer_type(question: str) -> AnswerType | None:
    """The first type whose question words ``question`` uses, or ``None``."""
    return next((kind for kind in ANSWER_TYPES if kind.asks.search(question)), None)


def values(kind: AnswerType, text: str, question: str) -> list[tuple[int, int]]:
    """Spans of the values of ``kind`` in ``text`` that the question does not already name,
    each once, in order."""
    if kind.value is None:
        return []
    asked = question.casefold()
    spans: dict[str, tuple[int, int]] = {}
    for match in kind.value.finditer(text):
        group = "value" if match.group("value") is not None else "ko"
        start, end = match.span(group)
        while end > start and text[end - 1] in " ,.;:":
            end -= 1
        value = text[start:end]
        if kind.name == "person" and " " not in value and _opens_sentence(text, start):
            continue  # "Another option ...": a capital that only opens a sentence names no one
        if value and value.casefold() not in asked:
            spans.setdefault(value.casefold(), (start, end))
    return list(spans.values())


def _opens_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"“'‘(")
    return not before or before[-1] in ".!?:\n"
