"""reStructuredText through docutils' own parser.

Section titles become headings (the document title is the title), paragraphs and list
items keep their words without markup (a reference keeps its text, not its target),
literal blocks are code, a table row is one citable line, and images, link targets,
substitution definitions, comments and the parser's own messages are dropped. Directives
that read other files or pass raw HTML through are switched off: a document cannot make
the reader open a file.
"""

from __future__ import annotations

import io

from qa.formats import HEADING, ITEM, PARAGRAPH, Block, Parsed, code_block, table_rows
from qa.formats.plaintext import decode_text

_DROPPED = frozenset(
    {"image", "substitution_definition", "target", "comment", "system_message", "raw", "pending"}
)
_CODE = frozenset({"literal_block", "doctest_block"})


def read(data: bytes) -> Parsed:
    import docutils.core

    text = decode_text(data)
    document = docutils.core.publish_doctree(
        text,
        settings_overrides={
            "report_level": 5,  # no messages in the text or on stderr
            "halt_level": 5,  # malformed markup is read as well as it can be
            "file_insertion_enabled": False,
            "raw_enabled": False,
            "warning_stream": io.StringIO(),
            "input_encoding": "unicode",
        },
    )
    blocks: list[Block] = []
    _walk(document, blocks, depth=0, in_list=False)
    title = str(document.get("title") or "")
    if not title:
        title = next((b.text for b in blocks if b.kind == HEADING), "")
    return Parsed(title, blocks)


def _words(node: object) -> str:
    from docutils import nodes

    parts = [str(t) for t in node.findall(nodes.Text) if not _under_dropped(t, node)]  # type: ignore[attr-defined]
    return " ".join("".join(parts).split())


def _under_dropped(text: object, top: object) -> bool:
    parent = getattr(text, "parent", None)
    while parent is not None and parent is not top:
        if parent.tagname in _DROPPED:
            return True
        parent = parent.parent
    return False


def _walk(node: object, blocks: list[Block], *, depth: int, in_list: bool) -> None:
    for child in node.children:  # type: ignore[attr-defined]
        tag = getattr(child, "tagname", "#text")
        if tag in _DROPPED or tag == "#text":
            continue
        if tag == "section":
            _walk(child, blocks, depth=depth + 1, in_list=False)
        elif tag in ("title", "subtitle"):
            words = _words(child)
            if words:
                blocks.append(Block(words, HEADING, level=max(1, depth) + (tag == "subtitle")))
        elif tag in ("paragraph", "term", "line", "rubric", "caption", "attribution"):
            words = _words(child)
            if words:
                blocks.append(Block(words, ITEM if in_list else PARAGRAPH))
        elif tag in _CODE:
            block = code_block(child.astext())
            if block is not None:
                blocks.append(block)
        elif tag == "table":
            rows = [[_words(entry) for entry in row.children] for row in child.findall(_row_class())]
            blocks.extend(table_rows(rows))
        elif tag == "field":
            name, body = child.children[0], child.children[1]
            words = f"{_words(name)}: {_words(body)}".strip(": ")
            if words:
                blocks.append(Block(words, PARAGRAPH))
        elif tag in ("bullet_list", "enumerated_list", "definition_list", "option_list"):
            _walk(child, blocks, depth=depth, in_list=True)
        else:  # containers: list items, block quotes, admonitions, topics, figures, ...
            _walk(child, blocks, depth=depth, in_list=in_list)


def _row_class() -> type:
    from docutils import nodes

    return nodes.row
