"""PDF through PDFium (pypdfium2), page by page, with OCR for pages without a text layer.

PDFium was chosen by measurement (benchmarks/pdf_extractors.py, RESULTS.md "PDF text
extractors"): on the committed multi-page PDF and two real manuals it is 5-20 times faster
than pypdf and 60-100 times faster than pdfplumber, with the same text, no words run
together, and it gives each line's position and font size and renders pages for OCR.

Lines become paragraphs by their geometry: a line continues the paragraph above unless the
gap between them is wider than the page's line pitch, the line above ended short of the
right margin, or the line opens a bulleted item. A short line set in a larger font than the
page's body text is a heading. Running headers and footers are lines in the top or bottom
band of the page that repeat on many pages (digits ignored: "Page 3 of 9"), or page numbers.
"""

from __future__ import annotations

import itertools
import os
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass

from qa.errors import CorpusError
from qa.formats import HEADING, ITEM, PARAGRAPH, Block, Parsed
from qa.formats.plaintext import text_blocks

OCR_INSTALL = "sudo apt-get install tesseract-ocr tesseract-ocr-kor"
# Pages are rendered at this resolution for OCR: tesseract's accuracy levels off near 300.
_OCR_DPI = 300
_OCR_SECONDS_PER_PAGE = 120
# Share of the page height at the top and at the bottom where headers and footers sit.
_BAND = 0.1
# A line this much larger than the body font, and short, is a heading.
_HEADING_SCALE = 1.15
_HEADING_MAX_WORDS = 12
# A gap this many line pitches wide separates paragraphs.
_PARAGRAPH_GAP = 1.5
# A line ending this share of the text width before the right margin ends its paragraph.
_SHORT_LINE = 0.12
_BULLETS = ("• ", "· ", "◦ ", "▪ ", "- ", "* ", "– ")
_SENTENCE_END = frozenset('.!?:;"”)')
_ROMAN = frozenset("ivxlc")
# A soft hyphen ending a line splits a word in two.
_LINE_HYPHENS = ("\u00ad",)


@dataclass(frozen=True)
class _Line:
    text: str
    left: float
    bottom: float
    right: float
    size: float


def read(data: bytes) -> Parsed:
    import pypdfium2

    try:
        document = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():  # PDFium opens a PDF without a user password itself
            raise CorpusError("encrypted PDF; save a decrypted copy to index it") from exc
        raise CorpusError(f"corrupt or unreadable PDF ({exc})") from exc
    try:
        title = str(document.get_metadata_dict().get("Title", "")).strip()
        if title.lower() in ("untitled", "untitled document", "(unspecified)"):  # tools' placeholders
            title = ""
        pages = [_page_lines(document[n]) for n in range(len(document))]
        heights = [document[n].get_height() for n in range(len(document))]
        furniture = _furniture(pages, heights)
        blocks: list[Block] = []
        scanned: list[int] = []
        raw_chars = 0
        for number, lines in enumerate(pages, start=1):
            if not lines:
                scanned.append(number)
                continue
            raw_chars += sum(len(line.text) + 1 for line in lines)
            body = [line for line in lines if (number, line) not in furniture]
            blocks.extend(_paragraphs(body, number))
        if scanned:
            ocr_blocks, ocr_chars = _ocr_pages(document, scanned, has_text=bool(blocks))
            blocks = sorted(blocks + ocr_blocks, key=lambda b: b.page or 0)
            raw_chars += ocr_chars
        blocks = _join_across_pages(blocks)
    finally:
        document.close()
    return Parsed(title, blocks, raw_chars=raw_chars)


def _page_lines(page: object) -> list[_Line]:
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()  # type: ignore[attr-defined]
    text = textpage.get_text_range()
    lines: list[_Line] = []
    position = 0
    for raw in text.split("\r\n"):
        stripped = raw.strip()
        if stripped:
            first = position + (len(raw) - len(raw.lstrip()))
            last = position + len(raw.rstrip()) - 1
            left, bottom, _, _ = textpage.get_charbox(first)
            _, _, right, _ = textpage.get_charbox(last)
            size = pdfium_c.FPDFText_GetFontSize(textpage.raw, first)
            # U+FFFE marks where PDFium rejoined a word hyphenated across lines.
            lines.append(_Line(" ".join(stripped.replace("\ufffe", "").split()), left, bottom, right, size))
        position += len(raw) + 2
    return lines


def _normal(text: str) -> str:
    return "".join("#" if ch.isdigit() else ch for ch in text.casefold())


def _is_page_number(text: str) -> bool:
    """ "7", "Page 7", "7 of 12", "- 7 -", "vii": a page number alone on its line."""
    words = _normal(text).replace("-", " ").replace("/", " ").split()
    return bool(words) and all(
        w in ("page", "of") or set(w) == {"#"} or (len(w) <= 6 and set(w) <= _ROMAN) for w in words
    )


def _furniture(pages: list[list[_Line]], heights: list[float]) -> set[tuple[int, _Line]]:
    """(page, line) of the running headers, footers and page numbers."""
    candidates: list[tuple[int, _Line, tuple[str, int]]] = []
    for number, (lines, height) in enumerate(zip(pages, heights, strict=True), start=1):
        for line in lines:
            if line.bottom >= height * (1 - _BAND) or line.bottom <= height * _BAND:
                candidates.append((number, line, (_normal(line.text), round(line.bottom / 4))))
    pages_with: dict[tuple[str, int], set[int]] = {}
    for number, _, key in candidates:
        pages_with.setdefault(key, set()).add(number)
    repeated = max(2, len(pages) // 2)
    return {
        (number, line)
        for number, line, key in candidates
        if _is_page_number(line.text) or len(pages_with[key]) >= repeated
    }


def _paragraphs(lines: list[_Line], page: int) -> list[Block]:
    if not lines:
        return []
    body_size = statistics.median(line.size for line in lines)
    gaps = [a.bottom - b.bottom for a, b in itertools.pairwise(lines) if a.bottom > b.bottom]
    pitch = statistics.median(gaps) if gaps else 0.0
    margin = max(line.right for line in lines)
    width = margin - min(line.left for line in lines)
    blocks: list[Block] = []
    parts: list[str] = []
    kind = PARAGRAPH
    previous: _Line | None = None

    def flush() -> None:
        if parts:
            blocks.append(Block(_join_lines(parts), kind, page))
            parts.clear()

    for line in lines:
        heading = line.size >= body_size * _HEADING_SCALE and len(line.text.split()) < _HEADING_MAX_WORDS
        bullet = line.text.startswith(_BULLETS)
        if heading:
            if (
                kind == HEADING
                and previous is not None
                and previous.size == line.size
                and not _gap(previous, line, pitch)
            ):
                parts.append(line.text)  # a heading set on two lines
            else:
                flush()
                kind, parts[:] = HEADING, [line.text]
        elif bullet:
            flush()
            kind, parts[:] = ITEM, [line.text[2:].strip()]
        elif (
            previous is not None
            and parts
            and kind != HEADING
            and _continues(previous, line, pitch, margin, width)
        ):
            parts.append(line.text)
        else:
            flush()
            kind, parts[:] = PARAGRAPH, [line.text]
        previous = line
    flush()
    return blocks


def _join_across_pages(blocks: list[Block]) -> list[Block]:
    """Join a paragraph that a page break cut mid-sentence with its continuation: the last
    paragraph of a page that does not end a sentence, and the first of the next page when it
    starts in lower case. The joined block records where each later page starts in it."""
    groups: list[list[Block]] = []
    for block in blocks:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and last.kind == PARAGRAPH == block.kind
            and last.page is not None
            and block.page is not None
            and block.page > last.page
            and block.ocr == last.ocr
            and last.text[-1] not in _SENTENCE_END
            and block.text[:1].islower()
        ):
            groups[-1].append(block)
        else:
            groups.append([block])
    joined = []
    for group in groups:
        if len(group) == 1:
            joined.append(group[0])
            continue
        breaks: list[tuple[int, int]] = []
        offset = 0
        for part in group[:-1]:
            offset += len(part.text) + 1
            breaks.append((offset, group[len(breaks) + 1].page or 0))
        text = " ".join(part.text for part in group)
        joined.append(Block(text, PARAGRAPH, group[0].page, group[0].ocr, page_breaks=tuple(breaks)))
    return joined


def _join_lines(lines: list[str]) -> str:
    """Lines of a paragraph joined by spaces; a word hyphenated across lines is whole again."""
    pieces: list[str] = []
    for line in lines:
        if pieces and pieces[-1].endswith(_LINE_HYPHENS):
            pieces[-1] = pieces[-1][:-1]
        elif pieces:
            pieces.append(" ")
        pieces.append(line)
    return "".join(pieces)


def _gap(above: _Line, line: _Line, pitch: float) -> bool:
    drop = above.bottom - line.bottom
    return drop <= 0 or (pitch > 0 and drop > _PARAGRAPH_GAP * pitch)


def _continues(above: _Line, line: _Line, pitch: float, margin: float, width: float) -> bool:
    if _gap(above, line, pitch):
        return False
    ended_short = above.right < margin - _SHORT_LINE * width
    if not ended_short:
        return True
    # A short line that stops mid-sentence (a table cell, a manual break) still continues
    # into a line that starts in lower case.
    return above.text[-1] not in _SENTENCE_END and line.text[:1].islower()


def ocr_languages() -> str | None:
    """The installed tesseract languages joined for ``-l`` ("eng+kor"), or None without tesseract."""
    binary = shutil.which("tesseract")
    if binary is None:
        return None
    listed = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    languages = [name.strip() for name in listed.stdout.splitlines()[1:] if name.strip() not in ("", "osd")]
    return "+".join(sorted(languages)) or None


def _ocr_pages(document: object, numbers: list[int], *, has_text: bool) -> tuple[list[Block], int]:
    languages = ocr_languages()
    if languages is None:
        if has_text:
            return [], 0  # the pages with text are indexed; the scanned ones cannot be
        raise CorpusError(f"PDF has no text layer (scanned); install OCR to index it: {OCR_INSTALL}")
    blocks: list[Block] = []
    chars = 0
    with tempfile.TemporaryDirectory(prefix="qa-ocr-") as folder:
        for number in numbers:
            image = os.path.join(folder, f"page-{number}.png")
            page = document[number - 1]  # type: ignore[index]
            page.render(scale=_OCR_DPI / 72).to_pil().save(image)
            result = subprocess.run(
                ["tesseract", image, "stdout", "-l", languages],
                capture_output=True,
                text=True,
                timeout=_OCR_SECONDS_PER_PAGE,
                check=False,
                env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            )
            if result.returncode != 0:
                raise CorpusError(f"OCR of page {number} failed: {result.stderr.strip()[:200]}")
            chars += len(result.stdout)
            blocks.extend(text_blocks(result.stdout, page=number, ocr=True))
    if not blocks and not has_text:
        raise CorpusError("PDF has no text layer, and OCR found no text on its pages")
    return blocks, chars
