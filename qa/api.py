"""The HTTP doors beside the web chat, served by the same ``qa serve`` process:

- a REST API under ``/api/v1`` (its OpenAPI schema at ``/api/v1/openapi.json``, browsable
  at ``/api/v1/docs``);
- an OpenAI-compatible chat under ``/v1`` (``/v1/chat/completions``, ``/v1/models``);
- the MCP tools of ``qa.mcp_server`` over streamable HTTP at ``/mcp``.

They translate requests into calls of ``qa.service.Service`` (one ``Engine``) and its
results into JSON; nothing here retrieves or composes. With API keys configured every
request needs ``Authorization: Bearer <key>``; bound to anything but loopback, keys are
required (``doors`` refuses to start without them).
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json
import os
import time
import typing
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, fields
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, create_model
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from qa.errors import (
    IndexBusyError,
    IndexCorruptError,
    IndexMismatchError,
    IndexNotFoundError,
    ModelNotFoundError,
    OptionsError,
    QAError,
    QuestionError,
)
from qa.pipeline import Engine
from qa.records import Answer, Citation
from qa.service import MAX_HISTORY, BuildJob, BuildRunningError, Service, answer_dict
from qa.store.reader import DocumentInfo

API_PREFIX = "/api/v1"
OPENAI_PREFIX = "/v1"
MCP_PATH = "/mcp"
MODEL_ID = "qa"  # the served index, as /v1/models lists it
MAX_K = 50
MAX_TEXT = 10_000  # characters of one question or message; the engine keeps 2,000 of a question
# Answers computed at once by these doors (the web chat has its own ANSWER_CONCURRENCY);
# further requests wait without holding a thread.
API_CONCURRENCY = 4
LOOPBACK_NAMES = ("localhost",)

_T = TypeVar("_T")


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# --- shared plumbing ----------------------------------------------------------------------


class _Doors:
    """One service, its key check and its answer limit, shared by the three doors."""

    def __init__(self, service: Service, api_keys: Sequence[str]) -> None:
        self.service = service
        self.keys = tuple(k for k in api_keys if k)
        self._limiter: anyio.CapacityLimiter | None = None

    def authorized(self, authorization: str | None) -> bool:
        """No keys: every request. Keys: a request with one of them as its bearer token."""
        if not self.keys:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and any(
            hmac.compare_digest(token.strip().encode(), key.encode()) for key in self.keys
        )

    async def run(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
        """``fn`` in a worker thread, at most ``API_CONCURRENCY`` at once."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(API_CONCURRENCY)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)


UNAUTHORIZED = "A valid API key is required: send the header 'Authorization: Bearer <key>'."


# Declared so that the schema shows the scheme; the check reads the header itself.
_BEARER = HTTPBearer(auto_error=False, description="An API key from api_keys in qa.toml or QA_API_KEYS")


def _key_dependency(doors: _Doors) -> Callable[..., None]:
    def require_key(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]
    ) -> None:
        if not doors.authorized(request.headers.get("authorization")):
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})

    return require_key


def _status(exc: QAError) -> int:
    """The HTTP status of a ``QAError``: the caller's input, a busy index, no usable index, or
    the server's fault."""
    if isinstance(exc, QuestionError | OptionsError):
        return 400
    if isinstance(exc, IndexBusyError | BuildRunningError):
        return 409
    if isinstance(exc, IndexNotFoundError | IndexCorruptError | IndexMismatchError | ModelNotFoundError):
        return 503
    return 500


def _record_model(name: str, record: type, **extra: Any) -> type[BaseModel]:
    """A response schema with every field of the dataclass ``record`` (so a field added to
    the record appears in the schema and the JSON by itself) plus ``extra``."""
    hints = typing.get_type_hints(record)
    definitions: dict[str, Any] = {**extra, **{f.name: (hints[f.name], ...) for f in fields(record)}}
    return create_model(name, **definitions)


# --- REST ----------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskRequest(_Strict):
    question: str = Field(
        min_length=1, max_length=MAX_TEXT, description="The question, in any language the index reads."
    )
    # strict: JSON true is not 1 passage
    k: int | None = Field(
        None, ge=1, le=MAX_K, strict=True, description="Passages to retrieve (default: the server's)."
    )
    history: list[str] = Field(
        default_factory=list,
        max_length=100,
        description=f"Earlier questions of the conversation, oldest first (the last {MAX_HISTORY} count): "
        "a follow-up ('Who represented South Korea there?') is resolved against them.",
    )


class SearchRequest(_Strict):
    query: str = Field(min_length=1, max_length=MAX_TEXT)
    k: int = Field(5, ge=1, le=MAX_K, strict=True, description="Passages to return.")


AnswerModel = _record_model("Answer", Answer, text=(str, ...))
DocumentModel = _record_model("Document", DocumentInfo, text=(str, ...))


BuildJobModel = _record_model("BuildJob", BuildJob)


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    index: str = Field(description="The served index folder, absolute (how `qa ask` finds its server).")
    documents: int
    chunks: int
    built_at: str
    model: str


class _Error(BaseModel):
    detail: str


def rest_app(doors: _Doors) -> FastAPI:
    """The REST API, to be mounted at ``API_PREFIX``."""
    from qa import __version__

    dependencies = [Depends(_key_dependency(doors))] if doors.keys else []
    errors: dict[int | str, dict[str, Any]] = {
        code: {"model": _Error} for code in (400, 401, 404, 409, 503) if code != 401 or doors.keys
    }
    app = FastAPI(
        title="qa",
        version=__version__,
        summary="Answers from your documents with exact, checkable citations, or an honest abstention.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=dependencies,
        responses=errors,
    )
    service = doors.service

    @app.exception_handler(QAError)
    async def _qa_error(request: Request, exc: QAError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status(exc))

    @app.post("/ask", response_model=AnswerModel, summary="Answer a question with citations")
    async def ask(body: AskRequest) -> dict[str, Any]:
        """The answer: ``text`` with ``[n]`` markers indexing ``citations`` (1-based; each
        ``excerpt == document_text[start:end]``), or ``abstained`` with the closest passages."""
        return answer_dict(await doors.run(service.answer, body.question, history=body.history, k=body.k))

    @app.post("/search", response_model=list[Citation], summary="The best passages for a query")
    async def search(body: SearchRequest) -> list[dict[str, Any]]:
        return [asdict(c) for c in await doors.run(service.passages, body.query, k=body.k)]

    @app.get("/documents", response_model=list[DocumentInfo], summary="The indexed documents")
    async def documents() -> list[dict[str, Any]]:
        return await doors.run(service.documents)

    @app.get("/documents/{source:path}", response_model=DocumentModel, summary="One document's cleaned text")
    async def document(source: str) -> dict[str, Any]:
        """``source`` is the document's path in the corpus, as ``/documents`` lists it; the
        ``text`` is the cleaned text citations' offsets point into."""
        try:
            return await doors.run(service.document, source)
        except KeyError:
            raise HTTPException(
                404, f"No indexed document '{source}'; GET {API_PREFIX}/documents lists them."
            ) from None

    @app.post("/build", status_code=202, response_model=BuildJobModel, summary="Start an incremental rebuild")
    async def build() -> dict[str, Any]:
        """Rebuilds the index from the corpus folder in the background (only new and changed
        documents are read and embedded); poll ``GET /build/{id}``. 409 while one runs."""
        return asdict(await doors.run(service.start_build))

    @app.get("/build/{job_id}", response_model=BuildJobModel, summary="A build's progress")
    async def build_status(job_id: str) -> dict[str, Any]:
        try:
            return asdict(service.job(job_id))
        except KeyError:
            raise HTTPException(
                404, f"No build job '{job_id}'; POST {API_PREFIX}/build starts one."
            ) from None

    @app.get("/health", response_model=Health, summary="Whether the index is usable")
    async def health() -> dict[str, Any]:
        index = await doors.run(service.engine.index)
        return {
            "status": "ok",
            "version": __version__,
            "index": str(service.engine.index_dir.resolve()),
            "documents": len(index.document_hashes),
            "chunks": index.chunk_count,
            "built_at": index.built_at,
            "model": index.manifest.dense.model,
        }

    return app


# --- OpenAI-compatible chat ----------------------------------------------------------------


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = Field(None, max_length=MAX_TEXT)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = Field(None, max_length=MAX_TEXT)

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatRequest(BaseModel):
    # temperature, top_p, max_tokens…: accepted and ignored, the answer is copied, not generated
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    k: int | None = Field(None, ge=1, le=MAX_K, description="qa: passages to retrieve")


def _source_line(n: int, citation: Citation, *, quote: bool) -> str:
    where = [citation.source]
    if citation.page is not None:
        where.append(f"page {citation.page}")
    if citation.section:
        where.append(f"§ {citation.section}")
    line = f"[{n}] {citation.title} ({', '.join(where)})"
    return f"{line}: “{citation.excerpt}”" if quote else line


def chat_pieces(answer: Answer) -> list[str]:
    """The reply's content in the pieces it streams in: the lead, each cited sentence with
    its ``[n]`` marker, then the "Sources" list (for an abstention: the notice, then the
    closest passages, quoted). Joined, the first pieces are ``answer.text``."""
    if answer.abstained:
        pieces = [answer.text]
        heading = "Closest passages (they do not answer the question):"
    else:
        sentences = answer.render_sentences()
        pieces = [f"{s} " for s in sentences[:-1]] + sentences[-1:]
        lead = answer.render_lead()
        pieces = [f"{lead}\n\n", *pieces] if lead else pieces
        heading = "Sources:"
    if answer.citations:
        lines = [_source_line(n, c, quote=answer.abstained) for n, c in enumerate(answer.citations, start=1)]
        pieces.append("\n\n" + "\n".join([heading, *lines]))
    return pieces


def _openai_error(message: str, status: int, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": None}}, status)


def openai_app(doors: _Doors) -> FastAPI:
    """The OpenAI-compatible endpoints, to be mounted at ``OPENAI_PREFIX``. The last user
    message is the question; the earlier user messages are the conversation it may follow
    up on. The structured answer travels in the extra field ``qa``."""
    dependencies = [Depends(_key_dependency(doors))] if doors.keys else []
    app = FastAPI(title="qa (OpenAI-compatible)", openapi_url=None, docs_url=None, redoc_url=None,
                  dependencies=dependencies)  # fmt: skip
    service = doors.service

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        response = _openai_error(str(exc.detail), exc.status_code, kind)
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        return _openai_error(f"Invalid request: {problems}", 400)

    @app.exception_handler(QAError)
    async def _qa_error(request: Request, exc: QAError) -> JSONResponse:
        status = _status(exc)
        return _openai_error(str(exc), status, "invalid_request_error" if status < 500 else "server_error")

    def model_card() -> dict[str, Any]:
        try:
            created = int(datetime.fromisoformat(service.engine.index().built_at).timestamp())
        except (QAError, ValueError):
            created = 0
        return {"id": MODEL_ID, "object": "model", "created": created, "owned_by": "qa"}

    @app.get("/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [await doors.run(model_card)]}

    @app.get("/models/{model}")
    async def model(model: str) -> dict[str, Any]:
        if model != MODEL_ID:
            raise HTTPException(404, f"The model '{model}' does not exist; this server serves '{MODEL_ID}'.")
        return await doors.run(model_card)

    @app.post("/chat/completions", response_model=None)
    async def chat(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        if body.model != MODEL_ID:
            raise HTTPException(
                404, f"The model '{body.model}' does not exist; this server serves '{MODEL_ID}'."
            )
        asked = [m.text() for m in body.messages if m.role == "user"]
        if body.messages[-1].role != "user" or not asked:
            raise HTTPException(400, "The last message must be the user's question.")
        answer = await doors.run(service.answer, asked[-1], history=asked[:-1], k=body.k)
        pieces = chat_pieces(answer)
        head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": MODEL_ID}
        if not body.stream:
            message = {"role": "assistant", "content": "".join(pieces)}
            return {**head, "object": "chat.completion", "qa": answer_dict(answer),
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            data = {**head, "object": "chat.completion.chunk", "choices": [choice], **extra}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            yield chunk({"role": "assistant", "content": ""})
            for piece in pieces:
                yield chunk({"content": piece})
            yield chunk({}, "stop", qa=answer_dict(answer))
            yield "data: [DONE]\n\n"

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return app


# --- MCP over streamable HTTP --------------------------------------------------------------


class _RequireKey:
    """Refuses a request without a valid API key before it reaches ``app`` (the MCP
    transport, which has no FastAPI dependencies)."""

    def __init__(self, app: ASGIApp, doors: _Doors) -> None:
        self.app, self.doors = app, doors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if scope["type"] == "http" and not self.doors.authorized(authorization):
            response = JSONResponse({"detail": UNAUTHORIZED}, 401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


# --- all of them ----------------------------------------------------------------------------


def doors(
    engine: Engine,
    *,
    corpus_dir: str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    api_keys: Sequence[str] = (),
) -> tuple[list[BaseRoute], Callable[[Any], AbstractAsyncContextManager[None]]]:
    """The routes of the REST API, the OpenAI-compatible chat and MCP, and the lifespan the
    MCP transport needs, for the app that serves them (the web chat's). Raises
    ``OptionsError`` when ``host`` is not loopback and no API key is given: the doors would
    be open to the network."""
    from qa.mcp_server import mcp_server

    if not is_loopback(host) and not any(api_keys):
        raise OptionsError(
            f"Serving on {host} opens the APIs to the network: set API keys (api_keys in qa.toml, "
            "or QA_API_KEYS=key1,key2), or bind 127.0.0.1."
        )
    shared = _Doors(Service(engine, corpus_dir), api_keys)
    mcp = mcp_server(shared.service, run=shared.run)
    from mcp.server.transport_security import TransportSecuritySettings

    # On loopback the SDK's DNS-rebinding protection (Host and Origin checks) stays on;
    # elsewhere the API keys guard the door, and the Host is whatever name clients use.
    security = None if is_loopback(host) else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    transport = mcp.streamable_http_app(streamable_http_path=MCP_PATH, host=host, transport_security=security)
    routes: list[BaseRoute] = [
        Mount(API_PREFIX, app=rest_app(shared)),
        Mount(OPENAI_PREFIX, app=openai_app(shared)),
        Route(MCP_PATH, endpoint=_RequireKey(transport, shared), methods=["GET", "POST", "DELETE"]),
    ]

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    return routes, lifespan


__all__ = ["API_PREFIX", "MCP_PATH", "MODEL_ID", "OPENAI_PREFIX", "chat_pieces", "doors", "is_loopback"]
