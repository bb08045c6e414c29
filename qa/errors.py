"""One root error; each subclass says what happened and what to do next."""


class QAError(Exception):
    """Base of every error ``qa`` raises on purpose. Its message is meant for the user."""


class IndexNotFoundError(QAError):
    pass


class IndexMismatchError(QAError):
    pass


class IndexCorruptError(QAError):
    pass


class IndexBusyError(QAError):
    pass


class CorpusError(QAError):
    pass


class QuestionError(QAError):
    pass
