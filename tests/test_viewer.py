"""The source viewer's routes over a real index (fake encoder), through a real HTTP client:
the exact span highlighted, PDF pages rendered with the excerpt marked, and nothing served
from outside the corpus."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image, ImageChops
from starlette.applications import Starlette
from starlette.testclient import TestClient

from qa.pipeline import Engine
from qa.records import Citation
from qa.viewer import HIT_ID, page_png, view_url, viewer_routes
from tests.conftest import fake_build

PDF = Path(__file__).resolve().parent / "data" / "realdocs" / "corpus" / "mpl-2.0.pdf"
NOTE = "Zorblat notes\n\nThe <b>Zorblat</b> Accord was signed in Reykjavik in 2031. It shares lunar ice.\n"


@pytest.fixture(scope="module")
def viewer(tmp_path_factory):
    from tests.fakes import HashingEncoder

    base = tmp_path_factory.mktemp("viewer")
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text(NOTE)
    shutil.copy(PDF, corpus)
    (base / "secret.txt").write_text("outside the corpus")
    (corpus / "escape.txt").symlink_to(base / "secret.txt")  # never indexed, never served
    encoder = HashingEncoder()
    fake_build(corpus, base / "index", encoder)
    engine = Engine(base / "index", encoders=[encoder])
    client = TestClient(Starlette(routes=viewer_routes(engine, lambda: corpus)))
    return client, engine.index(), corpus, base


def _citation(index, source: str, excerpt: str) -> Citation:
    text = index.document_text(source)
    start = text.index(excerpt)
    (located,) = index.locate([Citation(source, "t", excerpt, start, start + len(excerpt), 1.0)])
    return located


def test_the_viewer_highlights_exactly_the_cited_span(viewer):
    client, index, _, _ = viewer
    citation = _citation(index, "note.txt", "The <b>Zorblat</b> Accord was signed in Reykjavik in 2031.")
    response = client.get("/" + view_url(citation))
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    body = response.text
    highlighted = body.split(f'<mark id="{HIT_ID}">')[1].split("</mark>")[0]
    assert highlighted == "The &lt;b&gt;Zorblat&lt;/b&gt; Accord was signed in Reykjavik in 2031."
    assert "<b>" not in body and "It shares lunar ice." in body  # the text around it, escaped
    assert 'href="original?source=note.txt"' in body


def test_a_pdf_citation_shows_its_page_with_the_excerpt_marked(viewer):
    client, index, corpus, _ = viewer
    layout = index.layout("mpl-2.0.pdf")
    third = next(offset for offset, page, _ in layout.pages if page == 3)
    text = index.document_text("mpl-2.0.pdf")
    start = third + len(text[third:]) - len(text[third:].lstrip())
    excerpt = text[start : text.index(".", start + 40) + 1]
    (citation,) = index.locate([Citation("mpl-2.0.pdf", "MPL", excerpt, start, start + len(excerpt), 1.0)])
    assert citation.page == 3

    body = client.get("/" + view_url(citation)).text
    assert "p. 3" in body and 'alt="Page 3 of' in body
    image_url = body.split('<img src="')[1].split('"')[0].replace("&amp;", "&")
    assert "page=3" in image_url
    png = client.get("/qa/" + image_url)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    marked = Image.open(io.BytesIO(png.content)).convert("RGB")
    plain = Image.open(io.BytesIO(page_png(corpus / "mpl-2.0.pdf", 3, ""))).convert("RGB")
    assert marked.size == plain.size
    changed = sum(ImageChops.difference(marked, plain).convert("L").histogram()[1:])
    assert changed > 2000  # the excerpt's lines are tinted on the page
    assert client.get(f"/qa/page?source=mpl-2.0.pdf&page=99&start={start}&end={start + 5}").status_code == 404
    assert client.get("/qa/page?source=note.txt&page=1&start=0&end=5").status_code == 404  # no pages


def test_the_original_downloads_only_from_inside_the_corpus(viewer):
    client, _, _, base = viewer
    response = client.get("/qa/original?source=note.txt")
    assert response.status_code == 200 and response.text == NOTE
    assert response.headers["content-disposition"].startswith("attachment")  # never shown inline
    assert response.headers["x-content-type-options"] == "nosniff"
    for name in [
        "../secret.txt",
        "escape.txt",
        "/etc/passwd",
        str(base / "secret.txt"),
        "sub/../../secret.txt",
    ]:
        for route in ("original", "view", "page"):
            refused = client.get(f"/qa/{route}?source={quote(name)}&start=0&end=5&page=1")
            assert refused.status_code == 404, (route, name)
            assert "outside the corpus" not in refused.text  # the secret file's content


def test_an_indexed_name_that_now_leads_outside_is_refused(viewer, tmp_path):
    client, _, corpus, base = viewer
    original = (corpus / "note.txt").read_bytes()
    (corpus / "note.txt").unlink()
    (corpus / "note.txt").symlink_to(base / "secret.txt")  # swapped for a link after the build
    try:
        assert client.get("/qa/original?source=note.txt").status_code == 404
    finally:
        (corpus / "note.txt").unlink()
        (corpus / "note.txt").write_bytes(original)


def test_bad_offsets_are_refused(viewer):
    client, _, _, _ = viewer
    for query in ["start=5&end=5", "start=-1&end=4", "start=0&end=100000", "start=a&end=4", "end=4"]:
        response = client.get(f"/qa/view?source=note.txt&{query}")
        assert response.status_code == 404 and "offsets" in response.text, query
