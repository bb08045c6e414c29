"""The web chat: its pure helpers, then the live app through Chromium and gradio_client.

The live tests share one index (a copy of the bundled corpus, built once per module), one
engine and one in-process server on a free loopback port.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa.build import build_index
from qa.conversations import STORE_NAME, ConversationStore, default_data_dir, eval_item
from qa.corpus import MAX_UPLOAD_BYTES, PREVIOUS_VERSIONS, safe_upload_name, save_upload
from qa.errors import OptionsError, UploadError
from qa.pipeline import Engine
from qa.records import Answer, Citation, CitedValue
from qa.testing import free_port
from qa.web import (
    ABSTAIN_FLOOR,
    answer_pieces,
    launch,
    link_markers,
    relevance_html,
    retrieval_options,
    sources_html,
)

# Gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# True once the viewer has scrolled its highlighted passage into view.
HIT_IN_VIEW = (
    "() => { const d = document.getElementById('qa-viewer-frame').contentDocument;"
    " const hit = d && d.getElementById('qa-hit'); if (!hit) return false;"
    " const r = hit.getBoundingClientRect(); return r.top >= 0 && r.top < d.defaultView.innerHeight; }"
)
REALDOCS_PDF = Path(__file__).resolve().parent / "data" / "realdocs" / "corpus" / "mpl-2.0.pdf"
MEETING = "Where was the NATO Defense Ministers' Meeting held in October 2024?"


# --- formatting (pure) -------------------------------------------------------------------


def _cited(*excerpts: str) -> list[Citation]:
    return [Citation(f"{n}.txt", "T", excerpt, 0, len(excerpt), 0.5) for n, excerpt in enumerate(excerpts)]


def test_answers_stream_one_cited_sentence_at_a_time():
    answer = Answer(
        "q", _cited("Kim Seonho went to Brussels.", "He proposed *closer* ties."), abstained=False
    )
    pieces = answer_pieces(answer)
    assert pieces == ["Kim Seonho went to Brussels. [1] ", "He proposed \\*closer\\* ties. [2]"]
    assert "".join(pieces).replace("\\", "") == answer.text  # only the Markdown escapes differ


def test_a_short_answer_or_a_conflict_streams_first():
    citations = _cited("The fleet sailed in 2023.", "The fleet sailed in 2024.")
    short = Answer("q", citations[:1], abstained=False, short_answer=CitedValue("2023", 1))
    assert answer_pieces(short) == ["2023 [1]\n\n", "The fleet sailed in 2023. [1]"]
    conflict = (CitedValue("2023", 1), CitedValue("2024", 2))
    disputed = Answer("q", citations, abstained=False, conflict=conflict)
    assert answer_pieces(disputed)[0] == "The sources disagree: 2023 [1] or 2024 [2].\n\n"
    assert "".join(answer_pieces(disputed)) == disputed.text
    abstained = Answer("q", citations, abstained=True)
    assert answer_pieces(abstained) == [abstained.text] and "[1]" not in abstained.text


class _OneDocument:
    """The one ``Index`` method the sources panel reads."""

    def __init__(self, source: str, text: str) -> None:
        self.source, self.text = source, text

    def document_text(self, source: str) -> str:
        if source != self.source:
            raise KeyError(source)
        return self.text


def test_sources_escape_everything_from_documents():
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    text = "Intro " * 100 + f"The claim {hostile} holds." + " Outro" * 100
    start = text.index("The claim")
    end = text.index(" Outro")
    citation = Citation(f"{hostile}.txt", f"Title {hostile}", text[start:end], start, end, 0.5, hostile)
    answer = Answer(question="q", citations=[citation], abstained=False)
    html = sources_html(answer, _OneDocument(citation.source, text))  # type: ignore[arg-type]
    assert "<script" not in html and "<img" not in html and 'onerror="' not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the passage around the sentence, and a wider one under "More context"
    assert html.count("<mark>") == 2 and "<mark>The claim &lt;script&gt;" in html
    assert "\n" not in html  # one raw-HTML block: a blank line would end it inside Markdown
    assert html.index("<mark>") - html.index('class="qa-passage">') < 160 + 60  # about 160 chars before
    wider = html.index('class="qa-passage qa-wider">')
    assert html.index("<mark>", wider) - wider < 400 + 60


def test_markers_open_their_citation_but_brackets_from_documents_stay_text():
    import base64

    citations = [Citation("a b.txt", "A", "x", 3, 9, 1.0), Citation("c.txt", "C", "y", 0, 1, 1.0)]
    answer = Answer("q", citations, abstained=False)
    linked = link_markers("Copied \\[2\\] text [1] and [2], not [3].", answer)
    tokens = re.findall(r"qa-view-([\w-]+)", linked)
    views = [base64.urlsafe_b64decode(t + "=" * (-len(t) % 4)).decode() for t in tokens]
    assert views == [
        "qa/view?source=a+b.txt&start=3&end=9#qa-hit",
        "qa/view?source=c.txt&start=0&end=1#qa-hit",
    ]
    assert "\\[2\\]" in linked and linked.endswith("not [3].")  # escaped, and out of range


def test_relevance_in_words_with_the_number_on_hover():
    assert "strong match" in relevance_html(1.043) and 'title="relevance score 1.043"' in relevance_html(
        1.043
    )
    assert "width:100%" in relevance_html(1.043) and "width:0%" in relevance_html(-0.2)
    assert "partial match" in relevance_html(0.35) and "weak match" in relevance_html(0.05)


def test_an_abstention_shows_only_passages_above_the_floor():
    close = Citation("a.txt", "Close", "near", 0, 4, ABSTAIN_FLOOR + 0.2)
    far = Citation("b.txt", "Far", "far away", 0, 8, ABSTAIN_FLOOR - 0.2)
    html = sources_html(Answer("q", [close, far], abstained=True), None)
    assert "Closest passages" in html and "Close" in html and "far away" not in html
    html = sources_html(Answer("q", [far], abstained=True), None)
    assert "No passage in the documents is close to this question" in html and "far away" not in html


def test_a_changed_document_shows_the_excerpt_without_a_passage():
    citation = Citation("a.txt", "A", "old words", 0, 9, 0.5)
    answer = Answer(question="q", citations=[citation], abstained=False)
    html = sources_html(answer, _OneDocument("a.txt", "new words entirely"))  # type: ignore[arg-type]
    assert "old words" in html and "<details>" not in html


# --- uploads (pure, on disk) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/cron.d/evil.txt", "evil.txt"),
        ("..\\..\\Windows\\notes.md", "notes.md"),
        ("a<b>|c.TXT", "a_b__c.TXT"),
        ("회의록.docx", "회의록.docx"),
    ],
)
def test_upload_names_keep_only_a_safe_base_name(name, stored):
    assert safe_upload_name(name) == stored


@pytest.mark.parametrize(
    "name", [".bashrc.txt", "..", "dir/", "~$lock.docx", "tool.exe", "archive.tar.gz", "noext"]
)
def test_upload_names_refused(name):
    with pytest.raises(UploadError):
        safe_upload_name(name)


def test_upload_replaces_a_corpus_file_on_request_but_never_follows_a_link_out(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (corpus / "link.txt").symlink_to(outside)
    upload = tmp_path / "upload.txt"
    upload.write_text("new text")

    with pytest.raises(UploadError, match=r"'link\.txt' already exists in the corpus"):
        save_upload(upload, corpus, "../link.txt")
    assert save_upload(upload, corpus, "../link.txt", replace=True) == "replaced link.txt"
    assert outside.read_text() == "keep me"
    assert not (corpus / "link.txt").is_symlink() and (corpus / "link.txt").read_text() == "new text"
    assert (corpus / PREVIOUS_VERSIONS / "link.txt").is_symlink()  # the replaced version, kept as it was
    assert save_upload(upload, corpus, "fresh.txt") == "added fresh.txt"
    # no partial copies left
    assert sorted(p.name for p in corpus.iterdir()) == sorted([PREVIOUS_VERSIONS, "fresh.txt", "link.txt"])


def test_upload_size_is_limited(tmp_path):
    big = tmp_path / "big.txt"
    with big.open("wb") as handle:
        handle.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: no real 50 MB written
    with pytest.raises(UploadError, match="limit is 50 MB"):
        save_upload(big, tmp_path / "corpus")
    assert not (tmp_path / "corpus" / "big.txt").exists()


# --- the live app ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory, encoder, multilingual_encoder) -> Iterator[SimpleNamespace]:
    """The app over a copy of the bundled corpus, served in-process on a free port."""
    try:
        import torch

        torch.set_num_threads(min(2, os.cpu_count() or 1))
    except ImportError:
        pass
    base = tmp_path_factory.mktemp("web")
    corpus = base / "corpus"
    shutil.copytree(ROOT / "corpus", corpus)
    index_dir = base / "index"
    build_index(corpus, index_dir, encoder=encoder, multilingual_encoder=multilingual_encoder)
    engine = Engine(index_dir)
    port = free_port()
    demo = launch(corpus_dir=corpus, index_dir=index_dir, port=port, engine=engine, block=False)
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}/", corpus=corpus, engine=engine, demo=demo)
    finally:
        demo.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing; install Debian's chromium (make browser)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, served):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(served.url)
    page.locator("#qa-question textarea").wait_for()
    page.locator("#qa-chat").wait_for(state="attached")
    yield page
    page.close()


def _ask(page, question: str) -> tuple:
    """Ask in the chat; wait for the turn to finish; return (answer bubble, its sources)."""
    before = page.locator("#qa-chat .qa-sources").count()
    page.locator("#qa-question textarea").fill(question)
    page.locator("#qa-ask").click()
    page.wait_for_function(
        f"document.querySelectorAll('#qa-chat .qa-sources').length > {before}", timeout=60_000
    )
    sources = page.locator("#qa-chat .qa-sources").last
    answer = page.locator("#qa-chat .bot-row").nth(-2)
    return answer, sources


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _upload_and_rebuild(page, *paths: Path) -> tuple[str, list[str]]:
    """Upload through the Documents tab and rebuild; return the rebuild's status message and
    every text the progress bar showed, in order."""
    _open_tab(page, "Documents")
    page.locator("#qa-upload input[type=file]").set_input_files([str(p) for p in paths])
    for path in paths:
        page.locator("#qa-status").get_by_text(f"added {path.name}").wait_for()
        page.locator("#qa-index-panel").get_by_text(path.name).wait_for()  # listed as new
    page.evaluate(
        """() => { window.__progress = [];
        new MutationObserver(() => document.querySelectorAll('.progress-text, .progress-level-inner, .meta-text')
            .forEach((e) => window.__progress.push(e.innerText))).observe(
            document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    page.locator("#qa-rebuild").click()
    page.locator("#qa-status").get_by_text("Index rebuilt").wait_for()
    shown = page.evaluate("window.__progress")
    status = page.locator("#qa-status").inner_text()
    _open_tab(page, "Chat")
    return status, shown


@pytest.mark.browser
def test_answer_streams_with_markers_and_cited_excerpts(page, served, tmp_path):
    # Record every state of the chat's bot messages: streaming shows the placeholder and
    # then the answer, in separate updates.
    page.evaluate(
        """() => { window.__states = [];
        new MutationObserver(() => document.querySelectorAll('#qa-chat .bot-row').forEach(
            (row) => window.__states.push(row.innerText))).observe(
            document.querySelector('#qa-chat'), {subtree: true, childList: true, characterData: true}); }"""
    )
    question = "Which countries does NATO say are supporting Russia?"
    answer, sources = _ask(page, question)
    text = answer.inner_text()
    assert "[1]" in text and "China" in text and "North Korea" in text
    first = sources.locator(".qa-source").first
    assert first.locator(".qa-n").inner_text() == "[1]"
    assert "001_ddccf97d934a6be5.txt" in first.inner_text()
    assert "2024-10-02" in first.inner_text()  # the document's date
    assert "strong match" in first.inner_text()  # relevance in words, the number on hover
    assert first.locator(".qa-relevance").get_attribute("title").startswith("relevance score ")
    (cited,) = served.engine.answer(question).citations
    mark = first.locator(".qa-passage mark").first
    assert mark.inner_text() == cited.excerpt and "China, North Korea, and Iran" in cited.excerpt
    assert len(first.locator(".qa-passage").first.inner_text()) > len(cited.excerpt) + 100  # its context
    states = page.evaluate("window.__states")
    assert any("Searching the documents" in s for s in states)

    first.locator("summary").click()
    wider = first.locator(".qa-wider mark")
    assert wider.is_visible() and wider.inner_text() == cited.excerpt
    assert len(first.locator(".qa-wider").inner_text()) > len(cited.excerpt) + 400

    # [1] in the answer opens the document beside the chat, the excerpt highlighted exactly
    answer.locator(".qa-marker").first.click()
    viewer = page.frame_locator("#qa-viewer-frame")
    hit = viewer.locator("mark#qa-hit")
    hit.wait_for()
    assert hit.inner_text() == cited.excerpt
    assert "001_ddccf97d934a6be5.txt" in viewer.locator(".meta").inner_text()
    frame = page.frame_locator("#qa-viewer-frame").locator("body")
    page.wait_for_function(HIT_IN_VIEW)
    assert len(frame.inner_text()) > 3 * len(cited.excerpt)  # the whole document is there to read
    # the source's title opens it too
    page.evaluate("document.getElementById('qa-viewer-frame').src = 'about:blank'")
    first.locator(".qa-title").click()
    hit.wait_for()
    assert hit.inner_text() == cited.excerpt

    page.locator("#qa-chat .bubble-wrap").evaluate("(wrap) => wrap.scrollTo(0, 0)")  # the question in view
    # The README's picture is refreshed by `make screenshot` (QA_SCREENSHOT names it); a
    # plain test run leaves the tracked file alone.
    shot = Path(os.environ.get("QA_SCREENSHOT") or tmp_path / "chat.png")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
def test_a_question_typed_while_another_is_answered_is_kept(page):
    box = page.locator("#qa-question textarea")
    box.fill("NATO 국방장관 회의는 어디에서 열렸나요?")
    page.locator("#qa-ask").click()
    page.locator("#qa-chat .user-row").wait_for()  # the question has moved into the chat
    box.fill("Who is NATO's Secretary General?")  # typed while the answer is being composed
    page.locator("#qa-chat .qa-sources").wait_for()
    assert box.input_value() == "Who is NATO's Secretary General?"


@pytest.mark.browser
def test_unanswerable_question_abstains_and_shows_the_closest_passages(page):
    answer, sources = _ask(page, "What is the tallest mountain in Japan?")
    assert "do not answer" in answer.inner_text()
    assert "[1]" not in answer.inner_text()
    assert "Closest passages" in sources.inner_text()
    assert sources.locator(".qa-source").count() >= 1
    # nothing close at all: said, not cluttered with passages scoring near zero
    answer, sources = _ask(page, "How do I bake sourdough bread?")
    assert "do not answer" in answer.inner_text()
    assert "No passage in the documents is close" in sources.inner_text()
    assert sources.locator(".qa-source").count() == 0


@pytest.mark.browser
def test_examples_come_from_the_served_documents(page, served):
    examples = page.locator("#qa-examples")
    examples.get_by_text("What does “", exact=False).first.wait_for()
    shown = examples.inner_text()
    titles = [d.title for d in served.engine.index().documents()]
    assert "NATO Defense Ministers' Meeting held in October" not in shown  # no hard-coded questions
    buttons = examples.locator("button")
    assert 1 <= buttons.count() <= 3
    buttons.first.click()
    page.wait_for_function("document.querySelector('#qa-question textarea').value.startsWith('What does')")
    asked = page.locator("#qa-question textarea").input_value()
    assert any(f"What does “{title}” say?" == asked for title in titles), asked


@pytest.mark.browser
def test_a_conversation_is_saved_judged_resumed_and_exported(page, served, tmp_path):
    question = "What did Mark Rutte say he looked forward to?"
    answer, _ = _ask(page, question)
    answered = answer.inner_text()
    listed = page.locator("#qa-conversation-list")
    listed.get_by_text(question).wait_for()

    # thumbs down on the answer, with a comment
    page.locator("#qa-chat button[aria-label='Dislike']").nth(-2).click()
    page.locator("#qa-feedback-text textarea").fill("It left out the date")
    page.locator("#qa-feedback-save").click()
    page.locator("#qa-conversation-note").get_by_text("Comment saved").wait_for()
    store = ConversationStore(default_data_dir(served.engine.index_dir) / STORE_NAME)
    (judged,) = [t for t in store.judged() if t.question == question]
    assert judged.rating == -1 and judged.comment == "It left out the date"
    item = eval_item(judged)
    assert item["question"] == question and item["any"] == [] and item["comment"] == "It left out the date"

    # the conversation survives a reload, follow-ups included
    page.reload()
    page.locator("#qa-chat .qa-sources").wait_for()
    assert page.locator("#qa-chat .user-row").last.inner_text().strip() == question
    assert page.locator("#qa-chat .bot-row").nth(-2).inner_text() == answered
    page.locator("#qa-chat .qa-marker").first.click()  # its markers still open the viewer
    page.frame_locator("#qa-viewer-frame").locator("mark#qa-hit").wait_for()

    # renamed, then exported as Markdown with the answer and its sources
    page.locator("#qa-rename-text textarea, #qa-rename-text input").first.fill("Rutte's hopes")
    page.locator("#qa-rename").click()
    listed.get_by_text("Rutte's hopes").wait_for()
    with page.expect_download() as download:
        page.locator("#qa-export-md").click()
    assert download.value.suggested_filename == "Rutte-s-hopes.md"
    markdown = Path(download.value.path()).read_text()
    assert markdown.startswith("# Rutte's hopes") and f"## {question}" in markdown
    assert answered.split(" [1]")[0] in markdown and "[1]" in markdown
    assert "Sources:" in markdown and "`001_ddccf97d934a6be5.txt`" in markdown
    assert "👎 wrong — It left out the date" in markdown

    # a new chat leaves it in the list; picking it resumes it
    page.locator("#qa-clear").click()
    page.wait_for_function("document.querySelectorAll('#qa-chat .qa-sources').length === 0")
    listed.get_by_text("Rutte's hopes").click()
    page.locator("#qa-chat .qa-sources").wait_for()
    assert page.locator("#qa-chat .bot-row").nth(-2).inner_text() == answered


@pytest.mark.browser
def test_followup_question_is_resolved_against_the_previous_turn(page):
    answer, _ = _ask(page, MEETING)
    assert "Brussels" in answer.inner_text()
    answer, sources = _ask(page, "Who represented South Korea there?")
    text = answer.inner_text()
    assert "Searched for: Who represented South Korea there? (" in text
    assert "Brussels" in text.split("Searched for:")[1].splitlines()[0]
    assert "Kim Seonho" in text  # the vice defence minister at the Brussels meeting
    assert "000_f97bd294237ad65e.txt" in sources.inner_text()

    page.locator("#qa-clear").click()
    page.wait_for_function("document.querySelectorAll('#qa-chat .qa-sources').length === 0")
    answer, _ = _ask(page, "Who represented South Korea there?")  # no previous turn now
    assert "Searched for" not in answer.inner_text()


@pytest.mark.browser
def test_uploaded_document_is_answerable_after_a_rebuild(page, served, tmp_path):
    document = tmp_path / "zorblat.txt"
    document.write_text(
        "Zorblat Accord\n\nThe Zorblat Accord was signed in Reykjavik in 2031. "
        "It governs the sharing of lunar ice between its eleven signatories.\n"
    )
    # Enough text that embedding it takes seconds on any machine, so the bar is seen moving.
    others = [tmp_path / f"note{n}.txt" for n in range(4)]
    for n, other in enumerate(others):
        sentences = (
            f"The zorblat archive keeps page {p} of note number {n} of the accord." for p in range(60)
        )
        other.write_text(f"Note {n}\n\n" + " ".join(sentences))
    status, shown = _upload_and_rebuild(page, document, *others, REALDOCS_PDF)
    assert "added 6" in status
    # The progress bar moved with the build: files read, then passages embedded, with the
    # counts the CLI prints, not one value until the end. On a quiet machine a stage can
    # finish between two samples, so what must change is the state: count or stage.
    states = list(
        dict.fromkeys(
            f"{done}/{total} {unit}"
            for text in shown
            for done, total, unit in re.findall(r"(\d+)/(\d+) (files|passages)", text)
        )
    )
    assert any(state.endswith("/6 files") for state in states), shown
    assert any(state.endswith("passages") for state in states), shown
    assert len(states) >= 3, states
    assert any(stage in text for text in shown for stage in ("Reading documents", "Embedding passages"))
    assert (served.corpus / "zorblat.txt").read_text() == document.read_text()

    answer, sources = _ask(page, "Where was the Zorblat Accord signed?")
    assert "Reykjavik" in answer.inner_text() and "[1]" in answer.inner_text()
    assert "zorblat.txt" in sources.locator(".qa-source").first.inner_text()

    # a PDF citation says its page, and opens on the page itself with the passage marked
    _, sources = _ask(
        page, "What happens to the licenses granted when a Contributor initiates patent litigation?"
    )
    cited = sources.locator(".qa-source", has_text="mpl-2.0.pdf").first
    number = re.search(r"\bp\. (\d+)", cited.inner_text()).group(1)
    cited.locator(".qa-open").click()
    viewer = page.frame_locator("#qa-viewer-frame")
    viewer.locator("mark#qa-hit").wait_for()
    assert f"p. {number}" in viewer.locator(".meta").inner_text()
    image = viewer.locator(f"img[alt^='Page {number} of']")
    image.wait_for()
    page.wait_for_function(
        "() => { const i = document.getElementById('qa-viewer-frame').contentDocument.querySelector('img');"
        " return i && i.complete && i.naturalWidth > 500; }"
    )
    page.wait_for_function(HIT_IN_VIEW)  # scrolled to the passage below the page's picture

    _open_tab(page, "Documents")
    page.locator("#qa-refresh").click()
    panel = page.locator("#qa-index-panel")
    panel.get_by_text("up to date").wait_for()
    assert "zorblat.txt" in panel.inner_text() and "11 documents" in panel.inner_text()


@pytest.mark.browser
def test_markup_in_documents_and_questions_stays_inert(page, tmp_path):
    hostile = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    document = tmp_path / "quibble.txt"
    document.write_text(
        f"Quibble notes {hostile}\n\n"
        f"The Quibble Protocol bans the string {hostile} and **bold** claims in all treaties.\n"
    )
    _upload_and_rebuild(page, document)

    answer, sources = _ask(page, 'What does the Quibble Protocol ban? <img src=x onerror="window.__pwned=3">')
    sources.locator("summary").first.click()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("#qa-chat script").count() == 0
    assert (
        page.locator("#qa-chat .user-row")
        .last.inner_text()
        .strip()
        .endswith('<img src=x onerror="window.__pwned=3">')
    )
    shown = sources.inner_text()
    assert "<script>window.__pwned=1</script>" in shown  # the title and the excerpt, as text
    assert "**bold**" in shown + answer.inner_text()

    _open_tab(page, "Documents")
    panel = page.locator("#qa-index-panel")
    assert "Quibble notes <script>window.__pwned=1</script>" in panel.inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_ask_endpoint_returns_the_answer_as_json(served):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(served.url, verbose=False)
    result = client.predict("Which countries does NATO say are supporting Russia?", api_name="/ask")
    assert set(result) == {"text", "abstained", "query", "citations"}
    assert result["abstained"] is False and "[1]" in result["text"]
    first = result["citations"][0]
    assert {"source", "title", "excerpt", "start", "end", "score", "date"} <= set(first)
    assert first["excerpt"] in result["text"] and "China" in first["excerpt"]

    unanswerable = client.predict("What is the tallest mountain in Japan?", 3, api_name="/ask")
    assert unanswerable["abstained"] is True and 1 <= len(unanswerable["citations"]) <= 3

    with pytest.raises(AppError, match="The question is empty"):
        client.predict("  ", api_name="/ask")


def test_login_is_required_when_auth_is_given(served):
    from gradio_client import Client

    port = free_port()
    demo = launch(
        index_dir=served.engine.index_dir,
        port=port,
        auth=("ana", "s3cret"),
        engine=served.engine,
        block=False,
    )
    try:
        assert demo.server_name == "127.0.0.1"
        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(ValueError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("ana", "wrong"), verbose=False)
        # the viewer, the originals and the exports ask for the same login
        import httpx

        for route in (
            "qa/view?source=000_f97bd294237ad65e.txt&start=0&end=5",
            "qa/original?source=000_f97bd294237ad65e.txt",
            "qa/export?conversation=x",
        ):
            assert httpx.get(url + route).status_code == 401, route
        with httpx.Client(base_url=url) as session:
            assert session.post("/login", data={"username": "ana", "password": "s3cret"}).status_code == 200
            assert session.get("/qa/view?source=000_f97bd294237ad65e.txt&start=0&end=5").status_code == 200
        started = time.perf_counter()
        result = Client(url, auth=("ana", "s3cret"), verbose=False).predict(
            "Which countries does NATO say are supporting Russia?", api_name="/ask"
        )
        assert "China" in result["text"] and time.perf_counter() - started < 30
    finally:
        demo.close()


def test_readme_gradio_client_example_runs(served, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (example,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "gradio_client" in b]
    exec(compile(example.replace("http://127.0.0.1:7860/", served.url), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "[1]" in out and "China" in out


def test_retrieval_stages_from_the_settings_panel():
    from qa.config import RetrievalOptions

    assert retrieval_options(4, None) == RetrievalOptions(k=4)
    assert retrieval_options(4, ["lexical"]) == RetrievalOptions(k=4, dense=False, lexical=True, rerank=False)
    with pytest.raises(OptionsError, match="Turn on dense or lexical"):
        retrieval_options(4, ["rerank"])
