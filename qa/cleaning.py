"""Generic furniture removal, and joining blocks into the cleaned text with its offsets.

Furniture is removed where it is furniture, never for the words a paragraph contains:

- repeated paragraphs within a document (a page that prints its lead twice) keep their
  first copy;
- the end of a web-like page (plain text saved from a browser, HTML main text): a closing
  run of short blocks, most of them fragments that are not sentences (buttons, paywall
  prompts, "related" link lists, footers), that follows the body;
- page headers and footers of PDFs are recognised by the PDF reader from their position;
- paragraphs repeated at the edges of many documents of a corpus (a site's newsletter box,
  a syndication notice) are removed at build time: ``edge_keys`` and ``remove_keys``.

A long body paragraph is never removed by these rules.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, replace

from qa.formats import CODE, HEADING, ROW, Block
from qa.records import Document

# A paragraph this long is body text wherever it stands.
LONG_WORDS = 40
# Fewer words than this and no sentence end: a button, a caption, a list dash, a heading.
_FRAGMENT_WORDS = 12
_SENTENCE_ENDS = frozenset('.!?"”')
# The end-of-page run must follow body text: a paragraph of at least this many words.
_BODY_WORDS = 20
# A closing run longer than this share of the page must be made of short blocks only.
_RUN_SHARE = 0.25
# Edge paragraphs: up to this many blocks at the start and at the end of a document.
EDGE_BLOCKS = 8
# A paragraph at the edges of at least this many documents is furniture of the corpus.
MIN_REPEATS = 3
PARAGRAPH_SEPARATOR = "\n\n"


def is_fragment(text: str) -> bool:
    """Short text that is not a sentence: a button, a list dash, a caption, a heading."""
    words = len(text.split())
    return words < 3 or (words < _FRAGMENT_WORDS and text.rstrip()[-1:] not in _SENTENCE_ENDS)


def _sentences(text: str) -> int:
    ends = sum(
        1 for n, ch in enumerate(text) if ch in ".!?" and (n + 1 == len(text) or text[n + 1].isspace())
    )
    return max(1, ends)


def drop_repeats(blocks: list[Block]) -> list[Block]:
    """Keep the first copy of each paragraph of five words or more (headings, code and
    table rows may repeat: two sections can both be called "Usage")."""
    seen: set[str] = set()
    kept = []
    for block in blocks:
        if block.kind not in (HEADING, CODE, ROW) and len(block.text.split()) >= 5:
            key = " ".join(block.text.split()).casefold()
            if key in seen:
                continue
            seen.add(key)
        kept.append(block)
    return kept


def drop_page_end_run(blocks: list[Block]) -> list[Block]:
    """Remove the furniture that closes a web-like page.

    The run is the longest tail that follows body text (a paragraph of ``_BODY_WORDS``
    words or more before it), starts with a fragment, and either is made of fragments only,
    or holds at least two fragments and at least as many fragments as sentences while its
    blocks are all short (under ``LONG_WORDS`` words) or it is at most a quarter of the page.
    One pass forward (where body text is), one backward (the tail's counts).
    """
    body_before = []
    seen_body = False
    for block in blocks:
        body_before.append(seen_body)
        seen_body = seen_body or (len(block.text.split()) >= _BODY_WORDS and not is_fragment(block.text))
    total_chars = sum(len(b.text) for b in blocks)
    fragments = sentences = chars = 0
    all_short = True
    cut = len(blocks)
    for n in range(len(blocks) - 1, 0, -1):
        text = blocks[n].text
        fragment = is_fragment(text)
        chars += len(text)
        if fragment:
            fragments += 1
        else:
            sentences += _sentences(text)
            all_short = all_short and len(text.split()) < LONG_WORDS
        if not (fragment and body_before[n]):
            continue
        if sentences == 0 or (
            fragments >= 2 and fragments >= sentences and (all_short or chars <= _RUN_SHARE * total_chars)
        ):
            cut = n
    return blocks[:cut]


@dataclass(frozen=True)
class Assembled:
    """The cleaned text, with where each section and page starts in it.

    ``sections``: (offset, heading) for every heading; ``pages``: (offset, page, ocr) where
    the page changes. Offsets index ``text``; an excerpt's section is the last heading at
    or before its start, its page the last page start at or before it.
    """

    text: str
    sections: tuple[tuple[int, str], ...]
    pages: tuple[tuple[int, int, bool], ...]


def assemble(blocks: list[Block]) -> Assembled:
    """Join blocks with blank lines; a block's own line breaks (code) are kept."""
    parts: list[str] = []
    sections: list[tuple[int, str]] = []
    pages: list[tuple[int, int, bool]] = []
    offset = 0
    for block in blocks:
        if parts:
            offset += len(PARAGRAPH_SEPARATOR)
        if block.kind == HEADING:
            sections.append((offset, block.text))
        if block.page is not None and (not pages or pages[-1][1:] != (block.page, block.ocr)):
            pages.append((offset, block.page, block.ocr))
        pages.extend((offset + inner, page, block.ocr) for inner, page in block.page_breaks)
        parts.append(block.text)
        offset += len(block.text)
    return Assembled(PARAGRAPH_SEPARATOR.join(parts), tuple(sections), tuple(pages))


def _key(text: str) -> str:
    normal = " ".join(text.split()).casefold()
    return hashlib.sha1(normal.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def edge_keys(text: str) -> list[str]:
    """Keys of the short paragraphs at the start and end of a cleaned text: the candidates
    for furniture that repeats across a corpus."""
    paragraphs = text.split(PARAGRAPH_SEPARATOR)
    edges = paragraphs[:EDGE_BLOCKS] + paragraphs[max(EDGE_BLOCKS, len(paragraphs) - EDGE_BLOCKS) :]
    return sorted({_key(p) for p in edges[1:] if len(p.split()) < LONG_WORDS})


def corpus_furniture(keys_by_document: dict[str, list[str]]) -> set[str]:
    """The edge paragraphs that at least ``MIN_REPEATS`` documents share."""
    counts: dict[str, int] = {}
    for keys in keys_by_document.values():
        for key in keys:
            counts[key] = counts.get(key, 0) + 1
    return {key for key, count in counts.items() if count >= MIN_REPEATS}


def remove_keys(assembled: Assembled, furniture: set[str]) -> Assembled:
    """``assembled`` without its edge paragraphs whose keys are in ``furniture``; section and
    page offsets move with the text (a page or section whose start is removed starts at the
    next paragraph kept)."""
    paragraphs = assembled.text.split(PARAGRAPH_SEPARATOR)
    count = len(paragraphs)
    edge = set(range(1, min(EDGE_BLOCKS, count))) | set(range(max(EDGE_BLOCKS, count - EDGE_BLOCKS), count))
    shift: list[tuple[int, int, int]] = []  # (old start, new start, length) of each paragraph kept
    kept: list[str] = []
    old = new = 0
    for n, paragraph in enumerate(paragraphs):
        drop = n in edge and len(paragraph.split()) < LONG_WORDS and _key(paragraph) in furniture
        if not drop:
            if kept:
                new += len(PARAGRAPH_SEPARATOR)
            shift.append((old, new, len(paragraph)))
            kept.append(paragraph)
            new += len(paragraph)
        old += len(paragraph) + len(PARAGRAPH_SEPARATOR)
    if len(kept) == count:
        return assembled

    old_starts = [old_start for old_start, _, _ in shift]

    def moved(offset: int) -> int:
        # Inside a kept paragraph: the same place in it. Otherwise the first kept paragraph
        # after ``offset``; past the end: the end.
        n = bisect.bisect_right(old_starts, offset) - 1
        if n >= 0 and offset < shift[n][0] + shift[n][2]:
            return shift[n][1] + offset - shift[n][0]
        return shift[n + 1][1] if n + 1 < len(shift) else new

    sections = tuple((moved(o), h) for o, h in assembled.sections if _key(h) not in furniture)
    pages = tuple((moved(o), p, ocr) for o, p, ocr in assembled.pages)
    return Assembled(PARAGRAPH_SEPARATOR.join(kept), sections, pages)


def remove_corpus_furniture(document: Document, furniture: set[str]) -> Document:
    """``document`` without the edge paragraphs it shares with many documents of its corpus."""
    stripped = remove_keys(Assembled(document.text, document.sections, document.pages), furniture)
    if stripped.text == document.text:
        return document
    return replace(document, text=stripped.text, sections=stripped.sections, pages=stripped.pages)
