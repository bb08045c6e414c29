"""qa: ask questions of your documents and get answers with exact, cited excerpts."""

from importlib import import_module as _import_module
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

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
from qa.records import Answer, BuildReport, Citation, CitedValue, Hit, Manifest

if TYPE_CHECKING:
    from qa.build import build_index
    from qa.pipeline import Engine, answer
    from qa.store import open_index

# The build and the question load numpy, FAISS and the models' runtimes: imported on first
# use, so that a process needing one part of qa (a sandboxed document reader, which starts
# for every build) does not pay 1-2 s for the rest.
_LAZY = {
    "build_index": "qa.build",
    "Engine": "qa.pipeline",
    "answer": "qa.pipeline",
    "open_index": "qa.store",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module 'qa' has no attribute {name!r}")
    value = getattr(_import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


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
