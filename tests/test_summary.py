"""Requests for a summary get an extractive, cited, labelled summary, never an abstention."""

from __future__ import annotations

import pytest

from qa.records import Chunk, Hit
from qa.summary import is_summary_request, summarise, summary_topic


@pytest.mark.parametrize(
    "request_text",
    [
        "Summarise the articles",
        "summarize these documents",
        "Give me an overview of the NATO meetings",
        "What are these documents about?",
        "Can you sum up the news?",
        "문서들을 요약해줘",
    ],
)
def test_summary_requests_are_recognised(request_text):
    assert is_summary_request(request_text)


@pytest.mark.parametrize(
    "question",
    [
        "Where did the ministers meet?",
        "What is the summary judgment procedure?",
        "How many members are there?",
    ],
)
def test_questions_of_fact_are_not_summary_requests(question):
    assert not is_summary_request(question)


def test_the_topic_is_what_the_request_names_besides_summarising():
    assert summary_topic("Summarise the articles about NATO") == "NATO"
    assert summary_topic("Summarise the articles") == ""


def _document(source: str, title: str, body: str, chunk_id: int) -> tuple[Hit, str]:
    text = f"{title}\n\n{body}"
    start = len(title) + 2
    return Hit(chunk_id, Chunk(source, 0, start, len(text), body), title, None, 1.0), text


def test_each_document_gives_its_central_sentence_cited_verbatim():
    a, text_a = _document(
        "a.txt",
        "Defence",
        "Weather was mild. Ministers of NATO met to discuss defence spending. "
        "Defence spending by NATO ministers rose. Lunch was served.",
        1,
    )
    b, text_b = _document(
        "b.txt", "Trade", "Trade talks between Korea and Japan ended. Both sides agreed.", 2
    )
    answer = summarise("Summarise the articles", [a, b])
    assert answer.summary and not answer.abstained
    assert [c.source for c in answer.citations] == ["a.txt", "b.txt"]
    first = answer.citations[0]
    assert first.excerpt == "Ministers of NATO met to discuss defence spending."
    assert text_a[first.start : first.end] == first.excerpt
    second = answer.citations[1]
    assert text_b[second.start : second.end] == second.excerpt
    assert answer.text.startswith("Summary: the central passage of each of 2 documents.")


def test_nothing_to_summarise_abstains():
    assert summarise("Summarise the articles", []).abstained


@pytest.mark.slow
def test_summarise_the_demo_corpus(demo_engine):
    answer = demo_engine.answer("Summarise the articles")
    assert answer.summary and not answer.abstained
    assert len({c.source for c in answer.citations}) >= 3
    topical = demo_engine.answer("Give me an overview of the NATO defence ministers meeting")
    assert topical.summary and any("NATO" in c.excerpt or "NATO" in c.title for c in topical.citations)
