"""Follow-up questions: the pure rewriting, then the same resolution through every door
(``Engine.answer(history=...)``, ``qa.answer``, ``qa ask --follow-up``, ``qa chat``) on the
real models. The web chat's follow-up is tested in the browser (tests/test_web.py)."""

from __future__ import annotations

import io
import json

import pytest

import qa
from qa.cli import main
from qa.conversation import first_statement, refers_back, resolve, rewrite_followup
from qa.records import Answer, Citation, CitedValue

MEETING = "Where was the NATO Defense Ministers' Meeting held in October 2024?"
# What the answer to MEETING says first (its first cited sentence).
MEETING_ANSWER = (
    "Scheduled for October 16-17 in Brussels, this meeting will showcase NATO's commitment to a "
    "united front in addressing shared security challenges."
)
FOLLOW_UP = "Who represented South Korea there?"


@pytest.mark.parametrize(
    "question",
    [
        "Who represented South Korea there?",
        "What did he propose?",
        "When did that meeting start?",
        "Who said that?",
        "What about Japan?",
        "And Australia?",
        "Why?",
        "거기에는 누가 참석했나요?",
    ],
)
def test_questions_that_refer_back(question):
    assert refers_back(question)


@pytest.mark.parametrize(
    "question",
    [
        MEETING,
        "Which countries does NATO say are supporting Russia?",
        "What did Rutte say that China is doing for Russia?",  # "that" as a conjunction
        "Which countries that are Indo-Pacific partners joined the meeting?",  # relative "that"
        "NATO 국방장관 회의는 어디에서 열렸나요?",
    ],
)
def test_standalone_questions_are_searched_as_asked(question):
    assert not refers_back(question)
    assert rewrite_followup(question, MEETING, MEETING_ANSWER) == question


def test_followup_keeps_the_users_words_and_adds_the_previous_turns_names():
    query = rewrite_followup("Who represented South Korea there?", MEETING, MEETING_ANSWER)
    assert query.startswith("Who represented South Korea there? (")
    context = query.removeprefix("Who represented South Korea there? (").removesuffix(")").split()
    # "there" is Brussels, from the answer; the meeting comes from the question.
    assert {"Brussels", "NATO", "Defense", "Ministers", "Meeting", "2024"} <= set(context)
    assert not {"Where", "was", "the", "held", "South", "Korea"} & set(context)


def test_followups_chain_through_the_previous_query_and_answer():
    second = rewrite_followup("Who represented South Korea there?", MEETING, MEETING_ANSWER)
    answer = (
        "At the NATO Defense Ministers' Meeting in Brussels on Oct. 17, South Korea’s Vice Defense "
        "Minister Kim Seonho took the opportunity to outline specific proposals."
    )
    third = rewrite_followup("What did he propose?", second, answer)
    assert third.startswith("What did he propose? (")
    assert "Kim Seonho" in third and "Brussels" in third


def test_no_previous_question_or_no_context_means_no_rewrite():
    assert rewrite_followup("What did he say?", None) == "What did he say?"
    assert rewrite_followup("What did he say?", "   ") == "What did he say?"
    assert rewrite_followup("Who said it?", "who said it?") == "Who said it?"


def test_followup_after_a_lowercase_question_uses_its_content_words():
    query = rewrite_followup("And then?", "how large is the defence budget?")
    assert query == "And then? (large defence budget)"


def test_korean_followup_takes_the_topic_not_the_question_words():
    query = rewrite_followup("거기에는 누가 참석했나요?", "NATO 국방장관 회의는 어디에서 열렸나요?")
    assert query.startswith("거기에는 누가 참석했나요? (")
    assert "NATO" in query and "국방장관" in query
    assert "어디에서" not in query and "열렸나요" not in query


# --- what a previous answer contributes --------------------------------------------------------


def _answer(*, short: str | None = None, conflict: tuple[str, ...] = (), abstained: bool = False) -> Answer:
    citations = [Citation("a.txt", "A", "Scheduled for October in Brussels.", 0, 34, 0.5)]
    return Answer(
        question=MEETING,
        citations=citations,
        abstained=abstained,
        short_answer=None if short is None else CitedValue(short, 1),
        conflict=tuple(CitedValue(v, 1) for v in conflict),
        query=MEETING,
    )


def test_the_first_statement_is_the_short_answer_the_conflict_or_the_first_sentence():
    assert first_statement(_answer(short="Brussels")) == "Brussels"
    assert first_statement(_answer(conflict=("2023", "2024"))) == "2023"
    assert first_statement(_answer()) == "Scheduled for October in Brussels."
    assert first_statement(_answer(abstained=True)) is None


def test_resolve_uses_the_last_turn_only_and_keeps_standalone_questions():
    assert resolve(FOLLOW_UP, []) == FOLLOW_UP
    earlier = _answer(short="Seoul")
    resolved = resolve(FOLLOW_UP, [earlier, _answer(short="Brussels")])
    assert resolved.startswith(f"{FOLLOW_UP} (Brussels") and "Seoul" not in resolved
    assert resolve(MEETING, [earlier]) == MEETING
    # An abstention states nothing: only the previous question's names are carried.
    assert "Brussels" not in resolve(FOLLOW_UP, [_answer(short="Brussels", abstained=True)])


# --- every door resolves follow-ups the same way (real models) -------------------------------


def _check_resolved(answer: Answer) -> None:
    assert answer.question == FOLLOW_UP
    assert answer.query.startswith(f"{FOLLOW_UP} (") and "Brussels" in answer.query
    assert not answer.abstained and "Kim Seonho" in answer.text  # the vice minister in Brussels
    assert "000_f97bd294237ad65e.txt" in {c.source for c in answer.citations}


@pytest.mark.slow
def test_engine_and_qa_answer_resolve_a_follow_up(demo_engine, demo_index):
    first = demo_engine.answer(MEETING)
    _check_resolved(demo_engine.answer(FOLLOW_UP, history=[first]))
    alone = demo_engine.answer(FOLLOW_UP)
    assert alone.query == FOLLOW_UP
    _check_resolved(qa.answer(FOLLOW_UP, history=[first], index_dir=demo_index))


@pytest.mark.slow
def test_cli_ask_follow_up_and_chat_resolve_it_too(demo_index, capsys, monkeypatch):
    index = ["--index", str(demo_index)]
    assert main(["ask", FOLLOW_UP, "--follow-up", MEETING, "--json", *index]) == 0
    _check_resolved(_from_json(json.loads(capsys.readouterr().out)))

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{MEETING}\n{FOLLOW_UP}\n"))
    assert main(["chat", *index]) == 0
    out = capsys.readouterr().out
    first, second = out.split("\n\n(searched for: ")
    assert "Brussels" in first and "[1]" in first
    assert second.startswith(f"{FOLLOW_UP} (") and "Kim Seonho" in second


def _from_json(data: dict) -> Answer:
    citations = [Citation(**c) for c in data["citations"]]
    return Answer(data["question"], citations, data["abstained"], query=data["query"])
