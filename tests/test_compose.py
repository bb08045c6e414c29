"""compose_answer on synthetic hits with a fake similarity function: which units are chosen,
when it abstains, the short answer, conflicts, summaries, and the offsets of every citation.

Where a test is about compose's rules rather than the learned model, it passes a scorer
whose probability is a fixed function of the unit's cosine, so the fake cosines set it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from qa.answer_scorer import FEATURES, AnswerScorer, shipped_scorer
from qa.compose import compose_answer
from qa.config import Thresholds
from qa.records import ABSTAIN_TEXT, Chunk, CitedValue, Hit


def _hit(chunk_id: int, source: str, title: str, body: str, *, score: float = 1.0) -> tuple[Hit, str]:
    """A hit whose chunk is the body of a document ``title\\n\\nbody``; returns the document
    text too, so that citation offsets can be checked against it."""
    text = f"{title}\n\n{body}"
    start = len(title) + 2
    return Hit(chunk_id, Chunk(source, 0, start, len(text), body), title, "2024-10-02", score), text


class FakeSimilarity:
    """Cosines by text (unit, sentence or clause), 0.1 for anything else; records each call."""

    def __init__(self, cosines: dict[str, float]) -> None:
        self.cosines = cosines
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([self.cosines.get(t, 0.1) for t in texts], dtype=np.float32)


def cosine_scorer(threshold: float = 0.5, conflict_probability: float = 0.7) -> AnswerScorer:
    """P = sigmoid(20 * (cosine - 0.5)): a cosine of 0.8 is P 0.998, 0.5 is 0.5, 0.1 is 0.0003."""
    coefficients = np.zeros(len(FEATURES))
    coefficients[FEATURES.index("cosine")] = 20.0
    return AnswerScorer(
        mean=np.zeros(len(FEATURES)),
        scale=np.ones(len(FEATURES)),
        coefficients=coefficients,
        intercept=-10.0,
        interactions=(),
        threshold=threshold,
        cross_lingual_threshold=threshold,
        conflict_probability=conflict_probability,
        articles={},
    )


def test_the_best_unit_is_cited_verbatim_with_a_short_answer_first():
    hit, document = _hit(
        7,
        "summit.txt",
        "Summit notes",
        "The defence summit was held in Brussels. Ministers met for two days.",
    )
    similarity = FakeSimilarity({"The defence summit was held in Brussels.": 0.8})
    answer = compose_answer("Where was the defence summit held?", [hit], similarity)

    assert not answer.abstained
    (citation,) = answer.citations
    assert citation.excerpt == "The defence summit was held in Brussels."
    assert document[citation.start : citation.end] == citation.excerpt
    assert (citation.source, citation.title, citation.date) == ("summit.txt", "Summit notes", "2024-10-02")
    assert answer.short_answer == CitedValue("Brussels", 1)
    assert answer.text == "Brussels [1]\n\nThe defence summit was held in Brussels. [1]"
    assert answer.evidence["similarity"] == pytest.approx(0.8)
    assert answer.evidence["answer_probability"] >= shipped_scorer().threshold


def test_weak_evidence_abstains_and_cites_the_closest_chunks_whole():
    hits = [
        _hit(n, f"d{n}.txt", f"Title {n}", f"Unrelated text number {n}. Nothing here.")[0] for n in range(5)
    ]
    answer = compose_answer("Where was the defence summit held?", hits, FakeSimilarity({}))
    assert answer.abstained and answer.text == ABSTAIN_TEXT
    assert [c.source for c in answer.citations] == ["d0.txt", "d1.txt", "d2.txt"]
    assert all(
        c.excerpt == h.chunk.text and c.start == h.chunk.start
        for c, h in zip(answer.citations, hits, strict=False)
    )
    assert answer.evidence["answer_probability"] < shipped_scorer().threshold
    assert answer.short_answer is None and not answer.conflict


def test_no_hits_abstain_without_citations():
    answer = compose_answer("Where was the summit?", [], FakeSimilarity({}))
    assert answer.abstained and answer.citations == [] and answer.evidence == {}


def test_the_threshold_decides_between_answering_and_abstaining():
    hit, _ = _hit(1, "a.txt", "Notes", "The defence summit was held in Brussels.")
    question = "Where was the defence summit held?"
    similarity = FakeSimilarity({hit.chunk.text: 0.55})  # P 0.73
    assert not compose_answer(question, [hit], similarity, scorer=cosine_scorer()).abstained
    strict = Thresholds(answer=0.9)
    assert compose_answer(question, [hit], similarity, scorer=cosine_scorer(), thresholds=strict).abstained


def test_two_sources_that_disagree_on_a_date_are_both_cited():
    a, _ = _hit(1, "a.txt", "Report A", "The defence summit was held in 2023.")
    b, _ = _hit(2, "b.txt", "Report B", "The defence summit was held in 2024.")
    similarity = FakeSimilarity({a.chunk.text: 0.8, b.chunk.text: 0.79})
    answer = compose_answer("When was the defence summit held?", [a, b], similarity, scorer=cosine_scorer())
    assert answer.conflict == (CitedValue("2023", 1), CitedValue("2024", 2))
    assert answer.short_answer is None
    assert [c.source for c in answer.citations] == ["a.txt", "b.txt"]
    assert answer.text.startswith("The sources disagree: 2023 [1] or 2024 [2].\n\n")


def test_a_conflict_needs_both_sides_to_answer_with_high_probability():
    a, _ = _hit(1, "a.txt", "Report A", "The defence summit was held in 2023.")
    b, _ = _hit(2, "b.txt", "Report B", "The defence summit was held in 2024.")
    similarity = FakeSimilarity({a.chunk.text: 0.8, b.chunk.text: 0.52})  # P 0.998 and 0.6
    answer = compose_answer("When was the defence summit held?", [a, b], similarity, scorer=cosine_scorer())
    assert not answer.conflict and answer.short_answer == CitedValue("2023", 1)


def test_numbers_of_another_type_never_conflict():
    """The Korean demo question once came back as "two NATO [1] or 17, South [2]"."""
    a, _ = _hit(1, "a.txt", "Report A", "The defence summit was held in 2023.")
    b, _ = _hit(2, "b.txt", "Report B", "The defence summit had 32 member states.")
    similarity = FakeSimilarity({a.chunk.text: 0.8, b.chunk.text: 0.8})
    answer = compose_answer(
        "When was the defence summit held?",
        [a, b],
        similarity,
        scorer=cosine_scorer(conflict_probability=0.0),
    )
    assert not answer.conflict and answer.short_answer == CitedValue("2023", 1)


def test_the_same_date_in_two_sources_is_no_conflict():
    a, _ = _hit(1, "a.txt", "Report A", "The defence summit was held in 2024.")
    b, _ = _hit(2, "b.txt", "Report B", "The defence summit was held in 2024.")
    similarity = FakeSimilarity({a.chunk.text: 0.8, b.chunk.text: 0.8})
    answer = compose_answer("When was the defence summit held?", [a, b], similarity, scorer=cosine_scorer())
    assert not answer.conflict and answer.short_answer == CitedValue("2024", 1)


def test_a_second_close_unit_is_added_in_the_documents_reading_order():
    first = "Ministers attended the defence summit in Tokyo."
    second = "The defence summit was attended by ministers in Seoul."
    hit, document = _hit(1, "a.txt", "Notes", f"{first} The weather was mild. {second}")
    similarity = FakeSimilarity({first: 0.70, second: 0.75, "The weather was mild.": 0.3})
    question = "Which ministers attended the defence summit?"
    answer = compose_answer(question, [hit], similarity, scorer=cosine_scorer())
    assert [c.excerpt for c in answer.citations] == [first, second]  # reading order, not score
    assert all(document[c.start : c.end] == c.excerpt for c in answer.citations)
    assert answer.text == f"{first} [1] {second} [2]"
    single = compose_answer(question, [hit], similarity, scorer=cosine_scorer(), max_sentences=1)
    assert [c.excerpt for c in single.citations] == [second]


def test_a_sentence_that_starts_with_a_pronoun_is_cited_with_the_one_it_refers_to():
    body = (
        "Rutte addressed China's role in the war. He asserted, \"China has become a decisive "
        'enabler of the war." The talks ended at noon.'
    )
    hit, document = _hit(1, "a.txt", "Notes", body)
    joined = body[: body.index(" The talks")]
    answer = compose_answer(
        "How did Rutte describe China's role?", [hit], FakeSimilarity({joined: 0.8}), scorer=cosine_scorer()
    )
    assert [c.excerpt for c in answer.citations] == [joined]
    assert document[answer.citations[0].start : answer.citations[0].end] == joined


def test_headings_are_never_cited():
    body = "Release Notes\n=============\n\nThe release fixes two bugs in the merge command."
    hit, _ = _hit(1, "notes.md", "Notes", body)
    similarity = FakeSimilarity({"Release Notes\n=============": 0.9, "Release Notes": 0.9})
    answer = compose_answer("What does the release fix?", [hit], similarity, scorer=cosine_scorer(0.0))
    assert [c.excerpt for c in answer.citations] == ["The release fixes two bugs in the merge command."]


def test_only_the_best_units_by_the_cheap_scores_are_embedded():
    body = " ".join(f"Sentence {n} mentions cargo number {n}." for n in range(30))
    hit, _ = _hit(1, "a.txt", "Notes", body)
    similarity = FakeSimilarity({})
    compose_answer("Which cargo number is mentioned?", [hit], similarity)
    assert len(similarity.calls) == 1 and len(similarity.calls[0]) == 16


def test_each_unit_is_also_judged_by_its_best_clause():
    sentence = "After a long day of talks, the ministers met in Brussels, where the summit ended on Monday."
    hit, _ = _hit(1, "a.txt", "Notes", sentence)
    similarity = FakeSimilarity({"the ministers met in Brussels": 0.6})
    compose_answer("장관들은 어디에서 만났나요?", [hit], similarity, cross_lingual=True)
    assert set(similarity.calls[0]) >= {sentence, "the ministers met in Brussels"}


def test_a_summary_request_gets_the_central_passage_of_each_document():
    a, first = _hit(
        1,
        "a.txt",
        "Summit",
        "Ministers met in Brussels. The ministers agreed on air defence for the alliance. Lunch was served.",
    )
    b, second = _hit(
        2, "b.txt", "Exercise", "The cyber exercise ran in Estonia. The exercise tested cyber defence."
    )
    answer = compose_answer("Summarise the documents", [a, b], FakeSimilarity({}))
    assert answer.summary and not answer.abstained
    assert [c.source for c in answer.citations] == ["a.txt", "b.txt"]
    assert answer.text.startswith("A summary of the 2 most relevant documents")
    for citation, document in zip(answer.citations, (first, second), strict=True):
        assert document[citation.start : citation.end] == citation.excerpt
    assert replace(answer, summary=False).render_lead() == ""
