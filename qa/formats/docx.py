"""Word documents (DOCX) through python-docx, in body order: headings, paragraphs, list
items and tables (a table row is one citable line; a cell merged across columns counts
once). The title is the document's core title, else its first Title or Heading 1."""

from __future__ import annotations

import io
import zipfile

from qa.errors import CorpusError
from qa.formats import HEADING, ITEM, PARAGRAPH, Block, Parsed, table_rows


def read(data: bytes) -> Parsed:
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise CorpusError(f"corrupt or unreadable DOCX ({exc})") from exc
    blocks: list[Block] = []
    title = document.core_properties.title or ""
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(element, document)
            text = " ".join(paragraph.text.split())
            if not text:
                continue
            level = _heading_level(paragraph)
            if level:
                title = title or (text if level == 1 else "")
                blocks.append(Block(text, HEADING, level=level))
            else:
                blocks.append(Block(text, ITEM if _is_list_item(paragraph) else PARAGRAPH))
        elif tag == "tbl":
            rows = []
            for row in Table(element, document).rows:
                cells: list[str] = []
                for cell in row.cells:
                    if not cells or cell.text != cells[-1]:  # a merged cell repeats per column
                        cells.append(cell.text)
                rows.append(cells)
            blocks.extend(table_rows(rows))
    return Parsed(str(title), blocks)


def _style_name(paragraph: object) -> str:
    style = getattr(paragraph, "style", None)
    return str(getattr(style, "name", "") or "")


def _heading_level(paragraph: object) -> int:
    name = _style_name(paragraph)
    if name == "Title":
        return 1
    if name.startswith("Heading "):
        suffix = name.removeprefix("Heading ")
        return int(suffix) if suffix.isdigit() else 1
    return 0


def _is_list_item(paragraph: object) -> bool:
    if _style_name(paragraph).startswith("List"):
        return True
    properties = paragraph._p.pPr  # type: ignore[attr-defined]
    return properties is not None and properties.numPr is not None
