"""Requests for a summary or an overview, answered by an extractive multi-document summary:
the most central answer unit of each of the most relevant documents, each cited."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from qa.compose import Unit, candidate_units
from qa.records import Answer, Citation, Hit
from qa.text import query_terms, stems

_REQUEST = re.compile(
    r"^\s*(?:(?:please|can you|could you)\s+)?(?:"
    r"summari[sz]e|sum up|recap|give (?:me )?(?:an? |a short |a brief )?(?:overview|summary|gist)"
    r"|(?:an? |a short |a brief )?(?:overview|summary) of"
    r"|what (?:are|is|do|does) (?:all )?(?:these|the|this|my|those|your) "
    r"(?:documents?|articles?|files?|texts?|pages?|corpus|sources?|news)(?: all)? (?:about|say|cover)"
    r")|요약|개요|무엇에 관한",
    re.I,
)
# What a request says besides "summarise" that is not its topic.
_NOT_TOPIC_WORDS = (
    "summarise summarize summary sum recap overview gist give brief short please documents document "
    "articles article files file texts text pages page corpus sources source news these those all "
    "요약 요약해 요약해줘 요약해주세요 개요 문서 문서들 기사 기사들"
)
_NOT_TOPIC = frozenset(_NOT_TOPIC_WORDS.split())


def is_summary_request(question: str) -> bool:
    """Whether ``question`` asks for a summary or overview rather than for a fact."""
    return bool(_REQUEST.search(question))


def summary_topic(question: str) -> str:
    """The request's topic ("Summarise the articles about NATO" → "NATO"), or "" when it
    asks about the documents as a whole."""
    content = set(query_terms(question)) - _NOT_TOPIC
    return " ".join(w for w in re.findall(r"\w+", question) if w.casefold() in content)


def _centrality(unit: Unit, others: Sequence[Unit]) -> float:
    """Mean overlap (cosine of word sets) with the other units of its document: a central
    unit shares its words with the rest."""
    mine = set(stems(unit.text))
    if not mine or not others:
        return 0.0
    total = 0.0
    for other in others:
        theirs = set(stems(other.text))
        if theirs:
            total += len(mine & theirs) / math.sqrt(len(mine) * len(theirs))
    return total / len(others)


def summarise(question: str, hits: Sequence[Hit], *, documents: int = 3) -> Answer:
    """The central unit of each of the first ``documents`` documents among ``hits`` (in
    rank order), cited; a document's opening unit gets a small prior (news and
    documentation state their point first). Abstains when the hits hold no unit."""
    by_source: dict[str, list[Unit]] = {}
    for unit in candidate_units(hits):
        by_source.setdefault(unit.hit.chunk.source, []).append(unit)
    citations = []
    for units in list(by_source.values())[:documents]:
        prose = [u for u in units if len(u.text.split()) >= 6] or units

        def score(unit: Unit, prose: list[Unit] = prose) -> float:
            opening = unit.hit.chunk.ordinal == 0 and unit.start == min(u.start for u in prose)
            return _centrality(unit, [o for o in prose if o is not unit]) + 0.1 * opening

        best = max(prose, key=score)
        hit = best.hit
        citations.append(
            Citation(
                hit.chunk.source, hit.title, best.text, best.start, best.end, round(hit.score, 4), hit.date
            )
        )
    return Answer(question=question, citations=citations, abstained=not citations, summary=bool(citations))
