"""The source viewer: a cited document opened at the citation, for a reader to check it.

``viewer_routes`` serves, beside the web chat:

- ``/qa/view?source=S&start=A&end=B``: the document's cleaned text with ``text[A:B]`` (the
  citation's excerpt, exactly) highlighted and scrolled into view, its section and page;
  for a PDF the page itself, rendered, with the excerpt's lines highlighted on it;
- ``/qa/page?source=S&page=N&start=A&end=B``: that page as a PNG;
- ``/qa/original?source=S``: the original file, as a download.

Only indexed documents are served, and an original only from inside the corpus folder (a
link that resolves outside it is refused like any unknown name). Document text is escaped
and the pages carry a strict Content-Security-Policy: a document is data, never markup. When
the chat asks for a login, so does every route here.
"""

from __future__ import annotations

import html
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from qa.errors import QAError
from qa.pipeline import Engine
from qa.records import Citation
from qa.store import Index

VIEW_PATH = "/qa/view"
PAGE_PATH = "/qa/page"
ORIGINAL_PATH = "/qa/original"
HIT_ID = "qa-hit"  # the highlighted excerpt's element id: the viewer opens at #qa-hit
# A document longer than this is shown as this many characters on each side of the excerpt.
VIEW_WINDOW_CHARS = 200_000
PAGE_SCALE = 1.5  # 108 dpi: readable beside the chat, about 100-300 KB a page
_PAGE_CACHE_SIZE = 32
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_CSS = """
body { font: 15px/1.55 system-ui, sans-serif; margin: 0; padding: 0.8rem 1rem 40vh; color: #1f2937; }
h1 { font-size: 1.1rem; margin: 0 0 0.3rem; }
.meta { opacity: 0.75; font-size: 0.88rem; margin: 0 0 0.6rem; }
.meta a { color: inherit; }
.section { font-weight: 600; margin: 0.6rem 0 0.2rem; }
figure { margin: 0.4rem 0 0.8rem; } figure img { width: 100%; border: 1px solid #d1d5db; }
figcaption { font-size: 0.85rem; opacity: 0.7; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
mark { background: #fde68a; color: inherit; padding: 0 1px; scroll-margin-top: 30vh; }
.note { background: #fef3c7; padding: 0.4rem 0.6rem; border-radius: 4px; }
"""


def view_url(citation: Citation) -> str:
    """The viewer for one citation, relative to the chat's page (so it works behind a proxy
    that serves the app under a path)."""
    query = urlencode({"source": citation.source, "start": citation.start, "end": citation.end})
    return f"{VIEW_PATH.lstrip('/')}?{query}#{HIT_ID}"


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


class _NotServed(Exception):
    """The request names nothing the viewer may serve; the message says what to do."""


def original_file(index: Index, corpus_dir: Path, source: str) -> Path:
    """The corpus file of the indexed document ``source``. Raises ``_NotServed`` for a name
    that is not indexed, or that resolves outside the corpus folder (``..``, a link out)."""
    if source not in index.document_hashes:
        raise _NotServed(f"No indexed document '{source}'.")
    corpus = corpus_dir.resolve()
    path = (corpus / source).resolve()
    if not path.is_relative_to(corpus) or not path.is_file():
        raise _NotServed(f"'{source}' is not a file in the corpus folder.")
    return path


def _offsets(request: Request, length: int) -> tuple[int, int]:
    try:
        start, end = int(request.query_params["start"]), int(request.query_params["end"])
    except (KeyError, ValueError):
        raise _NotServed("Give the citation's start and end offsets as whole numbers.") from None
    if not 0 <= start < end <= length:
        raise _NotServed(f"The offsets {start}-{end} are outside the document ({length} characters).")
    return start, end


def view_html(index: Index, source: str, start: int, end: int, *, pdf_page: bool) -> str:
    """The viewer page for ``text[start:end]`` of ``source``; with ``pdf_page``, the page
    the excerpt starts on is shown above the text."""
    text = index.document_text(source)
    title = next((d.title for d in index.documents() if d.source == source), source)
    layout = index.layout(source)
    section = layout.section_at(start)
    page = layout.page_at(start)
    meta = [f"<code>{_h(source)}</code>"]
    if page is not None:
        meta.append(f"p. {page[0]}" + (" (OCR)" if page[1] else ""))
    meta.append(f"characters {start:,}–{end:,}")
    meta.append(f'<a href="{_h(ORIGINAL_PATH.rsplit("/", 1)[1])}?{_h(urlencode({"source": source}))}" download>'
                "Download original</a>")  # fmt: skip
    figure = ""
    if pdf_page and page is not None:
        query = urlencode({"source": source, "page": page[0], "start": start, "end": end})
        figure = (
            f'<figure><img src="{PAGE_PATH.rsplit("/", 1)[1]}?{_h(query)}" alt="Page {page[0]} of {_h(title)}">'
            f"<figcaption>Page {page[0]}; the cited text is highlighted on it and in the text below.</figcaption></figure>"
        )
    first = max(0, start - VIEW_WINDOW_CHARS)
    last = min(len(text), end + VIEW_WINDOW_CHARS)
    before = ("…" if first else "") + text[first:start]
    after = text[end:last] + ("…" if last < len(text) else "")
    heading = f'<div class="section">§ {_h(section)}</div>' if section else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_h(title)}</title>"
        f"<style>{_CSS}</style></head><body><h1>{_h(title)}</h1>"
        f'<p class="meta">{" · ".join(meta)}</p>{figure}{heading}'
        f'<div class="text">{_h(before)}<mark id="{HIT_ID}">{_h(text[start:end])}</mark>{_h(after)}</div>'
        "</body></html>"
    )


def _normalized(text: str) -> tuple[str, list[int]]:
    """``text`` with whitespace runs as one space and line-end hyphens joined, and for each
    kept character its offset in ``text``: a PDF page's text and the cleaned text differ
    in exactly these ways."""
    kept: list[str] = []
    where: list[int] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "-\u00ad" and text[i + 1 : i + 2] in ("\r", "\n"):
            i += 1
            while i < len(text) and text[i].isspace():
                i += 1
            continue
        if char.isspace():
            if kept and kept[-1] != " ":
                kept.append(" ")
                where.append(i)
            i += 1
            continue
        kept.append(char)
        where.append(i)
        i += 1
    return "".join(kept), where


def _excerpt_boxes(textpage: object, excerpt: str) -> list[tuple[float, float, float, float]]:
    """The rectangles (left, bottom, right, top in PDF points) of the page text that
    matches ``excerpt``, or its longest matching beginning when the page breaks it off."""
    page_text = textpage.get_text_range()  # type: ignore[attr-defined]
    flat, where = _normalized(page_text)
    wanted, _ = _normalized(excerpt)
    found, length = -1, len(wanted)
    while length >= 20 and found < 0:  # the excerpt may run on past the page's end
        found = flat.find(wanted[:length])
        if found < 0:
            length = length * 3 // 4
    if found < 0:
        return []
    first, last = where[found], where[found + length - 1]
    count = textpage.count_rects(first, last - first + 1)  # type: ignore[attr-defined]
    return [textpage.get_rect(n) for n in range(count)]  # type: ignore[attr-defined]


def page_png(path: Path, page_number: int, excerpt: str) -> bytes:
    """Page ``page_number`` (1-based) of the PDF at ``path`` as a PNG, with ``excerpt``'s
    text highlighted. Raises ``_NotServed`` for a page the PDF does not have."""
    import pypdfium2
    from PIL import Image, ImageDraw

    try:
        document = pypdfium2.PdfDocument(str(path))
    except pypdfium2.PdfiumError as exc:  # changed on disk since it was indexed
        raise _NotServed(f"The PDF cannot be rendered now ({exc}); rebuild the index.") from None
    try:
        if not 1 <= page_number <= len(document):
            raise _NotServed(f"The PDF has {len(document)} pages, not page {page_number}.")
        page = document[page_number - 1]
        image = page.render(scale=PAGE_SCALE).to_pil().convert("RGBA")
        height = page.get_height()
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        for left, bottom, right, top in _excerpt_boxes(page.get_textpage(), excerpt):
            box = [
                left * PAGE_SCALE,
                (height - top) * PAGE_SCALE,
                right * PAGE_SCALE,
                (height - bottom) * PAGE_SCALE,
            ]
            draw.rectangle(box, fill=(250, 204, 21, 110))
        out = io.BytesIO()
        Image.alpha_composite(image, overlay).convert("RGB").save(out, format="PNG", optimize=False)
        return out.getvalue()
    finally:
        document.close()


def logged_in(request: Request) -> bool:
    """Whether Gradio's login (when the app has one) lets this request in: the same cookie
    check as the chat's own routes."""
    app = request.app
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    if getattr(app, "auth_dependency", None) is not None:
        return app.auth_dependency(request) is not None
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return token in getattr(app, "tokens", {})


def viewer_routes(engine: Engine, corpus_dir: Callable[[], Path]) -> list[Route]:
    """The viewer's routes over ``engine``'s live index; originals come from ``corpus_dir()``."""
    pages: OrderedDict[tuple[str, int, int, float], bytes] = OrderedDict()
    pages_lock = threading.Lock()

    def guarded(handler: Callable[[Request, Index], Response]) -> Callable[[Request], Response]:
        # Sync handlers: Starlette runs them in its thread pool (PDF rendering takes a while).
        def endpoint(request: Request) -> Response:
            if not logged_in(request):
                return PlainTextResponse("Log in to the chat first.", 401)
            try:
                return handler(request, engine.index())
            except _NotServed as exc:
                return PlainTextResponse(str(exc), 404, headers=_SECURITY_HEADERS)
            except QAError as exc:
                return PlainTextResponse(str(exc), 503, headers=_SECURITY_HEADERS)

        return endpoint

    def source_of(request: Request, index: Index) -> str:
        source = request.query_params.get("source", "")
        if source not in index.document_hashes:
            raise _NotServed(f"No indexed document '{source}'.")
        return source

    def view(request: Request, index: Index) -> Response:
        source = source_of(request, index)
        start, end = _offsets(request, len(index.document_text(source)))
        is_pdf = source.lower().endswith(".pdf")
        if is_pdf:
            original_file(index, corpus_dir(), source)  # a page only from a file still in the corpus
        body = view_html(index, source, start, end, pdf_page=is_pdf)
        return HTMLResponse(body, headers=_SECURITY_HEADERS)

    def page(request: Request, index: Index) -> Response:
        source = source_of(request, index)
        if not source.lower().endswith(".pdf"):
            raise _NotServed(f"'{source}' is not a PDF: it has no pages to show.")
        path = original_file(index, corpus_dir(), source)
        text = index.document_text(source)
        start, end = _offsets(request, len(text))
        try:
            number = int(request.query_params.get("page", ""))
        except ValueError:
            raise _NotServed("Give the page number as a whole number.") from None
        key = (str(path), number, start, path.stat().st_mtime)
        with pages_lock:
            png = pages.get(key)
        if png is None:
            png = page_png(path, number, text[start:end])
            with pages_lock:
                pages[key] = png
                while len(pages) > _PAGE_CACHE_SIZE:
                    pages.popitem(last=False)
        return Response(png, media_type="image/png", headers=_SECURITY_HEADERS)

    def original(request: Request, index: Index) -> Response:
        path = original_file(index, corpus_dir(), source_of(request, index))
        # Always a download: an HTML original opened inline would run as this site's page.
        return FileResponse(path, filename=path.name, headers=_SECURITY_HEADERS)

    return [
        Route(VIEW_PATH, guarded(view), methods=["GET"]),
        Route(PAGE_PATH, guarded(page), methods=["GET"]),
        Route(ORIGINAL_PATH, guarded(original), methods=["GET"]),
    ]
