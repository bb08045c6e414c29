"""Follow-up questions: "Who represented South Korea there?" after "Where was the meeting
held?" is searched with the context it lacks. Every door resolves follow-ups through here
(``Engine.answer(question, history=...)``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from qa.records import Answer

# Words that point back at the previous question: pronouns, "there/then", demonstratives,
# "what about ...", a leading "and"; Korean 그/거기 forms. "that" counts only as a
# demonstrative or a final pronoun, not as a conjunction ("say that NATO ...") or a relative
# pronoun ("countries that are ...").
_REFERS_BACK = re.compile(
    r"\b(?:he|she|him|his|her|hers|it|its|they|them|their|theirs|there|then|this|these|those)\b"
    r"|\bthat\b(?!\s+(?:(?-i:[A-Z])|(?:the|a|an|he|she|it|they|we|i|you|is|are|was|were|has|have|had|"
    r"will|would|can|could|did|does|do)\b))"
    r"|^\s*(?:what|how)\s+about\b|^\s*and\b"
    r"|거기|그곳|그때|그것|그들|그녀|그 사람|그는|그가",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w[\w'’.-]*\w|\w")
# Question and function words, and the verbs of "where was X held": never what a
# follow-up refers to.
_QUESTION_WORDS = frozenset(
    re.findall(
        r"\w+",
        "who whom whose what which where when why how is are was were do does did the a an of in "
        "on at to for from by with about and or i you we it its he she they there then this that "
        "these those held take took place happen happened tell me please",
    )
)
# Korean question words and verb endings ("어디에서", "열렸나요"): not what is referred to.
_KOREAN_QUESTION = re.compile(
    r"^(?:어디|누가|누구|언제|무엇|무슨|어떤|어떻게|왜|몇|얼마)|(?:나요|니까|어요|아요|죠)$"
)
_SHORT_WORDS = 3
_MAX_CONTEXT_TERMS = 16


def refers_back(question: str) -> bool:
    """True when ``question`` leans on the previous one: a pronoun or "there", "what about",
    or too few words to stand alone."""
    return bool(_REFERS_BACK.search(question)) or len(_WORD.findall(question)) <= _SHORT_WORDS


def _words(text: str) -> list[str]:
    return [re.sub(r"['’]s$", "", w) for w in _WORD.findall(text) if w.lower() not in _QUESTION_WORDS]


def _names(text: str) -> list[str]:
    """Names, numbers and non-Latin words: what a pronoun or "there" can point at."""
    return [
        w
        for w in _words(text)
        if w[0].isupper() or w[0].isdigit() or (not w.isascii() and not _KOREAN_QUESTION.search(w))
    ]


def rewrite_followup(question: str, previous_query: str | None, previous_answer: str | None = None) -> str:
    """The query to search for: ``question`` itself or, when it refers back, ``question``
    followed in parentheses by the context it lacks.

    ``previous_answer`` is what the previous answer said first (its short answer, or its
    first sentence). The context is the names in it (what "there" or "he" most often points
    at), then the key terms of the previous query (its names, or its content words when it
    has none). Pure and cheap. The user's words come first and whole, so the engine still
    answers the question that was asked.
    """
    if not previous_query or not previous_query.strip() or not refers_back(question):
        return question
    seen = {w.lower() for w in _words(question)}
    terms: list[str] = []
    for term in [*_names(previous_answer or ""), *(_names(previous_query) or _words(previous_query))]:
        if term.lower() not in seen:
            seen.add(term.lower())
            terms.append(term)
    if not terms:
        return question
    return f"{question.strip()} ({' '.join(terms[:_MAX_CONTEXT_TERMS])})"


def first_statement(answer: Answer) -> str | None:
    """What an answer says first, the likeliest referent of a follow-up's "there" or "he":
    its short answer, the first value the sources disagree on, or its first sentence. None
    for an abstention, which states nothing."""
    if answer.abstained:
        return None
    if answer.short_answer is not None:
        return answer.short_answer.value
    if answer.conflict:
        return answer.conflict[0].value
    return answer.citations[0].excerpt if answer.citations else None


def resolve(question: str, history: Sequence[Answer]) -> str:
    """The query for ``question`` asked after the answers in ``history`` (oldest first):
    the question with the context of the last turn when it refers back to it. Earlier
    turns reach it through the last one's query, which carried their context."""
    if not history:
        return question
    previous = history[-1]
    return rewrite_followup(question, previous.query or previous.question, first_statement(previous))
