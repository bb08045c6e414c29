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
from qa.corpus import MAX_UPLOAD_BYTES, PREVIOUS_VERSIONS, safe_upload_name, save_upload
from qa.errors import OptionsError, UploadError
from qa.pipeline import Engine
from qa.records import Answer, Citation, CitedValue
from qa.web import answer_pieces, launch, retrieval_options, sources_html
from tests.conftest import free_port

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
    assert html.count("<mark>") == 1 and "<mark>The claim &lt;script&gt;" in html
    assert "\n" not in html  # one raw-HTML block: a blank line would end it inside Markdown
    assert html.index("<mark>") - html.index('class="qa-passage">') < 400 + 60  # about 400 chars before


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


def _upload_and_rebuild(page, path: Path) -> str:
    """Upload through the Documents tab, rebuild, check the progress bar showed the build's
    stages; return the rebuild's status message."""
    _open_tab(page, "Documents")
    page.locator("#qa-upload input[type=file]").set_input_files(str(path))
    page.locator("#qa-status").get_by_text(f"added {path.name}").wait_for()
    page.locator("#qa-index-panel").get_by_text(path.name).wait_for()  # listed as new
    page.evaluate(
        """() => { window.__progress = new Set();
        new MutationObserver(() => document.querySelectorAll('.progress-text, .progress-level-inner, .meta-text')
            .forEach((e) => window.__progress.add(e.innerText))).observe(
            document.body, {subtree: true, childList: true, characterData: true}); }"""
    )
    page.locator("#qa-rebuild").click()
    page.locator("#qa-status").get_by_text("Index rebuilt").wait_for()
    shown = page.evaluate("[...window.__progress]")
    # The build's own stages drove the progress bar.
    assert any(stage in text for text in shown for stage in ("Reading documents", "Embedding passages")), (
        shown
    )
    status = page.locator("#qa-status").inner_text()
    _open_tab(page, "Chat")
    return status


@pytest.mark.browser
def test_answer_streams_with_markers_and_cited_excerpts(page, tmp_path):
    # Record every state of the chat's bot messages: streaming shows the placeholder and
    # then the answer, in separate updates.
    page.evaluate(
        """() => { window.__states = [];
        new MutationObserver(() => document.querySelectorAll('#qa-chat .bot-row').forEach(
            (row) => window.__states.push(row.innerText))).observe(
            document.querySelector('#qa-chat'), {subtree: true, childList: true, characterData: true}); }"""
    )
    answer, sources = _ask(page, "Which countries does NATO say are supporting Russia?")
    text = answer.inner_text()
    assert "[1]" in text and "China" in text and "North Korea" in text
    first = sources.locator(".qa-source").first
    assert first.locator(".qa-n").inner_text() == "[1]"
    assert "001_ddccf97d934a6be5.txt" in first.inner_text()
    assert "2024-10-02" in first.inner_text()  # the document's date
    excerpt = first.locator(".qa-excerpt").inner_text()
    assert "China, North Korea, and Iran" in excerpt and excerpt.split("[1]")[0] in text
    states = page.evaluate("window.__states")
    assert any("Searching the documents" in s for s in states)

    first.locator("summary").click()
    mark = first.locator(".qa-passage mark")
    assert mark.is_visible() and mark.inner_text() == excerpt
    passage = first.locator(".qa-passage").inner_text()
    assert len(passage) > len(excerpt) + 200  # the text around it is there too

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
    status = _upload_and_rebuild(page, document)
    assert "added 1" in status
    assert (served.corpus / "zorblat.txt").read_text() == document.read_text()

    answer, sources = _ask(page, "Where was the Zorblat Accord signed?")
    assert "Reykjavik" in answer.inner_text() and "[1]" in answer.inner_text()
    assert "zorblat.txt" in sources.locator(".qa-source").first.inner_text()

    _open_tab(page, "Documents")
    page.locator("#qa-refresh").click()
    panel = page.locator("#qa-index-panel")
    panel.get_by_text("up to date").wait_for()
    assert "zorblat.txt" in panel.inner_text() and "6 documents" in panel.inner_text()


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
