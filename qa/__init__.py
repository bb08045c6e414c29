"""qa: ask questions of your documents and get answers with exact, cited excerpts."""

from qa.config import Settings
from qa.errors import (
    CorpusError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    QAError,
    QuestionError,
)
from qa.pipeline import Engine, answer
from qa.records import Answer, BuildReport, Citation, Hit
from qa.store import build_index, open_index

__all__ = [
    "Answer",
    "BuildReport",
    "Citation",
    "CorpusError",
    "Engine",
    "Hit",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "QAError",
    "QuestionError",
    "Settings",
    "answer",
    "build_index",
    "open_index",
]
