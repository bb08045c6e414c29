"""The web chat: a Gradio app that asks the engine and formats its ``Answer``.

No retrieval happens here. The app calls ``Engine.answer``, ``build_index`` and the
``Index`` facts a Python user would call, and turns their results into HTML. All document
text, titles, file names and questions are escaped before they reach the page: a document
is data, never markup.

``make_app`` builds the Blocks (tests launch it in-process); ``launch`` is what
``qa serve`` runs. A named endpoint, ``/ask``, returns an answer as JSON.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi.middleware import Middleware

from qa.build import build_index, corpus_changes
from qa.config import RetrievalOptions
from qa.corpus import MAX_UPLOAD_BYTES, delete_document, save_upload, scan_corpus
from qa.errors import OptionsError, QAError
from qa.ingest import SUPPORTED_SUFFIXES
from qa.pipeline import Engine, clean_question
from qa.records import Answer, Citation
from qa.sandbox import ReadLimits
from qa.store import Index

# Answers computed at once (chat and /ask share them); more requests wait in Gradio's queue.
# The engine is safe to share between threads. On 2 cores 16 clients got 13-19 answers/s
# with 0 errors at 2 or 4 (about 9 at 1); 4 keeps a slow answer from holding up the rest.
# (benchmarks/load_test.py, benchmarks/RESULTS.md "Load test")
ANSWER_CONCURRENCY = 4
CONTEXT_CHARS = 400  # shown on each side of a cited excerpt when a source is expanded
EXAMPLES = [
    "Where was the NATO Defense Ministers' Meeting held in October 2024?",
    "Which countries does NATO say are supporting Russia?",
    "NATO 국방장관 회의는 어디에서 열렸나요?",
]
_STAGES = {
    "scan": "Scanning the corpus",
    "read": "Reading documents",
    "embed": "Embedding passages",
    "embed-multilingual": "Embedding passages (cross-lingual)",
    "write": "Writing the index",
}

CSS = """
.qa-sources { display: flex; flex-direction: column; gap: 0.6rem; font-size: 0.92rem; }
.qa-sources-head { font-weight: 600; opacity: 0.8; }
.qa-source { border-left: 3px solid var(--color-accent); padding: 0.15rem 0 0.15rem 0.7rem; }
.qa-source-head { display: flex; flex-wrap: wrap; gap: 0.2rem 0.5rem; align-items: baseline; }
.qa-n { font-weight: 700; color: var(--color-accent); }
.qa-title { font-weight: 600; }
.qa-meta { opacity: 0.7; font-size: 0.85em; }
.qa-excerpt { margin: 0.3rem 0; font-style: italic; }
.qa-source details summary { cursor: pointer; opacity: 0.75; font-size: 0.85em; }
.qa-passage { margin-top: 0.3rem; padding: 0.5rem 0.7rem; border-radius: 6px;
              background: var(--background-fill-secondary); }
.qa-passage mark { background: #fde68a; color: inherit; padding: 0 1px; }
.qa-index table { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
.qa-index th, .qa-index td { text-align: left; padding: 0.3rem 0.5rem;
                             border-bottom: 1px solid var(--border-color-primary); }
.qa-index td:nth-child(3) { white-space: nowrap; }
.qa-index .qa-pending { color: #b45309; }
"""


# --- formatting ------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~$#{}])")
# What the renderer would turn into a link by itself (GitHub-style autolinks): a scheme's
# "://", "www.", an e-mail address's "@". A backslash before the punctuation keeps it text.
_AUTOLINK = re.compile(r"(?<=[a-zA-Z])(:)(?=//)|(?<=\bwww)(\.)|(@)")


def _escape_markdown(text: str) -> str:
    """Text shown through the chat's Markdown renderer, verbatim and inert: no markup, no
    image, no link (the citation markers are the only links an answer has)."""
    return _AUTOLINK.sub(r"\\\g<0>", _MARKDOWN_SPECIAL.sub(r"\\\1", text))


def answer_pieces(answer: Answer) -> list[str]:
    """The answer as chat Markdown, in the pieces it is streamed in: the lead, then each
    cited sentence with its marker (the abstention notice is one piece). Everything copied
    from documents is escaped; the markers stay. Joined, they are ``answer.text`` with
    those parts escaped."""
    if answer.abstained:
        return [_escape_markdown(answer.text)]
    sentences = answer.render_sentences(_escape_markdown)
    pieces = [f"{sentence} " for sentence in sentences[:-1]] + sentences[-1:]
    lead = answer.render_lead(_escape_markdown)
    return [f"{lead}\n\n", *pieces] if lead else pieces


def _h(text: object) -> str:
    return html.escape(str(text), quote=True)


def _multiline(text: str) -> str:
    # The sources are one raw-HTML block inside the chat's Markdown; a blank line would end it.
    return _h(text).replace("\n", "<br>")


def _passage_html(citation: Citation, document: str | None) -> str:
    """The excerpt in its surrounding text, highlighted; empty when the document changed
    since the answer was composed (its offsets no longer point at the excerpt)."""
    if document is None or document[citation.start : citation.end] != citation.excerpt:
        return ""
    start = max(0, citation.start - CONTEXT_CHARS)
    end = min(len(document), citation.end + CONTEXT_CHARS)
    before = ("…" if start > 0 else "") + document[start : citation.start]
    after = document[citation.end : end] + ("…" if end < len(document) else "")
    return (
        f'<div class="qa-passage">{_multiline(before)}<mark>{_multiline(citation.excerpt)}</mark>'
        f"{_multiline(after)}</div>"
    )


def sources_html(answer: Answer, index: Index | None) -> str:
    """The sources under an answer: for each ``[n]``, its document, date, score, excerpt
    and an expandable surrounding passage. Everything from documents is escaped."""
    if not answer.citations:
        return ""
    heading = "Closest passages (they do not answer the question)" if answer.abstained else "Sources"
    items = []
    for n, citation in enumerate(answer.citations, start=1):
        document = None
        if index is not None:
            try:
                document = index.document_text(citation.source)
            except KeyError:  # removed by a rebuild since the answer was composed
                document = None
        meta = [f"<code>{_h(citation.source)}</code>"]
        if citation.page is not None:
            meta.append(f"page {citation.page}" + (" (OCR)" if citation.ocr else ""))
        if citation.section:
            meta.append(f"§ {_h(citation.section)}")
        if citation.date:
            meta.append(_h(citation.date))
        meta.append(f"score {citation.score:.3f}")
        passage = _passage_html(citation, document)
        details = (
            f"<details><summary>Show surrounding passage</summary>{passage}</details>" if passage else ""
        )
        items.append(
            f'<div class="qa-source" data-source="{_h(citation.source)}">'
            f'<div class="qa-source-head"><span class="qa-n">[{n}]</span>'
            f'<span class="qa-title">{_h(citation.title)}</span>'
            f'<span class="qa-meta">{" · ".join(meta)}</span></div>'
            f'<div class="qa-excerpt">{_multiline(citation.excerpt)}</div>{details}</div>'
        )
    return f'<div class="qa-sources"><div class="qa-sources-head">{heading}</div>{"".join(items)}</div>'


def answer_json(answer: Answer) -> dict[str, Any]:
    """The JSON shape of the ``/ask`` endpoint."""
    return {
        "text": answer.text,
        "abstained": answer.abstained,
        "query": answer.query,
        "citations": [asdict(c) for c in answer.citations],
    }


# --- the app ----------------------------------------------------------------------------

RETRIEVAL_STAGES = ("dense", "lexical", "rerank")


def retrieval_options(k: int, stages: list[str] | None) -> RetrievalOptions:
    """The retrieval options for the chosen stages; at least one search must stay on."""
    on = set(RETRIEVAL_STAGES if stages is None else stages)
    if not on & {"dense", "lexical"}:
        raise OptionsError("Turn on dense or lexical search in the retrieval settings.")
    return RetrievalOptions(k=k, dense="dense" in on, lexical="lexical" in on, rerank="rerank" in on)


def _whole_number(value: object, name: str) -> int:
    """``value`` as an int when it is a whole number (3 or 3.0), else ``OptionsError``: an API
    client may send any JSON."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise OptionsError(f"{name} must be a whole number of passages (for example 5), not {value!r:.40}.")


class _App:
    """The callbacks of one app, around one engine."""

    def __init__(self, corpus_dir: Path | None, engine: Engine, read_limits: ReadLimits | None) -> None:
        self.engine = engine
        self._corpus_dir = corpus_dir
        self._read_limits = read_limits
        self._build_lock = threading.Lock()

    def corpus_dir(self) -> Path:
        if self._corpus_dir is not None:
            return self._corpus_dir
        return self.engine.index().corpus_dir

    def _index_or_none(self) -> Index | None:
        try:
            return self.engine.index()
        except QAError:
            return None

    # chat

    def respond(
        self,
        question: str,
        history: list[dict[str, Any]] | None,
        k: float,
        previous: Answer | None,
        stages: list[str] | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], Any, Answer | None]]:
        """Stream one turn: the question, the answer piece by piece, then its sources.
        ``previous`` is the last turn's answer, which a follow-up may refer back to;
        ``stages`` are the retrieval stages switched on (default: all)."""
        history = list(history or [])
        if not question or not question.strip():
            yield history, "", previous
            return
        history.append({"role": "user", "content": _escape_markdown(question)})
        history.append({"role": "assistant", "content": "_Searching the documents…_"})
        # The question moves from the box into the chat; later updates leave the box alone,
        # so a question typed while this one is answered is kept.
        yield history, "", previous
        try:
            answer = self.engine.answer(
                question,
                history=[previous] if previous is not None else [],
                retrieval=retrieval_options(int(k), stages),
            )
        except QAError as exc:
            history[-1] = {"role": "assistant", "content": f"⚠️ {_escape_markdown(str(exc))}"}
            yield history, gr.skip(), previous
            return
        except Exception:
            # Not the user's doing: say so in the chat, and let Gradio log the traceback.
            history[-1] = {
                "role": "assistant",
                "content": "⚠️ Answering failed; the server log has the details.",
            }
            yield history, gr.skip(), previous
            raise
        followed_up = answer.query != clean_question(question)
        shown = f"_Searched for: {_escape_markdown(answer.query)}_\n\n" if followed_up else ""
        for piece in answer_pieces(answer):
            shown += piece
            history[-1] = {"role": "assistant", "content": shown}
            yield history, gr.skip(), previous
        sources = sources_html(answer, self._index_or_none())
        if sources:
            history.append({"role": "assistant", "content": sources})
        yield history, gr.skip(), answer

    def ask(self, question: str, k: int = 0) -> dict[str, Any]:
        """Answer a question from the documents, with citations.

        Returns {text, abstained, query, citations}: ``text`` has [n] markers indexing
        ``citations`` (1-based; each has source, title, excerpt, start, end, score, date,
        page, section, ocr).
        ``k`` is the number of passages to retrieve; 0 uses the default.
        """
        try:
            passages = _whole_number(k, "k")
            return answer_json(self.engine.answer(question, k=passages if passages > 0 else None))
        except QAError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc

    # documents tab

    def index_panel(self) -> str:
        try:
            index = self.engine.index()
        except QAError as exc:
            return f'<div class="qa-index"><p>{_h(exc)}</p></div>'
        documents = index.documents()
        dense = index.manifest.dense
        multilingual = index.manifest.multilingual
        facts = [
            f"<b>{len(documents)}</b> documents, <b>{index.chunk_count}</b> passages",
            f"model <code>{_h(dense.model)}</code> ({dense.dimension}-d)",
            f"cross-lingual <code>{_h(multilingual.model)}</code>" if multilingual else "cross-lingual off",
            f"last built {_h(index.built_at)}",
        ]
        corpus = self.corpus_dir()
        try:
            changes = corpus_changes(corpus, index)
        except QAError as exc:
            status = f'<p class="qa-pending">{_h(exc)}</p>'
        else:
            pending = [
                f"{label} <code>{_h(name)}</code>"
                for label, names in (
                    ("new", changes.added),
                    ("changed", changes.changed),
                    ("removed", changes.removed),
                )
                for name in names
            ]
            status = (
                '<p class="qa-pending">Changed since the last build (press <b>Rebuild index</b>): '
                f"{', '.join(pending)}</p>"
                if pending
                else "<p>The index is up to date with the corpus folder.</p>"
            )
        rows = "".join(
            f"<tr><td>{_h(d.title)}</td><td><code>{_h(d.source)}</code></td>"
            f"<td>{_h(d.date or '')}</td><td>{d.chunks}</td></tr>"
            for d in documents
        )
        return (
            f'<div class="qa-index"><p>{" · ".join(facts)}</p>'
            f"<p>Corpus folder: <code>{_h(corpus)}</code></p>{status}"
            "<table><thead><tr><th>Title</th><th>File</th><th>Date</th><th>Passages</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )

    def upload(self, paths: list[str] | None, replace: bool = False) -> tuple[str, str, None, Any]:
        lines = []
        saved = False
        for path in paths or []:
            try:
                message = save_upload(path, self.corpus_dir(), replace=bool(replace))
                lines.append(f"- {_escape_markdown(message)}")
                saved = True
            except QAError as exc:
                lines.append(f"- refused: {_escape_markdown(str(exc))}")
            finally:
                _discard_upload(path)
        if saved:
            lines.append("\nPress **Rebuild index** to make the new documents searchable.")
        return "\n".join(lines) or "No file received.", self.index_panel(), None, self.document_choices()

    def delete(self, source: str | None) -> tuple[str, str, Any]:
        if not source:
            return "Choose a document to delete.", self.index_panel(), self.document_choices()
        try:
            deleted = _escape_markdown(delete_document(self.corpus_dir(), source))
            message = f"{deleted}; press **Rebuild index** to drop it from the index."
        except QAError as exc:
            message = f"⚠️ {_escape_markdown(str(exc))}"
        return message, self.index_panel(), self.document_choices()

    def document_choices(self) -> Any:
        """The corpus files for the delete menu (those a rebuild would read or has skipped)."""
        try:
            files, skipped = scan_corpus(self.corpus_dir())
        except QAError:
            return gr.update(choices=[], value=None)
        return gr.update(choices=sorted({f.source for f in files} | {s.source for s in skipped}), value=None)

    def rebuild(self, progress: gr.Progress = gr.Progress()) -> tuple[str, str]:  # noqa: B008 (Gradio's idiom)
        def report(stage: str, done: int, total: int) -> None:
            progress((done, max(total, 1)), desc=_STAGES.get(stage, stage))

        if not self._build_lock.acquire(blocking=False):
            return "A rebuild is already running; wait for it to finish.", self.index_panel()
        try:
            # No settings: a rebuild keeps the index's model and chunking.
            result = build_index(
                self.corpus_dir(), self.engine.index_dir, progress=report, read_limits=self._read_limits
            )
        except QAError as exc:
            return f"⚠️ {_escape_markdown(str(exc))}", self.index_panel()
        finally:
            self._build_lock.release()
        lines = [f"Index rebuilt: {_escape_markdown(result.summary())}."]
        lines += [
            f"- skipped {_escape_markdown(s.source)}: {_escape_markdown(s.reason)}" for s in result.skipped
        ]
        return "\n".join(lines), self.index_panel()


def _discard_upload(path: str) -> None:
    """Delete Gradio's temporary copy of an upload once it is in the corpus (or refused), so
    uploads do not pile up in the temp folder. Only files in Gradio's upload folder."""
    from gradio.utils import get_upload_folder

    copy = Path(path).resolve()
    if copy.is_relative_to(Path(get_upload_folder()).resolve()):
        copy.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            copy.parent.rmdir()  # Gradio keeps each upload in a folder of its own


def make_app(
    corpus_dir: str | os.PathLike[str] | None,
    index_dir: str | os.PathLike[str],
    *,
    engine: Engine | None = None,
    read_limits: ReadLimits | None = None,
) -> gr.Blocks:
    """The chat over the index in ``index_dir``; uploads go to ``corpus_dir`` (``None``: the
    folder the index was built from); a rebuild reads each file within ``read_limits``.
    Builds no index and loads no model."""
    engine = Engine(index_dir) if engine is None else engine
    app = _App(None if corpus_dir is None else Path(corpus_dir), engine, read_limits)

    # Uploads that never reached the upload event (a client can post files without it) are
    # swept from Gradio's temp folder after 15 minutes.
    with gr.Blocks(title="Ask your documents", analytics_enabled=False, delete_cache=(300, 900)) as demo:
        gr.Markdown("## Ask your documents\nEvery answer is copied from your documents and cites them.")
        previous = gr.State(None)
        with gr.Tabs():
            with gr.Tab("Chat", elem_id="qa-chat-tab"):
                chatbot = gr.Chatbot(
                    label="Chat",
                    show_label=False,
                    height="68vh",
                    elem_id="qa-chat",
                    buttons=["copy", "copy_all"],
                    latex_delimiters=[],
                    sanitize_html=True,
                    allow_tags=False,
                    group_consecutive_messages=False,
                    feedback_options=None,
                    placeholder="Ask a question about the documents in the corpus folder.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question…",
                        show_label=False,
                        scale=8,
                        elem_id="qa-question",
                        max_length=4000,
                    )
                    ask = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                    clear = gr.Button("Clear chat", scale=1, elem_id="qa-clear")
                gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question], label="Examples")
                with gr.Accordion("Retrieval settings", open=False):
                    k = gr.Slider(
                        1, 20, value=engine.settings.retrieval.k, step=1, label="Passages to retrieve (k)"
                    )
                    stages = gr.CheckboxGroup(
                        list(RETRIEVAL_STAGES),
                        value=list(RETRIEVAL_STAGES),
                        label="Retrieval stages",
                        info="dense: embeddings; lexical: BM25; rerank: exact dense + BM25 scores",
                        elem_id="qa-stages",
                    )
            with gr.Tab("Documents", elem_id="qa-documents-tab"):
                panel = gr.HTML(elem_id="qa-index-panel")
                files = gr.File(
                    label=f"Add documents ({' '.join(SUPPORTED_SUFFIXES)}; up to {MAX_UPLOAD_BYTES >> 20} MB each)",
                    file_count="multiple",
                    file_types=list(SUPPORTED_SUFFIXES),
                    type="filepath",
                    elem_id="qa-upload",
                )
                replace = gr.Checkbox(
                    label="Replace documents with the same name (the current version is kept until the next rebuild)",
                    value=False,
                    elem_id="qa-replace",
                )
                with gr.Row():
                    rebuild = gr.Button("Rebuild index", variant="primary", elem_id="qa-rebuild")
                    refresh = gr.Button("Refresh", elem_id="qa-refresh")
                with gr.Row():
                    doomed = gr.Dropdown(
                        [],
                        label="Document to delete",
                        scale=4,
                        elem_id="qa-delete-choice",
                        allow_custom_value=True,
                    )
                    delete = gr.Button("Delete document", variant="stop", scale=1, elem_id="qa-delete")
                status = gr.Markdown(elem_id="qa-status")

        chat: dict[str, Any] = {
            "fn": app.respond,
            "inputs": [question, chatbot, k, previous, stages],
            "outputs": [chatbot, question, previous],
            "api_visibility": "private",
            "concurrency_limit": ANSWER_CONCURRENCY,
            "concurrency_id": "answer",
        }
        question.submit(**chat)
        ask.click(**chat)
        clear.click(lambda: ([], "", None), outputs=[chatbot, question, previous], api_visibility="private")
        chatbot.clear(lambda: None, outputs=[previous], api_visibility="private")  # its own trash button
        files.upload(
            app.upload,
            inputs=[files, replace],
            outputs=[status, panel, files, doomed],
            api_visibility="private",
        )
        delete.click(app.delete, inputs=[doomed], outputs=[status, panel, doomed], api_visibility="private")
        # Two at once: a second click reaches the build lock and says a rebuild is running,
        # instead of waiting in the queue to run the same build again.
        rebuild.click(app.rebuild, outputs=[status, panel], api_visibility="private", concurrency_limit=2)
        refresh.click(app.index_panel, outputs=[panel], api_visibility="private")
        refresh.click(app.document_choices, outputs=[doomed], api_visibility="private")
        demo.load(app.index_panel, outputs=[panel], api_visibility="private")
        demo.load(app.document_choices, outputs=[doomed], api_visibility="private")
        gr.api(app.ask, api_name="ask", concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="answer")
    return demo


def launch(
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    index_dir: str | os.PathLike[str] = "index",
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    engine: Engine | None = None,
    read_limits: ReadLimits | None = None,
    block: bool = True,
    api_keys: Sequence[str] = (),
) -> gr.Blocks:
    """Serve the chat on ``host:port`` (this machine only by default), behind a
    (user, password) login when ``auth`` is given; logins are rate-limited per client.
    ``block=False`` returns the running app. The REST, OpenAI-compatible and MCP doors of
    ``qa.api`` are served beside it, behind ``api_keys`` when given (required when ``host``
    is not loopback)."""
    from qa.api import doors

    engine = Engine(index_dir) if engine is None else engine
    routes, lifespan = doors(engine, corpus_dir=corpus_dir, host=host, api_keys=api_keys)
    demo = make_app(corpus_dir, index_dir, engine=engine, read_limits=read_limits)
    # Load the models while the browser connects, so the first question is not the slow one.
    threading.Thread(target=_warm_up, args=(engine,), daemon=True).start()
    demo.queue(default_concurrency_limit=1)  # uploads, the documents panel: one at a time
    demo.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        prevent_thread_lock=not block,
        max_file_size=f"{MAX_UPLOAD_BYTES >> 20}mb",
        css=CSS,
        theme=gr.themes.Soft(),
        footer_links=["api"],
        ssr_mode=False,
        quiet=not block,
        # The doors' routes are matched before Gradio's own; logins are throttled.
        app_kwargs={"routes": routes, "lifespan": lifespan, "middleware": [Middleware(LoginThrottle)]},
    )
    return demo


# Failed logins one client may make in LOGIN_WINDOW_SECONDS; then its logins are refused
# (429) until the oldest failure is that old. 200 guesses took 3.9 s without it.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 60.0


class LoginThrottle:
    """ASGI middleware: rate-limits ``POST /login`` per client address.

    A response of 400 (Gradio's "Incorrect credentials") counts as a failure; a client with
    ``LOGIN_ATTEMPTS`` failures in the window gets 429 without its password being checked.
    """

    def __init__(
        self, app: Any, attempts: int = LOGIN_ATTEMPTS, window: float = LOGIN_WINDOW_SECONDS
    ) -> None:
        self.app = app
        self.attempts = attempts
        self.window = window
        self.failures: dict[str, deque[float]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/login":
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown",))[0]
        recent = self.failures.setdefault(client, deque())
        now = time.monotonic()
        while recent and now - recent[0] > self.window:
            recent.popleft()
        if len(recent) >= self.attempts:
            wait = int(self.window - (now - recent[0])) + 1
            body = json.dumps({"detail": f"Too many failed logins; try again in {wait} s."}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", str(wait).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 400:
                    recent.append(time.monotonic())
                elif message["status"] == 200:
                    recent.clear()
            await send(message)

        await self.app(scope, receive, record)


def _warm_up(engine: Engine) -> None:
    try:
        engine.warm_up()
    except QAError:
        return  # no usable index yet; the chat says why when asked
