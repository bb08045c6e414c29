"""Read one corpus file: a parser made for its format, then cleaning, title, date, layout.

Each format is read by ``qa.formats`` into blocks with their roles (headings, paragraphs,
list items, code, table rows, PDF pages); ``qa.cleaning`` removes furniture by generic
rules (repeats, the closing run of a web page, PDF running headers) and joins the blocks
into the cleaned text, keeping where each section and page starts. The cleaned text is
what chunks and citations point into.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from qa.cleaning import assemble, drop_page_end_run, drop_repeats
from qa.errors import CorpusError
from qa.formats import HEADING, SUPPORTED_SUFFIXES, reader_for
from qa.formats.plaintext import MAX_TEXT_CHARS, check_length
from qa.records import CorpusFile, Document

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_TEXT_CHARS",
    "SUPPORTED_SUFFIXES",
    "find_date",
    "iter_documents",
    "read_document",
]

MAX_FILE_BYTES = 100 * 1024 * 1024  # larger files are skipped when the corpus is scanned
_TITLE_CHARS = 200
_DATE_BLOCKS = 6


def read_document(file: CorpusFile, *, data: bytes | None = None) -> Document:
    """Read and clean one file (``data``: its bytes, when the caller has read them).
    Raises ``CorpusError`` saying why it has no usable text."""
    suffix = file.path.suffix.lower()
    try:
        reader = reader_for(suffix)
        if data is None:
            data = file.path.read_bytes()
        parsed = reader(data)
    except OSError as exc:
        raise CorpusError(f"cannot be read: {exc.strerror or exc}") from exc
    except CorpusError:
        raise
    except Exception as exc:
        # The parsers raise all kinds of errors on malformed files; any of them means
        # this one file is unusable, never that the build should stop.
        raise CorpusError(f"cannot be parsed as {suffix} ({exc.__class__.__name__}: {exc})") from exc
    check_length(sum(len(b.text) for b in parsed.blocks))  # text formats were checked as decoded
    blocks = drop_repeats([b for b in parsed.blocks if b.text.strip()])
    if parsed.web_like:
        blocks = drop_page_end_run(blocks)
    if not blocks:
        raise CorpusError("no text left after cleaning (empty, or only page furniture)")
    assembled = assemble(blocks)
    title = parsed.title or next((b.text for b in blocks if b.kind == HEADING and b.level == 1), "")
    title = " ".join(title.split()) or blocks[0].text[:_TITLE_CHARS]
    return Document(
        source=file.source,
        title=title,
        text=assembled.text,
        sha256=file.sha256,
        date=find_date([b.text for b in blocks[:_DATE_BLOCKS]]),
        sections=assembled.sections,
        pages=assembled.pages,
        raw_chars=max(parsed.raw_chars or sum(len(b.text) + 2 for b in parsed.blocks), len(assembled.text)),
    )


def iter_documents(files: list[CorpusFile]) -> Iterator[tuple[CorpusFile, Document | CorpusError]]:
    """Yield each file with its document, or with the error that made it unusable."""
    for file in files:
        try:
            yield file, read_document(file)
        except CorpusError as exc:
            yield file, exc


_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE_PATTERNS = [
    re.compile(r"\b(?P<year>(19|20)\d\d)-(?P<mnum>[01]\d)-(?P<day>[0-3]\d)(?!\d)"),
    re.compile(_MONTH + r"\s+(?P<day>[0-3]?\d)(st|nd|rd|th)?,?\s+(?P<year>(19|20)\d\d)\b", re.I),
    re.compile(r"\b(?P<day>[0-3]?\d)(st|nd|rd|th)?\s+" + _MONTH + r",?\s+(?P<year>(19|20)\d\d)\b", re.I),
]


def find_date(paragraphs: list[str]) -> str | None:
    """The first full date (ISO ``YYYY-MM-DD``) in the document's header paragraphs."""
    for paragraph in paragraphs:
        for pattern in _DATE_PATTERNS:
            match = pattern.search(paragraph)
            if match is None:
                continue
            fields = match.groupdict()
            month = int(fields["mnum"]) if fields.get("mnum") else _MONTHS[fields["month"].lower()]
            day = int(fields["day"])
            if 1 <= month <= 12 and 1 <= day <= 31:
                return f"{fields['year']}-{month:02d}-{day:02d}"
    return None
