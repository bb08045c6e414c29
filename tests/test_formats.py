"""Each format's reader on small real-shaped files: structure kept, markup and furniture gone."""

from __future__ import annotations

import io
import os
import shutil

import pytest

from qa.cleaning import assemble, drop_page_end_run, drop_repeats, is_fragment
from qa.errors import CorpusError
from qa.formats import CODE, HEADING, ITEM, ROW, Block, reader_for
from qa.formats.pdf import OCR_INSTALL


def _read(suffix: str, data: bytes | str):
    return reader_for(suffix)(data.encode() if isinstance(data, str) else data)


def _texts(parsed, kind=None):
    return [b.text for b in parsed.blocks if kind is None or b.kind == kind]


# --- plain text ----------------------------------------------------------------------------


def test_wrapped_lines_are_joined_even_before_a_capital():
    text = (
        "Git is an Open Source project covered by the GNU General Public\n"
        "License version 2 (some parts of it are under different licenses,\n"
        "compatible with the GPLv2). It was originally written by Linus\n"
        "Torvalds with help of a group of hackers around the net.\n"
    )
    parsed = _read(".txt", text)
    assert _texts(parsed) == [" ".join(text.split())]


def test_plain_text_lists_headings_and_centred_titles():
    text = (
        "                    GNU GENERAL PUBLIC LICENSE\n"
        "                       Version 2, June 1991\n\n"
        "KNOWN BUGS:\n\n"
        "* New systems (Debian 2.2 or later) will have /var/mail as a real\n"
        "directory and /var/spool/mail as a symlink to it.\n"
        "* Upgraded systems will have /var/spool/mail as the real directory.\n\n"
        "Daniel Veillard\nBjorn Reese\nWilliam Brack\n"
    )
    parsed = _read(".txt", text)
    assert _texts(parsed)[:2] == ["GNU GENERAL PUBLIC LICENSE", "Version 2, June 1991"]
    assert _texts(parsed, HEADING) == ["KNOWN BUGS:"]
    assert _texts(parsed, ITEM) == [
        "New systems (Debian 2.2 or later) will have /var/mail as a real directory and "
        "/var/spool/mail as a symlink to it.",
        "Upgraded systems will have /var/spool/mail as the real directory.",
    ]
    assert _texts(parsed)[-3:] == ["Daniel Veillard", "Bjorn Reese", "William Brack"]


def test_setext_underline_makes_a_heading_and_leaves_no_rule():
    parsed = _read(".txt", "Mozilla Public License\n======================\n\nThe text of the licence.\n")
    assert [(b.kind, b.text) for b in parsed.blocks] == [
        (HEADING, "Mozilla Public License"),
        ("paragraph", "The text of the licence."),
    ]


# --- Markdown ------------------------------------------------------------------------------

README_MD = """\
[![Build status](https://github.com/git/git/workflows/CI/badge.svg)](https://github.com/git/git/actions)

Git - fast, scalable, distributed revision control system
=========================================================

Git is a **fast**, scalable revision control system. Please read the file [INSTALL][] for
installation instructions, or see <https://git-scm.com/>.

Unix: [![Build](https://ci.example/badge.svg)](https://ci.example), Windows: [![W](https://w.example/b.svg)](https://w)

## Install

* Run `make`, then
* run `make install`.

```sh
./configure --prefix=/usr
make
```

| Option | Meaning |
|---|---|
| `-D ZLIB=OFF` | disable libz |

<details>

Text inside raw HTML stays.

</details>

[INSTALL]: INSTALL
"""


def test_markdown_is_parsed_not_stripped():
    parsed = _read(".md", README_MD)
    assert parsed.title == "Git - fast, scalable, distributed revision control system"
    assert _texts(parsed, HEADING) == [parsed.title, "Install"]
    body = "\n".join(_texts(parsed))
    assert (
        "Git is a fast, scalable revision control system. Please read the file INSTALL for "
        "installation instructions, or see https://git-scm.com/." in body
    )
    for markup in ("badge.svg", "Build status", "](", "**", "[INSTALL]", "Unix:", "<details>", "```"):
        assert markup not in body, markup
    assert _texts(parsed, ITEM) == ["Run make, then", "run make install."]
    assert _texts(parsed, CODE) == ["./configure --prefix=/usr\nmake"]
    assert _texts(parsed, ROW) == ["Option | Meaning", "Option: -D ZLIB=OFF; Meaning: disable libz"]
    assert "Text inside raw HTML stays." in body


# --- reStructuredText ----------------------------------------------------------------------

README_RST = """\
Jansson README
==============

.. image:: https://github.com/akheron/jansson/workflows/tests/badge.svg
  :target: https://github.com/akheron/jansson/actions

Jansson_ is a C library for encoding, decoding and manipulating JSON
data. Its main features are:

- Simple and intuitive API and data model

- `Comprehensive documentation`_

Compilation
-----------

Just use the standard autotools commands::

   $ ./configure
   $ make

.. include:: /etc/passwd

.. _Jansson: http://www.digip.org/jansson/
.. _`Comprehensive documentation`: http://jansson.readthedocs.io/en/latest/
"""


def test_rst_through_docutils():
    parsed = _read(".rst", README_RST)
    assert parsed.title == "Jansson README"
    assert _texts(parsed, HEADING) == ["Jansson README", "Compilation"]
    body = "\n".join(_texts(parsed))
    assert "Jansson is a C library for encoding, decoding and manipulating JSON data." in body
    assert _texts(parsed, ITEM) == ["Simple and intuitive API and data model", "Comprehensive documentation"]
    assert "Just use the standard autotools commands:" in body
    assert _texts(parsed, CODE) == ["$ ./configure\n$ make"]
    for markup in (".. image::", ":target:", "digip.org", "`_", "root:", "include"):
        assert markup not in body, markup


# --- DOCX and HTML -------------------------------------------------------------------------


def test_docx_headings_lists_and_table_rows():
    import docx

    document = docx.Document()
    document.add_heading("Debian releases", level=1)
    document.add_paragraph("Each release has a codename from Toy Story.")
    document.add_paragraph("Buzz was the first.", style="List Bullet")
    table = document.add_table(rows=2, cols=3)
    for cell, value in zip(table.rows[0].cells, ["version", "codename", "release"], strict=True):
        cell.text = value
    for cell, value in zip(table.rows[1].cells, ["1.1", "Buzz", "1996-06-17"], strict=True):
        cell.text = value
    document.add_paragraph("The table comes from distro-info-data.")
    buffer = io.BytesIO()
    document.save(buffer)
    parsed = _read(".docx", buffer.getvalue())
    assert parsed.title == "Debian releases"
    assert [(b.kind, b.text) for b in parsed.blocks] == [
        (HEADING, "Debian releases"),
        ("paragraph", "Each release has a codename from Toy Story."),
        (ITEM, "Buzz was the first."),
        (ROW, "version | codename | release"),
        (ROW, "version: 1.1; codename: Buzz; release: 1996-06-17"),
        ("paragraph", "The table comes from distro-info-data."),
    ]


def test_html_table_rows_and_sections():
    html = (
        "<html><head><title>Releases</title></head><body><nav>Home | About</nav><article>"
        "<h1>Releases</h1><p>Debian names each release after a character from the film Toy Story, "
        "a tradition that started with the very first release in 1996.</p>"
        "<h2>History</h2><table><tr><th>Version</th><th>Codename</th></tr>"
        "<tr><td>1.1</td><td>Buzz</td></tr><tr><td>1.2</td><td>Rex</td></tr></table>"
        "<p>Later releases kept the tradition, and the unstable branch is always called Sid.</p>"
        "</article><footer>Contact us</footer></body></html>"
    )
    parsed = _read(".html", html)
    assert parsed.title == "Releases"
    assert "History" in _texts(parsed, HEADING)
    assert _texts(parsed, ROW) == [
        "Version | Codename",
        "Version: 1.1; Codename: Buzz",
        "Version: 1.2; Codename: Rex",
    ]
    assert "Home | About" not in "\n".join(_texts(parsed))


# --- PDF -----------------------------------------------------------------------------------


def _pdf(pages: list[list[str]], *, header: str | None = None) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for number, lines in enumerate(pages, start=1):
        if header:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(72, 810, header)
            pdf.drawString(500, 30, f"Page {number} of {len(pages)}")
        pdf.setFont("Helvetica", 11)
        for row, line in enumerate(lines):
            pdf.drawString(72, 760 - 14 * row, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_pdf_pages_paragraphs_and_running_furniture():
    pages = [
        ["The review recommends a new cyber command by 2027, to be staffed", "by four hundred officers."],
        ["Page two covers procurement of patrol aircraft."],
        ["The third page is about training."],
    ]
    parsed = _read(".pdf", _pdf(pages, header="Annual Defence Review 2026"))
    assert [(b.page, b.text) for b in parsed.blocks] == [
        (1, "The review recommends a new cyber command by 2027, to be staffed by four hundred officers."),
        (2, "Page two covers procurement of patrol aircraft."),
        (3, "The third page is about training."),
    ]


def test_a_paragraph_cut_by_a_page_break_is_one_block_that_knows_both_pages():
    pages = [
        ["The review recommends a new cyber command by 2027, to be staffed", "by four hundred officers and"],
        ["a reserve of two hundred, drawn from industry.", "", "A new paragraph starts", "here and", "ends."],
    ]
    parsed = _read(".pdf", _pdf(pages))
    first = "The review recommends a new cyber command by 2027, to be staffed by four hundred officers and"
    assert [(b.page, b.text, b.page_breaks) for b in parsed.blocks] == [
        (1, f"{first} a reserve of two hundred, drawn from industry.", ((len(first) + 1, 2),)),
        (2, "A new paragraph starts here and ends.", ()),
    ]
    assembled = assemble(parsed.blocks)
    assert assembled.pages == ((0, 1, False), (len(first) + 1, 2, False))


def test_removing_shared_paragraphs_keeps_page_starts_inside_paragraphs():
    from qa.cleaning import Assembled, _key, remove_keys

    text = "Title\n\nShared footer line\n\nBody runs on to the next page here."
    body = text.index("Body")
    assembled = Assembled(text, ((body, "Body"),), ((0, 1, False), (body + 10, 2, False)))
    stripped = remove_keys(assembled, {_key("Shared footer line")})
    assert stripped.text == "Title\n\nBody runs on to the next page here."
    new_body = stripped.text.index("Body")
    assert stripped.pages == ((0, 1, False), (new_body + 10, 2, False))
    assert stripped.sections == ((new_body, "Body"),)


def test_broken_pdf_says_so():
    with pytest.raises(CorpusError, match="PDF"):
        _read(".pdf", b"%PDF-1.4 this is not really a pdf")


def _scanned_pdf(lines: list[str]) -> bytes:
    """A PDF whose only page is a picture of text: no text layer, as a scanner makes."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    font = ImageFont.truetype("DejaVuSans.ttf", 40) if _has_font() else ImageFont.load_default(size=40)
    image = Image.new("L", (1700, 120 + 80 * len(lines)), 255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((80, 60 + 80 * row), line, font=font, fill=0)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.drawImage(ImageReader(image), 40, 500, width=510, height=510 * image.height / image.width)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _has_font() -> bool:
    from PIL import ImageFont

    try:
        ImageFont.truetype("DejaVuSans.ttf", 10)
    except OSError:
        return False
    return True


def test_scanned_pdf_is_read_by_ocr():
    if shutil.which("tesseract") is None:
        if os.environ.get("CI"):
            pytest.fail(f"tesseract is missing on CI: {OCR_INSTALL} (make test installs it)")
        pytest.skip(f"tesseract is not installed: {OCR_INSTALL}")
    parsed = _read(
        ".pdf", _scanned_pdf(["The ferry to Jeju leaves Mokpo at nine.", "Tickets cost forty thousand won."])
    )
    assert [(b.page, b.ocr) for b in parsed.blocks] == [(1, True), (1, True)]
    assert _texts(parsed) == ["The ferry to Jeju leaves Mokpo at nine.", "Tickets cost forty thousand won."]


def test_scanned_pdf_without_ocr_names_the_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CorpusError, match="tesseract-ocr"):
        _read(".pdf", _scanned_pdf(["No text layer here."]))


# --- generic furniture rules ---------------------------------------------------------------


def _blocks(*texts: str) -> list[Block]:
    return [Block(t) for t in texts]


BODY = (
    "The streaming company said its subscription revenue rose by a fifth last year, as viewers in "
    "Asia signed on in record numbers and the firm expanded into six new markets across the region."
)


def test_page_end_run_of_fragments_goes_but_body_and_sentences_stay():
    blocks = _blocks(
        "Title", BODY, "A closing sentence that is content.", "Share", "Print", "-", "Back to top"
    )
    assert [b.text for b in drop_page_end_run(blocks)] == [
        "Title",
        BODY,
        "A closing sentence that is content.",
    ]


def test_long_paragraph_with_keywords_is_never_furniture():
    paragraph = BODY + " Subscribe, log in, copyright, all rights reserved: words alone remove nothing."
    blocks = _blocks("Title", BODY, "Subscribe", "Log in", paragraph)
    assert drop_page_end_run(blocks)[-1].text == paragraph


def test_without_body_nothing_is_a_page_end_run():
    words = _blocks("apple", "banana", "cherry", "damson", "elderberry")
    assert drop_page_end_run(words) == words


def test_repeats_keep_their_first_copy_but_headings_may_repeat():
    blocks = [Block("Usage", HEADING), Block(BODY), Block("Usage", HEADING), Block(BODY)]
    assert [b.text for b in drop_repeats(blocks)] == ["Usage", BODY, "Usage"]


def test_assemble_records_sections_and_pages_as_offsets():
    blocks = [Block("Intro", HEADING), Block("First page text.", page=1), Block("Second page.", page=2)]
    assembled = assemble(blocks)
    assert assembled.text == "Intro\n\nFirst page text.\n\nSecond page."
    assert assembled.sections == ((0, "Intro"),)
    assert assembled.pages == ((7, 1, False), (len("Intro\n\nFirst page text.\n\n"), 2, False))


def test_fragment_shape():
    assert is_fragment("Dismiss") and is_fragment("Related Publications")
    assert not is_fragment("Tickets cost forty won.") and not is_fragment(BODY)
