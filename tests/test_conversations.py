"""The conversation store: saved turns come back as the same answers; rename, delete,
feedback and the three exports (Markdown, JSON, ``qa eval`` questions)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from qa.cli import main
from qa.conversations import (
    ConversationNotFoundError,
    ConversationStore,
    ConversationStoreError,
    default_data_dir,
    eval_item,
    title_for,
)
from qa.evaluate import is_correct
from qa.records import Answer, Citation, CitedValue

BRUSSELS = Citation(
    "000.txt", "Meeting", "The ministers met in Brussels.", 10, 40, 1.04, "2024-10-17", 2, "Summit", False
)
ANSWERED = Answer(
    "Where did they meet?", [BRUSSELS], abstained=False, short_answer=CitedValue("Brussels", 1), query="q"
)
ABSTAINED = Answer("What is the tallest mountain?", [BRUSSELS], abstained=True, query="q")


@pytest.fixture
def store(tmp_path) -> ConversationStore:
    return ConversationStore(tmp_path / "data" / "conversations.sqlite")


def test_turns_come_back_as_the_answers_that_were_saved(store):
    first = store.create(ANSWERED.question)
    store.add_turn(first, ANSWERED)
    store.add_turn(first, ABSTAINED)
    second = store.create("x" * 200)
    assert [c.id for c in store.conversations()] == [second, first]  # most recent first
    assert [t.answer for t in store.turns(first)] == [ANSWERED, ABSTAINED]
    assert store.info(first).title == "Where did they meet?" and store.info(first).turns == 2
    assert len(store.info(second).title) == 80 and store.info(second).title.endswith("…")

    store.rename(first, "  Ministers  ")
    assert store.info(first).title == "Ministers"
    with pytest.raises(ConversationStoreError, match="cannot be empty"):
        store.rename(first, "   ")
    store.delete(first)
    assert [c.id for c in store.conversations()] == [second]
    assert store.turns(first) == []
    with pytest.raises(ConversationNotFoundError):
        store.add_turn(first, ANSWERED)
    with pytest.raises(ConversationNotFoundError):
        store.rename(first, "gone")


def test_exports_hold_the_answer_its_sources_and_the_feedback(store):
    conversation = store.create("Meeting")
    turn = store.add_turn(conversation, ANSWERED)
    store.judge(turn, -1, "It was in Mons")
    markdown = store.export_markdown(conversation)
    assert "## Where did they meet?" in markdown
    assert ANSWERED.text in markdown and "[1]" in markdown
    assert (
        "**Meeting** (`000.txt`, p. 2, § Summit, characters 10–40): “The ministers met in Brussels.”"
        in markdown
    )
    assert "👎 wrong — It was in Mons" in markdown
    exported = store.export_json(conversation)
    (saved,) = exported["turns"]
    assert saved["answer"]["citations"][0]["excerpt"] == BRUSSELS.excerpt
    assert saved["rating"] == -1 and saved["comment"] == "It was in Mons"
    store.judge(turn, 1)  # a later thumbs-up keeps the comment
    assert store.judged()[0].rating == 1 and store.judged()[0].comment == "It was in Mons"
    with pytest.raises(ConversationStoreError):
        store.judge(turn, 0)


def test_judged_turns_become_eval_questions():
    from qa.conversations import Turn

    right = eval_item(Turn(1, ANSWERED.question, ANSWERED, 0.0, 1))
    assert right == {
        "id": "feedback-1",
        "question": "Where did they meet?",
        "type": "feedback",
        "any": ["Brussels"],
        "sources": ["000.txt"],
    }
    assert is_correct(right, ANSWERED)  # the regression set passes on the answer it pins
    assert eval_item(Turn(2, ABSTAINED.question, ABSTAINED, 0.0, 1))["abstain"] is True
    wrong = eval_item(Turn(3, ANSWERED.question, ANSWERED, 0.0, -1, "It was in Mons"))
    assert wrong["any"] == [] and wrong["comment"] == "It was in Mons"
    assert not is_correct(wrong, ANSWERED)  # a question to fix fails until it is fixed


def test_feedback_export_command_writes_jsonl(tmp_path, capsys):
    index = tmp_path / "index"
    store = ConversationStore(default_data_dir(index) / "conversations.sqlite")
    conversation = store.create("c")
    store.judge(store.add_turn(conversation, ANSWERED), -1)
    store.add_turn(conversation, ABSTAINED)  # not judged: not exported
    out = tmp_path / "judged.jsonl"
    assert main(["feedback", "export", str(out), "--index", str(index)]) == 0
    (item,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert item["question"] == ANSWERED.question and item["any"] == []
    assert "1 judged question" in capsys.readouterr().err
    assert main(["feedback", "export", str(out), "--data", str(tmp_path / "none")]) == 1
    assert "No saved conversations" in capsys.readouterr().err


def test_a_damaged_store_is_one_clear_error(tmp_path):
    path = tmp_path / "conversations.sqlite"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(ConversationStoreError, match="move the file aside"):
        ConversationStore(path).conversations()
    assert title_for("  a\n b  ") == "a b"
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(path).execute("SELECT 1 FROM conversations")


def test_answer_records_read_back_whole_and_unknown_fields_are_skipped():
    from dataclasses import asdict, replace

    from qa.conversations import answer_from_json

    answer = replace(ANSWERED, generation="gen-000007", timings_ms={"total": 3.0}, evidence={"p": 0.9})
    data = {"text": answer.text, "from_a_newer_qa": 1, **asdict(answer)}
    data["citations"][0]["also_newer"] = True
    assert answer_from_json(data) == answer
