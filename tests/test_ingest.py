"""Reading every format from real files, and cleaning the seed articles' noise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qa.corpus import file_sha256, load_documents
from qa.errors import CorpusError
from qa.ingest import find_date, read_document
from qa.records import CorpusFile
from tests.conftest import CORPUS


def _read(path: Path):
    return read_document(CorpusFile(path.name, path, file_sha256(path)))


def test_txt_title_is_first_line_and_duplicates_go(tmp_path):
    path = tmp_path / "a.txt"
    para = "Seoul and Brussels agreed to share intelligence on missile launches."
    path.write_text(f"Allies agree\n\n{para}\n\n{para}\n\nThe deal starts in May.\n")
    doc = _read(path)
    assert doc.title == "Allies agree"
    assert doc.text.count(para) == 1
    assert "The deal starts in May." in doc.text


def test_markdown_syntax_is_stripped(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Field notes\n\nThe **ferry** leaves from [Incheon](http://x.example) at 9am daily.\n")
    doc = _read(path)
    assert doc.title == "Field notes"
    assert "The ferry leaves from Incheon at 9am daily." in doc.text


def test_html_main_text_title_and_date(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Drills resume</title><meta name='date' content='2024-05-03'></head><body>"
        "<nav>Home | World | Sign in</nav><article><h1>Drills resume</h1>"
        "<p>Published May 3, 2024</p>"
        "<p>Joint naval drills resumed off the eastern coast on Friday after a two-year pause.</p>"
        "<p>Officials said the exercise would last nine days and involve twelve ships.</p></article>"
        "<footer>Subscribe to our newsletter</footer></body></html>"
    )
    doc = _read(path)
    assert doc.title == "Drills resume"
    assert "twelve ships" in doc.text and "two-year pause" in doc.text
    assert "newsletter" not in doc.text and "Sign in" not in doc.text
    assert doc.date == "2024-05-03"


def test_pdf_text_and_metadata_title(tmp_path):
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = tmp_path / "report.pdf"
    pdf = canvas.Canvas(str(path), pagesize=A4)
    pdf.setTitle("Annual Defence Review")
    pdf.drawString(72, 760, "The review recommends a new cyber command by 2027.")
    pdf.showPage()
    pdf.drawString(72, 760, "Page two covers procurement of patrol aircraft.")
    pdf.save()
    doc = _read(path)
    assert doc.title == "Annual Defence Review"
    assert "new cyber command by 2027" in doc.text and "patrol aircraft" in doc.text


def test_docx_paragraphs_and_core_title(tmp_path):
    import docx

    path = tmp_path / "memo.docx"
    document = docx.Document()
    document.core_properties.title = "Liaison memo"
    document.add_paragraph("The liaison office opens in Brussels in March.")
    document.add_paragraph("Two officers will staff it full time.")
    document.save(str(path))
    doc = _read(path)
    assert doc.title == "Liaison memo"
    assert "liaison office opens in Brussels" in doc.text and "Two officers" in doc.text


def test_latin1_text_is_decoded(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Café in São Paulo: the naïve délégation arrived.".encode("latin-1"))
    assert "Café in São Paulo" in _read(path).text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.txt", b"", "no text"),
        ("binary.txt", b"\x00\x01\x02PK\x00\x00" * 100, "binary"),
        ("broken.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
        ("broken.docx", b"not a zip file", "DOCX"),
    ],
)
def test_unusable_files_say_why(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CorpusError, match=reason):
        _read(path)


def test_load_documents_skips_and_reports_bad_files(tmp_path):
    (tmp_path / "good.txt").write_text("Title\n\nA perfectly good sentence about ships.")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00")
    (tmp_path / "~$draft.docx").write_bytes(b"lock")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing-target.txt")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "sub" / "nested.md").write_text("# Nested\n\nNested files are found too.")
    docs, skipped = load_documents(tmp_path)
    assert sorted(d.source for d in docs) == ["good.txt", "sub/nested.md"]
    reasons = {s.source: s.reason for s in skipped}
    assert set(reasons) == {"empty.txt", "image.png", "gone.txt"}
    assert "cannot be read" in reasons["gone.txt"]
    assert "unsupported" in reasons["image.png"]


def test_missing_corpus_folder_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        load_documents(tmp_path / "nope")


# --- the seed articles -------------------------------------------------------------------

NOISE = [
    "Get 30 days",
    "free access",
    "KOREA PRO newsletter",
    "Cancel anytime",
    "All rights reserved",
    "without prior written permission",
    "Related Publications",
    "Atmanirbhar Bharat",
    "Tokyo’s New Ally",
    "Legal Disclaimer",
    "without warranty",
    "MENAFN29082024",
    "scroll to top",
    "Dismiss",
]
KEPT = [
    "At the NATO Defense Ministers' Meeting in Brussels on Oct. 17",
    "I look forward to forging a shared approach to our shared challenges.",
    "By bno - Taipei Office October 2, 2024",
    "unprecedentedly bold",
    "Historical context and evolution",
    "Locked Shields",
    "cyberdefense",
    "first involvement in the exercise",
]


def test_seed_articles_lose_their_noise_and_keep_their_content():
    docs, skipped = load_documents(CORPUS)
    assert skipped == [] and len(docs) == 5
    text = "\n".join(d.text for d in docs)
    for noise in NOISE:
        assert noise not in text, noise
    for content in KEPT:
        assert content in text, content
    first = next(d for d in docs if d.source.startswith("000_"))
    assert first.text.count("The partnership between NATO’s four Indo-Pacific partners") == 1
    dated = next(d for d in docs if d.source.startswith("001_"))
    assert dated.title.startswith("South Korea, Japan to join NATO's defence summit")
    assert dated.date == "2024-10-02"


def test_long_paragraph_mentioning_subscriptions_is_content(tmp_path):
    paragraph = (
        "The streaming company said its subscription revenue rose by a fifth last year, as "
        "viewers in Asia signed on in record numbers and the firm expanded into six new markets "
        "across the region, adding local dramas, sports rights and a cheaper plan with adverts "
        "that analysts expect to lift margins further in the coming year."
    )
    path = tmp_path / "streaming.txt"
    path.write_text(f"Title\n{paragraph}\nSubscribe\nLog in\n{paragraph.replace('fifth', 'sixth')}\n")
    text = _read(path).text
    assert paragraph in text and paragraph.replace("fifth", "sixth") in text


def test_find_date_formats():
    assert find_date(["By staff - 3 March 2021"]) == "2021-03-03"
    assert find_date(["Posted Sept. 9, 2023 at noon"]) == "2023-09-09"
    assert find_date(["Updated 2022-11-30T10:00"]) == "2022-11-30"
    assert find_date(["In July 2023 the summit met."]) is None


def test_corpus_files_are_unchanged_copies_of_shared():
    shared = CORPUS.parent.parent / "shared" / "corpus"
    if not shared.is_dir():
        pytest.skip("../shared/corpus is not present")
    names = sorted(os.listdir(shared))
    assert sorted(p.name for p in CORPUS.iterdir()) == names
    for name in names:
        assert (CORPUS / name).read_bytes() == (shared / name).read_bytes()
