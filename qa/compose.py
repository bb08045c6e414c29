"""Hits → an extractive, cited ``Answer``, or an abstention with the closest passages.

Every answer sentence is copied verbatim from a source and is the excerpt of its own
citation, so the answer cannot state anything its citations do not cover. The ``Answer``
is structure (citations in order, a short answer or a conflict between sources, a summary
flag); its text is rendered from that (``Answer.text``), never parsed back.

Candidates are answer units (``qa.answer_units``: sentences that can be read alone); the
learned scorer (``qa.answer_scorer``, trained and calibrated on SQuAD 2.0 articles) gives
each the probability that it answers the question. The best unit is the answer when that
probability reaches the threshold chosen on held-out articles; below it, the answer
abstains. Requests for a summary or an overview get the central unit of each of the most
relevant documents instead (``qa.summary``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from qa.answer_scorer import (
    SHORTLIST,
    AnswerScorer,
    Candidate,
    Similarity,
    best_part_cosines,
    candidates,
    cheap_scores,
    features,
    shipped_scorer,
    short_answer,
)
from qa.answer_types import answer_type
from qa.config import Thresholds
from qa.records import Answer, Citation, CitedValue, Hit
from qa.summary import is_summary_request, summary_units


def compose_answer(
    question: str,
    hits: Sequence[Hit],
    similarity: Similarity,
    *,
    cross_lingual: bool = False,
    thresholds: Thresholds | None = None,
    max_sentences: int = 2,
    scorer: AnswerScorer | None = None,
) -> Answer:
    """The best answer units, a summary, or an abstention.

    Only the ``SHORTLIST`` units with the best cheap lexical score are embedded and
    scored. A second unit joins the best when it is almost as likely to answer (90% of its
    probability); a conflict replaces it when both give different values of the asked type
    (a date or a number) with high probability.
    """
    if is_summary_request(question):
        return _summary(question, hits)
    scorer = shipped_scorer() if scorer is None else scorer
    thresholds = Thresholds() if thresholds is None else thresholds
    pool = candidates(hits)
    if not pool:
        return _abstain(question, hits)
    cheap = cheap_scores(question, pool)
    units = [pool[i] for i in np.argsort(-cheap, kind="stable")[:SHORTLIST]]
    cosine, best_part = best_part_cosines(units, similarity)
    probability = scorer.probabilities(features(question, units, cosine, best_part))
    order = [int(i) for i in np.argsort(-probability, kind="stable")]
    best = order[0]
    needed = _threshold(scorer, thresholds, cross_lingual=cross_lingual)
    evidence = {
        "answer_probability": round(float(probability[best]), 4),
        "similarity": round(float(cosine[best]), 4),
    }
    if probability[best] < needed:
        return _abstain(question, hits, evidence)

    chosen = [best]
    for i in order[1:]:
        if len(chosen) >= max_sentences or probability[i] < max(needed, 0.9 * probability[best]):
            break
        if not any(_overlap(units[i], units[j]) for j in chosen):
            chosen.append(i)
    values = {i: _value(question, units[i]) for i in order if probability[i] >= scorer.conflict_probability}
    rival = _conflict(question, units, values, order)
    if rival is not None:
        chosen = [best, rival]
    short = None if rival is not None else _value(question, units[best])
    if short is None and len({units[i].hit.chunk.source for i in chosen}) == 1:
        chosen.sort(key=lambda i: units[i].start)  # one document: keep its reading order
    citations = [_cite(units[i], float(probability[i])) for i in chosen]

    def cited(i: int, value: str) -> CitedValue:
        return CitedValue(value, chosen.index(i) + 1)

    return Answer(
        question=question,
        citations=citations,
        abstained=False,
        short_answer=None if short is None else cited(best, short),
        conflict=()
        if rival is None
        else (cited(best, values[best] or ""), cited(rival, values[rival] or "")),
        evidence=evidence,
    )


def _threshold(scorer: AnswerScorer, thresholds: Thresholds, *, cross_lingual: bool) -> float:
    if cross_lingual:
        return (
            scorer.cross_lingual_threshold if thresholds.cross_lingual is None else thresholds.cross_lingual
        )
    return scorer.threshold if thresholds.answer is None else thresholds.answer


def _value(question: str, unit: Candidate) -> str | None:
    """The unit's one clear value of the asked type (the short answer), or None."""
    span = short_answer(question, unit.text)
    return None if span is None else unit.text[span[0] : span[1]]


def _overlap(a: Candidate, b: Candidate) -> bool:
    return a.hit.chunk.source == b.hit.chunk.source and a.start < b.end and b.start < a.end


def _conflict(
    question: str, units: Sequence[Candidate], values: dict[int, str | None], order: list[int]
) -> int | None:
    """A unit from another document that gives a different date or number than the best
    unit, where both answer with high probability (``values`` holds the clear values of the
    asked type of just those units); or None. Two unrelated numbers never conflict, nor do
    two names for one place."""
    kind = answer_type(question)
    best = order[0]
    mine = values.get(best)
    if kind is None or kind.name not in ("time", "quantity") or mine is None:
        return None
    for i in order[1:]:
        theirs = values.get(i)
        other_source = units[i].hit.chunk.source != units[best].hit.chunk.source
        if theirs is not None and other_source and _number(theirs) != _number(mine):
            return i
    return None


def _number(value: str) -> str:
    return re.sub(r"\D", "", value) or value.casefold()


def _summary(question: str, hits: Sequence[Hit]) -> Answer:
    units = summary_units(hits)
    if not units:
        return _abstain(question, hits)
    return Answer(
        question=question,
        citations=[_cite(u, u.hit.score) for u in units],
        abstained=False,
        summary=True,
    )


def _cite(unit: Candidate, score: float) -> Citation:
    hit = unit.hit
    return Citation(hit.chunk.source, hit.title, unit.text, unit.start, unit.end, round(score, 4), hit.date)


def _abstain(question: str, hits: Sequence[Hit], evidence: dict[str, float] | None = None) -> Answer:
    citations = [
        Citation(h.chunk.source, h.title, h.chunk.text, h.chunk.start, h.chunk.end, round(h.score, 4), h.date)
        for h in hits[:3]
    ]
    return Answer(question=question, citations=citations, abstained=True, evidence=evidence or {})
