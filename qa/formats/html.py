"""HTML: the page's main text by trafilatura, kept with its structure.

trafilatura separates the article from navigation, sidebars, footers and comments and
returns it as XML (headings, paragraphs, lists, tables, code), which is read here into
blocks: a table row becomes one citable line, a heading starts a section. The title is
the page's ``<title>``. A page too short for trafilatura is read as its visible body text.
"""

from __future__ import annotations

from qa.formats import CODE, HEADING, ITEM, PARAGRAPH, Block, Parsed, code_block, table_rows
from qa.formats.plaintext import decode_text, text_blocks


def strip_tags(markup: str) -> str:
    """Text between the tags of an HTML fragment, in one linear scan (no regex)."""
    parts: list[str] = []
    position = 0
    while True:
        start = markup.find("<", position)
        if start < 0:
            parts.append(markup[position:])
            break
        parts.append(markup[position:start])
        end = markup.find(">", start)
        if end < 0:
            parts.append(markup[start:])  # a lone "<" is text
            break
        parts.append(" ")
        position = end + 1
    return "".join(parts)


def read(data: bytes) -> Parsed:
    import lxml.etree
    import lxml.html
    import trafilatura

    html = decode_text(data)
    try:
        tree = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):  # nothing but whitespace or comments
        return Parsed("", [])
    title_nodes = tree.xpath("//title/text()")
    title = " ".join(str(title_nodes[0]).split()) if title_nodes else ""
    extracted = trafilatura.extract(
        html,
        output_format="xml",
        include_tables=True,
        include_comments=False,
        include_formatting=False,
        include_links=False,
        include_images=False,
    )
    blocks = _xml_blocks(lxml.etree.fromstring(extracted.encode("utf-8")).find("main")) if extracted else []
    if not blocks:
        # trafilatura declines very short pages; the visible body text is still wanted.
        for node in tree.xpath("//script|//style|//nav|//footer|//header"):
            node.drop_tree()
        body = "\n".join(tree.xpath("//body//text()")) if tree.find("body") is not None else ""
        blocks = text_blocks(body)
    visible = tree.xpath("//body//text()[not(ancestor::script) and not(ancestor::style)]")
    return Parsed(title, blocks, web_like=True, raw_chars=len(" ".join(" ".join(visible).split())))


def _text(node: object) -> str:
    return " ".join("".join(node.itertext()).split())  # type: ignore[attr-defined]


def _xml_blocks(main: object) -> list[Block]:
    blocks: list[Block] = []
    if main is None:
        return blocks
    for node in main:  # type: ignore[attr-defined]
        tag = node.tag
        if tag == "head":
            text = _text(node)
            rend = str(node.get("rend", "h2"))
            level = int(rend[1:]) if rend[1:].isdigit() else 2
            if text:
                blocks.append(Block(text, HEADING, level=level))
        elif tag == "code":
            block = code_block("".join(node.itertext()))
            if block is not None:
                blocks.append(block)
        elif tag == "list":
            blocks.extend(Block(_text(item), ITEM) for item in node.iter("item") if _text(item))
        elif tag == "table":
            rows = [[_text(cell) for cell in row.iter("cell")] for row in node.iter("row")]
            blocks.extend(table_rows(rows))
        else:
            text = _text(node)
            if text:
                blocks.append(Block(text, PARAGRAPH))
    return [b for b in blocks if b.kind == CODE or b.text]
