"""Plain text: blank-line-separated paragraphs whose hard-wrapped lines are joined back.

A line break inside a block is a wrap (joined with a space) when the line was full — the
next word would not have fitted in the block's width — or when the next line starts in
lower case after a line that does not end a sentence. Otherwise it is a real break: a list
of names, a caption above a byline, one paragraph per line in text saved from a web page.
Bullets ("* ", "- ", "• ") start list items and are not part of the text; a line under a
setext underline ("=====", "-----") is a heading, and a lone single-line block that is
short and unpunctuated is a heading too. One pass over the lines; joins build lists.
"""

from __future__ import annotations

import codecs
import itertools

from qa.errors import CorpusError
from qa.formats import HEADING, ITEM, PARAGRAPH, Block, Parsed

# About 10,000 pages. Reading, cleaning and embedding take time and memory in proportion to
# the text (20 MB of text: ~40,000 passages, minutes of embedding, ~200 MB while cleaned),
# so a file with more is skipped with the reason rather than left to stall a build.
MAX_TEXT_CHARS = 20_000_000
# Lines are treated as hard-wrapped only at widths text is wrapped at (40-100 columns);
# longer lines are whole paragraphs, shorter blocks are lists or captions.
_WRAP_WIDTHS = range(40, 101)
# A wrapped line stops where the next word would pass the width; editors leave up to this
# share of the width free (a long next word, a ragged right margin).
_FULL_LINE = 0.85
_HEADING_MAX_WORDS = 12
_CENTRED_INDENT = 8
_CENTRE_TOLERANCE = 3
_SENTENCE_END = '.!?;,"”’)]…'
_BULLETS = ("* ", "- ", "• ", "+ ")
_RULE_CHARS = frozenset("=-~^*#_")


def decode_text(data: bytes) -> str:
    """Bytes of a text file as a string: UTF-16 with its mark, UTF-8, else Windows-1252/Latin-1.
    Text longer than ``MAX_TEXT_CHARS`` is refused here, before any parsing."""
    text = _decode(data)
    check_length(len(text))
    return text


def check_length(chars: int) -> None:
    """Raise ``CorpusError`` for a document of more than ``MAX_TEXT_CHARS`` characters."""
    if chars > MAX_TEXT_CHARS:
        raise CorpusError(
            f"its text is {chars:,} characters, more than the {MAX_TEXT_CHARS:,} one document may "
            "have; split it into smaller files"
        )


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


def read(data: bytes) -> Parsed:
    text = decode_text(data)
    # One paragraph per long line is how text saved from a web page or a word processor
    # looks; such a file may end in the page's furniture. Hard-wrapped text (READMEs,
    # licences) was written as text.
    web_like = any(len(line) > _WRAP_WIDTHS.stop for line in text.splitlines())
    return Parsed("", text_blocks(text), web_like=web_like, raw_chars=len(" ".join(text.split())))


def _is_rule(line: str) -> bool:
    """A line of one repeated punctuation character: an underline or a separator."""
    stripped = line.strip()
    return len(stripped) >= 3 and stripped[0] in _RULE_CHARS and set(stripped) == {stripped[0]}


def _bullet(line: str) -> str | None:
    """The item text when ``line`` opens a bulleted item, else None."""
    stripped = line.lstrip()
    if stripped.startswith(_BULLETS) and len(stripped) > 2 and not stripped[2].isspace():
        return stripped[2:]
    return None


def text_blocks(text: str, *, page: int | None = None, ocr: bool = False) -> list[Block]:
    """The paragraphs, items and headings of plain text, in order."""
    blocks: list[Block] = []
    for lines in _raw_blocks(text):
        blocks.extend(_block_paragraphs(lines, page, ocr))
    return blocks


def _raw_blocks(text: str) -> list[list[str]]:
    raw: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.strip():
            raw[-1].append(line.rstrip())
        elif raw[-1]:
            raw.append([])
    return [lines for lines in raw if lines]


def _is_centred(lines: list[str]) -> bool:
    """Lines set in the middle of the page (a licence's title block): each is its own line."""
    indents = [len(line) - len(line.lstrip()) for line in lines]
    centres = [indent + (len(line) - indent) / 2 for indent, line in zip(indents, lines, strict=True)]
    return (
        len(lines) > 1
        and min(indents) >= _CENTRED_INDENT
        and len(set(indents)) > 1
        and max(centres) - min(centres) <= _CENTRE_TOLERANCE
    )


def _mostly_full(lines: list[str], width: int) -> bool:
    """Whether most lines of the block (all but the last) stop where the next word would
    not fit: the shape of hard-wrapped text, not of a title above a caption and a byline."""
    full = sum(
        1
        for line, following in itertools.pairwise(lines)
        if len(line) + 1 + len(following.split()[0]) > _FULL_LINE * width
    )
    return 2 * full > len(lines) - 1


def _block_paragraphs(lines: list[str], page: int | None, ocr: bool) -> list[Block]:
    width = max(len(line) for line in lines)
    wrapped = width in _WRAP_WIDTHS and not _is_centred(lines) and _mostly_full(lines, width)
    out: list[Block] = []
    parts: list[str] = []
    kind = PARAGRAPH
    previous = ""

    def flush() -> None:
        if parts:
            out.append(Block(" ".join(parts), kind, page, ocr))
            parts.clear()

    for line in lines:
        if _is_rule(line):
            # An underline makes the single line above it a heading; a lone rule is decoration.
            if len(parts) == 1 and kind == PARAGRAPH and previous:
                kind = HEADING
            flush()
            kind, previous = PARAGRAPH, ""
            continue
        item = _bullet(line)
        words = line.split()
        if item is not None:
            flush()
            kind, parts[:] = ITEM, [" ".join(item.split())]
        elif parts and _continues(previous, line, words[0], width, wrapped):
            parts.append(" ".join(words))
        else:
            flush()
            kind, parts[:] = PARAGRAPH, [" ".join(words)]
        previous = line
    flush()
    if len(lines) == 1 and len(out) == 1 and _looks_like_heading(out[0].text):
        out[0] = Block(out[0].text, HEADING, page, ocr, level=2)
    return out


def _continues(previous: str, line: str, first_word: str, width: int, wrapped: bool) -> bool:
    """Whether ``line`` continues the paragraph that ``previous`` ends (a wrap, not a break)."""
    if wrapped and len(previous) + 1 + len(first_word) > _FULL_LINE * width:
        return True
    ends_sentence = previous[-1] in _SENTENCE_END and previous[-1] != ","
    hyphenated = len(previous) > 1 and previous[-1] == "-" and previous[-2].isalpha()
    return not ends_sentence and (line.lstrip()[0].islower() or previous[-1] == "," or hyphenated)


def _looks_like_heading(text: str) -> bool:
    return (
        len(text.split()) < _HEADING_MAX_WORDS
        and text[0].isalnum()
        and text[-1] not in _SENTENCE_END
        and "://" not in text
    )
