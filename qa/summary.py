"""Requests for a summary or an overview, answered by an extractive multi-document summary:
the most central answer unit of each of the most relevant documents, each cited."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from qa.answer_scorer import Candidate, candidates, terms
from qa.records import Hit

_REQUEST = re.compile(
    r"^\s*(?:(?:please|can you|could you)\s+)?(?:"
    r"summari[sz]e|sum up|recap|give (?:me )?(?:an? |a short |a brief )?(?:overview|summary|gist)"
    r"|(?:an? |a short |a brief )?(?:overview|summary) of"
    r"|what (?:are|is|do|does) (?:all )?(?:these|the|this|my|those|your) "
    r"(?:documents?|articles?|files?|texts?|pages?|corpus|sources?|news)(?: all)? (?:about|say|cover)"
    r")|요약|개요|무엇에 관한",
    re.I,
)


def is_summary_request(question: str) -> bool:
    """Whether ``question`` asks for a summary or overview rather than for a fact."""
    return bool(_REQUEST.search(question))


def _centrality(unit: Candidate, others: Sequence[Candidate]) -> float:
    """Mean overlap (cosine of word sets) with the other units of its document: a central
    unit shares its words with the rest."""
    mine = terms(unit.text)
    if not mine or not others:
        return 0.0
    total = 0.0
    for other in others:
        theirs = terms(other.text)
        if theirs:
            total += len(mine & theirs) / math.sqrt(len(mine) * len(theirs))
    return total / len(others)


def summary_units(hits: Sequence[Hit], *, documents: int = 3) -> list[Candidate]:
    """The central unit of each of the first ``documents`` documents among ``hits`` (in
    rank order); a document's opening sentence, where it was retrieved, gets a small prior
    (news and documentation state their point first)."""
    by_source: dict[str, list[Candidate]] = {}
    for candidate in candidates(hits):
        by_source.setdefault(candidate.hit.chunk.source, []).append(candidate)
    chosen = []
    for units in list(by_source.values())[:documents]:
        prose = [u for u in units if len(u.text.split()) >= 6] or units

        def score(unit: Candidate, prose: list[Candidate] = prose) -> float:
            opening = unit.opens_passage and unit.hit.chunk.ordinal == 0
            return _centrality(unit, [o for o in prose if o is not unit]) + 0.1 * opening

        chosen.append(max(prose, key=score))
    return chosen
