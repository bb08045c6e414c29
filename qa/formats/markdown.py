"""Markdown through a CommonMark parser (markdown-it-py, with GitHub's tables).

The first level-1 heading is the title. Link text is kept and link targets dropped; images
(badges, screenshots) are dropped, and a paragraph that held images and has hardly any
words left (the "Unix: , Windows:" between build badges) goes with them. Raw HTML tags are
dropped and the text between them kept. Code blocks are kept as written.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.token import Token

from qa.formats import HEADING, ITEM, PARAGRAPH, Block, Parsed, code_block, table_rows
from qa.formats.html import strip_tags
from qa.formats.plaintext import decode_text

# Left of a paragraph of badges once the images are gone: labels and punctuation.
_MIN_WORDS_BESIDE_IMAGES = 3


def read(data: bytes) -> Parsed:
    text = decode_text(data)
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    blocks: list[Block] = []
    title = ""
    list_depth = 0
    row: list[str] = []
    rows: list[list[str]] = []
    heading_level = 0
    in_cell = False
    for token in tokens:
        kind = token.type
        if kind in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif kind in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif kind == "heading_open":
            heading_level = int(token.tag[1:])
        elif kind in ("fence", "code_block"):
            block = code_block(token.content)
            if block is not None:
                blocks.append(block)
        elif kind == "html_block":
            words = " ".join(strip_tags(token.content).split())
            if words:
                blocks.append(Block(words, ITEM if list_depth else PARAGRAPH))
        elif kind == "tr_open":
            row = []
        elif kind in ("th_open", "td_open"):
            in_cell = True
        elif kind in ("th_close", "td_close"):
            in_cell = False
        elif kind == "tr_close":
            rows.append(row)
        elif kind == "table_close":
            blocks.extend(table_rows(rows))
            rows = []
        elif kind == "inline":
            line = _inline_text(token)
            if in_cell:
                row.append(line or "")
            elif line is None:
                continue
            elif heading_level:
                if heading_level == 1 and not title:
                    title = line
                blocks.append(Block(line, HEADING, level=heading_level))
            else:
                blocks.append(Block(line, ITEM if list_depth else PARAGRAPH))
        elif kind == "heading_close":
            heading_level = 0
    return Parsed(title, blocks)


def _inline_text(token: Token) -> str | None:
    """The visible words of an inline run, or None when nothing worth keeping is left."""
    parts: list[str] = []
    images = 0
    for child in token.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            images += 1
        elif child.type == "html_inline":
            continue
    text = " ".join("".join(parts).split())
    if not text:
        return None
    if (
        images
        and sum(1 for word in text.split() if any(c.isalpha() for c in word)) < _MIN_WORDS_BESIDE_IMAGES
    ):
        return None
    return text
