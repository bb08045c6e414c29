"""Make the two generated documents of the real-document corpus from real text.

    .venv/bin/python tests/data/realdocs/generate.py

- ``mpl-2.0.pdf``: the Mozilla Public License 2.0 (Debian's /usr/share/common-licenses/MPL-2.0,
  copied to ``sources/``) typeset over several pages, with a running header
  and a "Page N" footer on every page: the page furniture a real PDF has. It writes the
  page each paragraph landed on into ``mpl-2.0.pages.json``, which the page-number checks read.
- ``pyyaml-guide.docx``: PyYAML's README (MIT, ``sources/pyyaml-README.md``) as Word headings,
  paragraphs and a bulleted list, plus a table of Debian releases from distro-info-data
  (ISC, ``sources/debian-releases.csv``).

The outputs are committed; rerun only to change them (reportlab and python-docx write
timestamps, so the bytes differ per run).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

HERE = Path(__file__).parent
PDF_HEADER = "Mozilla Public License Version 2.0"


def _blocks(text: str) -> list[str]:
    return [block for block in re.split(r"\n\s*\n", text) if block.strip()]


def _unbox(text: str) -> str:
    """The licence sets two sections in an ASCII box of asterisks; a typeset PDF has no box."""
    lines = []
    for line in text.splitlines():
        boxed = re.fullmatch(r"\*(.*)\*", line.rstrip())
        lines.append("" if re.fullmatch(r"\*+", line.strip()) else boxed.group(1).strip() if boxed else line)
    return "\n".join(lines)


def make_pdf() -> dict[str, int]:
    from xml.sax.saxutils import escape

    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    pages: dict[str, int] = {}

    class Recording(SimpleDocTemplate):
        def afterFlowable(self, flowable):
            if isinstance(flowable, Paragraph):
                pages[flowable.getPlainText()] = self.page

    story = []
    for block in _blocks(_unbox((HERE / "sources" / "mpl-2.0.txt").read_text())):
        lines = block.strip().splitlines()
        if len(lines) == 2 and re.fullmatch(r"[=-]{3,}", lines[1].strip()):
            style = styles["Heading1"] if lines[1].startswith("=") else styles["Heading2"]
            story.append(Paragraph(escape(lines[0].strip()), style))
        else:
            story.append(Paragraph(escape(" ".join(" ".join(lines).split())), styles["BodyText"]))

    def furniture(canvas, document):
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(72, A4[1] - 40, PDF_HEADER)
        canvas.drawRightString(A4[0] - 72, 30, f"Page {document.page}")
        canvas.restoreState()

    document = Recording(
        str(HERE / "corpus" / "mpl-2.0.pdf"), pagesize=A4, allowSplitting=0, title=PDF_HEADER
    )
    document.build(story, onFirstPage=furniture, onLaterPages=furniture)
    return pages


def make_docx() -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "PyYAML"
    source = (HERE / "sources" / "pyyaml-README.md").read_text()
    for block in _blocks(source):
        lines = block.strip().splitlines()
        if lines[0].startswith("## "):
            document.add_heading(lines[0][3:], level=2)
        elif len(lines) == 2 and set(lines[1]) == {"="}:
            document.add_heading(lines[0], level=1)
        elif lines[0].startswith("* "):
            text = " ".join(" ".join(lines).split())[2:]
            document.add_paragraph(re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text), style="List Bullet")
        elif lines[0].startswith("    "):
            for line in lines:
                document.add_paragraph(line.strip(), style="No Spacing")
        else:
            document.add_paragraph(" ".join(" ".join(lines).split()).replace("`", ""))
    document.add_heading("Debian releases", level=2)
    with (HERE / "sources" / "debian-releases.csv").open() as handle:
        rows = [row[:5] for row in csv.reader(handle)][:11]
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    for table_row, values in zip(table.rows, rows, strict=True):
        for cell, value in zip(table_row.cells, values, strict=True):
            cell.text = value
    document.add_paragraph("The release dates above come from Debian's distro-info-data package.")
    document.save(str(HERE / "corpus" / "pyyaml-guide.docx"))


if __name__ == "__main__":
    make_docx()
    pages = make_pdf()
    (HERE / "mpl-2.0.pages.json").write_text(json.dumps(pages, indent=1, ensure_ascii=False) + "\n")
