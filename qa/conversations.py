"""Saved conversations: each turn's question and structured ``Answer``, with the reader's
feedback, in one SQLite file; exported as Markdown, JSON or ``qa eval`` questions.

The store lives in a data folder beside the index (``default_data_dir``), not inside it:
the index is derived and safe to delete, conversations are not. Every call opens its own
connection, so the web app's worker threads can share one ``ConversationStore``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.records import Answer, Citation, CitedValue

DATA_DIR_NAME = "qa-data"
STORE_NAME = "conversations.sqlite"
MAX_TITLE_CHARS = 80

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,          -- the Answer record as JSON
    asked REAL NOT NULL,
    rating INTEGER,                -- +1 thumbs up, -1 thumbs down, NULL not judged
    comment TEXT
);
CREATE INDEX IF NOT EXISTS turns_by_conversation ON turns(conversation, id);
"""


class ConversationNotFoundError(QAError):
    """No saved conversation has this id (it was deleted, or the link is from another
    server): start a new conversation or pick one from the list."""


class ConversationStoreError(QAError):
    """The conversation store cannot be opened or written: check that the data folder is
    writable, or move the damaged file aside and a new store is made."""


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    title: str
    created: float
    updated: float
    turns: int


@dataclass(frozen=True)
class Turn:
    """One question and its answer; ``rating`` is +1, -1 or None (not judged)."""

    id: int
    question: str
    answer: Answer
    asked: float
    rating: int | None = None
    comment: str | None = None


def default_data_dir(index_dir: str | os.PathLike[str]) -> Path:
    """The data folder beside ``index_dir``: ``index/`` → ``qa-data/`` next to it."""
    return Path(index_dir).resolve().parent / DATA_DIR_NAME


def _known(record: type, data: dict[str, Any]) -> dict[str, Any]:
    # A record saved (or sent by a server) before or after a field was added still reads.
    names = {f.name for f in fields(record)}
    return {key: value for key, value in data.items() if key in names}


def answer_from_json(data: dict[str, Any]) -> Answer:
    """The ``Answer`` that ``dataclasses.asdict`` turned into ``data`` (as stored, or as the
    REST API sends it); fields this version does not know are left out."""
    values = _known(Answer, data)
    values["citations"] = [Citation(**_known(Citation, c)) for c in data.get("citations", [])]
    short = data.get("short_answer")
    values["short_answer"] = None if short is None else CitedValue(**_known(CitedValue, short))
    values["conflict"] = tuple(CitedValue(**_known(CitedValue, v)) for v in data.get("conflict", ()))
    return Answer(**values)


def title_for(question: str) -> str:
    """A conversation's first title: its first question, shortened to fit the list."""
    words = " ".join(question.split())
    return words if len(words) <= MAX_TITLE_CHARS else words[: MAX_TITLE_CHARS - 1].rstrip() + "…"


class ConversationStore:
    """Conversations in the SQLite file ``path`` (made, with its folder, on first write)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(self.path, timeout=10)) as db:
                db.execute("PRAGMA foreign_keys = ON")
                db.executescript(_SCHEMA)
                with db:  # one transaction, committed on success
                    yield db
        except sqlite3.Error as exc:
            raise ConversationStoreError(
                f"The conversation store '{self.path}' cannot be used ({exc}); make its folder "
                "writable, or move the file aside to start a new one."
            ) from exc
        except OSError as exc:
            raise ConversationStoreError(
                f"Cannot create the data folder '{self.path.parent}': {exc.strerror or exc}; "
                "make it writable or choose another data folder."
            ) from exc

    def create(self, title: str) -> str:
        """A new, empty conversation; returns its id."""
        conversation = uuid.uuid4().hex
        now = time.time()
        with self._db() as db:
            db.execute(
                "INSERT INTO conversations VALUES (?, ?, ?, ?)", (conversation, title_for(title), now, now)
            )
        return conversation

    def conversations(self) -> list[ConversationInfo]:
        """Every conversation, the most recently used first."""
        with self._db() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created, c.updated, count(t.id) FROM conversations c "
                "LEFT JOIN turns t ON t.conversation = c.id GROUP BY c.id ORDER BY c.updated DESC, c.rowid DESC"
            ).fetchall()
        return [ConversationInfo(*row) for row in rows]

    def info(self, conversation: str) -> ConversationInfo:
        """One conversation's title and dates. Raises ``ConversationNotFoundError``."""
        found = next((c for c in self.conversations() if c.id == conversation), None)
        if found is None:
            raise ConversationNotFoundError(
                f"No saved conversation '{conversation}'; start a new one or pick one from the list."
            )
        return found

    def rename(self, conversation: str, title: str) -> None:
        if not title.strip():
            raise ConversationStoreError("A conversation's name cannot be empty; type a name.")
        with self._db() as db:
            changed = db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (title_for(title), conversation)
            ).rowcount
        if not changed:
            self.info(conversation)  # raises: it is gone

    def delete(self, conversation: str) -> None:
        """Remove a conversation with its turns and feedback (nothing when it is gone)."""
        with self._db() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation,))

    def add_turn(self, conversation: str, answer: Answer) -> int:
        """Save ``answer`` (to ``answer.question``) as the conversation's next turn; returns
        the turn's id. Raises ``ConversationNotFoundError`` when the conversation is gone."""
        now = time.time()
        with self._db() as db:
            if db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation,)).fetchone() is None:
                raise ConversationNotFoundError(
                    f"No saved conversation '{conversation}' (deleted elsewhere?); start a new one."
                )
            cursor = db.execute(
                "INSERT INTO turns (conversation, question, answer, asked) VALUES (?, ?, ?, ?)",
                (conversation, answer.question, json.dumps(asdict(answer), ensure_ascii=False), now),
            )
            db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def turns(self, conversation: str) -> list[Turn]:
        """The conversation's turns, oldest first (empty for an unknown id)."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, question, answer, asked, rating, comment FROM turns "
                "WHERE conversation = ? ORDER BY id",
                (conversation,),
            ).fetchall()
        return [_turn(row) for row in rows]

    def judge(self, turn: int, rating: int, comment: str | None = None) -> None:
        """Record the reader's verdict on a turn: +1 (right) or -1 (wrong), with an optional
        comment (``None`` keeps the comment already saved)."""
        if rating not in (1, -1):
            raise ConversationStoreError(f"A rating is +1 or -1, not {rating!r}.")
        with self._db() as db:
            db.execute(
                "UPDATE turns SET rating = ?, comment = coalesce(?, comment) WHERE id = ?",
                (rating, None if comment is None else comment.strip() or None, turn),
            )

    def judged(self) -> list[Turn]:
        """Every turn a reader rated, oldest first, across conversations."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, question, answer, asked, rating, comment FROM turns "
                "WHERE rating IS NOT NULL ORDER BY id"
            ).fetchall()
        return [_turn(row) for row in rows]

    # --- exports ---

    def export_json(self, conversation: str) -> dict[str, Any]:
        """The conversation with every turn's full answer record and feedback."""
        info = self.info(conversation)
        return {
            "id": info.id,
            "title": info.title,
            "created": _iso(info.created),
            "updated": _iso(info.updated),
            "turns": [
                {
                    "question": t.question,
                    "asked": _iso(t.asked),
                    "answer": {"text": t.answer.text, **asdict(t.answer)},
                    "rating": t.rating,
                    "comment": t.comment,
                }
                for t in self.turns(conversation)
            ],
        }

    def export_markdown(self, conversation: str) -> str:
        """The conversation as Markdown: each question, its answer with ``[n]`` markers, and
        the sources (file, page, section, the cited excerpt)."""
        info = self.info(conversation)
        lines = [f"# {info.title}", "", f"_Saved by qa; last question {_iso(info.updated)}._"]
        for turn in self.turns(conversation):
            answer = turn.answer
            lines += ["", f"## {turn.question}", "", answer.text, ""]
            lines.append(
                "Closest passages (they do not answer the question):" if answer.abstained else "Sources:"
            )
            lines.append("")
            for n, c in enumerate(answer.citations, start=1):
                where = ", ".join(
                    [f"`{c.source}`"]
                    + ([f"p. {c.page}"] if c.page is not None else [])
                    + ([f"§ {c.section}"] if c.section else [])
                )
                lines.append(f"{n}. **{c.title}** ({where}, characters {c.start}–{c.end}): “{c.excerpt}”")
            if turn.rating is not None:
                verdict = "👍 right" if turn.rating > 0 else "👎 wrong"
                lines += ["", f"_Feedback: {verdict}" + (f" — {turn.comment}_" if turn.comment else "_")]
        return "\n".join(lines) + "\n"


def eval_item(turn: Turn) -> dict[str, Any]:
    """A judged turn as a ``qa eval`` question. A thumbs-up pins what was answered (its short
    answer or first cited sentence, its sources, or the abstention); a thumbs-down is a
    question to fix: ``any`` is empty, so it fails until you write the right answer in it
    (or set ``"abstain": true``)."""
    answer = turn.answer
    item: dict[str, Any] = {"id": f"feedback-{turn.id}", "question": turn.question, "type": "feedback"}
    if turn.rating is not None and turn.rating > 0:
        if answer.abstained:
            item["abstain"] = True
        else:
            expected = answer.short_answer.value if answer.short_answer else answer.citations[0].excerpt
            item["any"] = [expected]
            item["sources"] = sorted({c.source for c in answer.citations})
    else:
        item["any"] = []
        item["to_fix"] = "the answer was judged wrong: put the right answer in 'any' or set 'abstain'"
        item["answered"] = answer.text
    if turn.comment:
        item["comment"] = turn.comment
    return item


def export_feedback(store: ConversationStore, path: str | os.PathLike[str]) -> int:
    """Write every judged turn to ``path`` as ``qa eval`` JSONL; returns how many."""
    items = [eval_item(turn) for turn in store.judged()]
    Path(path).write_text(
        "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8"
    )
    return len(items)


def _turn(row: tuple[Any, ...]) -> Turn:
    return Turn(row[0], row[1], answer_from_json(json.loads(row[2])), row[3], row[4], row[5])


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
