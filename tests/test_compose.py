"""compose_answer on synthetic hits with a fake similarity function: which sentences are
chosen, when it abstains, the short answer, conflicts, and the offsets of every citation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from qa.answerability import shipped_model
from qa.compose import compose_answer, rank_units
from qa.config import Thresholds
from qa.records import ABSTAIN_TEXT, Chunk, CitedValue, Hit

NEVER = Thresholds(answer=0.0, cross_lingual=0.0)  # answer whatever the probability


def _hit(chunk_id: int, source: str, title: str, body: str, *, score: float = 1.0) -> tuple[Hit, str]:
    """A hit whose chunk is the body of a document ``title\\n\\nbody``; returns the document
    text too, so that citation offsets can be checked against it."""
    text = f"{title}\n\n{body}"
    start = len(title) + 2
    return Hit(chunk_id, Chunk(source, 0, start, len(text), body), title, "2024-10-02", score), text


class FakeSimilarity:
    """Cosines by sentence (or clause) text, 0.1 for anything else; records each call."""

    def __init__(self, cosines: dict[str, float]) -> None:
        self.cosines = cosines
        self.calls: list[list[str]] = []

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        self.calls.append(list(sentences))
        return np.array([self.cosines.get(s, 0.1) for s in sentences], dtype=np.float32)


def test_the_best_sentence_is_cited_verbatim_with_a_short_answer_first():
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
    assert answer.evidence["similarity"] == pytest.approx(0.1) and answer.evidence["coverage"] == 0.0
    assert answer.short_answer is None and not answer.conflict


def test_no_hits_abstain_without_citations():
    answer = compose_answer("Where was the summit?", [], FakeSimilarity({}))
    assert answer.abstained and answer.citations == [] and answer.evidence == {}


def test_the_answer_probability_decides_and_the_threshold_can_be_set():
    hit, _ = _hit(1, "a.txt", "Notes", "The defence summit was held in Brussels.")
    question = "Where was the defence summit held?"
    similarity = FakeSimilarity({hit.chunk.text: 0.7})
    answer = compose_answer(question, [hit], similarity)
    probability = answer.evidence["answer_probability"]
    assert not answer.abstained and probability >= shipped_model().threshold
    assert compose_answer(
        question, [hit], similarity, thresholds=Thresholds(answer=probability + 1e-3)
    ).abstained


def test_more_evidence_never_lowers_the_answer_probability():
    hit, _ = _hit(1, "a.txt", "Notes", "The defence summit was held in Brussels.")
    question = "Where was the defence summit held?"

    def probability(cosine: float) -> float:
        similarity = FakeSimilarity({hit.chunk.text: cosine})
        return compose_answer(question, [hit], similarity, thresholds=NEVER).evidence["answer_probability"]

    assert probability(0.2) < probability(0.5) < probability(0.8)
    unrelated, _ = _hit(2, "b.txt", "Notes", "The weather in the capital was mild all week.")
    weak = compose_answer(question, [unrelated], FakeSimilarity({}), thresholds=NEVER)
    assert weak.evidence["answer_probability"] < probability(0.2)


def test_headings_and_fragments_are_never_answers():
    body = "Release Notes\n=============\n\nThe default timeout is 30 seconds. file with the pyenv local command."
    hit, _ = _hit(1, "notes.txt", "Notes", body)
    answer = compose_answer("What is the default timeout?", [hit], FakeSimilarity({}), thresholds=NEVER)
    assert [c.excerpt for c in answer.citations] == ["The default timeout is 30 seconds."]


def test_a_sentence_that_starts_with_he_is_cited_with_the_one_it_refers_to():
    body = "Rutte spoke about China on Tuesday. He called it a decisive enabler of the war."
    hit, document = _hit(1, "a.txt", "Notes", body)
    # The joined unit is one candidate, embedded as a whole; it is cited whole.
    similarity = FakeSimilarity({body: 0.7})
    answer = compose_answer("How did Rutte describe China?", [hit], similarity, thresholds=NEVER)
    (citation,) = answer.citations
    assert citation.excerpt == body and document[citation.start : citation.end] == body


def test_two_sources_that_disagree_on_a_date_are_both_cited():
    a, _ = _hit(1, "a.txt", "Report A", "The defence summit was held in 2023.")
    b, _ = _hit(2, "b.txt", "Report B", "The defence summit was held in 2024.")
    similarity = FakeSimilarity({a.chunk.text: 0.8, b.chunk.text: 0.8})
    answer = compose_answer("When was the defence summit held?", [a, b], similarity)
    assert answer.conflict == (CitedValue("2023", 1), CitedValue("2024", 2))
    assert answer.short_answer is None
    assert [c.source for c in answer.citations] == ["a.txt", "b.txt"]
    assert answer.text.startswith("The sources disagree: 2023 [1] or 2024 [2].\n\n")


def test_a_different_number_in_a_passage_that_does_not_answer_is_no_conflict():
    a, _ = _hit(1, "a.txt", "Report A", "The defence summit was held in 2024.")
    b, _ = _hit(2, "b.txt", "Report B", "Trade between the two grew in 2019.")
    similarity = FakeSimilarity({a.chunk.text: 0.8, b.chunk.text: 0.75})
    answer = compose_answer("When was the defence summit held?", [a, b], similarity)
    assert not answer.conflict and answer.short_answer == CitedValue("2024", 1)


def test_the_same_date_in_two_sources_is_no_conflict():
    a, _ = _hit(1, "a.txt", "Report A", "The defence summit was held in 2024.")
    b, _ = _hit(2, "b.txt", "Report B", "The defence summit was held in 2024.")
    answer = compose_answer("When was the defence summit held?", [a, b], FakeSimilarity({a.chunk.text: 0.8}))
    assert not answer.conflict and answer.short_answer == CitedValue("2024", 1)


def test_a_second_close_sentence_is_added_in_the_documents_reading_order():
    first = "Ministers attended the defence summit in Tokyo."
    second = "The defence summit was attended by ministers in Seoul."
    hit, document = _hit(1, "a.txt", "Notes", f"{first} The weather was mild. {second}")
    # The second sentence scores best; the first is close; the weather, similar as it is, is
    # far below both once the question's words count.
    similarity = FakeSimilarity({first: 0.70, second: 0.85, "The weather was mild.": 0.84})
    answer = compose_answer("Which ministers attended the defence summit?", [hit], similarity)
    assert [c.excerpt for c in answer.citations] == [first, second]  # reading order, not score
    assert all(document[c.start : c.end] == c.excerpt for c in answer.citations)
    assert answer.text == f"{first} [1] {second} [2]"
    single = compose_answer(
        "Which ministers attended the defence summit?", [hit], similarity, max_sentences=1
    )
    assert [c.excerpt for c in single.citations] == [second]


def test_only_the_best_units_by_the_cheap_scores_are_embedded():
    body = " ".join(f"Sentence {n} mentions cargo number {n}." for n in range(30))
    hit, _ = _hit(1, "a.txt", "Notes", body)
    similarity = FakeSimilarity({})
    rank_units("Which cargo number is mentioned?", [hit], similarity, units_to_embed=4)
    assert [len(call) for call in similarity.calls] == [4]


def test_cross_lingual_questions_are_judged_by_their_best_clause():
    sentence = "After a long day of talks, the ministers met in Brussels, where the summit ended on Monday."
    hit, _ = _hit(1, "a.txt", "Notes", sentence)
    similarity = FakeSimilarity({"the ministers met in Brussels": 0.6})
    question = "장관들은 어디에서 만났나요?"  # no word in common with the English text
    answer = compose_answer(question, [hit], similarity, cross_lingual=True)
    assert not answer.abstained and answer.citations[0].excerpt == sentence
    assert set(similarity.calls[0]) >= {sentence, "the ministers met in Brussels"}
    # Scored on the whole sentence, as an English question is, the clause's match is lost.
    assert compose_answer(question, [hit], FakeSimilarity({"the ministers met in Brussels": 0.6})).abstained
