"""Pure text functions: sentence spans, sentence-aware chunks with exact offsets, and the
text each chunk is embedded as."""

from __future__ import annotations

import re

from qa.records import Chunk, Document

CHUNKER_VERSION = 1  # bump when the output for the same settings changes

# Words whose trailing period does not end a sentence.
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "gen", "col", "lt", "sgt", "capt", "gov",
    "sen", "rep", "pres", "vs", "etc", "e.g", "i.e", "al", "fig", "no", "vol", "inc", "ltd",
    "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "u.s", "u.k", "u.n", "approx", "est", "dept", "univ",
}  # fmt: skip
# A candidate boundary: sentence punctuation, optional closing quotes/brackets, then space.
# Matches start only where a run of punctuation starts and never give back what they took
# (possessive): a megabyte of "....." is one linear scan, not a quadratic one.
_BOUNDARY = re.compile(r"(?<![.!?。！？])[.!?。！？]++[\"'”’)\]]*+(?=\s)|\n\s*\n")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the sentences in ``text[start:end]``, whitespace trimmed.

    Paragraph breaks always end a sentence; a period after a known abbreviation or a single
    capital letter (an initial) does not.
    """
    stop = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    sentence_start = start
    for match in _BOUNDARY.finditer(text, start, stop):
        if match.group().strip() == ".":
            word = re.search(r"([\w.]+)\.$", text[max(start, match.start() - 12) : match.end()])
            if word and (word.group(1).lower() in _ABBREVIATIONS or re.fullmatch(r"[A-Z]", word.group(1))):
                continue
        _append_trimmed(text, sentence_start, match.end(), spans)
        sentence_start = match.end()
    _append_trimmed(text, sentence_start, stop, spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def _split_long(text: str, span: tuple[int, int], size: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than ``size`` at word boundaries."""
    pieces: list[tuple[int, int]] = []
    start, end = span
    while end - start > size:
        cut = text.rfind(" ", start + 1, start + size)
        cut = start + size if cut <= start else cut
        _append_trimmed(text, start, cut, pieces)
        start = cut
    _append_trimmed(text, start, end, pieces)
    return pieces


def chunk_document(document: Document, *, size: int, overlap: int) -> list[Chunk]:
    """Pack whole sentences into chunks of at most ``size`` characters.

    Each chunk after the first repeats the previous chunk's last sentences, up to ``overlap``
    characters, so a fact that straddles a boundary is whole in one chunk.
    """
    if size <= 0 or overlap < 0 or overlap >= size:
        raise ValueError(f"need 0 <= overlap < size, got size={size}, overlap={overlap}")
    text = document.text
    sentences = [piece for span in split_sentences(text) for piece in _split_long(text, span, size)]
    chunks: list[Chunk] = []
    first = 0
    while first < len(sentences):
        last = first
        while last + 1 < len(sentences) and sentences[last + 1][1] - sentences[first][0] <= size:
            last += 1
        start, end = sentences[first][0], sentences[last][1]
        chunks.append(Chunk(document.source, len(chunks), start, end, text[start:end]))
        if last + 1 >= len(sentences):
            break
        # Step back over whole sentences that fit in the overlap, always moving forward.
        next_first = last + 1
        while next_first - 1 > first and end - sentences[next_first - 1][0] <= overlap:
            next_first -= 1
        first = next_first
    return chunks


def embedding_text(title: str, chunk: Chunk) -> str:
    """The text a chunk is embedded as: its own, after its document's title.

    Later chunks of a document do not repeat the title; prefixing it gives their vectors
    the document's topic.
    """
    return chunk.text if chunk.text.startswith(title) else f"{title}\n{chunk.text}"
