"""qa: ask questions of your documents and get answers with exact, cited excerpts."""

from importlib.metadata import version as _version

from qa.build import build_index
from qa.config import RetrievalOptions, Settings, Thresholds
from qa.errors import (
    CorpusError,
    EvalDataError,
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    ModelNotFoundError,
    OptionsError,
    QAError,
    QuestionError,
    UploadError,
)
from qa.pipeline import Engine, answer
from qa.records import Answer, BuildReport, Citation, CitedValue, Hit, Manifest
from qa.store import open_index

__version__ = _version("qa")

__all__ = [
    "Answer",
    "BuildReport",
    "Citation",
    "CitedValue",
    "CorpusError",
    "Engine",
    "EvalDataError",
    "Hit",
    "IndexBusyError",
    "IndexCorruptError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "Manifest",
    "ModelNotFoundError",
    "OptionsError",
    "QAError",
    "QuestionError",
    "RetrievalOptions",
    "Settings",
    "Thresholds",
    "UploadError",
    "answer",
    "build_index",
    "open_index",
]
