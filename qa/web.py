"""The web chat: a Gradio app that asks the engine and formats its ``Answer``.

No retrieval happens here. The app calls ``Engine.answer``, ``build_index`` and the
``Index`` facts a Python user would call, and turns their results into HTML. All document
text, titles, file names and questions are escaped before they reach the page: a document
is data, never markup.

``make_app`` builds the Blocks (tests launch it in-process); ``launch`` is what
``qa serve`` runs. A named endpoint, ``/ask``, returns an answer as JSON.
"""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import queue
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
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from qa.build import build_index, corpus_changes
from qa.config import RetrievalOptions
from qa.conversations import STORE_NAME, ConversationNotFoundError, ConversationStore, default_data_dir
from qa.corpus import MAX_UPLOAD_BYTES, delete_document, save_upload, scan_corpus
from qa.errors import OptionsError, QAError
from qa.ingest import SUPPORTED_SUFFIXES
from qa.pipeline import Engine, clean_question
from qa.records import Answer, Citation
from qa.sandbox import ReadLimits
from qa.store import Index
from qa.viewer import logged_in, view_url, viewer_routes

# Answers computed at once (chat and /ask share them); more requests wait in Gradio's queue.
# The engine is safe to share between threads. On 2 cores 16 clients got 13-19 answers/s
# with 0 errors at 2 or 4 (about 9 at 1); 4 keeps a slow answer from holding up the rest.
# (benchmarks/load_test.py, benchmarks/RESULTS.md "Load test")
ANSWER_CONCURRENCY = 4
CONTEXT_CHARS = 400  # shown on each side of a cited excerpt when a source is expanded
GLIMPSE_CHARS = 160  # shown on each side of it in the source itself
EXAMPLE_COUNT = 3
EXPORT_PATH = "/qa/export"
VIEW_CLASS = "qa-view-"  # + the viewer's address, base64url: see _open_control
# Relevance in words for a citation's score (the reranker's exact cosine and BM25 share, about
# 0..1). On the bundled corpus answers' sentences score 0.7-1.05; the closest passages of
# questions it cannot answer 0.15-0.6 when they share a topic word ("Japan"), under 0.03 when
# nothing is related. An abstention shows only passages from ABSTAIN_FLOOR up.
RELEVANCE_WORDS = ((0.9, "strong match"), (0.6, "good match"), (0.3, "partial match"), (-1.0, "weak match"))
ABSTAIN_FLOOR = 0.1
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
.qa-source details summary { cursor: pointer; opacity: 0.75; font-size: 0.85em; }
.qa-passage { margin-top: 0.3rem; padding: 0.5rem 0.7rem; border-radius: 6px;
              background: var(--background-fill-secondary); }
.qa-passage mark { background: #fde68a; color: inherit; padding: 0 1px; }
.qa-cite { cursor: pointer; }
.qa-cite:hover, .qa-cite:focus { text-decoration: underline; }
.qa-marker { color: var(--color-accent); font-weight: 600; }
.qa-open { color: var(--color-accent); }
.qa-relevance { display: inline-flex; align-items: center; gap: 0.3rem; font-size: 0.8em; opacity: 0.8; }
.qa-bar { display: inline-block; width: 3rem; height: 0.4rem; border-radius: 2px;
          background: var(--border-color-primary); overflow: hidden; }
.qa-bar > span { display: block; height: 100%; background: var(--color-accent); }
#qa-viewer iframe { width: 100%; height: 68vh; border: 1px solid var(--border-color-primary);
                    border-radius: 6px; background: white; }
#qa-viewer .qa-viewer-empty { opacity: 0.7; font-size: 0.9rem; }
#qa-viewer.qa-viewer-open .qa-viewer-empty { display: none; }
#qa-viewer:not(.qa-viewer-open) iframe { display: none; }
.qa-index table { width: 100%; border-collapse: collapse; font-size: 0.9rem; }
.qa-index th, .qa-index td { text-align: left; padding: 0.3rem 0.5rem;
                             border-bottom: 1px solid var(--border-color-primary); }
.qa-index td:nth-child(3) { white-space: nowrap; }
.qa-index .qa-pending { color: #b45309; }
"""


# Opens the viewer beside the chat when a marker or a source is clicked (or focused and
# Enter pressed). Delegated from the document: the chat's messages are re-rendered often.
VIEWER_JS = """
(() => {
  const open = (control) => {
    const token = [...control.classList].find((name) => name.startsWith('qa-view-'));
    if (!token) return;
    let view = '';
    try {
      view = atob(token.slice(8).replace(/-/g, '+').replace(/_/g, '/'));
    } catch (error) {
      return;
    }
    if (!view.startsWith('qa/view?')) return;
    const panel = document.getElementById('qa-viewer');
    let frame = document.getElementById('qa-viewer-frame');
    if (!panel) return;
    if (!frame) {
      frame = document.createElement('iframe');
      frame.id = 'qa-viewer-frame';
      frame.title = 'Source viewer';
      panel.querySelector('.qa-viewer-box').appendChild(frame);
    }
    // Scrolled here, not by the #qa-hit fragment: a fragment would scroll the chat's page too,
    // and jump before a PDF page's image above the passage has loaded (load waits for it).
    frame.onload = () => {
      const hit = frame.contentDocument && frame.contentDocument.getElementById('qa-hit');
      if (!hit) return;
      const top = hit.getBoundingClientRect().top + frame.contentWindow.scrollY;
      frame.contentWindow.scrollTo(0, Math.max(0, top - frame.clientHeight / 3));
    };
    frame.src = view.split('#')[0];
    panel.classList.add('qa-viewer-open');
  };
  const handle = (event) => {
    const control = event.target instanceof Element ? event.target.closest('#qa-chat .qa-cite') : null;
    if (!control) return;
    if (event.type === 'keydown' && event.key !== 'Enter' && event.key !== ' ') return;
    event.preventDefault();
    event.stopPropagation();
    open(control);
  };
  document.addEventListener('click', handle, true);
  document.addEventListener('keydown', handle, true);
})();
"""
VIEWER_PANEL = (
    '<div class="qa-viewer-box"><p class="qa-viewer-empty">Click a marker such as [1], or a source, '
    "to open the document at the cited passage here.</p>"
    '<iframe id="qa-viewer-frame" title="Source viewer"></iframe></div>'
)


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


def _passage_html(citation: Citation, document: str | None, context: int, css: str) -> str:
    """The excerpt in ``context`` characters of its surrounding text, highlighted; empty when
    the document changed since the answer was composed (its offsets no longer point at the
    excerpt)."""
    if document is None or document[citation.start : citation.end] != citation.excerpt:
        return ""
    start = max(0, citation.start - context)
    end = min(len(document), citation.end + context)
    before = ("…" if start > 0 else "") + document[start : citation.start]
    after = document[citation.end : end] + ("…" if end < len(document) else "")
    return (
        f'<div class="{css}">{_multiline(before)}<mark>{_multiline(citation.excerpt)}</mark>'
        f"{_multiline(after)}</div>"
    )


def relevance_html(score: float) -> str:
    """A citation's score as words and a small bar; the number on hover."""
    words = next(label for floor, label in RELEVANCE_WORDS if score >= floor)
    width = round(100 * min(1.0, max(0.0, score)))
    return (
        f'<span class="qa-relevance" title="relevance score {score:.3f}">'
        f'<span class="qa-bar"><span style="width:{width}%"></span></span>{words}</span>'
    )


def _open_control(citation: Citation, label: str, css: str) -> str:
    """An element that opens the viewer at ``citation`` when clicked (``VIEWER_JS``). Not a
    link: the chat holds no ``href`` a document could imitate. The chat's sanitizer keeps
    only a few attributes, so the viewer's address travels in a class name, base64url."""
    token = base64.urlsafe_b64encode(view_url(citation).encode()).decode().rstrip("=")
    return (
        f'<span class="qa-cite {css} {VIEW_CLASS}{token}" role="button" tabindex="0" '
        f'title="Open the document at this passage">{label}</span>'
    )


_MARKER = re.compile(r"(?<!\\)\[(\d+)\]")


def link_markers(markdown: str, answer: Answer) -> str:
    """``markdown`` (escaped answer text) with each marker ``[n]`` made a control that opens
    citation n in the viewer. Brackets copied from documents are escaped (``\\[``), so only
    the answer's own markers match."""

    def linked(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= len(answer.citations):
            return match.group(0)
        return _open_control(answer.citations[n - 1], f"[{n}]", "qa-marker")

    return _MARKER.sub(linked, markdown)


def sources_html(answer: Answer, index: Index | None) -> str:
    """The sources under an answer: for each ``[n]``, its document (click to open it at the
    passage), page, section, date and relevance, and the passage around the cited sentence
    with the sentence highlighted. For an abstention only passages above ``ABSTAIN_FLOOR``,
    or a line saying none is close. Everything from documents is escaped."""
    shown = list(enumerate(answer.citations, start=1))
    if answer.abstained:
        shown = [(n, c) for n, c in shown if c.score >= ABSTAIN_FLOOR]
        if not shown:
            return (
                '<div class="qa-sources"><div class="qa-sources-head">No passage in the documents is '
                "close to this question.</div></div>"
            )
    elif not shown:
        return ""
    heading = "Closest passages (they do not answer the question)" if answer.abstained else "Sources"
    items = []
    for n, citation in shown:
        document = None
        if index is not None:
            try:
                document = index.document_text(citation.source)
            except KeyError:  # removed by a rebuild since the answer was composed
                document = None
        meta = [f"<code>{_h(citation.source)}</code>"]
        if citation.page is not None:
            meta.append(f"p. {citation.page}" + (" (OCR)" if citation.ocr else ""))
        if citation.section:
            meta.append(f"§ {_h(citation.section)}")
        if citation.date:
            meta.append(_h(citation.date))
        glimpse = _passage_html(citation, document, GLIMPSE_CHARS, "qa-passage")
        if not glimpse:  # the document changed: the excerpt alone, as it was cited
            glimpse = f'<div class="qa-passage"><mark>{_multiline(citation.excerpt)}</mark></div>'
        wider = _passage_html(citation, document, CONTEXT_CHARS, "qa-passage qa-wider")
        details = f"<details><summary>More context</summary>{wider}</details>" if wider else ""
        where = "Open page " + str(citation.page) if citation.page is not None else "Open in document"
        items.append(
            f'<div class="qa-source" data-source="{_h(citation.source)}">'
            f'<div class="qa-source-head">{_open_control(citation, f"[{n}]", "qa-n")}'
            f"{_open_control(citation, _h(citation.title), 'qa-title')}{relevance_html(citation.score)}</div>"
            f'<div class="qa-meta">{" · ".join(meta)} · {_open_control(citation, where, "qa-open")}</div>'
            f"{glimpse}{details}</div>"
        )
    return f'<div class="qa-sources"><div class="qa-sources-head">{heading}</div>{"".join(items)}</div>'


def examples_from(index: Index) -> list[str]:
    """Example questions from the served documents: the titles of the longest ones."""
    documents = sorted(index.documents(), key=lambda d: (-d.chunks, d.source))
    titles = [d.title for d in documents if d.title.strip() and d.title != d.source]
    return [f"What does “{title}” say?" for title in titles[:EXAMPLE_COUNT]]


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


Messages = list[dict[str, Any]]


class _App:
    """The callbacks of one app, around one engine and one conversation store."""

    def __init__(
        self,
        corpus_dir: Path | None,
        engine: Engine,
        read_limits: ReadLimits | None,
        store: ConversationStore,
    ) -> None:
        self.engine = engine
        self.store = store
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

    def _answer_markdown(self, answer: Answer, question: str) -> Iterator[str]:
        """The answer message as it grows, piece by piece, markers opening the viewer."""
        followed_up = answer.query != clean_question(question)
        shown = f"_Searched for: {_escape_markdown(answer.query)}_\n\n" if followed_up else ""
        for piece in answer_pieces(answer):
            shown += link_markers(piece, answer)
            yield shown

    def _turn_messages(self, answer: Answer) -> Messages:
        """One saved turn as chat messages: the question, the answer, its sources."""
        *_, text = self._answer_markdown(answer, answer.question)
        messages = [
            {"role": "user", "content": _escape_markdown(answer.question)},
            {"role": "assistant", "content": text},
        ]
        sources = sources_html(answer, self._index_or_none())
        if sources:
            messages.append({"role": "assistant", "content": sources})
        return messages

    def respond(
        self,
        question: str,
        history: Messages | None,
        k: float,
        previous: Answer | None,
        stages: list[str] | None = None,
        conversation: str | None = None,
        turns: list[int | None] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream one turn: the question, the answer piece by piece, then its sources; then
        save it to the conversation (a new one for the first question). ``previous`` is the
        last turn's answer, which a follow-up may refer back to; ``stages`` are the retrieval
        stages switched on (default: all); ``turns`` holds the saved turn of each message."""
        history = list(history or [])
        turns = list(turns or [])[: len(history)]
        turns += [None] * (len(history) - len(turns))
        keep = (gr.skip(),) * 4  # conversation, turns, the list, the export links
        if not question or not question.strip():
            yield history, "", previous, *keep
            return
        history.append({"role": "user", "content": _escape_markdown(question)})
        history.append({"role": "assistant", "content": "_Searching the documents…_"})
        # The question moves from the box into the chat; later updates leave the box alone,
        # so a question typed while this one is answered is kept.
        yield history, "", previous, *keep
        try:
            answer = self.engine.answer(
                question,
                history=[previous] if previous is not None else [],
                retrieval=retrieval_options(int(k), stages),
            )
        except QAError as exc:
            history[-1] = {"role": "assistant", "content": f"⚠️ {_escape_markdown(str(exc))}"}
            yield history, gr.skip(), previous, *keep
            return
        except Exception:
            # Not the user's doing: say so in the chat, and let Gradio log the traceback.
            history[-1] = {
                "role": "assistant",
                "content": "⚠️ Answering failed; the server log has the details.",
            }
            yield history, gr.skip(), previous, *keep
            raise
        for shown in self._answer_markdown(answer, question):
            history[-1] = {"role": "assistant", "content": shown}
            yield history, gr.skip(), previous, *keep
        sources = sources_html(answer, self._index_or_none())
        if sources:
            history.append({"role": "assistant", "content": sources})
        try:
            if conversation is None or not any(c.id == conversation for c in self.store.conversations()):
                conversation = self.store.create(question)
            turn = self.store.add_turn(conversation, answer)
        except QAError as exc:  # the answer stands; only saving it failed
            gr.Warning(f"This turn was not saved: {exc}")
            yield history, gr.skip(), answer, *keep
            return
        turns += [turn] * (len(history) - len(turns))
        yield history, gr.skip(), answer, conversation, turns, *self._conversation_panel(conversation)

    # conversations

    def _conversation_panel(self, conversation: str | None) -> tuple[Any, str]:
        """The side panel's list (``conversation`` selected) and its export links."""
        try:
            listed = self.store.conversations()
        except QAError as exc:
            gr.Warning(str(exc))
            listed = []
        choices = [(c.title, c.id) for c in listed]
        selected = conversation if any(c.id == conversation for c in listed) else None
        links = ""
        if selected is not None:
            query = f"conversation={selected}"
            links = (
                f'Export: <a href="{EXPORT_PATH.lstrip("/")}?{query}&amp;format=md" download '
                f'id="qa-export-md">Markdown</a> · <a href="{EXPORT_PATH.lstrip("/")}?{query}&amp;format=json" '
                'download id="qa-export-json">JSON</a>'
            )
        return gr.update(choices=choices, value=selected), links

    def resume(self, conversation: str | None) -> tuple[Any, ...]:
        """Open a saved conversation: its messages, the last answer (for follow-ups), the
        saved turn of each message, the panel. An unknown id opens an empty chat."""
        history: Messages = []
        turns: list[int | None] = []
        previous = None
        try:
            saved = self.store.turns(conversation) if conversation else []
        except QAError as exc:
            gr.Warning(str(exc))
            saved = []
        for turn in saved:
            messages = self._turn_messages(turn.answer)
            history += messages
            turns += [turn.id] * len(messages)
            previous = turn.answer
        if not saved:
            conversation = None
        return history, previous, conversation, turns, *self._conversation_panel(conversation)

    def new_chat(self) -> tuple[Any, ...]:
        return [], "", None, None, [], *self._conversation_panel(None)

    def rename(self, conversation: str | None, title: str) -> tuple[Any, str, str]:
        if conversation is None:
            return gr.skip(), gr.skip(), "Ask a question first: it starts a conversation to rename."
        try:
            self.store.rename(conversation, title)
        except QAError as exc:
            return gr.skip(), gr.skip(), f"⚠️ {_escape_markdown(str(exc))}"
        listed, links = self._conversation_panel(conversation)
        return listed, links, ""

    def delete_conversation(self, conversation: str | None) -> tuple[Any, ...]:
        if conversation is not None:
            try:
                self.store.delete(conversation)
            except QAError as exc:
                gr.Warning(str(exc))
        return self.new_chat()

    # feedback

    def judge(self, turns: list[int | None] | None, data: gr.LikeData) -> tuple[Any, int | None, str]:
        """A thumbs up or down on a message saves the verdict on its turn; a thumbs-down opens
        the comment box. Returns (the comment row, the judged turn, a note)."""
        index = data.index if isinstance(data.index, int) else data.index[0]
        turn = (turns or [])[index] if 0 <= index < len(turns or []) else None
        if turn is None or data.liked not in (True, False):
            return gr.update(visible=False), None, ""
        try:
            self.store.judge(turn, 1 if data.liked else -1)
        except QAError as exc:
            return gr.update(visible=False), None, f"⚠️ {_escape_markdown(str(exc))}"
        if data.liked:
            return gr.update(visible=False), None, "Thanks: saved as a right answer."
        return gr.update(visible=True), turn, "Saved as a wrong answer. What was wrong? (optional)"

    def comment(self, turn: int | None, text: str) -> tuple[Any, str, str]:
        if turn is None:
            return gr.update(visible=False), "", ""
        try:
            self.store.judge(turn, -1, text)
        except QAError as exc:
            return gr.skip(), gr.skip(), f"⚠️ {_escape_markdown(str(exc))}"
        return gr.update(visible=False), "", "Comment saved with the answer."

    def export(self, request: Request) -> Response:
        """``/qa/export?conversation=ID&format=md|json``: one conversation as a download."""
        if not logged_in(request):
            return PlainTextResponse("Log in to the chat first.", 401)
        conversation = request.query_params.get("conversation", "")
        kind = request.query_params.get("format", "md")
        if kind not in ("md", "json"):
            return PlainTextResponse("Ask for format=md or format=json.", 400)
        try:
            if kind == "json":
                body = json.dumps(self.store.export_json(conversation), ensure_ascii=False, indent=2)
            else:
                body = self.store.export_markdown(conversation)
            title = self.store.info(conversation).title
        except ConversationNotFoundError as exc:
            return PlainTextResponse(str(exc), 404)
        name = re.sub(r"[^\w-]+", "-", title, flags=re.ASCII).strip("-")[:60] or "conversation"
        media = "application/json" if kind == "json" else "text/markdown; charset=utf-8"
        return Response(
            body.encode(),
            media_type=media,
            headers={
                "Content-Disposition": f'attachment; filename="{name}.{kind}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

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
        """Rebuild the index from the corpus folder, the progress bar showing the build's own
        counts (files read, passages embedded) as they move. The build runs in a thread of its
        own and hands its reports over a queue: this thread (the event's) draws each one, and
        the chat answers from the old index until the new one is committed."""
        if not self._build_lock.acquire(blocking=False):
            return "A rebuild is already running; wait for it to finish.", self.index_panel()
        try:
            reports: queue.SimpleQueue[tuple[str, int, int]] = queue.SimpleQueue()
            outcome: dict[str, Any] = {}

            def run() -> None:
                try:
                    # No settings: a rebuild keeps the index's model and chunking.
                    outcome["report"] = build_index(
                        self.corpus_dir(),
                        self.engine.index_dir,
                        progress=lambda stage, done, total: reports.put((stage, done, total)),
                        read_limits=self._read_limits,
                    )
                except BaseException as exc:  # handed to the event's thread, which raises it
                    outcome["error"] = exc

            worker = threading.Thread(target=run, name="qa-web-rebuild", daemon=True)
            worker.start()
            while worker.is_alive() or not reports.empty():
                try:
                    stage, done, total = reports.get(timeout=0.1)
                except queue.Empty:
                    continue
                unit = "passages" if stage.startswith("embed") else "files"
                progress((done, max(total, 1)), desc=_STAGES.get(stage, stage), unit=unit)
            worker.join()
        finally:
            self._build_lock.release()
        error = outcome.get("error")
        if isinstance(error, QAError):
            return f"⚠️ {_escape_markdown(str(error))}", self.index_panel()
        if error is not None:
            raise error
        result = outcome["report"]
        lines = [f"Index rebuilt: {_escape_markdown(result.summary())}."]
        lines += [
            f"- skipped {_escape_markdown(s.source)}: {_escape_markdown(s.reason)}" for s in result.skipped
        ]
        return "\n".join(lines), self.index_panel()

    def examples(self) -> Any:
        index = self._index_or_none()
        return gr.update(samples=[[q] for q in examples_from(index)] if index is not None else [])


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
    data_dir: str | os.PathLike[str] | None = None,
) -> tuple[gr.Blocks, list[Route]]:
    """The chat over the index in ``index_dir``, and the routes to serve beside it (the
    source viewer, conversation exports). Uploads go to ``corpus_dir`` (``None``: the
    folder the index was built from); a rebuild reads each file within ``read_limits``;
    conversations are saved in ``data_dir`` (``None``: ``qa-data`` beside the index).
    Builds no index and loads no model."""
    engine = Engine(index_dir) if engine is None else engine
    data = default_data_dir(index_dir) if data_dir is None else Path(data_dir)
    app = _App(
        None if corpus_dir is None else Path(corpus_dir),
        engine,
        read_limits,
        ConversationStore(data / STORE_NAME),
    )

    # Uploads that never reached the upload event (a client can post files without it) are
    # swept from Gradio's temp folder after 15 minutes.
    with gr.Blocks(title="Ask your documents", analytics_enabled=False, delete_cache=(300, 900)) as demo:
        gr.Markdown("## Ask your documents\nEvery answer is copied from your documents and cites them.")
        previous = gr.State(None)
        # The open conversation survives a reload; its id is all the browser keeps.
        conversation = gr.BrowserState(None, storage_key="qa-conversation", secret="qa-conversation-id")
        turns = gr.State([])  # the saved turn of each chat message (None for unsaved ones)
        judged = gr.State(None)  # the turn a thumbs-down's comment belongs to
        with gr.Tabs():
            with gr.Tab("Chat", elem_id="qa-chat-tab"), gr.Row(equal_height=False):
                with gr.Column(scale=1, min_width=190, elem_id="qa-conversations"):
                    new_chat = gr.Button("New chat", elem_id="qa-clear", size="sm")
                    listed = gr.Radio(
                        [], label="Conversations", elem_id="qa-conversation-list", interactive=True
                    )
                    title = gr.Textbox(
                        placeholder="New name", show_label=False, elem_id="qa-rename-text", max_length=200
                    )
                    with gr.Row():
                        rename = gr.Button("Rename", size="sm", elem_id="qa-rename")
                        forget = gr.Button("Delete", size="sm", variant="stop", elem_id="qa-forget")
                    exports = gr.HTML(elem_id="qa-export")
                    note = gr.Markdown(elem_id="qa-conversation-note")
                with gr.Column(scale=4):
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
                        feedback_options=("Like", "Dislike"),
                        placeholder="Ask a question about the documents in the corpus folder.",
                    )
                    with gr.Row(visible=False, elem_id="qa-feedback") as feedback_row:
                        comment = gr.Textbox(
                            placeholder="What was wrong? (optional)",
                            show_label=False,
                            scale=8,
                            elem_id="qa-feedback-text",
                            max_length=2000,
                        )
                        save_comment = gr.Button("Save comment", scale=1, elem_id="qa-feedback-save")
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask a question…",
                            show_label=False,
                            scale=8,
                            elem_id="qa-question",
                            max_length=4000,
                        )
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="qa-ask")
                    examples = gr.Dataset(
                        components=[question], samples=[], label="Examples", elem_id="qa-examples"
                    )
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
                with gr.Column(scale=3, min_width=280):
                    gr.HTML(VIEWER_PANEL, elem_id="qa-viewer")
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

        private: dict[str, Any] = {"api_visibility": "private"}
        opened = [chatbot, previous, conversation, turns, listed, exports]
        chat: dict[str, Any] = {
            "fn": app.respond,
            "inputs": [question, chatbot, k, previous, stages, conversation, turns],
            "outputs": [chatbot, question, previous, conversation, turns, listed, exports],
            "concurrency_limit": ANSWER_CONCURRENCY,
            "concurrency_id": "answer",
            **private,
        }
        question.submit(**chat)
        ask.click(**chat)
        examples.click(lambda sample: sample[0], inputs=[examples], outputs=[question], **private)
        new_chat.click(app.new_chat, outputs=[chatbot, question, previous, conversation, turns, listed, exports],
                       **private)  # fmt: skip
        chatbot.clear(app.new_chat, outputs=[chatbot, question, previous, conversation, turns, listed, exports],
                      **private)  # its own trash button  # fmt: skip
        listed.input(app.resume, inputs=[listed], outputs=opened, **private)
        rename.click(app.rename, inputs=[conversation, title], outputs=[listed, exports, note], **private)
        forget.click(app.delete_conversation, inputs=[conversation],
                     outputs=[chatbot, question, previous, conversation, turns, listed, exports], **private)  # fmt: skip
        chatbot.like(app.judge, inputs=[turns], outputs=[feedback_row, judged, note], **private)
        save_comment.click(
            app.comment, inputs=[judged, comment], outputs=[feedback_row, comment, note], **private
        )
        files.upload(app.upload, inputs=[files, replace], outputs=[status, panel, files, doomed], **private)
        delete.click(app.delete, inputs=[doomed], outputs=[status, panel, doomed], **private)
        # Two at once: a second click reaches the build lock and says a rebuild is running,
        # instead of waiting in the queue to run the same build again.
        rebuild.click(app.rebuild, outputs=[status, panel], concurrency_limit=2, **private).then(
            app.examples, outputs=[examples], **private
        )
        refresh.click(app.index_panel, outputs=[panel], **private)
        refresh.click(app.document_choices, outputs=[doomed], **private)
        demo.load(app.index_panel, outputs=[panel], **private)
        demo.load(app.document_choices, outputs=[doomed], **private)
        demo.load(app.examples, outputs=[examples], **private)
        demo.load(app.resume, inputs=[conversation], outputs=opened, **private)
        gr.api(app.ask, api_name="ask", concurrency_limit=ANSWER_CONCURRENCY, concurrency_id="answer")
    routes = [*viewer_routes(engine, app.corpus_dir), Route(EXPORT_PATH, app.export, methods=["GET"])]
    return demo, routes


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
    data_dir: str | os.PathLike[str] | None = None,
) -> gr.Blocks:
    """Serve the chat on ``host:port`` (this machine only by default), behind a
    (user, password) login when ``auth`` is given; logins are rate-limited per client.
    ``block=False`` returns the running app. Conversations are saved in ``data_dir``
    (default: ``qa-data`` beside the index). The REST, OpenAI-compatible and MCP doors of
    ``qa.api`` are served beside it, behind ``api_keys`` when given (required when ``host``
    is not loopback)."""
    from qa.api import doors

    engine = Engine(index_dir) if engine is None else engine
    routes, lifespan = doors(engine, corpus_dir=corpus_dir, host=host, api_keys=api_keys)
    demo, own_routes = make_app(
        corpus_dir, index_dir, engine=engine, read_limits=read_limits, data_dir=data_dir
    )
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
        head=f"<script>{VIEWER_JS}</script>",
        theme=gr.themes.Soft(),
        footer_links=["api"],
        ssr_mode=False,
        quiet=not block,
        # The doors' routes are matched before Gradio's own; logins are throttled.
        app_kwargs={
            "routes": [*own_routes, *routes],
            "lifespan": lifespan,
            "middleware": [Middleware(LoginThrottle)],
        },
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
