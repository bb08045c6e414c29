"""Format readers: each turns one file's bytes into blocks of text with their roles.

A reader knows its format's structure (a Markdown parser knows a heading from a list item,
a PDF knows where its pages end), so each returns ``Parsed``: a title and ``Block``s, each
a heading, a paragraph, a list item, a code block or a table row, with the page it is on.
``qa.cleaning`` then drops furniture by generic rules and joins the blocks into the cleaned
text, recording where each page and section starts. No reader drops content for its words.

Every reader is linear in its input: hand-written scanners and parsers made for the
format, no backtracking regular expressions over document text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qa.errors import CorpusError

HEADING = "heading"
PARAGRAPH = "paragraph"
ITEM = "item"
CODE = "code"
ROW = "row"


@dataclass(frozen=True)
class Block:
    """One unit of a document: ``kind`` is one of heading, paragraph, item, code, row.

    ``page`` is the 1-based page (PDF) or None; ``ocr`` says the text was recognised from
    the page's image; ``level`` is a heading's depth (1 = top). ``page_breaks`` holds
    (offset in ``text``, page) where a paragraph runs on to a later page.
    """

    text: str
    kind: str = PARAGRAPH
    page: int | None = None
    ocr: bool = False
    level: int = 0
    page_breaks: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Parsed:
    """What a reader found: the format's own title (or "") and the blocks in reading order.

    ``web_like`` is true for text that may carry page furniture the format cannot mark
    (plain text saved from a web page, HTML's main text): the end-of-page rule applies.
    ``raw_chars`` is how much visible text the reader saw before it dropped furniture (a
    web page's navigation, a PDF's running headers); 0 when it dropped none, and the
    blocks' own length is the measure.
    """

    title: str
    blocks: list[Block]
    web_like: bool = False
    raw_chars: int = 0


Reader = Callable[[bytes], Parsed]


def table_rows(rows: list[list[str]], *, page: int | None = None) -> list[Block]:
    """A table as one citable line per row. With a header row, each later row names its
    cells ("Year: 1996; Codename: Buzz"), so a row answers on its own."""
    cleaned = [[" ".join(cell.split()) for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return []
    header = cleaned[0]
    labelled = len(cleaned) > 1 and all(header) and len(set(header)) == len(header)
    blocks = [Block(" | ".join(c for c in header if c), ROW, page)]
    for row in cleaned[1:]:
        if labelled and len(row) == len(header):
            text = "; ".join(f"{name}: {value}" for name, value in zip(header, row, strict=True) if value)
        else:
            text = " | ".join(c for c in row if c)
        blocks.append(Block(text, ROW, page))
    return blocks


def code_block(text: str, *, page: int | None = None) -> Block | None:
    """A code block as written, trailing spaces and blank lines inside it removed (a blank
    line would end the block in the cleaned text)."""
    lines = [line.rstrip() for line in text.splitlines()]
    kept = "\n".join(line for line in lines if line)
    return Block(kept, CODE, page) if kept else None


def reader_for(suffix: str) -> Reader:
    """The reader of a file suffix (lower case, with the dot)."""
    from qa.formats import docx, html, markdown, pdf, plaintext, rst

    readers: dict[str, Reader] = {
        ".txt": plaintext.read,
        ".md": markdown.read,
        ".markdown": markdown.read,
        ".rst": rst.read,
        ".html": html.read,
        ".htm": html.read,
        ".pdf": pdf.read,
        ".docx": docx.read,
    }
    try:
        return readers[suffix]
    except KeyError:
        raise CorpusError(f"unsupported file type '{suffix}'") from None


SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf", ".docx")
