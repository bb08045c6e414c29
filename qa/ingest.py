"""Read one corpus file: a reader per format, then cleaning, title and date.

Cleaning works on paragraphs and is generic: it knows the shapes of web boilerplate
(paywalls, newsletter prompts, legal notices, "related articles" lists, page chrome), not
the names of any particular files. The cleaned text is what chunks and citations point into.
"""

from __future__ import annotations

import codecs
import logging
import re
from collections.abc import Iterator
from pathlib import Path

from qa.errors import CorpusError
from qa.records import CorpusFile, Document

# pypdf logs each oddity of a damaged PDF as a warning, which Python prints when the
# application set up no logging. The build reports why such a file is skipped; this keeps
# the library from printing besides (an application's own log handlers still get them).
logging.getLogger("pypdf").addHandler(logging.NullHandler())

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx")
MAX_FILE_BYTES = 100 * 1024 * 1024  # larger files are skipped when the corpus is scanned
# About 10,000 pages. Reading, cleaning and embedding take time and memory in proportion to
# the text (20 MB of text: ~40,000 passages, minutes of embedding, ~200 MB while cleaned),
# so a file with more is skipped with the reason rather than left to stall a build.
MAX_TEXT_CHARS = 20_000_000


def read_document(file: CorpusFile) -> Document:
    """Read and clean one file. Raises ``CorpusError`` saying why it has no usable text."""
    suffix = file.path.suffix.lower()
    try:
        if suffix == ".pdf":
            title, paragraphs = _read_pdf(file.path)
        elif suffix == ".docx":
            title, paragraphs = _read_docx(file.path)
        elif suffix in (".html", ".htm"):
            title, paragraphs = _read_html(file.path)
        else:
            text = _decode(file.path.read_bytes())
            _check_length(len(text))
            if suffix == ".md":
                text = _strip_markdown(text)
            title, paragraphs = "", _lines_to_paragraphs(text)
    except OSError as exc:
        raise CorpusError(f"cannot be read: {exc.strerror or exc}") from exc
    except CorpusError:
        raise
    except Exception as exc:
        # The parsers raise all kinds of errors on malformed files; any of them means
        # this one file is unusable, never that the build should stop.
        raise CorpusError(f"cannot be parsed as {suffix} ({exc.__class__.__name__}: {exc})") from exc
    _check_length(sum(len(p) for p in paragraphs))
    paragraphs = clean_paragraphs(paragraphs)
    if not paragraphs:
        raise CorpusError("no text left after cleaning (empty, or only boilerplate)")
    title = " ".join(title.split()) or paragraphs[0][:200]
    return Document(
        source=file.source,
        title=title,
        text="\n\n".join(paragraphs),
        sha256=file.sha256,
        date=find_date(paragraphs[:6]),
    )


def _check_length(chars: int) -> None:
    if chars > MAX_TEXT_CHARS:
        raise CorpusError(
            f"its text is {chars:,} characters, more than the {MAX_TEXT_CHARS:,} one document may "
            "have; split it into smaller files"
        )


def iter_documents(files: list[CorpusFile]) -> Iterator[tuple[CorpusFile, Document | CorpusError]]:
    """Yield each file with its document, or with the error that made it unusable."""
    for file in files:
        try:
            yield file, read_document(file)
        except CorpusError as exc:
            yield file, exc


# --- format readers: each returns (title or "", paragraphs) -------------------------------


def _decode(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")  # what Windows editors call "Unicode"
        except UnicodeDecodeError as exc:
            raise CorpusError("damaged UTF-16 text (it has a UTF-16 mark but cannot be decoded)") from exc
    if b"\x00" in data:
        raise CorpusError("binary data, not text (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Not UTF-8: almost always a Windows/Latin-1 export. cp1252 maps the printable
        # range; latin-1 decodes anything, so it is the last resort.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_MD_EMPHASIS = re.compile(r"(\*\*|__|`)")


def _strip_markdown(text: str) -> str:
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_HEADING.sub("", text)
    return _MD_EMPHASIS.sub("", text)


_TERMINAL = re.compile(r"[.!?:;\"”’)\]…]$")


def _lines_to_paragraphs(text: str) -> list[str]:
    """Each line is a paragraph, except that hard-wrapped lines are joined back.

    A line continues the previous one when that one does not end a sentence and this
    one starts in lower case (the shape of a wrapped sentence).
    """
    paragraphs: list[str] = []
    previous_blank = True
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            previous_blank = True
            continue
        if (
            paragraphs
            and not previous_blank
            and not _TERMINAL.search(paragraphs[-1])
            and (line[0].islower() or re.search(r"(\w-|,)$", paragraphs[-1]))
        ):
            paragraphs[-1] = f"{paragraphs[-1]} {line}"
        else:
            paragraphs.append(line)
        previous_blank = False
    return paragraphs


def _read_html(path: Path) -> tuple[str, list[str]]:
    import lxml.etree
    import lxml.html
    import trafilatura

    html = _decode(path.read_bytes())
    try:
        tree = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):  # nothing but whitespace or comments
        return "", []
    extracted = trafilatura.bare_extraction(
        html, with_metadata=True, include_comments=False, include_tables=True
    )
    text: str | None = getattr(extracted, "text", None)
    title_nodes = tree.xpath("//title/text()")
    title = title_nodes[0] if title_nodes else getattr(extracted, "title", "")
    if not text:
        # trafilatura declines very short pages; the visible body text is still wanted.
        for node in tree.xpath("//script|//style|//nav|//footer|//header"):
            node.drop_tree()
        text = "\n".join(tree.xpath("//body//text()")) if tree.find("body") is not None else ""
    return title or "", _lines_to_paragraphs(text)


def _read_pdf(path: Path) -> tuple[str, list[str]]:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))  # no user password: anyone may read it
            except DependencyError:  # AES, and the optional cryptography package is absent
                opened = False
            if not opened:
                raise CorpusError("encrypted PDF; save a decrypted copy to index it")
        text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
        title = (reader.metadata.title if reader.metadata else None) or ""
        if str(title).strip().lower() in ("untitled", "untitled document"):  # tools' placeholders
            title = ""
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"corrupt or unreadable PDF ({exc})") from exc
    if not text.strip():
        raise CorpusError("PDF has no text layer (scanned?); run OCR on it first")
    return str(title), _lines_to_paragraphs(text)


def _read_docx(path: Path) -> tuple[str, list[str]]:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, ValueError, KeyError) as exc:
        raise CorpusError(f"corrupt or unreadable DOCX ({exc})") from exc
    paragraphs = [" ".join(p.text.split()) for p in document.paragraphs]
    return document.core_properties.title or "", [p for p in paragraphs if p]


# --- cleaning ------------------------------------------------------------------------------

# Each pattern marks a paragraph as page furniture rather than content.
_BOILERPLATE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\bsubscri(be|ber|bers|ption|ptions)\b",
        r"\bfree (access|trial)\b|\bfull access\b|\bcancel anytime\b|\bno charges\b",
        r"\bsign(ing)? up\b|\bsign in\b|\blog ?in\b|\bregister now\b",
        r"\bnewsletters?\b",
        r"\ball rights reserved\b|^©|\bcopyright\b",
        r"\bmay (not )?be reproduced\b|\bwithout (the )?(prior )?(express )?written permission\b",
        r"\bdisclaimer\b|\bwithout warranty\b|\bas is\W{0,3} without\b",
        r"\b(scroll|back) to (the )?top\b",
        r"^(dismiss|close|share|print|e-?mail|tweet|advertisement|menu|skip to (main )?content)$",
        r"\bcookies?\b.*\b(consent|accept|policy|settings)\b",
        r"\bterms of (use|service)\b|\bprivacy policy\b",
        r"\bclick here\b|\bfollow us\b|\bshare this\b",
        r"(\[…\]|\[\.\.\.\])\s*$",  # a teaser cut off mid-sentence: a link to another article
        r"^[A-Z]*\d{12,}[A-Z0-9]*$",  # syndication tracking ids
    )
]
# A heading that introduces links to other articles: everything after it is not this document.
_TRAILER_HEADING = re.compile(
    r"^(related( publications| articles| posts| stories| news| content| reading)?|"
    r"recommended( for you| reading)?|more from\b.*|read (more|next)|you (may|might) also like|"
    r"also read|further reading|more stories|latest news|trending)\s*:?$",
    re.IGNORECASE,
)
_LONG_CONTENT_WORDS = 40


def _is_boilerplate(paragraph: str) -> bool:
    hits = sum(1 for pattern in _BOILERPLATE if pattern.search(paragraph))
    if hits == 0:
        return False
    # A long paragraph that merely mentions "subscription" is content; furniture is short
    # or made of several such phrases at once.
    return hits >= 2 or len(paragraph.split()) < _LONG_CONTENT_WORDS


def _is_fragment(paragraph: str) -> bool:
    """Short text that is not a sentence: a button, a list dash, a caption, a heading."""
    words = len(paragraph.split())
    return words < 3 or (words < 12 and not re.search(r"[.!?\"”]$", paragraph))


def clean_paragraphs(paragraphs: list[str]) -> list[str]:
    """Drop duplicate paragraphs, boilerplate, and the fragments clustered around it.

    Page furniture comes in runs (a paywall box is "Get 30 days", "of free access", "Start",
    "now", ...), so a run of boilerplate and short fragments is removed whole when any member
    of it is unmistakable boilerplate. The first paragraph (the title) is always kept.
    """
    seen: set[str] = set()
    unique: list[str] = []
    for paragraph in paragraphs:
        key = " ".join(paragraph.split()).casefold()
        if key and key not in seen:
            seen.add(key)
            unique.append(paragraph)
    for position, paragraph in enumerate(unique):
        if position > 0 and _TRAILER_HEADING.match(paragraph):
            unique = unique[:position]
            break

    kept: list[str] = []
    run: list[str] = []
    run_has_boilerplate = False
    for position, paragraph in enumerate([*unique, ""]):  # "" flushes the last run
        boilerplate = position > 0 and paragraph != "" and _is_boilerplate(paragraph)
        if paragraph and position > 0 and (boilerplate or _is_fragment(paragraph)):
            run.append(paragraph)
            run_has_boilerplate = run_has_boilerplate or boilerplate
            continue
        if not run_has_boilerplate:
            kept.extend(run)
        run, run_has_boilerplate = [], False
        if paragraph:
            kept.append(paragraph)
    return kept


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
