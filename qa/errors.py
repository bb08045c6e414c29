"""One root error; each subclass says what happened, and its message says what to do next.

Catch ``QAError`` for everything ``qa`` raises on purpose, or a subclass for one kind of
failure (``ModelNotFoundError`` to offer an install, ``UploadError`` to refuse one file).
"""


class QAError(Exception):
    """Base of every error ``qa`` raises on purpose. Its message is meant for the user."""


class IndexNotFoundError(QAError):
    """The index folder holds no index yet: run ``qa build`` (or ``build_index``)."""


class IndexMismatchError(QAError):
    """The index was built with other settings, another chunker or an unreadable format
    version: rebuild it with ``qa build --full``."""


class IndexCorruptError(QAError):
    """A file of the index is missing, truncated or edited: rebuild it with
    ``qa build --full``. Never raised for a build in progress (readers never see one)."""


class IndexBusyError(QAError):
    """Another build holds the index's lock: wait for it to finish, then build again."""


class CorpusError(QAError):
    """The corpus folder is missing, or one file in it has no usable text (a build skips
    such a file and reports why)."""


class QuestionError(QAError):
    """The question cannot be searched: empty, without letters or digits, or too long."""


class ModelNotFoundError(QAError):
    """A model's weights are neither an installed package nor a local folder; models are
    never downloaded. Install the package the message names, or pass a local folder."""


class ModelFileError(QAError):
    """The shipped answerability model is missing, damaged or not the one its data card
    describes."""


class UploadError(QAError):
    """An uploaded file was refused (its name, type or size): nothing in the corpus folder
    was changed."""


class OptionsError(QAError):
    """Options that cannot work: missing, or contradicting each other (every search stage
    switched off, no evaluation data given)."""


class EvalDataError(QAError):
    """An evaluation file (JSONL questions, BEIR folder, SQuAD JSON) cannot be read or is
    not in its format."""


class ResourceError(QAError):
    """The machine refused a build something it needs (disk space, permission to write,
    memory). The message names the cause and the fix; the previous index is still live."""


class ClusterError(QAError):
    """Embedding on a Ray cluster (``qa build --ray``) could not start or finish: Ray is not
    installed, the cluster cannot be reached, or its workers cannot load the model. The
    message says which; the previous index is still live."""
